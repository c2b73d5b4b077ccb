/* SPDX-License-Identifier: MIT */
/* mirror and check-peer: the seed's host A mirrored is host B (same first matches for every
 * flow), A and B agree, and each kind of mismatch is found. */
#include <sys/socket.h>

#include "../../lib/eval.h"
#include "../../lib/peer.h"
#include "fixture.h"
#include "t.h"

#define A_ADDR "fec0::2222:a00:bff:fe3a:100"
#define B_ADDR "fec0::2222:a00:bff:fe3a:127"

struct loaded {
	struct mc_site *s;
	struct mc_plan plan;
	struct mc_diags ds;
};

static bool load(const char *path, struct loaded *l)
{
	struct mc_conf_opts o = { 0 };

	memset(l, 0, sizeof(*l));
	return mc_conf_load(path, &o, &l->ds, &l->s) == 0 && mc_site_validate(l->s, &l->ds) == 0 &&
	       mc_compile(l->s, NULL, &l->ds, &l->plan) == 0 && l->ds.errors == 0;
}

static void unload(struct loaded *l)
{
	if (l->s)
		mc_plan_free(&l->plan);
	mc_site_free(l->s);
	mc_diags_free(&l->ds);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* Mismatches between host A and a copy of host B edited by sed expression `edit`. */
static size_t mismatches_with(const char *edit, const char *code, size_t *ret_code)
{
	char *cmd = mc_asprintf("sed '%s' examples/host-b/site.yaml > examples/host-b/edited.yaml", edit);
	struct loaded a, b;
	struct mc_diags ds = { 0 };
	size_t n = SIZE_MAX;

	*ret_code = 0;
	if (system(cmd) == 0 && load("examples/host-a/site.yaml", &a) && load("examples/host-b/edited.yaml", &b)) {
		struct mc_peer_side sa = { a.s, &a.plan, { 0 } }, sb = { b.s, &b.plan, { 0 } };
		mc_addr_parse(A_ADDR, &sa.addr);
		mc_addr_parse(B_ADDR, &sb.addr);
		n = mc_check_peer(&sa, &sb, &ds);
		for (size_t i = 0; i < ds.n; i++)
			*ret_code += ds.d[i].code && !strcmp(ds.d[i].code, code);
		unload(&b);
	}
	unload(&a);
	mc_diags_free(&ds);
	free(cmd);
	return n;
}

int main(void)
{
	char *n1 = mc_mirror_name("PROTECTFTPOUT"), *n2 = mc_mirror_name("bna-in"), *n3 = mc_mirror_name("WEB");
	T_EQ_STR(n1, "PROTECTFTPIN", "OUT becomes IN");
	T_EQ_STR(n2, "bna-out", "in becomes out, case kept");
	T_EQ_STR(n3, "WEB", "other names stay");
	free(n1);
	free(n2);
	free(n3);

	char *tmp = enter_private_copy("tests/unit/fixtures/lint");
	T_OK(tmp && system("chmod 600 examples/*/keys.yaml") == 0, "examples copied to a private directory");

	/* Mirror host A towards B, into B's directory (so keys.yaml resolves to B's). */
	struct loaded a, b, m;
	struct mc_buf out = { 0 };
	struct mc_diags ds = { 0 };
	struct mc_mirror_opts o = { .have_self = true, .source = "host-a/site.yaml" };
	mc_addr_parse(B_ADDR, &o.peer);
	mc_addr_parse(A_ADDR, &o.self);
	T_OK(load("examples/host-a/site.yaml", &a), "host A loads");
	T_EQ_INT(mc_mirror(a.s, &o, &out, &ds), 8, "all 8 policies are towards B (or any)");
	T_OK(!strstr(mc_buf_str(&out), "6d63707365632d"), "the mirror carries key names, never key bytes");
	write_file("examples/host-b/mirror.yaml", mc_buf_str(&out));
	T_OK(load("examples/host-b/mirror.yaml", &m), "the mirror loads and validates as a site");
	T_OK(load("examples/host-b/site.yaml", &b), "host B loads");

	/* The mirror behaves like the hand-written host B: same first match, by name, for every
	 * protocol, direction, remote port and a sample of local ports. */
	static const int protos[] = { MC_PROTO_TCP, MC_PROTO_UDP, MC_PROTO_BIP, MC_PROTO_ICMPV6 };
	long flows = 0, differ = 0;
	for (size_t p = 0; p < MC_ARRAY_SIZE(protos); p++)
		for (int d = 0; d < 2; d++)
			for (unsigned lp = 1; lp < 65535; lp += 997) {
				struct mc_query q = { .proto = protos[p], .dir = (enum mc_dir)d, .local_lo = lp,
						      .local_hi = lp, .remote_lo = 1, .remote_hi = 65535 };
				struct mc_results rb, rm;
				mc_addr_parse(B_ADDR, &q.local);
				mc_addr_parse(A_ADDR, &q.remote);
				if (protos[p] == MC_PROTO_ICMPV6) {
					q.local_lo = q.local_hi = lp % 256;
					q.remote_lo = 0;
					q.remote_hi = 255;
				}
				mc_eval(&b.plan, &q, &rb);
				mc_eval(&m.plan, &q, &rm);
				flows++;
				bool same = same_results(&rb, &rm, NULL);
				differ += !same;
				mc_results_free(&rb);
				mc_results_free(&rm);
			}
	T_OK(flows > 500, "%ld flow ranges compared", flows);
	T_EQ_INT(differ, 0, "mirror of host A decides every flow as host B does, by the same policy names");

	struct mc_peer_side sa = { a.s, &a.plan, { 0 } }, sb = { b.s, &b.plan, { 0 } }, sm = { m.s, &m.plan, { 0 } };
	mc_addr_parse(A_ADDR, &sa.addr);
	mc_addr_parse(B_ADDR, &sb.addr);
	sm.addr = sb.addr;
	T_EQ_INT(mc_check_peer(&sa, &sb, &ds), 0, "check-peer: the seed's hosts A and B agree");
	T_EQ_INT(mc_check_peer(&sa, &sm, &ds), 0, "check-peer: host A and its mirror agree");
	T_EQ_INT(ds.errors, 0, "no errors reported");

	size_t code;
	T_EQ_INT(mismatches_with("s/spi: 24578/spi: 24579/", "peer-sa", &code), 1, "an SPI changed on B: one mismatch");
	T_EQ_INT(code, 1, "... reported as peer-sa");
	T_EQ_INT(mismatches_with("0,/confidentiality-key: DRSYSTEMKEY/s//confidentiality-key: PRODUCTIONKEY/",
				 "peer-sa", &code), 1, "a key name changed on B: one mismatch");
	T_EQ_INT(mismatches_with("0,/action: protect/s//action: bypass/;0,/spi: 2002/s///;0,/ah: {.*}/s///",
				 "peer-protection", &code), 1, "B sends BNA in clear: one mismatch");
	T_EQ_INT(code, 1, "... reported as peer-protection");
	T_EQ_INT(mismatches_with("s/remote-ports: any/remote-ports: 1024-65535/", "peer-protection", &code), 2,
		 "B narrows FTP to A's ports 1024-65535: A's FTP from lower ports mismatches, both ways");
	T_EQ_INT(code, 2, "... reported as peer-protection");
	T_OK(system("sed -i 's/2d:70:72:6f:64\"/2d:70:72:6f:65\"/' examples/host-b/keys.yaml") == 0, "B's PRODUCTIONKEY value edited");
	T_EQ_INT(mismatches_with("s/x/x/", "peer-sa", &code), 1, "a key value differs: the one SA using it mismatches");

	mc_buf_free(&out);
	mc_diags_free(&ds);
	unload(&a);
	unload(&b);
	unload(&m);
	leave_private_copy(tmp);
	return t_done();
}
