/* SPDX-License-Identifier: MIT */
/* Reconcile: the operations between a plan and a fake kernel dump, ownership, and undo. */
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/plan.h"
#include "../../lib/reconcile.h"
#include "../../lib/util.h"
#include "t.h"

static struct mc_xpolicy pol(const char *dst, uint16_t dport, uint32_t prio, enum mc_action a)
{
	struct mc_xpolicy x;

	memset(&x, 0, sizeof(x));
	x.dir = MC_DIR_OUT;
	x.sel.family = AF_INET6;
	x.sel.saddr.family = AF_INET6;
	mc_addr_parse(dst, &x.sel.daddr);
	x.sel.plen_d = 128;
	x.sel.proto = 6;
	x.sel.dport = dport;
	x.sel.dport_mask = dport ? 0xffff : 0;
	x.priority = prio;
	x.action = a;
	return x;
}

static struct mc_xsa sa(uint32_t spi, uint32_t reqid, uint8_t key0)
{
	struct mc_xsa s;

	memset(&s, 0, sizeof(s));
	s.family = AF_INET6;
	mc_addr_parse("fec0::1", &s.saddr);
	mc_addr_parse("fec0::2", &s.daddr);
	s.spi = spi;
	s.proto = 50;
	s.reqid = reqid;
	s.ekey_len = 16;
	s.ekey[0] = key0;
	return s;
}

static size_t count(const struct mc_diff *d, enum mc_op_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += d->ops[i].kind == k;
	return n;
}

/* An outbound SA installed without OSEQ_MAY_WRAP is replaced by one with it, whose counter starts
 * ahead of the running one: never reset. The undo restores the old SA with its counter. */
static void test_wrap_upgrade(void)
{
	struct mc_plan want;
	struct mc_kstate have;
	struct mc_diags ds = { 0 };
	struct mc_diff d, inv;

	memset(&want, 0, sizeof(want));
	memset(&have, 0, sizeof(have));
	struct mc_rule *r = MC_PUSH(&want.rules, &want.nrules, &want.caprules);
	memset(r, 0, sizeof(*r));
	r->name = (char *)"OUT";
	struct mc_xsa w = sa(300, MC_REQID_BASE + 1, 1);
	w.oseq_may_wrap = true;
	*MC_PUSH(&want.sas, &want.nsas, &want.capsas) = w;
	struct mc_ksa *k = MC_PUSH(&have.sas, &have.nsas, &have.capsas);
	memset(k, 0, sizeof(*k));
	k->x = sa(300, MC_REQID_BASE + 1, 1);
	k->x.oseq = 0xffffff00u; /* 256 packets before the end */
	T_EQ_INT(mc_reconcile(&want, &have, true, &ds, &d), 0, "reconcile an SA without the wrap flag");
	T_OK(d.n == 2 && d.ops[0].kind == MC_OP_SA_DEL && d.ops[1].kind == MC_OP_SA_ADD && d.sa_replace == 1,
	     "the SA is replaced (UPDSA cannot set the flag)");
	T_OK(d.n == 2 && d.ops[1].sa.oseq_may_wrap && d.ops[1].sa.oseq == 0xffffff00u + MC_OSEQ_CARRY_AHEAD,
	     "the replacement may wrap and continues the counter ahead of it (0x%x)", d.n == 2 ? d.ops[1].sa.oseq : 0);
	mc_diff_inverse(d.ops, d.n, &inv);
	T_OK(inv.n == 2 && inv.ops[1].kind == MC_OP_SA_ADD && !inv.ops[1].sa.oseq_may_wrap &&
	     inv.ops[1].sa.oseq == 0xffffff00u, "undo re-adds the old SA as it was, counter included");
	mc_diff_free(&inv);
	mc_diff_free(&d);
	k->x.oseq_may_wrap = true;
	T_EQ_INT(mc_reconcile(&want, &have, true, &ds, &d), 0, "reconcile again with the flag set");
	T_OK(d.n == 0 && d.sa_same == 1, "an SA with the flag and the same keys is left alone (its counter runs on)");
	mc_diff_free(&d);
	/* A new lifetime is an update in place (UPDSA keeps counters); its undo puts the old one back. */
	want.sas[0].lft.soft_packets = 900;
	want.sas[0].lft.hard_packets = 1000;
	T_EQ_INT(mc_reconcile(&want, &have, true, &ds, &d), 0, "reconcile a lifetime change");
	T_OK(d.n == 1 && d.ops[0].kind == MC_OP_SA_UPD && d.sa_upd == 1 && d.ops[0].sa.lft.hard_packets == 1000 &&
	     d.ops[0].old_sa.lft.hard_packets == 0, "a lifetime change is one in-place update, not a replacement");
	mc_diff_inverse(d.ops, d.n, &inv);
	T_OK(inv.n == 1 && inv.ops[0].kind == MC_OP_SA_UPD && inv.ops[0].sa.lft.hard_packets == 0,
	     "its undo restores the old lifetime in place");
	mc_diff_free(&inv);
	mc_diff_free(&d);
	free(want.rules);
	free(want.sas);
	free(have.sas);
	mc_diags_free(&ds);
}

int main(void)
{
	test_wrap_upgrade();
	const uint32_t P = MC_PRIO_USER_LO + 0x100;
	struct mc_plan want;
	struct mc_kstate have;
	struct mc_diags ds = { 0 };
	struct mc_diff d;

	memset(&want, 0, sizeof(want));
	memset(&have, 0, sizeof(have));
	struct mc_rule *r = MC_PUSH(&want.rules, &want.nrules, &want.caprules);
	memset(r, 0, sizeof(*r));
	r->name = mc_strdup("R");
	/* Wanted: A (same in kernel), B (priority changed), C (new). SA 300 same, SA 301 new key. */
	*MC_PUSH(&want.pols, &want.npols, &want.cappols) = pol("fec0::a", 80, P, MC_BYPASS);
	*MC_PUSH(&want.pols, &want.npols, &want.cappols) = pol("fec0::b", 80, P + 1, MC_DISCARD);
	*MC_PUSH(&want.pols, &want.npols, &want.cappols) = pol("fec0::c", 80, P + 2, MC_DISCARD);
	*MC_PUSH(&want.sas, &want.nsas, &want.capsas) = sa(300, MC_REQID_LEGACY, 1);
	*MC_PUSH(&want.sas, &want.nsas, &want.capsas) = sa(301, MC_REQID_LEGACY, 2);
	/* Kernel: A, B at an old priority, D (ours, stale), F (foreign), SA 300, SA 301 old key,
	 * SA 302 ours stale, SA 303 foreign. */
	struct mc_kpolicy k;
	memset(&k, 0, sizeof(k));
	k.x = pol("fec0::a", 80, P, MC_BYPASS);
	*MC_PUSH(&have.pols, &have.npols, &have.cappols) = k;
	k.x = pol("fec0::b", 80, P + 7, MC_DISCARD);
	*MC_PUSH(&have.pols, &have.npols, &have.cappols) = k;
	k.x = pol("fec0::d", 80, P + 3, MC_DISCARD);
	*MC_PUSH(&have.pols, &have.npols, &have.cappols) = k;
	k.x = pol("fec0::f", 80, 100, MC_DISCARD);
	*MC_PUSH(&have.pols, &have.npols, &have.cappols) = k;
	struct mc_ksa ks;
	memset(&ks, 0, sizeof(ks));
	ks.x = sa(300, MC_REQID_LEGACY, 1);
	*MC_PUSH(&have.sas, &have.nsas, &have.capsas) = ks;
	ks.x = sa(301, MC_REQID_LEGACY, 9);
	*MC_PUSH(&have.sas, &have.nsas, &have.capsas) = ks;
	ks.x = sa(302, MC_REQID_LEGACY, 1);
	*MC_PUSH(&have.sas, &have.nsas, &have.capsas) = ks;
	ks.x = sa(303, 7, 1);
	*MC_PUSH(&have.sas, &have.nsas, &have.capsas) = ks;

	T_EQ_INT(mc_reconcile(&want, &have, true, &ds, &d), 0, "reconcile succeeds");
	T_OK(d.pol_same == 1 && d.pol_upd == 1 && d.pol_add == 1 && d.pol_del == 1,
	     "policies: 1 unchanged, 1 updated (priority), 1 added, 1 stale removed");
	T_OK(d.sa_same == 1 && d.sa_replace == 1 && d.sa_del == 1 && d.sa_add == 0,
	     "SAs: 1 unchanged, 1 replaced (new key), 1 stale removed; the foreign one untouched");
	int foreign_touched = 0;
	for (size_t i = 0; i < d.n; i++)
		foreign_touched |= (d.ops[i].kind == MC_OP_POL_DEL && d.ops[i].pol.priority == 100) ||
				   (d.ops[i].kind == MC_OP_SA_DEL && d.ops[i].sa.spi == 303);
	T_OK(!foreign_touched, "objects outside mcpsec's band and reqid are never in the operations");
	/* Order: SA replace out, SA in, policies, stale policies, stale SAs. */
	T_OK(d.n == 6 && d.ops[0].kind == MC_OP_SA_DEL && d.ops[0].sa.spi == 301 && d.ops[1].kind == MC_OP_SA_ADD &&
	     d.ops[1].sa.ekey[0] == 2 && d.ops[4].kind == MC_OP_POL_DEL && d.ops[5].kind == MC_OP_SA_DEL &&
	     d.ops[5].sa.spi == 302, "operation order: SAs in before policies, stale objects out last");
	const struct mc_op *upd = NULL;
	for (size_t i = 0; i < d.n; i++)
		if (d.ops[i].kind == MC_OP_POL_UPD)
			upd = &d.ops[i];
	T_OK(upd && upd->pol.priority == P + 1 && upd->old_pol.priority == P + 7, "update carries old and new");

	/* Undo: everything succeeded but the last op; the inverse reverses the rest in reverse order. */
	d.ops[5].err = -1;
	struct mc_diff u;
	mc_diff_inverse(d.ops, d.n, &u);
	T_EQ_INT(u.n, 5, "undo has one operation per successful one");
	T_OK(u.ops[0].kind == MC_OP_POL_ADD && u.ops[0].pol.priority == P + 3, "undo starts by re-adding the deleted policy");
	T_OK(count(&u, MC_OP_POL_UPD) == 1 && count(&u, MC_OP_POL_DEL) == 1, "undo reverts the update and removes the added policy");
	T_OK(u.ops[4].kind == MC_OP_SA_ADD && u.ops[4].sa.spi == 301 && u.ops[4].sa.ekey[0] == 9,
	     "undo ends by restoring the replaced SA with its old key");
	for (size_t i = 0; i < u.n; i++)
		if (u.ops[i].kind == MC_OP_POL_UPD)
			T_OK(u.ops[i].pol.priority == P + 7, "undo restores the old priority");
	mc_diff_free(&u);
	mc_diff_free(&d);

	/* Disabled: every owned policy goes, SAs are left alone. */
	T_EQ_INT(mc_reconcile(&want, &have, false, &ds, &d), 0, "reconcile (disabled) succeeds");
	T_OK(d.pol_del == 3 && count(&d, MC_OP_SA_ADD) + count(&d, MC_OP_SA_DEL) == 0,
	     "disabled: the 3 owned policies are removed, no SA is touched");
	mc_diff_free(&d);

	/* A foreign policy holding a wanted selector is an error, not an update. */
	have.pols[0].x.priority = 50;
	T_OK(mc_reconcile(&want, &have, true, &ds, &d) < 0 && ds.errors == 1, "foreign selector conflict is an error");
	mc_diff_free(&d);
	mc_diags_free(&ds);
	mc_plan_free(&want);
	mc_kstate_free(&have);
	return t_done();
}
