// SPDX-License-Identifier: GPL-2.0
/* bench/stage.sh's "tc" candidate: the staging observer's work (the flow of every packet, an LRU
 * entry with packets and bytes) done by a clsact program instead of the tracepoints, to compare
 * their costs. Not part of mcpsecd. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct key {
	__u8 family, proto;
	__u16 sport, dport;
	__u8 saddr[16], daddr[16];
};

struct val {
	__u64 packets, bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key);
	__type(value, struct val);
} tcflows SEC(".maps");

SEC("tc")
int flow(struct __sk_buff *skb)
{
	struct key k = {};
	__u8 h[40];
	__u16 ports[2] = { 0, 0 };
	__u32 off;

	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 40))
			return TC_ACT_OK;
		k.family = 10;
		k.proto = h[6];
		__builtin_memcpy(k.saddr, h + 8, 16);
		__builtin_memcpy(k.daddr, h + 24, 16);
		off = ETH_HLEN + 40;
	} else if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 20))
			return TC_ACT_OK;
		k.family = 2;
		k.proto = h[9];
		__builtin_memcpy(k.saddr, h + 12, 4);
		__builtin_memcpy(k.daddr, h + 16, 4);
		off = ETH_HLEN + (h[0] & 0x0f) * 4;
	} else {
		return TC_ACT_OK;
	}
	if (k.proto == 6 || k.proto == 17)
		bpf_skb_load_bytes(skb, off, ports, 4);
	k.sport = ports[0];
	k.dport = ports[1];
	struct val *v = bpf_map_lookup_elem(&tcflows, &k), init = { 0, 0 };
	if (!v) {
		bpf_map_update_elem(&tcflows, &k, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&tcflows, &k);
		if (!v)
			return TC_ACT_OK;
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
