/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition of mcpsec's kernel objects and mcpsecd's totals (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "kobj.h"
#include "kview.h"
#include "monitor.h"
#include "util.h"

/* The families, in the order they are written. `latest`: samples with the same labels keep
 * the largest value (a time) instead of being summed. */
enum family {
	F_ENABLED, F_ENFORCED, F_POL_KPOL, F_POL_LAST_USE, F_SA_BYTES, F_SA_PACKETS, F_SA_ICV, F_SA_REPLAY,
	F_XFRM_STAT,
	F_D_UP, F_D_START, F_D_ENFORCED, F_D_REPAIRING, F_POL_DROPS, F_DROPS, F_D_RECORDS, F_D_SUPPRESSED,
	F_D_OVERRUNS, F_D_DRIFTS, F_D_REPAIRS, F_D_EVENTS,
	F_N
};

static const struct {
	const char *name, *type, *help;
	enum mc_metrics_part part;
	bool latest;
} families[F_N] = {
	[F_ENABLED] = { "mcpsec_enabled", "gauge", "1 when a configuration is committed and enabled (mcpsec enable), else 0.", MC_METRICS_KERNEL, false },
	[F_ENFORCED] = { "mcpsec_enforced", "gauge", "0 while the committed configuration is NOT ENFORCED in full (failing closed), else 1.", MC_METRICS_KERNEL, false },
	[F_POL_KPOL] = { "mcpsec_policy_kernel_policies", "gauge", "Kernel XFRM policies installed for the mcpsec policy.", MC_METRICS_KERNEL, false },
	[F_POL_LAST_USE] = { "mcpsec_policy_last_use_timestamp_seconds", "gauge", "When a packet last matched one of the policy's kernel policies (0: never).", MC_METRICS_KERNEL, true },
	[F_SA_BYTES] = { "mcpsec_sa_bytes_total", "counter", "Bytes the SA protected (sent or received).", MC_METRICS_KERNEL, false },
	[F_SA_PACKETS] = { "mcpsec_sa_packets_total", "counter", "Packets the SA protected (sent or received).", MC_METRICS_KERNEL, false },
	[F_SA_ICV] = { "mcpsec_sa_integrity_failures_total", "counter", "Packets dropped for a failed integrity check on the SA.", MC_METRICS_KERNEL, false },
	[F_SA_REPLAY] = { "mcpsec_sa_replay_failures_total", "counter", "Packets dropped as replayed (or outside the replay window) on the SA.", MC_METRICS_KERNEL, false },
	[F_XFRM_STAT] = { "mcpsec_xfrm_stat_total", "counter", "The namespace's /proc/net/xfrm_stat counters, by name.", MC_METRICS_KERNEL, false },
	[F_D_UP] = { "mcpsec_daemon_up", "gauge", "1 when mcpsecd watches the namespace.", MC_METRICS_DAEMON, false },
	[F_D_START] = { "mcpsec_daemon_start_time_seconds", "gauge", "When mcpsecd started (the totals below count from then).", MC_METRICS_DAEMON, true },
	[F_D_ENFORCED] = { "mcpsec_daemon_enforced", "gauge", "1 when mcpsecd enforces the committed configuration in full, 0 while NOT ENFORCED.", MC_METRICS_DAEMON, false },
	[F_D_REPAIRING] = { "mcpsec_daemon_repairing", "gauge", "1 when mcpsecd restores drift, 0 with --report-only.", MC_METRICS_DAEMON, false },
	[F_POL_DROPS] = { "mcpsec_policy_drops_total", "counter", "Dropped packets mcpsecd attributed to the policy that decided them, by reason.", MC_METRICS_DAEMON, false },
	[F_DROPS] = { "mcpsec_drops_total", "counter", "Dropped packets mcpsecd reported, attributed to a policy or not, by reason.", MC_METRICS_DAEMON, false },
	[F_D_RECORDS] = { "mcpsec_daemon_records_written_total", "counter", "Records mcpsecd wrote to its log (the rate limit let them out).", MC_METRICS_DAEMON, false },
	[F_D_SUPPRESSED] = { "mcpsec_daemon_records_suppressed_total", "counter", "Records the rate limit held back (their totals still count).", MC_METRICS_DAEMON, false },
	[F_D_OVERRUNS] = { "mcpsec_daemon_overruns_total", "counter", "Times the kernel dropped XFRM events (receive buffer full).", MC_METRICS_DAEMON, false },
	[F_D_DRIFTS] = { "mcpsec_daemon_drifts_total", "counter", "Times the kernel was found to differ from the committed configuration.", MC_METRICS_DAEMON, false },
	[F_D_REPAIRS] = { "mcpsec_daemon_repairs_total", "counter", "Times mcpsecd restored the committed configuration.", MC_METRICS_DAEMON, false },
	[F_D_EVENTS] = { "mcpsec_daemon_events_total", "counter", "XFRM netlink events mcpsecd read.", MC_METRICS_DAEMON, false },
};

struct mc_metric_sample {
	enum family f;
	char *labels; /* namespace="..",policy="..": escaped, ready to print */
	uint64_t v;
};

/* A label value in the exposition format: backslash, double quote and newline escaped. */
static void label(struct mc_buf *b, const char *key, const char *value)
{
	mc_buf_printf(b, "%s%s=\"", b->len ? "," : "", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			mc_buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			mc_buf_puts(b, "\\n");
		else
			mc_buf_printf(b, "%c", *p);
	}
	mc_buf_puts(b, "\"");
}

/* One sample: the namespace label, then (key, value) pairs up to a NULL key. */
static void add(struct mc_metrics *m, enum family f, uint64_t v, ...)
{
	struct mc_buf b = { 0 };
	va_list ap;
	const char *k;

	label(&b, "namespace", m->netns ? m->netns : "");
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)))
		label(&b, k, va_arg(ap, const char *));
	va_end(ap);
	struct mc_metric_sample *s = MC_PUSH(&m->s, &m->n, &m->cap);
	s->f = f;
	s->labels = mc_strdup(mc_buf_str(&b));
	s->v = v;
	mc_buf_free(&b);
}

void mc_metrics_kernel(struct mc_metrics *m, const struct mc_kview *v, const struct mc_stats *xfrm_stat, bool enabled,
		       bool enforced)
{
	char spi[16];

	add(m, F_ENABLED, enabled, NULL);
	add(m, F_ENFORCED, enforced, NULL);
	/* Foreign policies and SAs are not mcpsec's to report. */
	for (size_t i = 0; i < v->nrules; i++) {
		const struct mc_kview_rule *r = &v->rules[i];
		const char *dir = mc_dir_str(r->dir);
		add(m, F_POL_KPOL, r->npols, "policy", r->name, "direction", dir, "action", mc_action_str(r->action), NULL);
		add(m, F_POL_LAST_USE, r->last_use, "policy", r->name, "direction", dir, NULL);
	}
	for (size_t i = 0; i < v->k->nsas; i++) {
		const struct mc_ksa *sa = &v->k->sas[i];
		if (!mc_reqid_owned(sa->x.reqid))
			continue;
		const struct mc_kview_sa *o = &v->sas[i];
		const char *name = o->name ? o->name : "", *dir = o->name ? mc_dir_str(o->dir) : "";
		snprintf(spi, sizeof(spi), "0x%08x", sa->x.spi);
		const char *proto = mc_ipsec_proto_str(sa->x.proto);
		add(m, F_SA_BYTES, sa->bytes, "policy", name, "direction", dir, "spi", spi, "protocol", proto, NULL);
		add(m, F_SA_PACKETS, sa->packets, "policy", name, "direction", dir, "spi", spi, "protocol", proto, NULL);
		add(m, F_SA_ICV, sa->integrity_fail, "policy", name, "direction", dir, "spi", spi, "protocol", proto, NULL);
		add(m, F_SA_REPLAY, sa->replay_fail, "policy", name, "direction", dir, "spi", spi, "protocol", proto, NULL);
	}
	for (size_t i = 0; xfrm_stat && i < xfrm_stat->n; i++)
		add(m, F_XFRM_STAT, xfrm_stat->v[i].value, "counter", xfrm_stat->v[i].name, NULL);
}

void mc_metrics_daemon(struct mc_metrics *m, const struct mc_monitor *mon, bool enforced, bool repairing)
{
	add(m, F_D_UP, mon != NULL, NULL);
	if (!mon)
		return;
	add(m, F_D_START, (uint64_t)mon->started, NULL);
	add(m, F_D_ENFORCED, enforced, NULL);
	add(m, F_D_REPAIRING, repairing, NULL);
	for (size_t i = 0; i < mon->npoldrop; i++)
		add(m, F_POL_DROPS, mon->by_policy_reason[i].count, "policy", mon->by_policy_reason[i].policy,
		    "direction", mon->by_policy_reason[i].dir, "reason", mon->by_policy_reason[i].reason, NULL);
	for (size_t i = 0; i < mon->nreason; i++)
		add(m, F_DROPS, mon->by_reason[i].count, "reason", mon->by_reason[i].key, NULL);
	add(m, F_D_RECORDS, mon->written, NULL);
	add(m, F_D_SUPPRESSED, mon->suppressed, NULL);
	add(m, F_D_OVERRUNS, mon->overruns, NULL);
	add(m, F_D_DRIFTS, mon->drifts, NULL);
	add(m, F_D_REPAIRS, mon->repairs, NULL);
	add(m, F_D_EVENTS, mon->events, NULL);
}

static int cmp_sample(const void *a, const void *b)
{
	const struct mc_metric_sample *x = a, *y = b;
	if (x->f != y->f)
		return x->f < y->f ? -1 : 1;
	return strcmp(x->labels, y->labels);
}

void mc_metrics_render(struct mc_metrics *m, enum mc_metrics_part part, struct mc_buf *out)
{
	if (m->n > 1)
		qsort(m->s, m->n, sizeof(*m->s), cmp_sample);
	size_t i = 0;
	for (int f = 0; f < F_N; f++) {
		bool shown = families[f].part & part;
		if (shown)
			mc_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
				      families[f].name, families[f].type);
		while (i < m->n && (int)m->s[i].f == f) {
			/* One series per label set: a rule's kernel policies (IPv4 and IPv6, port
			 * fragments) are one policy. */
			uint64_t v = m->s[i].v;
			size_t j = i + 1;
			for (; j < m->n && m->s[j].f == m->s[i].f && !strcmp(m->s[j].labels, m->s[i].labels); j++)
				v = families[f].latest ? (m->s[j].v > v ? m->s[j].v : v) : v + m->s[j].v;
			if (shown)
				mc_buf_printf(out, "%s{%s} %llu\n", families[f].name, m->s[i].labels, (unsigned long long)v);
			i = j;
		}
	}
}

void mc_metrics_free(struct mc_metrics *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->s[i].labels);
	free(m->s);
	m->s = NULL;
	m->n = m->cap = 0;
}
