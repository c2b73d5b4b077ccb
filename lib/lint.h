/* SPDX-License-Identifier: MIT */
/* `mcpsec check` warnings beyond validation: what the ordered list does that is likely wrong. */
#ifndef MCPSEC_LINT_H
#define MCPSEC_LINT_H

struct mc_site;
struct mc_plan;
struct mc_diags;

/*
 * Adds warnings, each with a code (see the man page), naming the policies involved:
 *
 *   shadowed         a policy that can never be the first match, and the earlier ones that
 *                    take all of its traffic
 *   nd-discarded     ICMPv6 Neighbor Discovery (133-137) first matched by DISCARD or PROTECT
 *   icmp4-discarded  IPv4 ICMP first matched by DISCARD or PROTECT (MCP best practice)
 *   pmtu-discarded   Packet Too Big (ICMPv6 2) or Fragmentation Needed (ICMP 3/4) discarded
 *   no-counterpart   a PROTECT whose returning traffic is not protected the other way
 *   tls-port         a PROTECT that is the first match for a port usually protected by TLS
 *   lint-incomplete  an analysis stopped at its size limit (others may be missing)
 *
 * plan is s compiled without host facts (no own-address bypass). Pure.
 */
void mc_lint(const struct mc_site *s, const struct mc_plan *plan, struct mc_diags *ds);

#endif
