/* SPDX-License-Identifier: MIT */
/*
 * The per-flow drop hook (lib/bpf/drops.bpf.c) from user space: load, attach, drain. The only
 * libbpf user. Never prints: libbpf's messages are kept for the reason a hook is missing.
 */
#ifndef MCPSEC_DROPMON_H
#define MCPSEC_DROPMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

/* How the kernel refused a packet (the values of lib/bpf/drops.h's enum mc_drop_kind). */
enum mc_drop_hook { MC_HOOK_IN_POLICY = 1, MC_HOOK_IN_NOSOCK = 2, MC_HOOK_OUT_EPERM = 3 };

/* Packets of one flow refused since the previous drain. flow is exact: addresses as
 * one-address prefixes, ports (or ICMP type and code) with full masks. */
struct mc_drop_flow {
	enum mc_drop_hook hook;
	struct mc_sel flow;
	uint64_t count;
};

struct mc_drop_flows {
	struct mc_drop_flow *f;
	size_t n, cap;
	uint64_t totals[4]; /* packets since the previous drain, by hook (index: enum mc_drop_hook) */
};

void mc_drop_flows_free(struct mc_drop_flows *f);

struct mc_dropmon;

/*
 * Loads the hooks for the network namespace whose /proc/self/ns/net inode is netns_ino (the
 * caller is inside it). The inbound hook is required: 0 when it is attached, else -errno and
 * why says what failed. The outbound hook is tried when outbound is set; whether it works is
 * mc_dropmon_outbound()'s answer (where the kernel refuses BPF trampolines it never does).
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
/* The flows and totals since the previous drain (the first drain: since open). 0 or -errno. */
int mc_dropmon_drain(struct mc_dropmon *m, struct mc_drop_flows *out);
void mc_dropmon_close(struct mc_dropmon *m);

#endif
