// SPDX-License-Identifier: GPL-2.0
/*
 * mcpsecd's view of XFRM policy drops: every packet the kernel's IPsec policy refused, as a
 * flow with a count, aggregated in the kernel (an LRU hash of fixed size) and drained by
 * mcpsecd once a second. Only the daemon's own network namespace counts (netns_ino).
 *
 * Inbound: tp_btf/kfree_skb with reason XFRM_POLICY, and NO_SOCKET (a packet blocked on its way
 * to a closed port is freed with that reason: the kernel checks the policy before it would
 * answer; mcpsecd tells the two apart with its plan). Outbound: fexit on xfrm_lookup_with_ifid
 * returning -EPERM, where the kernel allows trampolines (the sender gets EPERM; no skb exists).
 * The licence is GPL because tracing programs may only call GPL helpers.
 */
#include "kernel-types.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "drops.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define EPERM 1

char LICENSE[] SEC("license") = "GPL";

/* Set by mcpsecd before loading: the inode of its network namespace. */
const volatile __u32 netns_ino = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MC_DROP_FLOWS);
	__type(key, struct mc_drop_key);
	__type(value, struct mc_drop_val);
} flows SEC(".maps");

/* Every packet counted, by kind, whatever the flow table kept: the totals to compare with
 * /proc/net/xfrm_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MC_DROP_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

static __always_inline void count(struct mc_drop_key *k)
{
	__u32 kind = k->kind;
	__u64 *t = bpf_map_lookup_elem(&totals, &kind);
	struct mc_drop_val *v, init = { 1, bpf_ktime_get_ns() };

	if (t)
		__sync_fetch_and_add(t, 1);
	v = bpf_map_lookup_elem(&flows, k);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		v->last_ns = init.last_ns;
		return;
	}
	/* Another CPU may insert the same flow meanwhile: then add to its entry. */
	if (bpf_map_update_elem(&flows, k, &init, BPF_NOEXIST) != 0) {
		v = bpf_map_lookup_elem(&flows, k);
		if (v)
			__sync_fetch_and_add(&v->count, 1);
	}
}

static __always_inline __u16 be16(__u16 v)
{
	return (__u16)((v >> 8) | (v << 8));
}

/*
 * A packet as a parser reads it, by offset from its network header: through a kernel pointer to
 * that header (the tracing programs), or through the skb (the tc programs, which see no kernel
 * pointer). Each program builds one with the other member zero, so once inlined only its own
 * read remains. A read fails (non-zero) past the end of the skb; a kernel read does not know
 * where the packet ends.
 */
struct pkt {
	const unsigned char *nh;
	struct __sk_buff *skb;
};

static __always_inline long pkt_read(const struct pkt *p, __u32 off, void *buf, __u32 len)
{
	if (p->skb)
		return bpf_skb_load_bytes_relative(p->skb, off, buf, len, BPF_HDR_START_NET);
	return bpf_probe_read_kernel(buf, len, p->nh + off);
}

/* Ports (or ICMP type and code, or the SPI) of the transport header at offset off. */
static __always_inline void transport(struct mc_drop_key *k, const struct pkt *p, __u32 off)
{
	__u16 ports[2] = { 0, 0 };

	if (MC_WIRE_HAS_PORTS(k->proto)) {
		pkt_read(p, off, ports, sizeof(ports));
		k->sport = be16(ports[0]);
		k->dport = be16(ports[1]);
	} else if (MC_WIRE_IS_ICMP(k->proto)) {
		__u8 tc[2] = { 0, 0 };
		pkt_read(p, off, tc, sizeof(tc));
		k->sport = tc[0];
		k->dport = tc[1];
	} else if (MC_WIRE_IS_IPSEC(k->proto)) {
		/* ESP and AH: the SPI (ESP's first word, AH's second), high half in sport. */
		pkt_read(p, off + (k->proto == 51 ? 4 : 0), ports, sizeof(ports));
		k->sport = be16(ports[0]);
		k->dport = be16(ports[1]);
	}
}

/* The same from the transport header's first word, already read (not for AH: its SPI is the
 * second word). */
static __always_inline void transport_word(struct mc_drop_key *k, const __u8 *w)
{
	if (MC_WIRE_HAS_PORTS(k->proto) || k->proto == 50) {
		k->sport = (__u16)(w[0] << 8 | w[1]);
		k->dport = (__u16)(w[2] << 8 | w[3]);
	} else if (MC_WIRE_IS_ICMP(k->proto)) {
		k->sport = w[0];
		k->dport = w[1];
	}
}

/* The protocol a header names: fix when it names ESP or AH, whose header IPsec removed before it
 * wrote the protocol back (see inner_in); else as read. */
static __always_inline __u8 next_proto(__u8 next, __u8 fix)
{
	return fix && MC_WIRE_IS_IPSEC(next) ? fix : next;
}

/* The flow of a packet of ethertype proto (host order); fix, as next_proto takes it (0 but for
 * a decrypted packet). */
static __always_inline bool parse_l3(__u16 proto, const struct pkt *p, struct mc_drop_key *k, __u8 fix)
{
	/* The network header and the first transport word in one read (the common case: no IPv6
	 * extension header, no IPv4 option): one helper call a packet. A packet too short for it
	 * is read again without the word (at tc); a kernel read of one leaves garbage in that
	 * word, but then its protocol has no ports to read. */
	__u32 off;
	if (proto == ETH_P_IPV6) {
		__u8 hdr[44];
		bool word = !pkt_read(p, 0, hdr, sizeof(hdr));
		if (!word && pkt_read(p, 0, hdr, 40))
			return false;
		k->family = AF_INET6;
		__builtin_memcpy(k->saddr, hdr + 8, 16);
		__builtin_memcpy(k->daddr, hdr + 24, 16);
		__u8 next = next_proto(hdr[6], fix);
		if (word && next != 0 && next != 43 && next != 60 && next != 51) {
			k->proto = next;
			transport_word(k, hdr + 40);
			return true;
		}
		off = 40;
		/* Hop-by-hop, routing and destination options: skip a few, as the kernel does. */
#pragma unroll
		for (int i = 0; i < 4; i++) {
			if (next != 0 && next != 43 && next != 60)
				break;
			__u8 ext[2];
			if (pkt_read(p, off, ext, sizeof(ext)))
				return false;
			next = next_proto(ext[0], fix);
			off += 8 + ext[1] * 8;
		}
		k->proto = next;
	} else if (proto == ETH_P_IP) {
		__u8 hdr[24];
		bool word = !pkt_read(p, 0, hdr, sizeof(hdr));
		if (!word && pkt_read(p, 0, hdr, 20))
			return false;
		k->family = AF_INET;
		k->proto = next_proto(hdr[9], fix);
		__builtin_memcpy(k->saddr, hdr + 12, 4);
		__builtin_memcpy(k->daddr, hdr + 16, 4);
		if (word && (hdr[0] & 0x0f) == 5 && k->proto != 51) {
			transport_word(k, hdr + 20);
			return true;
		}
		off = (hdr[0] & 0x0f) * 4;
	} else {
		return false;
	}
	transport(k, p, off);
	return true;
}

/* The flow of a received packet, from its network header. */
static __always_inline bool parse_skb(struct sk_buff *skb, struct mc_drop_key *k)
{
	struct pkt p = { BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header), NULL };
	return parse_l3(be16(BPF_CORE_READ(skb, protocol)), &p, k, 0);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(in_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct mc_drop_key k = {};

	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_XFRM_POLICY) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_XFRM_POLICY))
		k.kind = MC_DROP_IN_POLICY;
	else if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
		 reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		k.kind = MC_DROP_IN_NOSOCK;
	else
		return 0;
	if (BPF_CORE_READ(skb, dev, nd_net.net, ns.inum) != netns_ino)
		return 0;
	if (parse_skb(skb, &k))
		count(&k);
	return 0;
}

SEC("fexit/xfrm_lookup_with_ifid")
int BPF_PROG(out_drop, struct net *net, struct dst_entry *dst_orig, const struct flowi *fl, const struct sock *sk,
	     int flags, __u32 if_id, struct dst_entry *ret)
{
	struct mc_drop_key k = {};

	if ((long)ret != -EPERM || BPF_CORE_READ(net, ns.inum) != netns_ino)
		return 0;
	k.kind = MC_DROP_OUT_EPERM;
	k.family = (__u8)BPF_CORE_READ(dst_orig, ops, family);
	k.proto = BPF_CORE_READ(fl, u.__fl_common.flowic_proto);
	/* The flowi member of the family (ip6 or ip4): addresses, then ports or ICMP type/code. */
#define FLOW_FIELDS(member, alen, icmp_proto)                                                   \
	do {                                                                                    \
		bpf_core_read(k.saddr, alen, &fl->u.member.saddr);                              \
		bpf_core_read(k.daddr, alen, &fl->u.member.daddr);                              \
		if (MC_WIRE_HAS_PORTS(k.proto)) {                                               \
			k.sport = be16(BPF_CORE_READ(fl, u.member.uli.ports.sport));            \
			k.dport = be16(BPF_CORE_READ(fl, u.member.uli.ports.dport));            \
		} else if (k.proto == (icmp_proto)) {                                           \
			k.sport = BPF_CORE_READ(fl, u.member.uli.icmpt.type);                   \
			k.dport = BPF_CORE_READ(fl, u.member.uli.icmpt.code);                   \
		}                                                                               \
	} while (0)
	if (k.family == AF_INET6)
		FLOW_FIELDS(ip6, 16, MC_WIRE_ICMPV6);
	else if (k.family == AF_INET)
		FLOW_FIELDS(ip4, 4, MC_WIRE_ICMP);
	else
		return 0;
	count(&k);
	return 0;
}

/* ---- the staging observer: every flow at the namespace's devices ---- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MC_SEEN_FLOWS);
	__type(key, struct mc_drop_key);
	__type(value, struct mc_seen_val);
} seen SEC(".maps");

/* Packets and bytes by direction, whatever the flow table kept: per CPU, so that counting costs
 * no atomic operation (user space adds the CPUs up). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * MC_SEEN_DIRS);
	__type(key, __u32);
	__type(value, __u64);
} seen_totals SEC(".maps");

static __always_inline void add_total(__u32 i, __u64 v)
{
	__u64 *t = bpf_map_lookup_elem(&seen_totals, &i);
	if (t)
		*t += v;
}

/* A packet of flow k into the flow table, at time now (ns, CLOCK_MONOTONIC). */
static __always_inline void count_flow(struct mc_drop_key *k, __u64 packets, __u64 bytes, __u64 now)
{
	struct mc_seen_val *v = bpf_map_lookup_elem(&seen, k);
	if (!v) {
		struct mc_seen_val init = { 0, 0, now, now };
		/* Another CPU may insert the same flow meanwhile: then add to its entry. */
		(void)bpf_map_update_elem(&seen, k, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&seen, k);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->packets, packets);
	__sync_fetch_and_add(&v->bytes, bytes);
	v->last_ns = now;
}

/*
 * Every packet of the namespace, IP or not, in the totals; an IP one in its flow too. This runs
 * for every packet of the host while a list is staged: one read of the headers (two for a
 * packet with IPv6 extension headers or IPv4 options), no other helper but the clock.
 */
static __always_inline void see(struct mc_drop_key *k, __u16 proto, const struct pkt *p, __u64 packets, __u64 bytes,
				__u64 now, __u8 fix)
{
	bool ip = parse_l3(proto, p, k, fix);

	add_total(2 * k->kind, packets);
	add_total(2 * k->kind + 1, bytes);
	if (ip)
		count_flow(k, packets, bytes, now);
}

/* The tracepoints' packet: its network header at nh, its segment count read only for a packet
 * longer than any frame (GSO); l2, the link-layer bytes skb->len lacks, so that its bytes are
 * counted as at tc. tp_btf gives typed pointers: plain loads, no helper call. The coarse clock
 * is refused to tracing programs. */
static __always_inline void see_skb(struct sk_buff *skb, struct mc_drop_key *k, __u16 proto, const unsigned char *nh,
				    __u32 l2, __u8 fix)
{
	__u64 packets = 1;
	struct pkt p = { nh, NULL };

	if (skb->len > 1600) {
		struct skb_shared_info *si = (void *)(skb->head + skb->end);
		__u16 segs = BPF_CORE_READ(si, gso_segs);
		if (segs > 1)
			packets = segs;
	}
	see(k, proto, &p, packets, skb->len + l2, bpf_ktime_get_ns(), fix);
}

static __always_inline void see_tp(struct sk_buff *skb, struct mc_drop_key *k, const unsigned char *nh, __u32 l2)
{
	see_skb(skb, k, be16(skb->protocol), nh, l2, 0);
}

/* Received, at the device: before decryption and before the inbound policy check. skb->data is
 * the network header here (the link layer is pulled, from mac_header; network_header is set
 * only after), and skb->len counts from it. */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(seen_in, struct sk_buff *skb)
{
	struct mc_drop_key k = { .kind = MC_SEEN_IN };
	__u32 l3 = (__u32)(skb->data - skb->head), mac = skb->mac_header;

	if (skb->dev->nd_net.net->ns.inum != netns_ino)
		return 0;
	see_tp(skb, &k, skb->data, mac != 0xffff && mac < l3 ? l3 - mac : 0);
	return 0;
}

/* Sent, at the device: after the outbound policy (a blocked flow never gets here: the drop hook
 * sees it) and after encryption (protected traffic is ESP or AH here). */
SEC("tp_btf/net_dev_queue")
int BPF_PROG(seen_out, struct sk_buff *skb)
{
	struct mc_drop_key k = { .kind = MC_SEEN_OUT };

	if (skb->dev->nd_net.net->ns.inum != netns_ino)
		return 0;
	see_tp(skb, &k, skb->head + skb->network_header, 0); /* skb->data is the link layer */
	return 0;
}

/*
 * The same at the device's tc hooks (tcx, or clsact), the observer mcpsecd attaches first:
 * measured the cheapest (bench/stage.sh), and it runs only for this namespace's interfaces. The
 * tracepoints above are its fallback. The packet is read relative to its network header (any
 * link layer); the time is the coarse clock's (a tick's precision; a record has a second's).
 */
static __always_inline void tc_see(struct __sk_buff *skb, struct mc_drop_key *k)
{
	struct pkt p = { NULL, skb };

	see(k, be16((__u16)skb->protocol), &p, skb->gso_segs > 1 ? skb->gso_segs : 1, skb->len,
	    bpf_ktime_get_coarse_ns(), 0);
}

SEC("tc")
int seen_tc_in(struct __sk_buff *skb)
{
	struct mc_drop_key k = { .kind = MC_SEEN_IN };
	tc_see(skb, &k);
	return TC_ACT_OK;
}

SEC("tc")
int seen_tc_out(struct __sk_buff *skb)
{
	struct mc_drop_key k = { .kind = MC_SEEN_OUT };
	tc_see(skb, &k);
	return TC_ACT_OK;
}

/*
 * ---- inside IPsec: the clear-text side of protected traffic ----
 *
 * Where the kernel allows trampolines (Debian's 6.1), at functions only IPsec traffic reaches,
 * so that bypassed traffic pays nothing for it: the devices' observer above sees protected
 * traffic as ESP or AH only. Its flows are marked inner (key.inner). Elsewhere mcpsecd counts
 * them with nftables sets instead (inner.c).
 */

/* Sent into an SA: the packet as it is before encryption (transport mode: once, whole, its
 * network header at skb->data). Its netns is its route's device's (skb->dev is not set yet). */
SEC("fentry/xfrm_output")
int BPF_PROG(inner_out, struct sock *sk, struct sk_buff *skb)
{
	struct mc_drop_key k = { .kind = MC_SEEN_OUT, .inner = 1 };
	struct dst_entry *dst = (void *)(skb->_skb_refdst & ~1UL);
	__u16 family = BPF_CORE_READ(dst, ops, family);

	if (BPF_CORE_READ(dst, dev, nd_net.net, ns.inum) != netns_ino || (family != AF_INET && family != AF_INET6))
		return 0;
	see_skb(skb, &k, family == AF_INET ? ETH_P_IP : ETH_P_IPV6, skb->head + skb->network_header, 0, 0);
	return 0;
}

/* Received from an SA, decrypted: the transport-mode packet before it goes up the stack again.
 * Its network header is already moved over the ESP or AH header; the protocol that header named
 * is written back only inside these functions, so it is taken from the IPsec control block
 * (XFRM_MODE_SKB_CB) here. skb->data is the transport header: the bytes count from the
 * network header. */
static __always_inline void inner_in(struct sk_buff *skb, __u16 proto)
{
	struct mc_drop_key k = { .kind = MC_SEEN_IN, .inner = 1 };
	struct xfrm_mode_skb_cb *cb = (void *)skb->cb;
	const unsigned char *nh = skb->head + skb->network_header;
	__u8 fix = BPF_CORE_READ(cb, protocol);

	if (skb->dev->nd_net.net->ns.inum != netns_ino)
		return;
	see_skb(skb, &k, proto, nh, (__u32)(skb->data - nh), fix);
}

SEC("fentry/xfrm4_transport_finish")
int BPF_PROG(inner_in4, struct sk_buff *skb, int async)
{
	inner_in(skb, ETH_P_IP);
	return 0;
}

SEC("fentry/xfrm6_transport_finish")
int BPF_PROG(inner_in6, struct sk_buff *skb, int async)
{
	inner_in(skb, ETH_P_IPV6);
	return 0;
}
