/* SPDX-License-Identifier: MIT */
/*
 * Metrics in the Prometheus text exposition format (version 0.0.4), pure: kernel objects,
 * counters and the daemon's totals in, text out. `mcpsec status ipsec all --prometheus` and
 * `mcpsecd --metrics-file` both render through here, so the two never differ.
 *
 * Labels are namespace, policy, direction, spi, protocol, action, reason and counter: never a
 * key, a fingerprint or an address. Every family is written with its HELP and TYPE lines even
 * without samples, in one fixed order; samples with the same labels are merged (summed, or the
 * latest time), so that every series appears once.
 */
#ifndef MCPSEC_METRICS_H
#define MCPSEC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_buf;
struct mc_kview;
struct mc_stats;
struct mc_monitor;

struct mc_metric_sample;

struct mc_metrics {
	const char *netns; /* the namespace label: the --netns name, "" for the current one */
	struct mc_metric_sample *s;
	size_t n, cap;
};

/* The kernel's part: mcpsec's rules and SAs as the kernel view names them (kview.h), the
 * xfrm_stat counters, and whether the committed configuration is enabled and enforced (the
 * state directory's word). */
void mc_metrics_kernel(struct mc_metrics *m, const struct mc_kview *v, const struct mc_stats *xfrm_stat, bool enabled,
		       bool enforced);

/* The daemon's: up (mon NULL: no daemon, up 0), drops by policy and reason, records written
 * and suppressed, overruns, drifts, repairs, events, enforced, repairing. */
void mc_metrics_daemon(struct mc_metrics *m, const struct mc_monitor *mon, bool enforced, bool repairing);

enum mc_metrics_part { MC_METRICS_KERNEL = 1, MC_METRICS_DAEMON = 2, MC_METRICS_ALL = 3 };

/* The families of part (each with HELP and TYPE) and their samples, appended to out. */
void mc_metrics_render(struct mc_metrics *m, enum mc_metrics_part part, struct mc_buf *out);
void mc_metrics_free(struct mc_metrics *m);

#endif
