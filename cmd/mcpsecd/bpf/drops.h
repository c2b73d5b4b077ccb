/* SPDX-License-Identifier: MIT */
/* What drops.bpf.c and mcpsecd share: the per-flow drop table's key and value (one definition,
 * included by both sides). */
#ifndef MCPSEC_BPF_DROPS_H
#define MCPSEC_BPF_DROPS_H

/* How the kernel refused the packet, as the hook saw it. */
enum mc_drop_kind {
	MC_DROP_IN_POLICY = 1, /* freed with reason XFRM_POLICY: the inbound policy check said no */
	MC_DROP_IN_NOSOCK = 2, /* freed with reason NO_SOCKET: a closed port, or blocked on the way
				* to it (the kernel checks the policy before it answers); the plan tells */
	MC_DROP_OUT_EPERM = 3, /* the outbound lookup returned -EPERM: a block policy */
	MC_DROP_KINDS = 4,
};

/* One flow, as the kernel matches it: addresses of `family` (IPv4 in the first 4 bytes),
 * ports in host order (ICMP type and code in sport and dport). */
struct mc_drop_key {
	__u8 kind;
	__u8 family; /* AF_INET 2, AF_INET6 10 */
	__u8 proto;
	__u8 pad;
	__u16 sport, dport;
	__u8 saddr[16], daddr[16];
};

struct mc_drop_val {
	__u64 count;
	__u64 last_ns;
};

/* Flows kept at once; the least recently dropped is evicted first. A flood of distinct flows
 * can evict some before the once-a-second drain: the totals still count every packet. */
#define MC_DROP_FLOWS 8192

#endif
