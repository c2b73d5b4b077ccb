/* SPDX-License-Identifier: MIT */
/* What drops.bpf.c and mcpsecd share: the per-flow drop table's key and value (one definition,
 * included by both sides). */
#ifndef MCPSEC_BPF_DROPS_H
#define MCPSEC_BPF_DROPS_H

#include "../../../lib/wire.h" /* enum mc_drop_kind, shared with user space */

/* One flow, as the kernel matches it: addresses of `family` (IPv4 in the first 4 bytes),
 * ports in host order (ICMP type and code in sport and dport). */
struct mc_drop_key {
	__u8 kind;
	__u8 family; /* AF_INET 2, AF_INET6 10 */
	__u8 proto;
	__u8 inner; /* 1: seen inside IPsec (its clear-text side), else 0 */
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

/* The staging observer (mcpsec stage): every packet of the namespace at its devices, as a flow
 * by direction (key.kind: MC_SEEN_IN, MC_SEEN_OUT) with packets (segments of a GSO packet
 * each), bytes and times. */
struct mc_seen_val {
	__u64 packets, bytes;
	__u64 first_ns, last_ns;
};

/* Flows kept at once, as MC_DROP_FLOWS; the totals (by direction) count every packet. */
#define MC_SEEN_FLOWS 16384

#endif
