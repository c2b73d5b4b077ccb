/* SPDX-License-Identifier: MIT */
/* The kernel view (lib/kview.c): rules grouped and named once, SAs by template and reqid, and the
 * plan test --kernel and the guard evaluate; status, metrics and mcpsecd read through it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/eval.h"
#include "../../lib/kview.h"
#include "../../lib/names.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "t.h"

#define PRIO_OUT (MC_PRIO_USER_LO + 0x100)
#define PRIO_IN (MC_PRIO_USER_LO + 0x200)
#define REQID_OUT (MC_REQID_BASE + 1)
#define REQID_IN (MC_REQID_BASE + 2)

static struct mc_kpolicy *kpol(struct mc_kstate *k, uint32_t prio, enum mc_dir dir, int family, enum mc_action a,
			       uint64_t used)
{
	struct mc_kpolicy *p = MC_PUSH(&k->pols, &k->npols, &k->cappols);
	memset(p, 0, sizeof(*p));
	p->x.priority = prio;
	p->x.dir = dir;
	p->x.sel.family = (uint8_t)family;
	p->x.action = a;
	p->use_time = used;
	return p;
}

static struct mc_ksa *ksa(struct mc_kstate *k, uint32_t spi, uint32_t reqid)
{
	struct mc_ksa *s = MC_PUSH(&k->sas, &k->nsas, &k->capsas);
	memset(s, 0, sizeof(*s));
	s->x.spi = spi;
	s->x.reqid = reqid;
	s->x.proto = MC_PROTO_ESP;
	s->x.ekey_len = 16;
	memset(s->x.ekey, 0xab, 16);
	return s;
}

static const struct mc_kview_rule *rule(const struct mc_kview *v, const char *name)
{
	for (size_t i = 0; i < v->nrules; i++)
		if (!strcmp(v->rules[i].name, name))
			return &v->rules[i];
	return NULL;
}

int main(void)
{
	struct mc_names nm = { 0 };
	struct mc_kstate k = { 0 };
	struct mc_kview v;

	mc_names_add(&nm, PRIO_OUT, MC_DIR_OUT, REQID_OUT, "TOPEER");
	mc_names_add(&nm, PRIO_IN, MC_DIR_IN, REQID_IN, "FROMPEER");
	mc_names_index(&nm);

	/* Dump order scrambled on purpose: the view orders outbound first, then by priority. */
	kpol(&k, PRIO_IN, MC_DIR_IN, AF_INET6, MC_PROTECT, 50)->x.tmpl_reqid = REQID_IN;
	k.pols[0].x.tmpl_proto = MC_PROTO_ESP;
	struct mc_kpolicy *o = kpol(&k, PRIO_OUT, MC_DIR_OUT, AF_INET6, MC_PROTECT, 70);
	o->x.tmpl_reqid = REQID_OUT;
	o->x.tmpl_proto = MC_PROTO_ESP;
	o->x.tmpl_spi = 0x1001;
	kpol(&k, PRIO_OUT, MC_DIR_OUT, AF_INET, MC_PROTECT, 90)->x = o->x;
	k.pols[2].x.sel.family = AF_INET;
	kpol(&k, MC_PRIO_DEFAULT, MC_DIR_OUT, AF_INET6, MC_DISCARD, 0);
	kpol(&k, MC_PRIO_USER_LO + 0x900, MC_DIR_IN, AF_INET6, MC_BYPASS, 0); /* owned, unnamed */
	kpol(&k, 100, MC_DIR_OUT, AF_INET6, MC_BYPASS, 0);                   /* foreign */
	ksa(&k, 0x2002, REQID_IN);   /* accepted by FROMPEER */
	ksa(&k, 0x1002, REQID_OUT);  /* TOPEER's next SA during a rollover: installed, not sending */
	ksa(&k, 0x1001, REQID_OUT);  /* TOPEER's: sending */
	ksa(&k, 0x3003, MC_REQID_BASE + 7); /* mcpsec's reqid, no rule */
	ksa(&k, 0x4004, 77);                /* foreign */

	mc_kview_build(&k, &nm, &v);
	T_EQ_INT(v.nrules, 4, "four rules: TOPEER (two families), the default, FROMPEER, an unnamed one");
	T_OK(v.nrules == 4 && !strcmp(v.rules[0].name, "TOPEER") && v.rules[0].dir == MC_DIR_OUT,
	     "outbound first, by priority");
	T_OK(v.nrules == 4 && v.rules[1].kind == MC_RULE_DEFAULT && !strcmp(mc_rule_kind_str(v.rules[1].kind), "default"),
	     "the default discard, named by the compiler: %s", v.nrules > 1 ? v.rules[1].name : "");
	const struct mc_kview_rule *out = rule(&v, "TOPEER"), *in = rule(&v, "FROMPEER");
	T_OK(out && out->npols == 2 && out->last_use == 90, "one rule of two kernel policies, last use the latest");
	T_OK(out && k.pols[out->pols[0]].x.sel.family == AF_INET6, "IPv6 fragment first");
	T_OK(out && out->sa && out->sa->x.spi == 0x1001 && out->nsas == 2 && out->sas[0] == out->sa,
	     "outbound: the SA it sends with first, then the next one");
	T_OK(in && in->sa && in->sa->x.spi == 0x2002 && in->nsas == 1, "inbound: the SA its reqid takes");
	T_OK(v.nrules == 4 && !strncmp(v.rules[3].name, "UNKNOWN-PRIORITY-", 17) && v.rules[3].unknown,
	     "an owned priority no name covers: UNKNOWN-PRIORITY-N");
	T_EQ_INT(v.nforeign_pols, 1, "one foreign policy");
	T_EQ_INT(v.nforeign_sas, 1, "one foreign SA");
	T_OK(!strcmp(v.sas[2].role, "sending") && !strcmp(v.sas[1].role, "installed, not sending") &&
	     !strcmp(v.sas[0].role, "accepted"), "each SA's role in its rule");
	T_OK(!strcmp(v.sas[2].name, "TOPEER") && v.sas[2].dir == MC_DIR_OUT, "an SA named by the rule that takes it");
	T_OK(v.sas[3].rule == MC_KVIEW_NONE && !v.sas[3].name && !v.sas[3].role,
	     "mcpsec's reqid that no rule and no name has: no owner");
	T_OK(v.sas[4].rule == MC_KVIEW_NONE && !v.sas[4].name, "a foreign SA: no owner");

	/* Without policies (IPsec disabled: the SAs stay), an SA is still named by its reqid. */
	struct mc_kstate bare = { .sas = k.sas, .nsas = k.nsas };
	struct mc_kview vb;
	mc_kview_build(&bare, &nm, &vb);
	T_OK(vb.nrules == 0 && vb.sas[0].name && !strcmp(vb.sas[0].name, "FROMPEER") && vb.sas[0].dir == MC_DIR_IN &&
	     !vb.sas[0].role, "no policies: an SA is named by its reqid's committed owner, with no role");
	mc_kview_free(&vb);

	/* The plan the kernel holds: evaluable, its SAs by rule, no key bytes. */
	struct mc_plan plan;
	mc_kview_plan(&v, MC_DEF_DENY, true, &plan);
	T_EQ_INT(plan.nrules, 4, "the plan has the view's rules");
	T_EQ_INT(plan.npols, 5, "and mcpsec's five kernel policies");
	T_EQ_INT(plan.nsas, 3, "and the three SAs rules take");
	bool keyless = true, ruled = true;
	for (size_t i = 0; i < plan.nsas; i++) {
		keyless &= plan.sas[i].ekey_len == 0 && plan.sas[i].ekey[0] == 0;
		ruled &= !strcmp(plan.rules[plan.sas[i].rule].name, plan.sas[i].reqid == REQID_OUT ? "TOPEER" : "FROMPEER");
	}
	T_OK(keyless, "no key bytes in the plan");
	T_OK(ruled, "each SA belongs to its rule");
	struct mc_query q = { .proto = MC_PROTO_TCP, .dir = MC_DIR_OUT };
	mc_addr_parse("fec0::1", &q.local);
	mc_addr_parse("fec0::2", &q.remote);
	q.remote_lo = q.remote_hi = 22;
	struct mc_results res;
	mc_eval(&plan, &q, &res);
	T_OK(res.n && res.r[0].first && !strcmp(res.r[0].first, "TOPEER") && res.r[0].result == MC_PROTECT,
	     "evaluated: the first outbound match is TOPEER");
	mc_results_free(&res);
	mc_plan_free(&plan);

	mc_kview_free(&v);
	mc_names_free(&nm);
	free(k.pols);
	free(k.sas);
	return t_done();
}
