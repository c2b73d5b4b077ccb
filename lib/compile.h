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

/*
 * Reqids: every PROTECT policy has its own, carried by its template and its SAs. An inbound
 * template names SPI 0 (any) and the policy's reqid, so it accepts exactly that policy's SAs: the
 * current one and, during a key rollover, the next one (xfrm_state_ok() compares the template's
 * SPI, 0 = any, and reqid). Another policy's SA between the same hosts has another reqid and is
 * refused; so is plaintext (the template is not optional). An outbound template pins the SPI it
 * sends with (xfrm_state_find() compares reqid and SPI): switching is one policy update.
 *
 *   reqid = MC_REQID_BASE + n, n = 1..0xffff                band 0x6d630000 .. 0x6d63ffff ("mc")
 *
 *   | n                              | policy                                              |
 *   |--------------------------------|-----------------------------------------------------|
 *   | the committed plan's           | a policy that keeps its name and direction: its SAs |
 *   |                                | are never replaced for a new reqid                  |
 *   | lowest free, in file order     | a new policy (or one whose reqid another kept)      |
 *   | 0x7300 (MC_REQID_LEGACY)       | never assigned: mcpsec before per-policy reqids     |
 *   |                                | gave every SA this one; such SAs are owned, and     |
 *   |                                | replaced by the first apply                         |
 *
 * mcpsec owns the SAs whose reqid lies in the band, and only those.
 */
#define MC_REQID_BASE 0x6d630000u
#define MC_REQID_LEGACY 0x6d637300u
#define MC_REQID_COUNT 0x10000u

static inline bool mc_reqid_owned(uint32_t reqid)
{
	return (reqid & 0xffff0000u) == MC_REQID_BASE && reqid != MC_REQID_BASE;
}

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
	/* Reqid a PROTECT policy had in the committed plan (0: none), to keep its SAs. */
	uint32_t (*prev_reqid)(void *ctx, const char *name, enum mc_dir dir);
	void *prev_ctx;
	/* The namespace's ephemeral port range (mc_ports_take_zero); 0, 0: Linux's default. */
	unsigned eph_lo, eph_hi;
	const struct mc_addr *own4; /* the host's IPv4 addresses: IPv4 to them goes through lo */
	size_t nown4;
	/* Whether the kernel applies IPsec to IPv4 through lo after all: net.ipv4.conf.{all,lo}.
	 * disable_xfrm (out) and disable_policy (in) both 0. false, Linux's default, when unknown. */
	bool lo4_xfrm_out, lo4_policy_in;
};

/*
 * Assigns user priorities: keeps the previous ones that still come in increasing order (the
 * longest such run), places the others evenly in the gaps, and renumbers everything only when
 * a gap is too small. prev[i] is 0 when policy i is new. Pure; exposed for tests.
 */
void mc_assign_priorities(const uint32_t *prev, size_t n, uint32_t *ret);

/* The name of a rule mcpsec adds itself (built-in bypass or default) from its reserved
 * priority, or NULL for a user's priority. */
const char *mc_reserved_rule_name(uint32_t priority, enum mc_dir dir, int family);
/* Whether name is the built-in own-address bypass (either direction). */
bool mc_rule_is_own_addr(const char *name);
/* "UNKNOWN-PRIORITY-N": a kernel policy in mcpsec's range that no state names. Returns buf. */
char *mc_unknown_rule_name(uint32_t priority, char *buf, size_t len);

/* Sets the plan's IPv4-through-lo facts (struct mc_plan lo4) from host, or Linux's defaults
 * when host is NULL. mc_compile calls it; so does a plan read back from the kernel. */
void mc_plan_set_lo4(struct mc_plan *plan, const struct mc_host *host);

/* Compiles a validated site. Warnings (expansion, shadowed selectors) go to ds. The plan is
 * the caller's (mc_plan_free). Returns 0 or -EINVAL (ds says why). */
int mc_compile(const struct mc_site *s, const struct mc_host *host, struct mc_diags *ds,
	       struct mc_plan *ret);

#endif
