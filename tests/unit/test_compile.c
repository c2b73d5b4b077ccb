/* SPDX-License-Identifier: MIT */
/* Compiler: priority assignment, first-match order, built-ins, defaults, SA derivation. */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "../../lib/algo.h"
#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

static struct mc_site *load(const char *path)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_conf_opts o = { 0 };

	mc_conf_load(path, &o, &ds, &s);
	if (s && mc_site_validate(s, &ds) < 0) {
		mc_site_free(s);
		s = NULL;
	}
	mc_diags_free(&ds);
	return s;
}

/* A fake routing table: the host's address is fec0::2222:a00:bff:fe3a:100 for IPv6. */
static int fake_route(void *ctx, const struct mc_addr *remote, struct mc_addr *ret)
{
	(void)ctx;
	if (remote->family != AF_INET6)
		return -22;
	return mc_addr_parse("fec0::2222:a00:bff:fe3a:100", ret) ? 0 : -22;
}

static const struct mc_rule *rule(const struct mc_plan *p, const char *name)
{
	for (size_t i = 0; i < p->nrules; i++)
		if (!strcmp(p->rules[i].name, name))
			return &p->rules[i];
	return NULL;
}

static const struct mc_xsa *sa_of(const struct mc_plan *p, const char *name)
{
	for (size_t i = 0; i < p->nsas; i++)
		if (!strcmp(p->rules[p->sas[i].rule].name, name))
			return &p->sas[i];
	return NULL;
}

static void test_priorities(void)
{
	uint32_t prev[6], got[6];
	const uint32_t S = MC_PRIO_STRIDE, L = MC_PRIO_USER_LO;

	memset(prev, 0, sizeof(prev));
	mc_assign_priorities(prev, 4, got);
	T_OK(got[0] == L + S && got[1] == L + 2 * S && got[2] == L + 3 * S && got[3] == L + 4 * S,
	     "fresh plan: USER_LO + stride * (i + 1)");

	/* Insert X between 1 and 2: the others keep their priority, X lands in the gap. */
	uint32_t ins[5] = { L + S, L + 2 * S, 0, L + 3 * S, L + 4 * S };
	mc_assign_priorities(ins, 5, got);
	T_OK(got[0] == L + S && got[1] == L + 2 * S && got[3] == L + 3 * S && got[4] == L + 4 * S,
	     "insert: existing policies keep their priorities");
	T_OK(got[2] > got[1] && got[2] < got[3], "insert: the new policy lands between its neighbours (%u)", got[2]);

	/* Insert at the top: the gap below the first policy is used. */
	uint32_t top[3] = { 0, L + S, L + 2 * S };
	mc_assign_priorities(top, 3, got);
	T_OK(got[1] == L + S && got[2] == L + 2 * S && got[0] >= L && got[0] < L + S, "insert at the top uses the leading gap");

	/* Swap two: the longest increasing run is kept; one moves. */
	uint32_t sw[3] = { L + 2 * S, L + S, L + 3 * S };
	mc_assign_priorities(sw, 3, got);
	T_OK(got[0] < got[1] && got[1] < got[2], "reorder: result strictly increasing");
	T_OK((got[0] == L + 2 * S) + (got[1] == L + S) + (got[2] == L + 3 * S) == 2, "reorder: two keep their priority");

	/* No room: neighbours one apart force a renumber, still increasing. */
	uint32_t full[3] = { L + S, 0, L + S + 1 };
	mc_assign_priorities(full, 3, got);
	T_OK(got[0] < got[1] && got[1] < got[2], "a full gap renumbers everything, still in order");

	int ok = 1;
	uint32_t rnd_prev[6] = { L + 7 * S, 0, L + 3 * S, L + 9 * S, 0, L + S };
	mc_assign_priorities(rnd_prev, 6, got);
	for (int i = 1; i < 6; i++)
		ok &= got[i] > got[i - 1];
	for (int i = 0; i < 6; i++)
		ok &= got[i] >= L && got[i] <= MC_PRIO_USER_HI;
	T_OK(ok, "mixed history: strictly increasing inside the user band");
}

static void test_examples(void)
{
	struct mc_site *s = load("examples/host-a/site.yaml");
	struct mc_diags ds = { 0 };
	struct mc_plan p;
	struct mc_addr own;

	T_OK(s != NULL, "examples/host-a loads");
	if (!s)
		return;
	mc_addr_parse("fec0::2222:a00:bff:fe3a:100", &own);
	struct mc_host host = { .route_src = fake_route, .own6 = &own, .nown6 = 1 };
	T_EQ_INT(mc_compile(s, &host, &ds, &p), 0, "examples/host-a compiles");

	/* First-match order: per direction, user rules in file order with increasing priority,
	 * all built-ins before them, the default discard after them. */
	int ordered = 1;
	for (int d = 0; d < 2; d++) {
		uint32_t last = 0;
		int stage = 0; /* 0 builtin, 1 user, 2 default */
		for (size_t i = 0; i < p.nrules; i++) {
			const struct mc_rule *r = &p.rules[i];
			if ((int)r->dir != d)
				continue;
			int st = r->kind == MC_RULE_BUILTIN ? 0 : r->kind == MC_RULE_USER ? 1 : 2;
			ordered &= st >= stage && r->priority > last;
			stage = st;
			last = r->priority;
		}
	}
	T_OK(ordered, "per direction: built-ins, then user policies in file order, then default; priorities rise");
	int owned = 1;
	for (size_t i = 0; i < p.npols; i++)
		owned &= mc_prio_owned(p.pols[i].priority);
	T_OK(owned, "every kernel policy is in mcpsec's priority band");

	const struct mc_rule *nd = rule(&p, "BUILTIN-ND-IN");
	T_OK(nd && nd->nfrag == 3, "ND bypass 133-137 is 3 selectors (133, 134-135, 136-137)");
	const struct mc_rule *own_rule = rule(&p, "BUILTIN-OWN-ADDR-OUT");
	T_OK(own_rule && own_rule->nfrag == 1, "own-address bypass for the host's address");
	const struct mc_rule *def = rule(&p, "DEFAULT-DISCARD-IN6");
	T_OK(def && def->nfrag == 0 && def->nshadowed == 1 && !strcmp(def->shadowed_by, "BYPASSALLIN"),
	     "the default discard is shadowed by BYPASSALLIN's identical any/any selector");
	T_OK(!rule(&p, "DEFAULT-DISCARD-IN4"), "ipv6-only installs no IPv4 default discard");

	/* IPv6-only: no IPv4 kernel policy but the two catch-alls that let IPv4 pass explicitly
	 * (the kernel's default blocks while mcpsec enforces). */
	int v6 = 1;
	for (size_t i = 0; i < p.npols; i++)
		v6 &= p.pols[i].sel.family == AF_INET6 ||
		      (p.rules[p.pols[i].rule].kind == MC_RULE_DEFAULT && p.pols[i].action == MC_BYPASS &&
		       p.pols[i].sel.plen_s == 0 && p.pols[i].sel.plen_d == 0 && p.pols[i].sel.proto == 0);
	T_OK(v6, "ipv6-only: every kernel policy is IPv6 but the IPv4 catch-all bypasses");
	const struct mc_rule *pass4 = rule(&p, "DEFAULT-BYPASS-OUT4");
	T_OK(pass4 && pass4->nfrag == 1 && pass4->action == MC_BYPASS && pass4->priority == MC_PRIO_DEFAULT_BYPASS,
	     "DEFAULT-BYPASS-OUT4: one IPv4 any/any bypass below every other rule");

	/* SAs: outbound to the remote with its SPI; inbound to the resolved local address. */
	const struct mc_xsa *out = sa_of(&p, "PROTECTFTPOUT"), *in = sa_of(&p, "PROTECTFTPIN");
	char a[64], b[64];
	T_OK(out && out->spi == 24577 && out->proto == MC_PROTO_ESP &&
	     !strcmp(mc_addr_str(&out->daddr, a, sizeof(a)), "fec0::2222:a00:bff:fe3a:127") &&
	     !strcmp(mc_addr_str(&out->saddr, b, sizeof(b)), "fec0::2222:a00:bff:fe3a:100"),
	     "PROTECTFTPOUT SA: spi 24577, fec0::...:100 -> fec0::...:127 (local from the route lookup)");
	T_OK(in && in->spi == 24578 && !strcmp(mc_addr_str(&in->daddr, a, sizeof(a)), "fec0::2222:a00:bff:fe3a:100"),
	     "PROTECTFTPIN SA: spi 24578 to this host's address");
	T_OK(out && out->confidentiality && !strcmp(out->confidentiality->kernel, "cbc(aes)") && out->ekey_len == 16 &&
	     !out->integrity, "PROTECTFTPOUT: cbc(aes) with the 16-byte PRODUCTIONKEY, no integrity");
	T_OK(in && in->ekey_len == 32, "PROTECTFTPIN: AES-256 from the 32-byte DRSYSTEMKEY");
	const struct mc_xsa *bna = sa_of(&p, "PROTECTBNAOUT");
	T_OK(bna && bna->proto == MC_PROTO_AH && bna->integrity && bna->integrity->trunc_bits == 96 &&
	     bna->ikey_len == 20 && mc_reqid_owned(bna->reqid) && bna->reqid == rule(&p, "PROTECTBNAOUT")->reqid,
	     "PROTECTBNAOUT: AH hmac(sha1) 96, 20-byte key, its policy's reqid");
	T_OK(out && out->oseq_may_wrap && in && !in->oseq_may_wrap && bna && bna->oseq_may_wrap,
	     "outbound SAs may wrap their sequence number; inbound SAs never carry the flag");
	T_OK(rule(&p, "PROTECTFTPOUT")->local_note != NULL, "the chosen local address is reported");

	/* Outbound templates pin the SPI they send with; inbound ones accept any SA of the policy's
	 * reqid. Each PROTECT policy has its own reqid, in mcpsec's band. */
	int tmpl_ok = 0;
	uint32_t seen[8];
	size_t nseen = 0;
	for (size_t i = 0; i < p.npols; i++) {
		const struct mc_xpolicy *x = &p.pols[i];
		const struct mc_rule *r = &p.rules[x->rule];
		if (x->action != MC_PROTECT)
			continue;
		tmpl_ok += (x->dir == MC_DIR_OUT ? x->tmpl_spi == r->src->spi : x->tmpl_spi == 0) &&
			   x->tmpl_reqid == r->reqid && mc_reqid_owned(r->reqid) && r->reqid != MC_REQID_LEGACY;
		bool dup = false;
		for (size_t j = 0; j < nseen; j++)
			dup |= seen[j] == r->reqid;
		if (!dup && nseen < 8)
			seen[nseen++] = r->reqid;
	}
	T_EQ_INT(tmpl_ok, 4, "four PROTECT kernel policies: out pins its SPI, in names SPI 0, both the policy's reqid");
	T_EQ_INT((int)nseen, 4, "four PROTECT policies, four distinct reqids");

	/* Remote ports 20-21 outbound: dport 20/0xfffe; inbound: sport 20/0xfffe. */
	const struct mc_rule *fo = rule(&p, "PROTECTFTPOUT");
	const struct mc_xpolicy *x = NULL;
	for (size_t i = 0; i < p.npols; i++)
		if (&p.rules[p.pols[i].rule] == fo)
			x = &p.pols[i];
	T_OK(x && x->sel.dport == 20 && x->sel.dport_mask == 0xfffe && x->sel.sport_mask == 0 && x->sel.proto == 6,
	     "outbound remote ports 20-21 are dport 20/0xfffe");
	mc_plan_free(&p);
	mc_diags_free(&ds);

	/* Without a kernel (check/test), local any stays unresolved, and no own-address bypass. */
	mc_compile(s, NULL, &ds, &p);
	out = sa_of(&p, "PROTECTFTPOUT");
	T_OK(out && out->local_unresolved, "no kernel: local any is left unresolved, not guessed");
	T_OK(!rule(&p, "BUILTIN-OWN-ADDR-IN"), "no kernel: no own-address bypass");
	mc_plan_free(&p);
	mc_diags_free(&ds);
	mc_site_free(s);
}

static void test_expansion(void)
{
	struct mc_site *s = load("tests/unit/fixtures/good/expansion.yaml");
	struct mc_diags ds = { 0 };
	struct mc_plan p;

	T_OK(s != NULL, "expansion fixture loads");
	if (!s)
		return;
	mc_compile(s, NULL, &ds, &p);
	const struct mc_rule *wide = rule(&p, "WIDE"), *icmp = rule(&p, "ICMPCODES"), *deny = rule(&p, "DEFAULT-DISCARD-OUT4");
	/* 10.0.0.1-10.0.0.254 (14) x ports 1-65534 (30) = 420 */
	T_OK(wide && wide->nfrag == 420, "WIDE: 14 prefixes x 30 port blocks = 420 kernel policies (got %zu)",
	     wide ? wide->nfrag : 0);
	struct mc_buf b = { 0 };
	mc_diags_render(&ds, &b);
	T_OK(strstr(mc_buf_str(&b), "policy 'WIDE' becomes 420 kernel policies") != NULL, "more than 256 is warned about");
	T_OK(strstr(mc_buf_str(&b), "policy 'SHADOWED' can never match first") != NULL,
	     "an exact repeat of an earlier selector is reported and left out");
	mc_buf_free(&b);
	const struct mc_xpolicy *x = NULL;
	for (size_t i = 0; i < p.npols; i++)
		if (&p.rules[p.pols[i].rule] == icmp)
			x = &p.pols[i];
	T_OK(icmp && icmp->nfrag == 2 && x && x->sel.sport == 3 && x->sel.sport_mask == 0xffff && x->sel.proto == 1,
	     "icmp 3/0-4: type 3 in sport, codes 0-4 as 2 dport blocks");
	T_OK(deny && deny->nfrag == 1, "default deny adds IPv4 catch-all discards");
	mc_plan_free(&p);
	mc_diags_free(&ds);
	mc_site_free(s);
}

/* Committed reqids for the fake host: A keeps 0x6d630009; B claims A's too (taken: B gets a new one). */
static uint32_t fake_prev_reqid(void *ctx, const char *name, enum mc_dir dir)
{
	(void)ctx;
	(void)dir;
	return !strcmp(name, "A") || !strcmp(name, "B") ? MC_REQID_BASE + 9 : 0;
}

static const char ROLL_SITE[] =
	"ipsec: { default: bypass }\n"
	"policies:\n"
	"  - { name: A, direction: out, local: 2001:db8::1, remote: 2001:db8::2, action: protect, spi: 0x1001,\n"
	"      esp: { integrity: hmac-sha256-128, integrity-key: K1 },\n"
	"      next: { phase: %s, spi: 0x1002, integrity-key: K2 } }\n"
	"  - { name: B, direction: in, local: 2001:db8::1, remote: 2001:db8::2, action: protect, spi: 0x2001,\n"
	"      esp: { integrity: hmac-sha256-128, integrity-key: K1 },\n"
	"      next: { phase: accept, spi: 0x2002, integrity-key: K2 } }\n"
	"  - { name: C, direction: in, local: 2001:db8::1, remote: 2001:db8::2, protocol: udp, action: protect,\n"
	"      spi: 0x3001, esp: { integrity: hmac-sha256-128, integrity-key: K1 } }\n";

/* Rollover: the next SA beside the current one, the outbound template on the phase's SPI. */
static void test_rollover(void)
{
	for (int sw = 0; sw < 2; sw++) {
		char text[2048];
		struct mc_diags ds = { 0 };
		struct mc_site *s = NULL;
		struct mc_plan p;
		struct mc_host host = { .prev_reqid = fake_prev_reqid };

		snprintf(text, sizeof(text), ROLL_SITE, sw ? "switch" : "accept");
		mc_conf_parse("roll.yaml", text, strlen(text), &ds, &s);
		s->keys_skipped = true;
		T_EQ_INT(mc_site_validate(s, &ds), 0, "a site with next SAs validates (%s)", sw ? "switch" : "accept");
		T_EQ_INT(mc_compile(s, &host, &ds, &p), 0, "and compiles");
		const struct mc_rule *a = rule(&p, "A"), *b = rule(&p, "B"), *c = rule(&p, "C");
		T_OK(a->reqid == MC_REQID_BASE + 9, "A keeps its committed reqid");
		T_OK(b->reqid != a->reqid && c->reqid != a->reqid && b->reqid != c->reqid && mc_reqid_owned(b->reqid),
		     "B, whose committed reqid A holds, and the new C get fresh distinct ones");
		size_t na = 0, nb = 0, nc = 0;
		uint32_t out_spi = 0, in_spi = 1;
		for (size_t i = 0; i < p.nsas; i++) {
			const struct mc_xsa *x = &p.sas[i];
			na += x->rule == (size_t)(a - p.rules) && x->reqid == a->reqid && (x->spi == 0x1001 || x->spi == 0x1002);
			nb += x->rule == (size_t)(b - p.rules) && x->reqid == b->reqid && (x->spi == 0x2001 || x->spi == 0x2002);
			nc += x->rule == (size_t)(c - p.rules);
		}
		for (size_t i = 0; i < p.npols; i++) {
			if (p.pols[i].rule == (size_t)(a - p.rules))
				out_spi = p.pols[i].tmpl_spi;
			if (p.pols[i].rule == (size_t)(b - p.rules))
				in_spi = p.pols[i].tmpl_spi;
		}
		T_OK(na == 2 && nb == 2 && nc == 1, "current and next SA for A and B (one for C), each on its policy's reqid");
		T_OK(out_spi == (sw ? 0x1002u : 0x1001u), "outbound sends with %s SA (spi 0x%x)", sw ? "the next" : "the current",
		     out_spi);
		T_OK(in_spi == 0, "inbound accepts any SA of its reqid: exactly current and next");
		mc_plan_free(&p);
		mc_site_free(s);
		mc_diags_free(&ds);
	}

	/* Lifetimes: a value is the hard limit with the soft one at 90%; {soft, hard} as given. */
	{
		const char *lt = "ipsec: { default: bypass }\npolicies:\n"
				 "  - { name: L, direction: out, remote: 2001:db8::2, action: protect, spi: 0x1001,\n"
				 "      esp: { integrity: hmac-sha256-128, integrity-key: K1 },\n"
				 "      lifetime: { time: 24h, bytes: { soft: 1GiB }, packets: { soft: 100, hard: 200 } } }\n"
				 "  - { name: M, direction: out, remote: 2001:db8::3, action: bypass, lifetime: { time: 90s } }\n"
				 "  - { name: N, direction: out, remote: 2001:db8::4, action: protect, spi: 0x1002,\n"
				 "      esp: { integrity: hmac-sha256-128, integrity-key: K1 },\n"
				 "      lifetime: { time: 5x, packets: { soft: 300, hard: 200 } } }\n";
		struct mc_diags ds = { 0 };
		struct mc_site *s = NULL;
		struct mc_plan p;
		struct mc_host host = { .eph_lo = 0 };
		mc_conf_parse("lt.yaml", lt, strlen(lt), &ds, &s);
		s->keys_skipped = true;
		mc_site_validate(s, &ds);
		const struct mc_lifetime *l = &mc_site_policy(s, "L")->lifetime;
		T_OK(l->hard_secs == 86400 && l->soft_secs == 77760 && l->soft_bytes == (1ull << 30) && !l->hard_bytes &&
		     l->soft_packets == 100 && l->hard_packets == 200, "lifetime values and units as written");
		struct mc_buf m = { 0 };
		mc_diags_render(&ds, &m);
		T_OK(strstr(mc_buf_str(&m), "'lifetime' is only for action protect") && strstr(mc_buf_str(&m), "bad lifetime time '5x'") &&
		     strstr(mc_buf_str(&m), "the soft limit is above the hard one") && strstr(mc_buf_str(&m), "a hard lifetime removes the SA"),
		     "lifetime errors: not PROTECT, a bad unit, soft above hard; a hard limit warns");
		mc_buf_free(&m);
		mc_diags_free(&ds);
		memset(&ds, 0, sizeof(ds));
		T_EQ_INT(mc_compile(s, &host, &ds, &p), 0, "compiles");
		const struct mc_xsa *lsa = sa_of(&p, "L");
		T_OK(lsa && lsa->lft.hard_packets == 200 && lsa->lft.hard_secs == 86400, "the SA carries them");
		mc_plan_free(&p);
		mc_site_free(s);
		mc_diags_free(&ds);
	}

	/* next with the policy's own SPI, or another policy's, is refused. */
	const char *bad = "ipsec: { default: bypass }\npolicies:\n"
			  "  - { name: A, direction: out, remote: 2001:db8::2, action: protect, spi: 0x1001,\n"
			  "      esp: { integrity: hmac-sha256-128, integrity-key: K1 },\n"
			  "      next: { phase: accept, spi: 0x1001, integrity-key: K2 } }\n"
			  "  - { name: B, direction: out, remote: 2001:db8::2, protocol: udp, action: protect, spi: 0x1003,\n"
			  "      esp: { integrity: hmac-sha256-128, integrity-key: K1 },\n"
			  "      next: { phase: retire, spi: 0x1003 } }\n";
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	mc_conf_parse("bad.yaml", bad, strlen(bad), &ds, &s);
	s->keys_skipped = true;
	mc_site_validate(s, &ds);
	struct mc_buf m = { 0 };
	mc_diags_render(&ds, &m);
	T_OK(strstr(mc_buf_str(&m), "next spi 4097 (0x1001) is the policy's own spi") != NULL,
	     "next's spi equal to the policy's own is an error");
	T_OK(strstr(mc_buf_str(&m), "phase must be accept or switch, not 'retire'") != NULL,
	     "an unknown phase is an error that says how to retire");
	T_OK(strstr(mc_buf_str(&m), "next needs 'integrity-key'") != NULL, "next without the policy's key kinds is an error");
	mc_buf_free(&m);
	mc_site_free(s);
	mc_diags_free(&ds);
}

/* Whether rule name has a kernel policy for local port 0 (sport 0, exact), and its count. */
static bool has_port0(const struct mc_plan *p, const char *name, size_t *nfrag)
{
	const struct mc_rule *r = rule(p, name);
	bool found = false;

	*nfrag = r ? r->nfrag : 0;
	for (size_t i = 0; r && i < p->npols; i++)
		if (&p->rules[p->pols[i].rule] == r && p->pols[i].sel.sport == 0 && p->pols[i].sel.sport_mask == 0xffff)
			found = true;
	return found;
}

/* Port 0 stands for an unbound TCP client's connect: an outbound TCP local-port selector has it
 * exactly when it covers every ephemeral port (model.h, mc_ports_take_zero). */
static void test_unbound_port0(void)
{
	static const char text[] =
		"policies:\n"
		"  - { name: ALLEPH, direction: out, protocol: tcp, remote: fec0::2, local-ports: 1024-65535, action: discard }\n"
		"  - { name: LOW, direction: out, protocol: tcp, remote: fec0::3, local-ports: 0-1023, action: discard }\n"
		"  - { name: PART, direction: out, protocol: tcp, remote: fec0::4, local-ports: 40000-50000, action: discard }\n"
		"  - { name: UDPALL, direction: out, protocol: udp, remote: fec0::5, local-ports: 1024-65535, action: discard }\n"
		"  - { name: ZERO, direction: out, protocol: tcp, remote: fec0::6, local-ports: 0, action: discard }\n"
		"  - { name: INALL, direction: in, protocol: tcp, remote: fec0::7, remote-ports: 1024-65535, action: discard }\n";
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan p;
	size_t n;

	mc_conf_parse("unbound.yaml", text, strlen(text), &ds, &s);
	T_OK(s && mc_site_validate(s, &ds) == 0, "the unbound-client site loads");
	if (!s)
		return;
	mc_compile(s, NULL, &ds, &p);
	T_OK(has_port0(&p, "ALLEPH", &n) && n == 7, "1024-65535 covers the default ephemeral range: port 0 too (%zu policies)", n);
	T_OK(!has_port0(&p, "LOW", &n) && n == 10, "0-1023 covers none of it: port 0 left out, 1-1023 is 10 blocks (%zu)", n);
	T_OK(!has_port0(&p, "PART", &n), "40000-50000 covers part of it: no port 0");
	T_OK(!has_port0(&p, "UDPALL", &n) && n == 6, "UDP binds before its lookup: as written (%zu)", n);
	T_OK(has_port0(&p, "ZERO", &n) && n == 1, "port 0 alone is taken as written");
	T_OK(!has_port0(&p, "INALL", &n), "inbound selectors as written");
	mc_plan_free(&p);

	/* The namespace's own range decides. */
	struct mc_host h = { .eph_lo = 20000, .eph_hi = 30000 };
	mc_compile(s, &h, &ds, &p);
	T_OK(has_port0(&p, "ALLEPH", &n), "a namespace range of 20000-30000 is inside 1024-65535: port 0");
	mc_plan_free(&p);
	h.eph_lo = 1000;
	mc_compile(s, &h, &ds, &p);
	T_OK(!has_port0(&p, "ALLEPH", &n) && has_port0(&p, "LOW", &n) == false,
	     "a range of 1000-30000 is not inside 1024-65535: no port 0");
	mc_plan_free(&p);
	mc_diags_free(&ds);
	mc_site_free(s);
}

int main(void)
{
	test_unbound_port0();
	test_priorities();
	test_examples();
	test_rollover();
	test_expansion();
	return t_done();
}
