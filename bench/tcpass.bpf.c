// SPDX-License-Identifier: GPL-2.0
/* bench/stage.sh's "tc-pass": a clsact program that passes every packet and does nothing else,
 * the floor of any observer at the device's tc hooks (what the hook itself costs, on this
 * kernel or under the lab VM's emulation). Not part of mcpsecd. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int pass(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
