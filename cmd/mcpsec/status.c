/* SPDX-License-Identifier: MIT */
/* mcpsec status ipsec all|NAME: what the kernel enforces, by policy name, with counters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "../../lib/algo.h"
#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/engine.h"
#include "../../lib/kview.h"
#include "../../lib/metrics.h"
#include "../../lib/monitor.h"
#include "../../lib/nlx.h"
#include "../../lib/reconcile.h"
#include "../../lib/state.h"
#include "../../lib/proc.h"
#include "../../lib/util.h"
#include "../../lib/wire.h"
#include "cmd.h"

/* "soft 27 GiB / hard 30 GiB, soft 20 h": the limits an SA has, or "" (none: it lives forever). */
static void lifetime_str(const struct mc_lifetime *l, struct mc_buf *b)
{
	uint64_t v[3][2];
	mc_lifetime_table(l, v);
	static const char *unit[3] = { "s", "bytes", "packets" };

	for (int i = 0; i < 3; i++)
		for (int h = 0; h < 2; h++)
			if (v[i][h])
				mc_buf_printf(b, "%s%s %llu %s", b->len ? ", " : "", h ? "hard" : "soft",
					      (unsigned long long)v[i][h], unit[i]);
}

static void fmt_time(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void sa_algs(const struct mc_ksa *s, struct mc_buf *b)
{
	if (s->x.integrity || s->x.confidentiality || !s->auth_name[0]) {
		mc_xsa_algs_str(&s->x, b);
		return;
	}
	mc_buf_printf(b, "%s %s %s", mc_ipsec_proto_str(s->x.proto), s->enc_name, s->auth_name);
}

static void json_sa(struct mc_buf *b, const struct mc_ksa *s, const char *policy, const char *role)
{
	char a1[64], a2[64], t[32];

	mc_buf_puts(b, "{\"policy\":");
	if (policy)
		mc_buf_json_str(b, policy);
	else
		mc_buf_puts(b, "null");
	mc_buf_printf(b, ",\"spi\":%u,\"spi_hex\":\"0x%08x\",\"protocol\":\"%s\",\"src\":\"%s\",\"dst\":\"%s\","
		      "\"integrity\":", s->x.spi, s->x.spi, mc_ipsec_proto_str(s->x.proto),
		      mc_addr_str(&s->x.saddr, a1, sizeof(a1)), mc_addr_str(&s->x.daddr, a2, sizeof(a2)));
	if (s->x.integrity)
		mc_buf_json_str(b, s->x.integrity->name);
	else
		mc_buf_puts(b, s->auth_name[0] ? "\"other\"" : "null");
	mc_buf_puts(b, ",\"confidentiality\":");
	if (s->x.confidentiality)
		mc_buf_printf(b, "\"%s-%zu\"", s->x.confidentiality->name, s->x.ekey_len * 8);
	else
		mc_buf_puts(b, s->enc_name[0] && strcmp(s->enc_name, "ecb(cipher_null)") ? "\"other\"" : "null");
	fmt_time(s->use_time, t, sizeof(t));
	mc_buf_printf(b, ",\"bytes\":%llu,\"packets\":%llu,\"integrity_failed\":%llu,\"replay_failed\":%llu,"
		      "\"reqid\":%u,\"sequence\":%u,\"sequence_may_wrap\":%s,", (unsigned long long)s->bytes,
		      (unsigned long long)s->packets, (unsigned long long)s->integrity_fail,
		      (unsigned long long)s->replay_fail, s->x.reqid, s->x.oseq, s->x.oseq_may_wrap ? "true" : "false");
	if (role)
		mc_buf_printf(b, "\"role\":\"%s\",", role);
	const struct mc_lifetime *l = &s->x.lft;
	if (mc_lifetime_set(l))
		mc_buf_printf(b, "\"lifetime\":{\"soft_seconds\":%llu,\"hard_seconds\":%llu,\"soft_bytes\":%llu,"
			      "\"hard_bytes\":%llu,\"soft_packets\":%llu,\"hard_packets\":%llu},",
			      (unsigned long long)l->soft_secs, (unsigned long long)l->hard_secs,
			      (unsigned long long)l->soft_bytes, (unsigned long long)l->hard_bytes,
			      (unsigned long long)l->soft_packets, (unsigned long long)l->hard_packets);
	else
		mc_buf_puts(b, "\"lifetime\":null,");
	char warn[256];
	mc_buf_puts(b, "\"warning\":");
	if (mc_sa_block_warning(s->x.confidentiality, s->bytes, warn, sizeof(warn)))
		mc_buf_json_str(b, warn);
	else
		mc_buf_puts(b, "null");
	mc_buf_puts(b, ",\"last_use\":");
	if (s->use_time)
		mc_buf_printf(b, "\"%s\"}", t);
	else
		mc_buf_puts(b, "null}");
}

static void json_selector(struct mc_buf *b, const struct mc_sel *s)
{
	char a[80];
	struct mc_prefix src = { s->saddr, s->plen_s }, dst = { s->daddr, s->plen_d };
	bool icmp = MC_WIRE_IS_ICMP(s->proto);

	mc_prefix_str(&src, a, sizeof(a));
	mc_buf_printf(b, "{\"src\":\"%s\",", a);
	mc_prefix_str(&dst, a, sizeof(a));
	mc_buf_printf(b, "\"dst\":\"%s\",\"proto\":%u", a, s->proto);
	const char *f1 = icmp ? "icmp_type" : "sport", *f2 = icmp ? "icmp_code" : "dport";
	if (s->sport_mask)
		mc_buf_printf(b, ",\"%s\":[%u,%u]", f1, s->sport, (unsigned)(s->sport | (uint16_t)~s->sport_mask));
	if (s->dport_mask)
		mc_buf_printf(b, ",\"%s\":[%u,%u]", f2, s->dport, (unsigned)(s->dport | (uint16_t)~s->dport_mask));
	mc_buf_puts(b, "}");
}

/* Whether the kernel holds the committed configuration (its policies; SAs are not compared:
 * status reads no key). */
struct kernel_check {
	size_t differs; /* policy operations an enable would send */
	bool pending;   /* a change is under way, or its process was killed */
};

static void check_kernel(struct mc_nl *nl, const struct mc_kstate *k, struct kernel_check *kc)
{
	struct mc_diags ds = { 0 };
	struct mc_state st = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan;
	struct mc_diff d;
	char *p = mc_asprintf("%s/pending", g_opts.state_dir);
	struct stat sb;

	memset(kc, 0, sizeof(*kc));
	kc->pending = lstat(p, &sb) == 0;
	free(p);
	if (mc_engine_load_committed(g_opts.state_dir, true, &st, &ds, &s) == 0 &&
	    mc_engine_compile(mc_nl_kernel(nl), s, &st, &ds, &plan) == 0) {
		if (mc_reconcile(&plan, k, st.enabled, &ds, &d) == 0) {
			for (size_t i = 0; i < d.n; i++)
				kc->differs += !mc_op_is_sa(d.ops[i].kind);
			mc_diff_free(&d);
		}
		mc_plan_free(&plan);
	}
	mc_site_free(s);
	mc_state_free(&st);
	mc_diags_free(&ds);
}

/*
 * What status must say before anything else: why the committed configuration is not enforced,
 * a change on trial and what will happen to it, and a kernel that matches no generation (a
 * change cut short, or someone else's edit). Gathered once for text and JSON alike.
 */
struct safety {
	char why[512];       /* NOT ENFORCED: the reason recorded, or the damage found now */
	bool trial;
	struct mc_trial tr;
	enum mc_trial_when when;
	int64_t left;
	char mismatch[300];  /* the kernel differs from the committed configuration */
};

static void safety_gather(const struct mc_state *st, int load_err, const struct kernel_check *kc, struct safety *sf)
{
	memset(sf, 0, sizeof(*sf));
	if (!mc_state_get_enforcement(g_opts.state_dir, sf->why, sizeof(sf->why)) && load_err == -EUCLEAN)
		snprintf(sf->why, sizeof(sf->why), "the state directory is damaged: %s; enable or mcpsecd installs the "
			 "lockdown set, and an apply replaces the directory", st->damage);
	if (mc_state_trial_get(g_opts.state_dir, &sf->tr) == 1) {
		sf->trial = true;
		sf->when = mc_trial_when(&sf->tr, &sf->left);
	}
	if (kc && kc->differs)
		snprintf(sf->mismatch, sizeof(sf->mismatch), "the kernel does not hold the committed configuration %s "
			 "(%zu policies differ%s): a change was cut short or the kernel was changed by someone else; "
			 "'mcpsec enable' (or mcpsecd) restores it", st->gen ? st->gen : "", kc->differs,
			 kc->pending ? ", and a change was under way" : "");
}

static void render_safety_text(const struct safety *sf, struct mc_buf *b)
{
	if (sf->why[0])
		mc_buf_printf(b, "NOT ENFORCED: %s\n", sf->why);
	if (sf->mismatch[0])
		mc_buf_printf(b, "KERNEL DIFFERS: %s\n", sf->mismatch);
	if (!sf->trial)
		return;
	switch (sf->when) {
	case MC_TRIAL_RUNNING:
		mc_buf_printf(b, "PENDING CHANGE: %s is on trial; it is rolled back to %s unless 'mcpsec confirm' runs\n"
			      "  time left: %lld s\n", sf->tr.gen, sf->tr.confirmed, (long long)sf->left);
		break;
	case MC_TRIAL_EXPIRED:
		mc_buf_printf(b, "PENDING CHANGE: %s is on trial; the deadline passed: rolling back to %s (by its timer, "
			      "mcpsecd or the next mcpsec command)\n", sf->tr.gen, sf->tr.confirmed);
		break;
	case MC_TRIAL_OTHER_BOOT:
		mc_buf_printf(b, "PENDING CHANGE: %s was on trial when the host restarted and was never confirmed: it is "
			      "rolled back to %s by mcpsecd, enable or the next apply\n", sf->tr.gen, sf->tr.confirmed);
		break;
	}
}

static void render_safety_json(const struct safety *sf, struct mc_buf *b)
{
	static const char *const when[] = { "running", "expired", "earlier-boot" };

	mc_buf_puts(b, ",\"enforced\":");
	if (sf->why[0]) {
		mc_buf_puts(b, "false,\"not_enforced\":");
		mc_buf_json_str(b, sf->why);
	} else {
		mc_buf_puts(b, "true");
	}
	mc_buf_puts(b, ",\"kernel_differs\":");
	if (sf->mismatch[0])
		mc_buf_json_str(b, sf->mismatch);
	else
		mc_buf_puts(b, "null");
	mc_buf_puts(b, ",\"pending\":");
	if (sf->trial)
		mc_buf_printf(b, "{\"generation\":\"%s\",\"rolls_back_to\":\"%s\",\"deadline\":%lld,"
			      "\"seconds_left\":%lld,\"state\":\"%s\"}", sf->tr.gen, sf->tr.confirmed,
			      (long long)sf->tr.deadline, (long long)(sf->left > 0 ? sf->left : 0), when[sf->when]);
	else
		mc_buf_puts(b, "null");
}

/* One rule as a JSON object (its selectors, and for PROTECT its SPI and SAs). */
static void json_rule(struct mc_buf *b, const struct mc_kview *v, const struct mc_kview_rule *r)
{
	const struct mc_kstate *k = v->k;
	char t[32];

	mc_buf_puts(b, "{\"name\":");
	mc_buf_json_str(b, r->name);
	mc_buf_printf(b, ",\"kind\":\"%s\",\"direction\":\"%s\",\"action\":\"%s\",\"priority\":%u,"
		      "\"kernel_policies\":%zu,\"last_use\":", mc_rule_kind_str(r->kind), mc_dir_str(r->dir),
		      mc_action_str(r->action), r->priority, r->npols);
	fmt_time(r->last_use, t, sizeof(t));
	if (r->last_use)
		mc_buf_printf(b, "\"%s\"", t);
	else
		mc_buf_puts(b, "null");
	mc_buf_puts(b, ",\"selectors\":[");
	for (size_t j = 0; j < r->npols; j++) {
		if (j)
			mc_buf_puts(b, ",");
		json_selector(b, &k->pols[r->pols[j]].x.sel);
	}
	mc_buf_puts(b, "]");
	if (r->action == MC_PROTECT) {
		/* spi: what it sends with (out), or what it accepts when that is one SA (in). */
		uint32_t spi = r->tmpl_spi ? r->tmpl_spi : r->nsas == 1 ? r->sas[0]->x.spi : 0;
		mc_buf_puts(b, ",\"spi\":");
		if (spi)
			mc_buf_printf(b, "%u,\"spi_hex\":\"0x%08x\"", spi, spi);
		else
			mc_buf_puts(b, "null,\"spi_hex\":null");
		mc_buf_printf(b, ",\"protocol\":\"%s\",\"reqid\":%u,\"clear_passes\":%s,\"sa\":",
			      mc_ipsec_proto_str(r->tmpl_proto), r->tmpl_reqid, r->clear_passes ? "true" : "false");
		if (r->sa)
			json_sa(b, r->sa, r->name, v->sas[r->sa - k->sas].role);
		else
			mc_buf_puts(b, "null");
		mc_buf_puts(b, ",\"sas\":[");
		for (size_t j = 0; j < r->nsas; j++) {
			if (j)
				mc_buf_puts(b, ",");
			json_sa(b, r->sas[j], r->name, v->sas[r->sas[j] - k->sas].role);
		}
		mc_buf_puts(b, "]");
	}
	mc_buf_puts(b, "}");
}

/* One rule as status's text: a line, and for PROTECT each SA (or MISSING). */
static void text_rule(struct mc_buf *b, const struct mc_kview *v, const struct mc_kview_rule *r, bool kernel_view)
{
	const struct mc_kstate *k = v->k;
	char t[32], a1[64], a2[64];

	fmt_time(r->last_use, t, sizeof(t));
	mc_buf_printf(b, "  %-24s %-8s %-10u %5zu  %-20s ", r->name, mc_action_str(r->action),
		      r->priority, r->npols, t);
	for (size_t j = 0; j < r->npols && j < 3; j++) {
		if (j)
			mc_buf_puts(b, "; ");
		if (kernel_view)
			mc_sel_str(&k->pols[r->pols[j]].x.sel, r->dir, b);
		else
			mc_sel_local_str(&k->pols[r->pols[j]].x.sel, r->dir, b);
	}
	if (r->npols > 3)
		mc_buf_printf(b, "; (+%zu more)", r->npols - 3);
	mc_buf_puts(b, "\n");
	if (r->action != MC_PROTECT)
		return;
	if (r->clear_passes)
		mc_buf_printf(b, "      phase-in: %s\n", mc_clear_passes_str(r->dir));
	if (!r->sa && !(r->clear_passes && r->dir == MC_DIR_OUT)) {
		if (r->tmpl_spi)
			mc_buf_printf(b, "      SA spi %u (0x%08x) %s: MISSING - matching traffic is dropped\n",
				      r->tmpl_spi, r->tmpl_spi, mc_ipsec_proto_str(r->tmpl_proto));
		else
			mc_buf_printf(b, "      SA (%s, reqid %u): MISSING - matching traffic is dropped\n",
				      mc_ipsec_proto_str(r->tmpl_proto), r->tmpl_reqid);
	}
	for (size_t j = 0; j < r->nsas; j++) {
		const struct mc_ksa *s = r->sas[j];
		char warn[256];
		fmt_time(s->use_time, t, sizeof(t));
		mc_buf_printf(b, "      SA spi %u (0x%08x) ", s->x.spi, s->x.spi);
		sa_algs(s, b);
		mc_buf_printf(b, " %s -> %s, %s: %llu bytes, %llu packets, ",
			      mc_addr_str(&s->x.saddr, a1, sizeof(a1)),
			      mc_addr_str(&s->x.daddr, a2, sizeof(a2)), v->sas[s - k->sas].role,
			      (unsigned long long)s->bytes, (unsigned long long)s->packets);
		if (r->dir == MC_DIR_OUT)
			mc_buf_printf(b, "sequence %u (%s), ", s->x.oseq,
				      s->x.oseq_may_wrap ? "may wrap" : "STOPS AT 4294967295: reapply");
		mc_buf_printf(b, "integrity failures %llu, replay failures %llu, last use %s\n",
			      (unsigned long long)s->integrity_fail, (unsigned long long)s->replay_fail, t);
		struct mc_buf lt = { 0 };
		lifetime_str(&s->x.lft, &lt);
		if (lt.len)
			mc_buf_printf(b, "        lifetime: %s\n", mc_buf_str(&lt));
		mc_buf_free(&lt);
		if (mc_sa_block_warning(s->x.confidentiality, s->bytes, warn, sizeof(warn)))
			mc_buf_printf(b, "        WARNING: %s\n", warn);
	}
}

/* The rules status shows: every one, or those named what (any case). */
struct shown {
	const struct mc_kview_rule **r;
	size_t n;
	bool all;
};

static bool shown_rule(const struct shown *sh, const struct mc_kview *v, size_t rule)
{
	for (size_t i = 0; i < sh->n; i++)
		if (sh->r[i] == &v->rules[rule])
			return true;
	return false;
}

static void render_json(struct mc_buf *b, const struct mc_state *st, const struct safety *sf, const struct mc_kview *v,
			const struct shown *sh, const struct mc_stats *c)
{
	const struct mc_kstate *k = v->k;
	const struct mc_kview_rule *const *e = sh->r;
	size_t ne = sh->n;
	bool all = sh->all;

	mc_buf_puts(b, "{\"namespace\":");
	if (g_opts.netns)
		mc_buf_json_str(b, g_opts.netns);
	else
		mc_buf_puts(b, "null");
	mc_buf_printf(b, ",\"configured\":%s,\"committed\":%s,\"enabled\":%s,\"default\":",
		      st->committed || mc_state_configured(g_opts.state_dir) ? "true" : "false",
		      st->committed ? "true" : "false", st->committed && st->enabled ? "true" : "false");
	if (st->default_name)
		mc_buf_json_str(b, st->default_name);
	else
		mc_buf_puts(b, "null");
	mc_buf_puts(b, ",\"state_dir\":");
	mc_buf_json_str(b, g_opts.state_dir);
	render_safety_json(sf, b);
	mc_buf_puts(b, ",\"policies\":[");
	for (size_t i = 0; i < ne; i++) {
		if (i)
			mc_buf_puts(b, ",");
		json_rule(b, v, e[i]);
	}
	mc_buf_puts(b, "],\"sas\":[");
	bool first = true;
	for (size_t i = 0; i < k->nsas; i++) {
		if (!mc_reqid_owned(k->sas[i].x.reqid))
			continue;
		const struct mc_kview_sa *o = &v->sas[i];
		if (!all && (o->rule == MC_KVIEW_NONE || !shown_rule(sh, v, o->rule)))
			continue;
		const char *owner = o->name, *role = o->role;
		if (!first)
			mc_buf_puts(b, ",");
		first = false;
		json_sa(b, &k->sas[i], owner, role);
	}
	mc_buf_puts(b, "],\"foreign\":{\"policies\":[");
	first = true;
	for (size_t i = 0; all && i < k->npols; i++) {
		const struct mc_kpolicy *p = &k->pols[i];
		if (mc_prio_owned(p->x.priority))
			continue;
		mc_buf_printf(b, "%s{\"direction\":\"%s\",\"priority\":%u,\"action\":\"%s\",\"selector\":",
			      first ? "" : ",", p->x.dir == 0 ? "in" : p->x.dir == 1 ? "out" : "fwd",
			      p->x.priority, p->x.action == MC_DISCARD ? "block" : "allow");
		json_selector(b, &p->x.sel);
		mc_buf_puts(b, "}");
		first = false;
	}
	mc_buf_puts(b, "],\"sas\":[");
	first = true;
	for (size_t i = 0; all && i < k->nsas; i++) {
		if (mc_reqid_owned(k->sas[i].x.reqid))
			continue;
		if (!first)
			mc_buf_puts(b, ",");
		first = false;
		json_sa(b, &k->sas[i], NULL, NULL);
	}
	mc_buf_puts(b, "]},\"counters\":{");
	for (size_t i = 0; i < c->n; i++)
		mc_buf_printf(b, "%s\"%s\":%llu", i ? "," : "", c->v[i].name, (unsigned long long)c->v[i].value);
	/* The daemon's drop totals, or null when no mcpsecd watches this namespace. */
	struct mc_buf dm = { 0 };
	mc_buf_puts(b, "},\"daemon\":");
	if (ask_daemon("totals", &dm) == 0 && dm.len && dm.s[0] == '{') {
		while (dm.len && (dm.s[dm.len - 1] == '\n'))
			dm.s[--dm.len] = '\0';
		mc_buf_puts(b, dm.s);
	} else {
		mc_buf_puts(b, "null");
	}
	mc_buf_free(&dm);
	mc_buf_puts(b, "}\n");
}

static void render_text(struct mc_buf *b, const struct mc_state *st, const struct safety *sf, const struct mc_kview *v,
			const struct shown *sh, const struct mc_stats *c, bool kernel_view)
{
	const struct mc_kstate *k = v->k;
	const struct mc_kview_rule *const *e = sh->r;
	size_t ne = sh->n;
	bool all = sh->all;
	char a1[64], a2[64];
	size_t nforeign_p = 0, nforeign_s = 0;

	mc_buf_printf(b, "IPsec %s, default %s, namespace %s, state %s\n",
		      st->damage[0] ? "configured, but its state directory is damaged" :
		      !st->committed ? "not configured by mcpsec" : st->enabled ? "enabled" : "disabled",
		      st->default_name ? st->default_name : "-", g_opts.netns ? g_opts.netns : "(current)",
		      g_opts.state_dir);
	render_safety_text(sf, b);
	for (int d = 1; d >= 0; d--) {
		bool header = false;
		for (size_t i = 0; i < ne; i++) {
			if ((int)e[i]->dir != d)
				continue;
			if (!header) {
				mc_buf_printf(b, "\n%s policies, first match wins:\n", d ? "Outbound" : "Inbound");
				mc_buf_printf(b, "  %-24s %-8s %-10s %5s  %-20s %s\n", "NAME", "ACTION", "PRIORITY",
					      "KPOL", "LAST USE", kernel_view ? "SELECTORS (kernel: src -> dst)" : "SELECTORS");
				header = true;
			}
			text_rule(b, v, e[i], kernel_view);
		}
	}
	if (!ne)
		mc_buf_puts(b, "\nNo mcpsec policies are installed.\n");
	if (!all)
		return;
	nforeign_p = v->nforeign_pols;
	nforeign_s = v->nforeign_sas;
	if (nforeign_p || nforeign_s) {
		mc_buf_printf(b, "\nForeign XFRM objects (not mcpsec's; never changed): %zu policies, %zu SAs\n",
			      nforeign_p, nforeign_s);
		for (size_t i = 0; i < k->npols; i++) {
			const struct mc_kpolicy *p = &k->pols[i];
			if (mc_prio_owned(p->x.priority))
				continue;
			mc_buf_printf(b, "  policy dir %s priority %u %s ", p->x.dir == 0 ? "in" : p->x.dir == 1 ? "out" : "fwd",
				      p->x.priority, p->x.action == MC_DISCARD ? "block" : "allow");
			mc_sel_str(&p->x.sel, p->x.dir, b);
			mc_buf_puts(b, "\n");
		}
		for (size_t i = 0; i < k->nsas; i++) {
			const struct mc_ksa *s = &k->sas[i];
			if (mc_reqid_owned(s->x.reqid))
				continue;
			mc_buf_printf(b, "  SA spi %u (0x%08x) %s %s -> %s reqid %u\n", s->x.spi, s->x.spi,
				      mc_ipsec_proto_str(s->x.proto), mc_addr_str(&s->x.saddr, a1, sizeof(a1)),
				      mc_addr_str(&s->x.daddr, a2, sizeof(a2)), s->x.reqid);
		}
	}
	mc_buf_puts(b, "\nXFRM counters (/proc/net/xfrm_stat, this namespace; zero ones omitted):\n");
	size_t shown = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].value) {
			mc_buf_printf(b, "  %-28s %llu\n", c->v[i].name, (unsigned long long)c->v[i].value);
			shown++;
		}
	if (!shown)
		mc_buf_puts(b, "  all zero\n");
	struct mc_buf dm = { 0 };
	mc_buf_puts(b, "\nDrop reports: ");
	if (ask_daemon("summary", &dm) == 0 && dm.len)
		mc_buf_puts(b, dm.s);
	else
		mc_buf_printf(b, "no mcpsecd watches this namespace (%s/mcpsecd.sock): start '%s' for drop records "
			      "and drift repair\n", g_opts.state_dir, mcpsecd_command());
	mc_buf_free(&dm);
	struct mc_state sg;
	int64_t since;
	if (mc_state_staged(g_opts.state_dir, &sg, &since) != 0)
		mc_buf_printf(b, "\nStaged: %s%s ('mcpsec status ipsec staged' shows what it would change)\n",
			      sg.staged_from ? sg.staged_from : "a list that cannot be read",
			      ask_daemon("totals", &dm) == 0 ? "" : "; no mcpsecd observes traffic for it");
	mc_state_free(&sg);
	mc_buf_free(&dm);
}

/* status ipsec staged: the staged list, and what mcpsecd saw it would change. */
static int status_staged(bool json)
{
	struct mc_state sg;
	struct mc_buf dm = { 0 }, b = { 0 };
	int64_t since = 0;
	int r = mc_state_staged(g_opts.state_dir, &sg, &since), rc = 0;
	char when[40] = "";
	time_t t = (time_t)since;
	struct tm tm;

	if (r < 0) {
		fprintf(stderr, "mcpsec: the staged list in %s cannot be read: %s; stage it again, or 'mcpsec stage "
			"--clear'\n", g_opts.state_dir, mc_state_damage(&sg, r));
		mc_state_free(&sg);
		return EXIT_LOCAL;
	}
	if (r > 0)
		strftime(when, sizeof(when), json ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
	bool daemon = r > 0 && ask_daemon(json ? "staged" : "staged-text", &dm) == 0 && dm.len &&
		      (!json || dm.s[0] == '{');
	while (dm.len && dm.s[dm.len - 1] == '\n')
		dm.s[--dm.len] = '\0';
	if (json) {
		mc_buf_puts(&b, "{\"staged\":");
		if (r > 0) {
			mc_buf_puts(&b, "{\"file\":");
			mc_buf_json_str(&b, sg.staged_from ? sg.staged_from : "");
			mc_buf_puts(&b, ",\"generation\":");
			mc_buf_json_str(&b, sg.gen);
			mc_buf_puts(&b, ",\"since\":");
			mc_buf_json_str(&b, when);
			mc_buf_puts(&b, "}");
		} else {
			mc_buf_puts(&b, "null");
		}
		mc_buf_printf(&b, ",\"daemon\":%s}\n", daemon ? dm.s : "null");
	} else if (r == 0) {
		mc_buf_puts(&b, "nothing is staged ('mcpsec stage SITE.yaml' stages a list)\n");
	} else {
		mc_buf_printf(&b, "Staged: %s (%s), since %s\n", sg.staged_from ? sg.staged_from : "?", sg.gen, when);
		if (daemon)
			mc_buf_printf(&b, "%s\n", dm.s);
		else
			mc_buf_printf(&b, "no mcpsecd watches this namespace (%s/mcpsecd.sock): no traffic is observed; start "
				      "'%s'\n", g_opts.state_dir, mcpsecd_command());
	}
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
	mc_buf_free(&dm);
	mc_state_free(&sg);
	return rc;
}

/* --prometheus: the kernel's part here, the daemon's from the daemon (or "up 0"). */
static void render_prometheus(struct mc_buf *b, const struct mc_state *st, const struct mc_kview *v,
			      const struct mc_stats *c)
{
	struct mc_metrics m = { .netns = g_opts.netns ? g_opts.netns : "" };
	struct mc_buf dm = { 0 };
	char why[512];

	bool enforced = !mc_state_get_enforcement(g_opts.state_dir, why, sizeof(why));
	mc_metrics_kernel(&m, v, c, st->committed && st->enabled, enforced);
	mc_metrics_render(&m, MC_METRICS_KERNEL, b);
	mc_metrics_free(&m);
	if (ask_daemon("metrics", &dm) == 0 && !strncmp(mc_buf_str(&dm), "# HELP ", 7)) {
		mc_buf_puts(b, dm.s);
	} else {
		mc_metrics_daemon(&m, NULL, false, false);
		mc_metrics_render(&m, MC_METRICS_DAEMON, b);
		mc_metrics_free(&m);
	}
	mc_buf_free(&dm);
}

/* The rules to show: all, or those named what (any case). Returns how many. */
static size_t select_rules(const struct mc_kview *v, const char *what, struct shown *sh)
{
	sh->all = !strcasecmp(what, "all");
	sh->r = mc_calloc(v->nrules + 1, sizeof(*sh->r));
	sh->n = 0;
	for (size_t i = 0; i < v->nrules; i++)
		if (sh->all || !strcasecmp(v->rules[i].name, what))
			sh->r[sh->n++] = &v->rules[i];
	return sh->n;
}

int status_main(int argc, char **argv)
{
	bool json = false, kernel_view = false, prometheus = false;
	const char *what = NULL, *sub = NULL;
	struct mc_state st = { 0 };
	struct mc_kstate k = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_kview v = { 0 };
	struct shown sh = { 0 };
	struct mc_stats c = { 0 };
	int rc, r;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--json"))
			json = true;
		else if (is_flag(argv[i], "--prometheus"))
			prometheus = true;
		else if (is_flag(argv[i], "--kernel-view"))
			kernel_view = true;
		else if (!sub)
			sub = argv[i];
		else if (!what)
			what = argv[i];
		else {
			fprintf(stderr, "mcpsec status: unexpected argument '%s'\n", argv[i]);
			return EXIT_CONFIG;
		}
	}
	/* MCP's command is NW TCPIP STATUS IPSEC ALL: any case; policy names too. */
	if (!sub || strcasecmp(sub, "ipsec") || !what) {
		fputs(command_usage("status"), stderr);
		return EXIT_CONFIG;
	}
	bool all = !strcasecmp(what, "all");
	if (!strcmp(what, "staged") && !prometheus && !kernel_view)
		return status_staged(json);
	if (prometheus && (json || !all)) {
		fprintf(stderr, "mcpsec status: --prometheus shows every policy, alone: 'mcpsec status ipsec all --prometheus'\n");
		return EXIT_CONFIG;
	}
	if ((rc = enter_netns()) || (rc = open_kernel(&nl)))
		goto out;
	int load_err = mc_state_load(g_opts.state_dir, &st);
	if (load_err < 0 && load_err != -EUCLEAN) /* damage is the output's first line */
		fprintf(stderr, "mcpsec: warning: cannot read %s: %s: policy names may be missing\n", g_opts.state_dir,
			mc_state_damage(&st, load_err));
	if ((r = mc_nl_dump(nl, &k)) < 0) {
		fprintf(stderr, "mcpsec: reading the kernel's XFRM state: %s\n", strerror(-r));
		rc = EXIT_KERNEL;
		goto out;
	}
	/* The safety lines, for people and JSON: --prometheus has metrics of its own. */
	struct kernel_check kc;
	struct safety sf;
	if (!prometheus && st.committed)
		check_kernel(nl, &k, &kc);
	safety_gather(&st, load_err, !prometheus && st.committed ? &kc : NULL, &sf);
	/* One view of the kernel, named, for text, JSON and Prometheus alike. */
	mc_kview_build(&k, &st.names, &v);
	if (!select_rules(&v, what, &sh) && !all) {
		fprintf(stderr, "mcpsec: no policy named '%s' is installed%s\n", what,
			st.committed && !st.enabled ? " (IPsec is disabled)" : "");
		rc = EXIT_CONFIG;
		goto out;
	}
	mc_proc_xfrm_stat(&c);
	struct mc_buf b = { 0 };
	if (prometheus)
		render_prometheus(&b, &st, &v, &c);
	else if (json)
		render_json(&b, &st, &sf, &v, &sh, &c);
	else
		render_text(&b, &st, &sf, &v, &sh, &c, kernel_view);
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
out:
	free(sh.r);
	mc_kview_free(&v);
	mc_stats_free(&c);
	mc_kstate_free(&k);
	mc_state_free(&st);
	mc_nl_close(nl);
	return rc;
}
