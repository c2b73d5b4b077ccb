/* SPDX-License-Identifier: MIT */
/* model → plan: kernel policies in first-match order, built-ins, default discard, SAs. */
#ifndef MCPSEC_COMPILE_H
#define MCPSEC_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model.h"

struct mc_diags;
struct mc_plan;

/*
 * Priorities (lower value wins in the kernel; every rule gets a distinct one per direction,
 * so the kernel's tie-breaking, which changed in 6.12, never decides anything):
 *
 *   priority = MC_PRIO_BASE + slot                    band 0x20000000 .. 0x2fffffff
 *
 *   | slot                         | rule                                               |
 *   |------------------------------|----------------------------------------------------|
 *   | 0x10 * k, k = 0..15          | built-in bypass k (loopback, own addresses, ND, MLD)|
 *   | 0x1000 + 0x100 * (i + 1)     | user policy i (0-based, file order), fresh plan     |
 *   | between two kept neighbours  | a policy inserted later (evenly spaced in the gap)  |
 *   | 0x0fffff00                   | DEFAULT-DISCARD-* (per family and direction)        |
 *   | 0x0fffff10                   | DEFAULT-BYPASS-IN4/OUT4: unmatched IPv4 passes      |
 *   |                              | (ipv6-only, bypass), said explicitly so that the    |
 *   |                              | kernel's default can block (a flush then closes)    |
 *
 * Fragments of one rule (address prefixes × port blocks) share its priority; they never
 * overlap, so no tie can arise between them. The band sits far below strongSwan's
 * (≤ 600 000 + specificity) and Libreswan's (< 2^22) priorities: those daemons' policies keep
 * precedence and mcpsec never reads or deletes a policy outside its band.
 * A stride of 0x100 leaves room for 255 inserts between two neighbours before a renumber.
 */
#define MC_PRIO_BASE 0x20000000u
#define MC_PRIO_LAST 0x2fffffffu
#define MC_PRIO_BUILTIN_STEP 0x10u
#define MC_PRIO_USER_LO (MC_PRIO_BASE + 0x1000u)
#define MC_PRIO_USER_HI (MC_PRIO_BASE + 0x0ffff000u)
#define MC_PRIO_STRIDE 0x100u
#define MC_PRIO_DEFAULT (MC_PRIO_BASE + 0x0fffff00u)
#define MC_PRIO_DEFAULT_BYPASS (MC_PRIO_BASE + 0x0fffff10u)

/* Every mcpsec SA and template carries this reqid: it marks the SA as mcpsec's. Templates also
 * pin the SPI, so one reqid for all SAs never makes the kernel pick the wrong SA. */
#define MC_REQID 0x6d637300u /* "mcs\0" */

#define MC_EXPANSION_WARN 256

static inline bool mc_prio_owned(uint32_t prio)
{
	return prio >= MC_PRIO_BASE && prio <= MC_PRIO_LAST;
}

/* What the compiler needs to know about the host (impure facts, gathered by cmd/). */
struct mc_host {
	/* Source address the kernel would use to reach remote; NULL when there is no kernel to
	 * ask (check, test): SAs with local 'any' are then marked unresolved. */
	int (*route_src)(void *ctx, const struct mc_addr *remote, struct mc_addr *ret);
	void *ctx;
	const struct mc_addr *own6; /* the host's IPv6 addresses (own-address bypass) */
	size_t nown6;
	/* Priority a user policy had in the committed plan (0: none), to keep it stable. */
	uint32_t (*prev_priority)(void *ctx, const char *name, enum mc_dir dir);
	void *prev_ctx;
};

/*
 * Assigns user priorities: keeps the previous ones that still come in increasing order (the
 * longest such run), places the others evenly in the gaps, and renumbers everything only when
 * a gap is too small. prev[i] is 0 when policy i is new. Pure; exposed for tests.
 */
void mc_assign_priorities(const uint32_t *prev, size_t n, uint32_t *ret);

/* Compiles a validated site. Warnings (expansion, shadowed selectors) go to ds. The plan is
 * the caller's (mc_plan_free). Returns 0 or -EINVAL (ds says why). */
int mc_compile(const struct mc_site *s, const struct mc_host *host, struct mc_diags *ds,
	       struct mc_plan *ret);

#endif
