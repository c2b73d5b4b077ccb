/* SPDX-License-Identifier: MIT */
/* Protection turned on without loss (enforce: accept, protect, require), through every pure
 * stage: the file, the compiled kernel policies, `mcpsec test`, the kernel view, the diff, the
 * lockout guard, check-peer's phase order, and phase-in's text edits. */
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/eval.h"
#include "../../lib/guard.h"
#include "../../lib/kobj.h"
#include "../../lib/kview.h"
#include "../../lib/names.h"
#include "../../lib/peer.h"
#include "../../lib/plan.h"
#include "../../lib/reconcile.h"
#include "../../lib/rekey.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

#define A_ADDR "fec0::1"
#define B_ADDR "fec0::2"

/* One host's site: DBOUT and DBIN towards peer, at phase ph ("none": BYPASS instead, as before
 * the phase-in; "require": no enforce line), then everything else bypassed. */
static char *site_text(const char *peer, unsigned spi_out, unsigned spi_in, const char *ph)
{
	bool none = !strcmp(ph, "none");
	char enforce[64] = "";

	if (!none && strcmp(ph, "require"))
		snprintf(enforce, sizeof(enforce), "    enforce: %s\n", ph);
	char prot_out[128] = "", prot_in[128] = "";
	if (!none) {
		snprintf(prot_out, sizeof(prot_out), "    spi: %u\n    esp: {integrity: hmac-sha256, integrity-key: K}\n", spi_out);
		snprintf(prot_in, sizeof(prot_in), "    spi: %u\n    esp: {integrity: hmac-sha256, integrity-key: K}\n", spi_in);
	}
	return mc_asprintf(
		"ipsec: {default: deny}\n"
		"policies:\n"
		"  - name: DBOUT\n    direction: out\n    remote: %s\n    protocol: udp\n    action: %s\n%s%s"
		"  - name: DBIN\n    direction: in\n    remote: %s\n    protocol: udp\n    action: %s\n%s%s"
		"  - {name: ALLOUT, direction: out, action: bypass}\n"
		"  - {name: ALLIN, direction: in, action: bypass}\n",
		peer, none ? "bypass" : "protect", prot_out, enforce, peer, none ? "bypass" : "protect", prot_in, enforce);
}

struct host {
	struct mc_site *s;
	struct mc_plan plan;
	char *text;
};

static void load(struct host *h, const char *file, char *text)
{
	struct mc_diags ds = { 0 };

	h->text = text;
	mc_conf_parse(file, text, strlen(text), &ds, &h->s);
	h->s->keys_skipped = true;
	mc_site_validate(h->s, &ds);
	mc_compile(h->s, NULL, &ds, &h->plan);
	T_EQ_INT(ds.errors, 0, "%s compiles", file);
	mc_diags_free(&ds);
}

static void unload(struct host *h)
{
	mc_plan_free(&h->plan);
	mc_site_free(h->s);
	free(h->text);
}

/* Host A (fec0::1) at phase ph. */
static void load_a(struct host *h, const char *ph)
{
	load(h, "a.yaml", site_text(B_ADDR, 4096, 4097, ph));
}

static void load_b(struct host *h, const char *ph, unsigned spi_out)
{
	load(h, "b.yaml", site_text(A_ADDR, spi_out, 4096, ph));
}

static const struct mc_xpolicy *xpol_of(const struct mc_plan *p, const char *rule)
{
	for (size_t i = 0; i < p->npols; i++)
		if (!strcmp(p->rules[p->pols[i].rule].name, rule))
			return &p->pols[i];
	return NULL;
}

static const struct mc_rule *rule_of(const struct mc_plan *p, const char *rule)
{
	for (size_t i = 0; i < p->nrules; i++)
		if (!strcmp(p->rules[i].name, rule))
			return &p->rules[i];
	return NULL;
}

static void test_file(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "policies:\n  - {name: X, direction: out, remote: fec0::2, action: protect, spi: 300,\n"
		  "     esp: {integrity: hmac-sha256, integrity-key: K}, enforce: sometimes}\n",
		  "t.yaml:3:64: error: enforce must be accept, protect or require, not 'sometimes'" },
		{ "policies:\n  - {name: X, direction: out, action: bypass, enforce: accept}\n",
		  "t.yaml:2:56: error: policy 'X': 'enforce' (phasing protection in) is only for action protect" },
		{ "policies:\n  - {name: X, direction: out, remote: fec0::2, action: protect, spi: 300, enforce: protect,\n"
		  "     esp: {integrity: hmac-sha256, integrity-key: K}, next: {phase: accept, spi: 301, integrity-key: K}}\n",
		  "t.yaml:2:84: error: policy 'X': a key rollover ('next') and a phase-in ('enforce: protect') at once" },
	};
	for (size_t i = 0; i < MC_ARRAY_SIZE(bad); i++) {
		struct mc_diags ds = { 0 };
		struct mc_site *s = NULL;
		struct mc_buf b = { 0 };
		mc_conf_parse("t.yaml", bad[i].text, strlen(bad[i].text), &ds, &s);
		if (s) {
			s->keys_skipped = true;
			mc_site_validate(s, &ds);
		}
		mc_diags_render(&ds, &b);
		T_OK(strstr(mc_buf_str(&b), bad[i].want) != NULL, "bad file %zu: %s", i, bad[i].want);
		if (!strstr(mc_buf_str(&b), bad[i].want))
			printf("# got: %s", mc_buf_str(&b));
		mc_buf_free(&b);
		mc_site_free(s);
		mc_diags_free(&ds);
	}
	enum mc_enforce e;
	T_OK(mc_enforce_step(MC_ENFORCE_ACCEPT, true, &e) && e == MC_ENFORCE_PROTECT, "phase-in: accept, then protect");
	T_OK(mc_enforce_step(MC_ENFORCE_PROTECT, true, &e) && e == MC_ENFORCE_REQUIRE, "then require");
	T_OK(!mc_enforce_step(MC_ENFORCE_REQUIRE, true, &e), "and no step after require");
	T_OK(mc_enforce_step(MC_ENFORCE_REQUIRE, false, &e) && e == MC_ENFORCE_PROTECT, "phase-out: require, then protect");
	T_OK(mc_enforce_step(MC_ENFORCE_PROTECT, false, &e) && e == MC_ENFORCE_ACCEPT, "then accept");
	T_OK(!mc_enforce_step(MC_ENFORCE_ACCEPT, false, &e), "and no step before accept");
}

/* What each phase installs: SAs from accept on; outbound sends with them from protect on;
 * inbound's template is optional until require. */
static void test_compile(void)
{
	static const struct {
		const char *ph;
		enum mc_action out_action;
		bool in_optional;
	} want[] = {
		{ "accept", MC_BYPASS, true },
		{ "protect", MC_PROTECT, true },
		{ "require", MC_PROTECT, false },
	};
	for (size_t i = 0; i < MC_ARRAY_SIZE(want); i++) {
		struct host a;
		load_a(&a, want[i].ph);
		const struct mc_xpolicy *o = xpol_of(&a.plan, "DBOUT"), *in = xpol_of(&a.plan, "DBIN");
		T_OK(o && in, "%s: both policies are in the kernel plan", want[i].ph);
		T_EQ_INT(o->action, want[i].out_action, "%s: the outbound kernel policy", want[i].ph);
		T_EQ_INT(o->tmpl_optional, false, "%s: an outbound template is never optional (it would send once the SA is there)",
			 want[i].ph);
		T_EQ_INT(in->action, MC_PROTECT, "%s: the inbound kernel policy has its template", want[i].ph);
		T_EQ_INT(in->tmpl_optional, want[i].in_optional, "%s: inbound accepts clear until require", want[i].ph);
		T_EQ_INT(a.plan.nsas, 2, "%s: both SAs are installed", want[i].ph);
		T_EQ_INT(rule_of(&a.plan, "DBOUT")->action, MC_PROTECT, "%s: the rule stays a PROTECT", want[i].ph);
		T_EQ_INT(rule_of(&a.plan, "DBOUT")->clear_passes, i == 0, "%s: outbound lets clear through in accept only",
			 want[i].ph);
		T_EQ_INT(rule_of(&a.plan, "DBIN")->clear_passes, i < 2, "%s: inbound lets clear through before require",
			 want[i].ph);

		struct mc_query q = { .proto = MC_PROTO_UDP, .dir = MC_DIR_OUT, .local_lo = 5000, .local_hi = 5000,
				      .remote_lo = 6000, .remote_hi = 6000 };
		struct mc_results r;
		mc_addr_parse(A_ADDR, &q.local);
		mc_addr_parse(B_ADDR, &q.remote);
		mc_eval(&a.plan, &q, &r);
		T_OK(r.n == 1 && r.r[0].result == MC_PROTECT && r.r[0].clear_passes == (i == 0),
		     "%s: mcpsec test says PROTECT, and whether it is sent in clear", want[i].ph);
		mc_results_free(&r);
		unload(&a);
	}
}

/* The plan as the kernel would hold it, through the kernel view with the committed names. */
static void kernel_of(const struct mc_plan *plan, struct mc_kstate *k, struct mc_names *nm)
{
	memset(k, 0, sizeof(*k));
	memset(nm, 0, sizeof(*nm));
	for (size_t i = 0; i < plan->npols; i++) {
		struct mc_kpolicy *kp = MC_PUSH(&k->pols, &k->npols, &k->cappols);
		memset(kp, 0, sizeof(*kp));
		kp->x = plan->pols[i];
		kp->x.rule = SIZE_MAX;
		kp->ntmpl = plan->pols[i].action == MC_PROTECT;
	}
	for (size_t i = 0; i < plan->nsas; i++) {
		struct mc_ksa *ks = MC_PUSH(&k->sas, &k->nsas, &k->capsas);
		memset(ks, 0, sizeof(*ks));
		ks->x = plan->sas[i];
	}
	for (size_t i = 0; i < plan->nrules; i++)
		if (plan->rules[i].kind == MC_RULE_USER)
			mc_names_add(nm, plan->rules[i].priority, plan->rules[i].dir, plan->rules[i].reqid, plan->rules[i].name);
	mc_names_index(nm);
}

static void test_kview(void)
{
	struct host a;
	struct mc_kstate k;
	struct mc_names nm;
	struct mc_kview v;

	load_a(&a, "accept");
	kernel_of(&a.plan, &k, &nm);
	mc_kview_build(&k, &nm, &v);
	const struct mc_kview_rule *o = NULL, *in = NULL;
	for (size_t i = 0; i < v.nrules; i++) {
		if (!strcmp(v.rules[i].name, "DBOUT"))
			o = &v.rules[i];
		if (!strcmp(v.rules[i].name, "DBIN"))
			in = &v.rules[i];
	}
	T_OK(o && o->action == MC_PROTECT && o->clear_passes,
	     "kernel view: an outbound allow of a committed PROTECT rule is that rule in phase accept");
	T_OK(o && o->nsas == 1 && !o->sa && o->tmpl_proto == MC_PROTO_ESP,
	     "kernel view: its SA is found by the committed reqid, and it sends with none");
	T_OK(o && o->nsas && !strcmp(v.sas[o->sas[0] - k.sas].role, "installed, not sending"),
	     "kernel view: the SA's role says it is not sent with yet");
	T_OK(in && in->action == MC_PROTECT && in->clear_passes && in->nsas == 1,
	     "kernel view: an optional inbound template is a phase-in that accepts clear");
	mc_kview_free(&v);
	/* Without the committed names, an allow is a bypass: nothing claims its SA. */
	mc_kview_build(&k, NULL, &v);
	bool any = false;
	for (size_t i = 0; i < v.nrules; i++)
		any |= v.rules[i].dir == MC_DIR_OUT && v.rules[i].clear_passes;
	T_OK(!any, "kernel view: no committed names, no phase accept guessed");
	mc_kview_free(&v);
	mc_names_free(&nm);
	mc_kstate_free(&k);

	/* The diff: protect to require changes the inbound policy in place, and nothing else. */
	struct host p, r;
	struct mc_diags ds = { 0 };
	struct mc_diff d;
	load_a(&p, "protect");
	load_a(&r, "require");
	kernel_of(&p.plan, &k, &nm);
	T_EQ_INT(mc_reconcile(&r.plan, &k, true, &ds, &d), 0, "protect to require diffs");
	T_OK(d.n == 1 && d.ops[0].kind == MC_OP_POL_UPD && d.ops[0].pol.dir == MC_DIR_IN && !d.ops[0].pol.tmpl_optional &&
	     d.ops[0].old_pol.tmpl_optional, "protect to require: one update, the inbound template made required");
	mc_diff_free(&d);
	mc_names_free(&nm);
	mc_kstate_free(&k);
	kernel_of(&a.plan, &k, &nm);
	T_EQ_INT(mc_reconcile(&p.plan, &k, true, &ds, &d), 0, "accept to protect diffs");
	T_OK(d.n == 1 && d.ops[0].kind == MC_OP_POL_UPD && d.ops[0].pol.dir == MC_DIR_OUT &&
	     d.ops[0].pol.action == MC_PROTECT && d.ops[0].old_pol.action == MC_BYPASS,
	     "accept to protect: one update, the outbound policy given its template; the SAs stay");
	mc_diff_free(&d);
	mc_names_free(&nm);
	mc_kstate_free(&k);
	mc_diags_free(&ds);
	unload(&a);
	unload(&p);
	unload(&r);
}

/* The lockout guard, over a connected UDP socket of the pair: each step in order cuts nothing,
 * judged against the compiled old plan and against the kernel view of it; skipping accept does. */
static void test_guard(void)
{
	static const char *const ph[] = { "none", "accept", "protect", "require" };
	struct host h[4];
	struct mc_conns cs = { 0 };
	struct mc_conn *c = MC_PUSH(&cs.c, &cs.n, &cs.cap);

	*c = (struct mc_conn){ .proto = MC_PROTO_UDP, .lport = 5000, .rport = 6000, .state = 1 };
	mc_addr_parse(A_ADDR, &c->local);
	mc_addr_parse(B_ADDR, &c->remote);
	for (int i = 0; i < 4; i++)
		load_a(&h[i], ph[i]);
	for (int from = 0; from < 4; from++)
		for (int to = from + 1; to < 4; to++) {
			struct mc_kstate k;
			struct mc_names nm;
			struct mc_kview v;
			struct mc_plan kp;
			struct mc_cuts cuts;
			bool want_cut = from == 0 && to >= 2; /* protecting with SAs the peer may not have */
			mc_guard_check(&h[to].plan, &h[from].plan, &cs, &cuts);
			T_EQ_INT(cuts.n, want_cut, "guard: %s to %s %s", ph[from], ph[to], want_cut ? "cuts" : "cuts nothing");
			mc_cuts_free(&cuts);
			kernel_of(&h[from].plan, &k, &nm);
			mc_kview_build(&k, &nm, &v);
			mc_kview_plan(&v, MC_DEF_DENY, true, &kp);
			mc_guard_check(&h[to].plan, &kp, &cs, &cuts);
			T_EQ_INT(cuts.n, want_cut, "guard against the kernel view: %s to %s %s", ph[from], ph[to],
				 want_cut ? "cuts" : "cuts nothing");
			mc_cuts_free(&cuts);
			mc_plan_free(&kp);
			mc_kview_free(&v);
			mc_names_free(&nm);
			mc_kstate_free(&k);
		}
	for (int i = 0; i < 4; i++)
		unload(&h[i]);
	mc_conns_free(&cs);
}

/* check-peer over every pair of phases: traffic passes when the two are at most one step
 * apart, and a wrong order is named with both phases. */
static size_t peer_errors(const char *pa, const char *pb, unsigned b_spi_out, struct mc_buf *text)
{
	struct host a, b;
	struct mc_diags ds = { 0 };

	load_a(&a, pa);
	load_b(&b, pb, b_spi_out);
	struct mc_peer_side sa = { a.s, &a.plan, { 0 } }, sb = { b.s, &b.plan, { 0 } };
	mc_addr_parse(A_ADDR, &sa.addr);
	mc_addr_parse(B_ADDR, &sb.addr);
	size_t n = mc_check_peer(&sa, &sb, &ds);
	mc_diags_render(&ds, text);
	mc_diags_free(&ds);
	unload(&a);
	unload(&b);
	return n;
}

static void test_peer(void)
{
	static const char *const ph[] = { "none", "accept", "protect", "require" };

	for (int x = 0; x < 4; x++)
		for (int y = 0; y < 4; y++) {
			struct mc_buf t = { 0 };
			/* A sends with IPsec from protect on, and B must have its SAs (accept); A
			 * requires from require on, and B must send with IPsec (protect). */
			bool ok = (x < 2 || y >= 1) && (y < 2 || x >= 1) && (x < 3 || y >= 2) && (y < 3 || x >= 2);
			size_t n = peer_errors(ph[x], ph[y], 4097, &t);
			T_EQ_INT(n != 0, !ok, "check-peer: A at %s, B at %s %s", ph[x], ph[y], ok ? "agree" : "disagree");
			if ((n != 0) != !ok)
				printf("# %s", mc_buf_str(&t));
			mc_buf_free(&t);
		}
	struct mc_buf t = { 0 };
	peer_errors("require", "accept", 4097, &t);
	T_OK(strstr(mc_buf_str(&t), "the receiver is at phase require while the sender is at accept; the sender must "
				    "protect before the receiver requires") != NULL,
	     "check-peer: require before the peer protects is named, with both phases");
	mc_buf_free(&t);
	peer_errors("protect", "none", 4097, &t);
	T_OK(strstr(mc_buf_str(&t), "the sender protects before the receiver accepts") != NULL,
	     "check-peer: protect before the peer accepts is named");
	mc_buf_free(&t);
	T_OK(peer_errors("accept", "accept", 5000, &t) == 1 && strstr(mc_buf_str(&t), "spi 5000 vs 4097") != NULL,
	     "check-peer: SAs that disagree are found in phase accept, before they carry traffic");
	mc_buf_free(&t);
}

static char *edit(const char *text, const char *name, enum mc_enforce to, int *rc)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_buf out = { 0 };

	mc_conf_parse("t.yaml", text, strlen(text), &ds, &s);
	const struct mc_policy *p = mc_site_policy(s, name);
	*rc = p ? mc_phase_edit(text, &p, 1, to, &out, &ds) : -1;
	mc_site_free(s);
	mc_diags_free(&ds);
	return out.s;
}

static void test_edit(void)
{
	static const char site[] =
		"# kept\n"
		"policies:\n"
		"  - name: OUT   # kept too\n"
		"    direction: out\n"
		"    remote: fec0::2\n"
		"    action: protect\n"
		"    spi: 4096\n"
		"    enforce: accept   # the phase\n"
		"    esp:\n"
		"      integrity: hmac-sha256\n"
		"      integrity-key: K\n"
		"  - {name: FLOW, direction: in, remote: fec0::2, action: protect, spi: 300, enforce: accept,\n"
		"     esp: {integrity: hmac-sha256, integrity-key: K}}\n";
	int rc;
	char *p = edit(site, "OUT", MC_ENFORCE_PROTECT, &rc);
	T_OK(rc == 0 && p && strstr(p, "    enforce: protect   # the phase\n    esp:\n") && strstr(p, "# kept\n") &&
	     strlen(p) == strlen(site) + 1, "accept to protect: the value replaced, everything else kept");
	char *r = p ? edit(p, "OUT", MC_ENFORCE_REQUIRE, &rc) : NULL;
	T_OK(rc == 0 && r && !strstr(r, "\n    enforce") && strstr(r, "    spi: 4096\n    esp:\n"),
	     "protect to require: the enforce line removed");
	char *back = r ? edit(r, "OUT", MC_ENFORCE_PROTECT, &rc) : NULL;
	T_OK(rc == 0 && back && strstr(back, "      integrity-key: K\n    enforce: protect ") != NULL,
	     "require to protect (a phase-out): the line added at the policy's end, at its keys' indentation");
	char *flow = edit(site, "FLOW", MC_ENFORCE_PROTECT, &rc);
	T_OK(rc < 0, "a flow-style policy is refused");
	free(p);
	free(r);
	free(back);
	free(flow);
}

int main(void)
{
	test_file();
	test_compile();
	test_kview();
	test_guard();
	test_peer();
	test_edit();
	return t_done();
}
