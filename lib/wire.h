/* SPDX-License-Identifier: MIT */
/*
 * Facts that both the BPF program (cmd/mcpsecd/bpf/drops.bpf.c) and user space need, in plain C
 * with no includes, so that both compile the same definitions: how the kernel refused a packet,
 * and which IP protocols carry ports or ICMP type and code.
 */
#ifndef MCPSEC_WIRE_H
#define MCPSEC_WIRE_H

/* How the kernel refused a packet, as the per-flow hook saw it. */
enum mc_drop_kind {
	MC_DROP_IN_POLICY = 1, /* freed with reason XFRM_POLICY: the inbound policy check said no */
	MC_DROP_IN_NOSOCK = 2, /* freed with reason NO_SOCKET: a closed port, or blocked on the way
				* to it (the kernel checks the policy before it answers); the plan tells */
	MC_DROP_OUT_EPERM = 3, /* the outbound lookup returned -EPERM: a block policy */
	MC_DROP_KINDS = 4,
};

/* The direction of a packet the staging observer saw (its key's kind). */
enum mc_seen_dir { MC_SEEN_IN = 0, MC_SEEN_OUT = 1, MC_SEEN_DIRS = 2 };

/* IP protocols whose first four transport bytes are the source and destination ports: TCP,
 * UDP, DCCP, SCTP and UDP-Lite. The kernel's selectors match ports of exactly these. */
#define MC_WIRE_HAS_PORTS(p) ((p) == 6 || (p) == 17 || (p) == 33 || (p) == 132 || (p) == 136)
/* The same protocols as a list, for nftables rules (a unit test holds the two together). */
#define MC_WIRE_PORT_PROTOS "6, 17, 33, 132, 136"
/* ICMP and ICMPv6: type and code where the ports would be. */
#define MC_WIRE_ICMP 1
#define MC_WIRE_ICMPV6 58
#define MC_WIRE_IS_ICMP(p) ((p) == MC_WIRE_ICMP || (p) == MC_WIRE_ICMPV6)
/* ESP (50) and AH (51), as the packet names them (lib/model.h's MC_PROTO_ESP/AH in user space). */
#define MC_WIRE_IS_IPSEC(p) ((p) == 50 || (p) == 51)

#endif
