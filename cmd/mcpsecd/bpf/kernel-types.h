/* SPDX-License-Identifier: MIT */
/*
 * The few kernel types drops.bpf.c reads, declared with only the fields it uses. CO-RE
 * (preserve_access_index) relocates each access by name against the running kernel's BTF, so
 * one object serves 6.1 and 6.18 alike; no vmlinux.h of the build machine is baked in.
 */
#ifndef MCPSEC_BPF_KERNEL_TYPES_H
#define MCPSEC_BPF_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

#define PAI __attribute__((preserve_access_index))

/* The drop reasons mcpsec cares about; their values differ between kernels (CO-RE resolves). */
enum skb_drop_reason {
	SKB_DROP_REASON_NO_SOCKET = 3,
	SKB_DROP_REASON_XFRM_POLICY = 18,
};

struct ns_common {
	unsigned int inum;
} PAI;

struct net {
	struct ns_common ns;
} PAI;

typedef struct {
	struct net *net;
} PAI possible_net_t;

struct net_device {
	possible_net_t nd_net;
} PAI;

struct sk_buff {
	struct net_device *dev;
	unsigned char *head;
	unsigned char *data;
	unsigned int len;
	unsigned int end; /* an offset from head on 64-bit kernels: the shared info */
	__u16 network_header;
	__u16 mac_header; /* ~0 when unset */
	__be16 protocol;
	unsigned long _skb_refdst; /* the route: a struct dst_entry *, its lowest bit a flag */
	char cb[48];
} PAI;

/* IPsec's control block in skb->cb while it decrypts (include/net/xfrm.h): the protocol the
 * removed ESP or AH header named. */
struct xfrm_mode_skb_cb {
	__u8 protocol;
} PAI;

struct skb_shared_info {
	unsigned short gso_segs;
} PAI;

struct in6_addr {
	__u8 s6_addr[16];
} PAI;

struct flowi_common {
	__u8 flowic_proto;
} PAI;

union flowi_uli {
	struct {
		__be16 dport;
		__be16 sport;
	} ports;
	struct {
		__u8 type;
		__u8 code;
	} icmpt;
} PAI;

struct flowi4 {
	struct flowi_common __fl_common;
	__be32 saddr;
	__be32 daddr;
	union flowi_uli uli;
} PAI;

struct flowi6 {
	struct flowi_common __fl_common;
	struct in6_addr daddr;
	struct in6_addr saddr;
	union flowi_uli uli;
} PAI;

struct flowi {
	union {
		struct flowi_common __fl_common;
		struct flowi4 ip4;
		struct flowi6 ip6;
	} u;
} PAI;

struct dst_ops {
	unsigned short family;
} PAI;

struct dst_entry {
	struct dst_ops *ops;
	struct net_device *dev;
} PAI;

struct sock;

/* The context of a tc program: uapi's struct __sk_buff (include/uapi/linux/bpf.h), a fixed ABI
 * the verifier rewrites by offset, declared here as far as gso_segs (not CO-RE: no PAI). */
struct __sk_buff {
	__u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority;
	__u32 ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid, data, data_end, napi_id;
	__u32 family, remote_ip4, local_ip4, remote_ip6[4], local_ip6[4], remote_port, local_port;
	__u32 data_meta;
	union {
		void *flow_keys;
		__u64 flow_keys_pad;
	} __attribute__((aligned(8)));
	__u64 tstamp;
	__u32 wire_len, gso_segs;
};

#define TC_ACT_OK 0
#define BPF_HDR_START_NET 1

#endif
