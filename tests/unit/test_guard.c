/* SPDX-License-Identifier: MIT */
/* The lockout guard: /proc/net socket tables as the kernel prints them (captured in a lab
 * namespace), and which connections a change from one plan to another cuts. */
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/guard.h"
#include "../../lib/kobj.h"
#include "../../lib/kview.h"
#include "../../lib/names.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

/* /proc/net/tcp6 of namespace A: a listener (0A), a connection closing with data still to go
 * (FIN_WAIT1, 04), one established (01) from fec0::2 port 0x8E92 to fec0::1 port 2223, a
 * v4-mapped one, one in TIME_WAIT (06: nothing left to carry) and one in CLOSE_WAIT (08: the
 * peer half-closed, this host still sends). */
static const char tcp6[] =
	"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 00000000000000000000000000000000:08AF 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
	"   1: 0000C0FE000000000000000001000000:08AE 0000C0FE000000000000000002000000:B772 04 00000001:00000000 01:00000000 00000000     0        0 2 1\n"
	"   2: 0000C0FE000000000000000001000000:08AF 0000C0FE000000000000000002000000:8E92 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n"
	"   3: 0000000000000000FFFF00006400000A:0016 0000000000000000FFFF00007F00000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 4 1\n"
	"   4: 0000C0FE000000000000000001000000:08B0 0000C0FE000000000000000002000000:B773 06 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
	"   5: 0000C0FE000000000000000001000000:08B1 0000C0FE000000000000000002000000:B774 08 00000000:00000000 00:00000000 00000000     0        0 6 1\n";
/* /proc/net/udp: a connected socket 127.0.0.1:48084 -> 127.0.0.1:5353 and an unconnected one. */
static const char udp[] =
	"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
	"  819: 0100007F:BBD4 0100007F:14E9 01 00000000:00000000 00:00000000 00000000     0        0 431907 2 0 0\n"
	"  820: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 431908 2 0 0\n";

static void test_parse(void)
{
	struct mc_conns cs = { 0 };
	char a[64];

	T_EQ_INT(mc_conns_parse_proc(tcp6, MC_PROTO_TCP, &cs), 4,
		 "tcp6: every connection that still carries traffic (FIN-WAIT-1, ESTABLISHED, CLOSE-WAIT), no "
		 "listener, no TIME-WAIT");
	T_EQ_STR(mc_conn_state_str(MC_PROTO_TCP, cs.c[0].state), "FIN-WAIT-1", "tcp6: a closing connection, by state");
	T_EQ_STR(mc_addr_str(&cs.c[1].local, a, sizeof(a)), "fec0::1", "tcp6: local address, word by word");
	T_EQ_STR(mc_addr_str(&cs.c[1].remote, a, sizeof(a)), "fec0::2", "tcp6: remote address");
	T_EQ_INT(cs.c[1].lport, 2223, "tcp6: local port");
	T_EQ_INT(cs.c[1].rport, 0x8E92, "tcp6: remote port");
	T_EQ_INT(cs.c[2].local.family, AF_INET, "a v4-mapped address is IPv4, as the kernel decides it");
	T_EQ_STR(mc_addr_str(&cs.c[2].local, a, sizeof(a)), "10.0.0.100", "v4-mapped local address");
	T_EQ_STR(mc_addr_str(&cs.c[2].remote, a, sizeof(a)), "10.0.0.127", "v4-mapped remote address");
	T_EQ_STR(mc_conn_state_str(MC_PROTO_TCP, cs.c[3].state), "CLOSE-WAIT", "a half-closed connection counts");
	T_EQ_INT(mc_conns_parse_proc(udp, MC_PROTO_UDP, &cs), 1, "udp: only the connected socket");
	T_EQ_STR(mc_addr_str(&cs.c[4].local, a, sizeof(a)), "127.0.0.1", "udp: IPv4 address");
	T_EQ_INT(cs.c[4].rport, 5353, "udp: remote port");
	T_EQ_INT(mc_conns_parse_proc("garbage\n", MC_PROTO_TCP, &cs), -22, "not a socket table: -EINVAL");
	T_EQ_INT(cs.n, 5, "nothing added from garbage");
	mc_conns_free(&cs);
}

static void compile_text(const char *text, struct mc_site **s, struct mc_plan *plan)
{
	struct mc_diags ds = { 0 };

	mc_conf_parse("guard.yaml", text, strlen(text), &ds, s);
	(*s)->keys_skipped = true; /* the guard never needs key bytes */
	mc_site_validate(*s, &ds);
	mc_compile(*s, NULL, &ds, plan);
	T_EQ_INT(ds.errors, 0, "fixture site compiles");
	if (ds.errors) {
		struct mc_buf b = { 0 };
		mc_diags_render(&ds, &b);
		printf("# %s", mc_buf_str(&b));
		mc_buf_free(&b);
	}
	mc_diags_free(&ds);
}

/* What the kernel would hold after plan was applied, read back through the kernel view: the
 * guard's "old" plan on a real host (no recompile of the committed site). */
static void kernel_plan_of(const struct mc_plan *plan, struct mc_plan *ret)
{
	struct mc_kstate k = { 0 };
	struct mc_names nm = { 0 };
	struct mc_kview v;

	for (size_t i = 0; i < plan->npols; i++) {
		struct mc_kpolicy *kp = MC_PUSH(&k.pols, &k.npols, &k.cappols);
		memset(kp, 0, sizeof(*kp));
		kp->x = plan->pols[i];
		kp->x.rule = SIZE_MAX;
	}
	for (size_t i = 0; i < plan->nsas; i++) {
		struct mc_ksa *ks = MC_PUSH(&k.sas, &k.nsas, &k.capsas);
		memset(ks, 0, sizeof(*ks));
		ks->x = plan->sas[i];
	}
	for (size_t i = 0; i < plan->nrules; i++)
		if (plan->rules[i].kind == MC_RULE_USER)
			mc_names_add(&nm, plan->rules[i].priority, plan->rules[i].dir, plan->rules[i].reqid,
				     plan->rules[i].name);
	mc_names_index(&nm);
	mc_kview_build(&k, &nm, &v);
	mc_kview_plan(&v, plan->def, true, ret);
	mc_kview_free(&v);
	mc_names_free(&nm);
	free(k.pols);
	free(k.sas);
}

#define HEAD "ipsec: {default: deny}\npolicies:\n"
#define ICMP "  - {name: ICMPOUT, direction: out, protocol: icmpv6, action: bypass}\n" \
	     "  - {name: ICMPIN, direction: in, protocol: icmpv6, action: bypass}\n"
#define ALL "  - {name: ALLOUT, direction: out, action: bypass}\n  - {name: ALLIN, direction: in, action: bypass}\n"

static void test_check(void)
{
	struct mc_conns cs = { 0 };
	struct mc_site *s_base, *s_cut, *s_prot, *s_prot2, *s_none;
	struct mc_plan base, cut, prot, prot2, none;
	struct mc_cuts cuts;

	mc_conns_parse_proc(tcp6, MC_PROTO_TCP, &cs);
	/* The two established connections (the closing ones are test_parse's). */
	size_t keep = 0;
	for (size_t i = 0; i < cs.n; i++)
		if (cs.c[i].state == 1)
			cs.c[keep++] = cs.c[i];
	cs.n = keep;
	compile_text(HEAD ICMP ALL, &s_base, &base);
	compile_text(HEAD ICMP "  - {name: DENYMGMT, direction: in, protocol: tcp, local-ports: 2223, action: discard}\n" ALL,
		     &s_cut, &cut);
	compile_text(HEAD ICMP "  - {name: PROTMGMT, direction: out, protocol: tcp, remote: fec0::2, local-ports: 2223, "
			       "action: protect, spi: 300, esp: {integrity: hmac-sha256-128, integrity-key: K}}\n" ALL, &s_prot, &prot);
	compile_text(HEAD ICMP "  - {name: PROTMGMT, direction: out, protocol: tcp, remote: fec0::2, local-ports: 2223, "
			       "action: protect, spi: 301, esp: {integrity: hmac-sha256-128, integrity-key: K}}\n" ALL, &s_prot2, &prot2);
	compile_text(HEAD ICMP, &s_none, &none);

	mc_guard_check(&cut, &base, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "a discard of the management port cuts that connection only");
	T_OK(cuts.n && cuts.c[0].conn == 0 && cuts.c[0].dir == MC_DIR_IN && cuts.c[0].action == MC_DISCARD &&
	     !strcmp(cuts.c[0].policy, "DENYMGMT"), "named: inbound, DENYMGMT");
	mc_cuts_free(&cuts);
	mc_guard_check(&cut, &cut, &cs, &cuts);
	T_EQ_INT(cuts.n, 0, "what the kernel already does cuts nothing new");
	mc_cuts_free(&cuts);
	mc_guard_check(&base, NULL, &cs, &cuts);
	T_EQ_INT(cuts.n, 0, "bypassing everything from nothing enforced cuts nothing");
	mc_cuts_free(&cuts);
	mc_guard_check(&none, &base, &cs, &cuts);
	T_EQ_INT(cuts.n, 2, "the default discard (no policy matches) cuts both connections (deny: IPv4 too)");
	T_OK(cuts.n && cuts.c[0].policy && !strcmp(cuts.c[0].policy, "DEFAULT-DISCARD-IN6"), "...named by the default discard");
	mc_cuts_free(&cuts);
	mc_guard_check(&prot, &base, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "newly required protection cuts (the peer may have no SA yet)");
	T_OK(cuts.n && cuts.c[0].action == MC_PROTECT && cuts.c[0].spi == 300 && cuts.c[0].dir == MC_DIR_OUT,
	     "named: outbound, protect, spi 300");
	mc_cuts_free(&cuts);
	mc_guard_check(&prot, &prot, &cs, &cuts);
	T_EQ_INT(cuts.n, 0, "protection with the same SA as now cuts nothing");
	mc_cuts_free(&cuts);
	mc_guard_check(&prot2, &prot, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "protection with another SPI cuts");
	mc_cuts_free(&cuts);

	/* The same judgements against what the kernel holds, read through the kernel view. */
	struct mc_plan kprot, kcut;
	kernel_plan_of(&prot, &kprot);
	kernel_plan_of(&cut, &kcut);
	mc_guard_check(&prot, &kprot, &cs, &cuts);
	T_EQ_INT(cuts.n, 0, "kernel view: protection with the SA the kernel has cuts nothing");
	mc_cuts_free(&cuts);
	mc_guard_check(&prot2, &kprot, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "kernel view: protection with an SPI the kernel lacks cuts");
	mc_cuts_free(&cuts);
	mc_guard_check(&cut, &kcut, &cs, &cuts);
	T_EQ_INT(cuts.n, 0, "kernel view: a discard the kernel already enforces cuts nothing new");
	mc_cuts_free(&cuts);
	mc_guard_check(&cut, &kprot, &cs, &cuts);
	T_OK(cuts.n == 1 && !strcmp(cuts.c[0].policy, "DENYMGMT"), "kernel view: a new discard cuts, named");
	mc_cuts_free(&cuts);
	mc_plan_free(&kprot);
	mc_plan_free(&kcut);
	/* An SPI the old plan has, but for another rule (another peer): still a new SA for this flow. */
	struct mc_site *s_other;
	struct mc_plan other, kother;
	compile_text(HEAD ICMP "  - {name: PROTMGMT, direction: out, protocol: tcp, remote: fec0::2, local-ports: 2223, "
			       "action: protect, spi: 300, esp: {integrity: hmac-sha256-128, integrity-key: K}}\n"
			       "  - {name: OTHER, direction: out, protocol: tcp, remote: fec0::9, action: protect, spi: 301, "
			       "esp: {integrity: hmac-sha256-128, integrity-key: K}}\n" ALL, &s_other, &other);
	kernel_plan_of(&other, &kother);
	mc_guard_check(&prot2, &other, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "an SPI another rule of the old plan had is still new for this flow");
	mc_cuts_free(&cuts);
	mc_guard_check(&prot2, &kother, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "...and against the kernel's SAs");
	mc_cuts_free(&cuts);
	mc_plan_free(&other);
	mc_plan_free(&kother);
	mc_site_free(s_other);

	/* A key rollover's steps, in both directions: each step uses an SA the step before knew. */
	struct mc_site *s_roll[4];
	struct mc_plan roll[4];
	static const char *next_out[4] = { "", ", next: {phase: accept, spi: 301, integrity-key: K}",
					   ", next: {phase: switch, spi: 301, integrity-key: K}", "" };
	static const char *next_in[4] = { "", ", next: {phase: accept, spi: 401, integrity-key: K}",
					  ", next: {phase: switch, spi: 401, integrity-key: K}", "" };
	for (int st = 0; st < 4; st++) {
		char text[1024];
		snprintf(text, sizeof(text), HEAD ICMP
			 "  - {name: PO, direction: out, protocol: tcp, remote: fec0::2, local-ports: 2223, action: protect, "
			 "spi: %d, esp: {integrity: hmac-sha256-128, integrity-key: K}%s}\n"
			 "  - {name: PI, direction: in, protocol: tcp, remote: fec0::2, local-ports: 2223, action: protect, "
			 "spi: %d, esp: {integrity: hmac-sha256-128, integrity-key: K}%s}\n" ALL,
			 st == 3 ? 301 : 300, next_out[st], st == 3 ? 401 : 400, next_in[st]);
		compile_text(text, &s_roll[st], &roll[st]);
	}
	static const char *steps[] = { "accept", "switch", "retire" };
	for (int st = 0; st < 3; st++) {
		mc_guard_check(&roll[st + 1], &roll[st], &cs, &cuts);
		T_EQ_INT(cuts.n, 0, "rollover step %s cuts nothing (its SA was known to the step before)", steps[st]);
		mc_cuts_free(&cuts);
		struct mc_plan kroll;
		kernel_plan_of(&roll[st], &kroll);
		mc_guard_check(&roll[st + 1], &kroll, &cs, &cuts);
		T_EQ_INT(cuts.n, 0, "rollover step %s against the kernel's SAs cuts nothing", steps[st]);
		mc_cuts_free(&cuts);
		mc_plan_free(&kroll);
	}
	struct mc_plan k0;
	kernel_plan_of(&roll[0], &k0);
	mc_guard_check(&roll[2], &k0, &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "switching without accept first cuts, against the kernel too");
	mc_cuts_free(&cuts);
	mc_plan_free(&k0);
	mc_guard_check(&roll[3], &roll[0], &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "jumping from no rollover to retired (a new SPI out of the blue) cuts");
	mc_cuts_free(&cuts);
	mc_guard_check(&roll[2], &roll[0], &cs, &cuts);
	T_EQ_INT(cuts.n, 1, "switching without accept first cuts (the SA it sends with is new)");
	mc_cuts_free(&cuts);
	for (int st = 0; st < 4; st++) {
		mc_plan_free(&roll[st]);
		mc_site_free(s_roll[st]);
	}

	mc_plan_free(&base);
	mc_plan_free(&cut);
	mc_plan_free(&prot);
	mc_plan_free(&prot2);
	mc_plan_free(&none);
	mc_site_free(s_base);
	mc_site_free(s_cut);
	mc_site_free(s_prot);
	mc_site_free(s_prot2);
	mc_site_free(s_none);
	mc_conns_free(&cs);
}

static void test_ssh(void)
{
	struct mc_conns cs = { 0 };

	mc_conns_parse_proc(tcp6, MC_PROTO_TCP, &cs);
	T_OK(mc_conn_is_ssh(&cs.c[1], "fec0::2 36498 fec0::1 2223"), "SSH_CONNECTION names the connection");
	T_OK(!mc_conn_is_ssh(&cs.c[1], "fec0::2 36499 fec0::1 2223"), "another client port is not it");
	T_OK(!mc_conn_is_ssh(&cs.c[1], NULL), "no SSH_CONNECTION: not it");
	T_OK(mc_conn_is_ssh(&cs.c[2], "::ffff:10.0.0.127 50000 ::ffff:10.0.0.100 22"),
	     "a v4-mapped SSH_CONNECTION matches the IPv4 connection");
	mc_conns_free(&cs);
}

int main(void)
{
	test_parse();
	test_check();
	test_ssh();
	return t_done();
}
