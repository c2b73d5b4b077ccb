/* SPDX-License-Identifier: MIT */
/*
 * The per-flow drop hook (bpf/drops.bpf.c) from user space: load, attach, drain. The only
 * libbpf user, and mcpsecd's alone. Never prints: libbpf's messages are kept for the reason a hook is missing.
 */
#ifndef MCPSEC_DROPMON_H
#define MCPSEC_DROPMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/drops.h"

struct mc_dropmon;

/*
 * Loads the hooks for the network namespace whose /proc/self/ns/net inode is netns_ino (the
 * caller is inside it). The inbound hook is required: 0 when it is attached, else -errno and
 * why says what failed. The outbound hook is tried when outbound is set, and with it the inner
 * observer's fentry programs (all trampolines, loaded together or not at all); whether it works
 * is mc_dropmon_outbound()'s answer (where the kernel refuses BPF trampolines it never does).
 */
int mc_dropmon_open(uint32_t netns_ino, bool outbound, struct mc_dropmon **ret, char *why, size_t len);
/* True when the outbound hook loaded and attached at open; else why (valid until close) says
 * why not. */
bool mc_dropmon_outbound(const struct mc_dropmon *m, const char **why);
/*
 * The outbound hook runs on every outbound route lookup (a trampoline call per unconnected
 * datagram), so mcpsecd detaches it while no outbound packet is blocked and attaches it again
 * when XfrmOutPolBlock moves. 0 or -errno; a no-op where it never loaded.
 */
int mc_dropmon_outbound_attach(struct mc_dropmon *m, bool on);
bool mc_dropmon_outbound_attached(const struct mc_dropmon *m);
/*
 * The staging observer's view inside IPsec, where trampolines load (with the outbound hook):
 * fentry on xfrm_output (before encryption) and xfrm4/xfrm6_transport_finish (after
 * decryption), functions only protected traffic reaches. Its flows come with the devices'
 * (mc_dropmon_drain_seen), marked inner. 0, or -errno with why (-EOPNOTSUPP: not loaded).
 */
int mc_dropmon_inner(struct mc_dropmon *m, bool on, char *why, size_t len);
/* Whether those programs loaded (mc_dropmon_inner can attach them); else false, with why. */
bool mc_dropmon_inner_loaded(const struct mc_dropmon *m, char *why, size_t len);
/* The flows and totals since the previous drain (the first drain: since open). 0 or -errno. */
int mc_dropmon_drain(struct mc_dropmon *m, struct mc_drop_flows *out);
/*
 * The staging observer (mcpsec stage): every packet of the namespace at its devices, by flow.
 * Attached only while a list is staged: a program at the clsact hooks of each interface (new
 * ones are added at each drain), or where tc cannot be used (or MCPSECD_OBSERVER=tracepoints
 * says so) at two tracepoints, which cost every packet of the host a call. 0 or -errno (why
 * says what failed).
 */
int mc_dropmon_observe(struct mc_dropmon *m, bool on, char *why, size_t len);
bool mc_dropmon_observing(const struct mc_dropmon *m);
/* Which observer runs, for people ("none" when none). */
const char *mc_dropmon_observer(const struct mc_dropmon *m);
/* The flows seen, and the totals, since the previous drain. 0 or -errno. */
int mc_dropmon_drain_seen(struct mc_dropmon *m, struct mc_seen_flows *out);
/* An interface the staging observer could not attach to at a drain (it is tried again at
 * each), the first time only: true with why filled, once per report. */
bool mc_dropmon_unwatched(struct mc_dropmon *m, char *why, size_t len);
/*
 * A killed mcpsecd's staging observer: clsact filters stay (tcx links go with their holder),
 * running and counting for no one. Removes those at mcpsecd's handle and priority that run
 * its programs, when this mcpsecd does not observe (one mcpsecd per namespace: another's
 * would be removed too). The number of interfaces, their names in names.
 */
size_t mc_dropmon_sweep(struct mc_dropmon *m, char *names, size_t len);
void mc_dropmon_close(struct mc_dropmon *m);

#endif
