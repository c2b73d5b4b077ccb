/* SPDX-License-Identifier: MIT */
/*
 * The staging observer's inner flows: the clear-text side of protected traffic, which the
 * device observer sees only as ESP or AH. Two ways, the first that works:
 * - fentry programs on xfrm_output and xfrm4/xfrm6_transport_finish (dropmon.c), functions only
 *   protected traffic reaches: bypassed traffic pays nothing. They need BPF trampolines, which
 *   Debian's 6.1 allows and some kernels refuse (6.18 on the build machines).
 * - nftables sets, which see the same inbound after decryption (prerouting again, with a
 *   secpath) and outbound before encryption (the output hook, its route an IPsec bundle). The
 *   only libnftables user. MCPSECD_INNER=nftables asks for them first.
 *
 * The sets: mcpsecd adds one table of its own. Its base chains jump, for protected packets
 * only, to a chain that counts them in a named counter per direction (the exact totals) and
 * updates a set per direction and family whose elements are flows, each with its own counter.
 * Bypassed traffic costs one rule per hook; nothing else in the namespace changes: no
 * conntrack, no verdict (the chains accept, and other tables' chains still decide), so a host's
 * own firewall is left as it is. Each drain reads the sets and counters (lib/nlx.c) and takes
 * differences (lib/stage.c mc_stage_inner).
 *
 * The sets are bounded (SET_SIZE elements each); an element leaves after ELEM_TIMEOUT without
 * a packet. A flow that finds its set full is counted in the totals only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "../../lib/drops.h"
#include "../../lib/nlx.h"
#include "../../lib/wire.h"

#include "daemon.h"
#include "dropmon.h"

#define TABLE_NAME "mcpsecd_staging"
#define TABLE "inet " TABLE_NAME
#define SET_SIZE 4096
#define ELEM_TIMEOUT "5m"

static const struct {
	const char *name;
	enum mc_dir dir;
} sets[] = { { "in4", MC_DIR_IN }, { "in6", MC_DIR_IN }, { "out4", MC_DIR_OUT }, { "out6", MC_DIR_OUT } };
static const char *const totals[MC_SEEN_DIRS] = { [MC_SEEN_IN] = "in_all", [MC_SEEN_OUT] = "out_all" };

/* Runs an nft script; 0, or -1 with the first line of nft's error in why. */
static int nft(const char *script, char *why, size_t len)
{
	struct nft_ctx *c = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!c) {
		snprintf(why, len, "libnftables: out of memory");
		return -1;
	}
	(void)nft_ctx_buffer_output(c);
	(void)nft_ctx_buffer_error(c);
	int r = nft_run_cmd_from_buffer(c, script);
	if (r) {
		const char *e = nft_ctx_get_error_buffer(c);
		size_t n = e ? strcspn(e, "\n") : 0;
		snprintf(why, len, "nft: %.*s", (int)(n < 200 ? n : 200), n ? e : "failed");
	}
	nft_ctx_free(c);
	return r ? -1 : 0;
}

void inner_stop(struct daemon *d)
{
	char why[240];

	/* this mcpsecd's table, or one a killed mcpsecd left (it would go on counting); none is fine */
	(void)nft("delete table " TABLE "\n", why, sizeof(why));
	if (d->drops)
		(void)mc_dropmon_inner(d->drops, false, NULL, 0);
	d->inner = d->inner_bpf = false;
	mc_innerprev_free(&d->innerprev);
}

#define FENTRY_DESC "fentry on xfrm_output and xfrm4/xfrm6_transport_finish, protected traffic only"
#define SETS_DESC "nftables sets, protected traffic only"

const char *inner_mode(const struct daemon *d, bool brief)
{
	if (d->inner && d->inner_bpf)
		return FENTRY_DESC;
	if (d->inner)
		return brief ? SETS_DESC : d->inner_desc;
	if (d->inner_off)
		return brief || !d->inner_desc[0] ? d->inner_off : d->inner_desc;
	return "nothing";
}

/* Whether the view is the fentry programs (they loaded, and the operator did not ask for the
 * sets); else false, and d->inner_bpf_why says why not. */
static bool fentry_first(struct daemon *d)
{
	const char *want = getenv("MCPSECD_INNER");

	if (want && !strcmp(want, "nftables"))
		snprintf(d->inner_bpf_why, sizeof(d->inner_bpf_why), "not tried (MCPSECD_INNER=nftables)");
	else if (!d->drops)
		snprintf(d->inner_bpf_why, sizeof(d->inner_bpf_why), "no BPF hooks (mcpsecd runs without them)");
	else
		return mc_dropmon_inner_loaded(d->drops, d->inner_bpf_why, sizeof(d->inner_bpf_why));
	return false;
}

void inner_idle(struct daemon *d, const char *off, bool with_sa)
{
	d->inner_off = off;
	if (!with_sa)
		snprintf(d->inner_desc, sizeof(d->inner_desc), "%s", off);
	else if (fentry_first(d))
		snprintf(d->inner_desc, sizeof(d->inner_desc), "%s; with one: " FENTRY_DESC, off);
	else
		snprintf(d->inner_desc, sizeof(d->inner_desc), "%s; with one: " SETS_DESC " (fentry: %s)", off,
			 d->inner_bpf_why);
}

/* One family's rules: a flow with ports, ICMP (type and code where the ports would be), any
 * other protocol (no ports), each keyed source . destination . protocol . word . word. */
static void family_rules(char *b, size_t len, const char *ip, const char *icmp, const char *set)
{
	snprintf(b, len,
		 "    meta l4proto { " MC_WIRE_PORT_PROTOS " } update @%s { %s saddr . %s daddr . meta l4proto . th sport . th dport }\n"
		 "    meta l4proto %s update @%s { %s saddr . %s daddr . meta l4proto . th sport . 0 }\n"
		 "    meta l4proto != { " MC_WIRE_PORT_PROTOS ", %s } update @%s { %s saddr . %s daddr . meta l4proto . 0 . 0 }\n",
		 set, ip, ip, icmp, set, ip, ip, icmp, set, ip, ip);
}

int inner_start(struct daemon *d, char *why, size_t len)
{
	char script[4096], r[4][400];

	inner_stop(d);
	why[0] = '\0';
	d->inner_off = NULL;
	if (fentry_first(d) && mc_dropmon_inner(d->drops, true, d->inner_bpf_why, sizeof(d->inner_bpf_why)) == 0) {
		d->inner = d->inner_bpf = true;
		return 0;
	}
	family_rules(r[0], sizeof(r[0]), "ip", "icmp", "in4");
	family_rules(r[1], sizeof(r[1]), "ip6", "icmpv6", "in6");
	family_rules(r[2], sizeof(r[2]), "ip", "icmp", "out4");
	family_rules(r[3], sizeof(r[3]), "ip6", "icmpv6", "out6");
#define SET(n, t) "  set " n " { type " t " . " t " . inet_proto . inet_service . inet_service; " \
	"flags dynamic, timeout; timeout " ELEM_TIMEOUT "; size %d; counter; }\n"
	/* The base chains see every packet and jump for protected ones only: inbound after
	 * decryption (a secpath), outbound routed into an IPsec bundle (the ESP packet that follows
	 * has a plain route). */
	int n = snprintf(script, sizeof(script),
			 "table " TABLE " {\n"
			 "  counter in_all { }\n  counter out_all { }\n"
			 SET("in4", "ipv4_addr") SET("in6", "ipv6_addr") SET("out4", "ipv4_addr") SET("out6", "ipv6_addr")
			 "  chain pre { type filter hook prerouting priority raw; policy accept; meta secpath exists jump inner_in; }\n"
			 "  chain out { type filter hook output priority raw; policy accept; rt ipsec exists jump inner_out; }\n"
			 "  chain inner_in {\n    counter name in_all\n%s%s  }\n"
			 "  chain inner_out {\n    counter name out_all\n%s%s  }\n"
			 "}\n",
			 SET_SIZE, SET_SIZE, SET_SIZE, SET_SIZE, r[0], r[1], r[2], r[3]);
#undef SET
	if (n < 0 || (size_t)n >= sizeof(script)) {
		snprintf(why, len, "the table's rules do not fit");
		return -1;
	}
	if (nft(script, why, len) < 0) {
		char nft_why[240];
		snprintf(nft_why, sizeof(nft_why), "%s", why);
		snprintf(why, len, "fentry: %.150s; nftables: %s", d->inner_bpf_why, nft_why);
		inner_stop(d);
		return -1;
	}
	snprintf(d->inner_desc, sizeof(d->inner_desc), SETS_DESC " (fentry: %s)", d->inner_bpf_why);
	d->inner = true;
	return 0;
}

void inner_drain(struct daemon *d, struct mc_seen_flows *seen)
{
	struct mc_setflow *v = NULL;
	struct mc_nftcounter *c = NULL;
	size_t n = 0, cap = 0, nc = 0;
	uint64_t packets[MC_SEEN_DIRS] = { 0 }, bytes[MC_SEEN_DIRS] = { 0 };

	if (!d->inner || d->inner_bpf) /* the fentry programs' flows come with the devices' */
		return;
	/* the flows first, then the totals: a packet between the two is in the totals alone, a
	 * balance the next drain settles */
	for (size_t i = 0; i < MC_ARRAY_SIZE(sets); i++) {
		struct mc_setflow *e = NULL;
		size_t ne = 0;
		int r = mc_nl_nft_elems(TABLE_NAME, sets[i].name, &e, &ne);
		if (r == -ENOENT) { /* someone removed the table: made again at the next tick */
			note(d, "staged", "inner-lost", NULL, 0, "the table " TABLE " was removed by another "
			     "program; mcpsecd makes it again (protected flows meanwhile are not seen inside IPsec)");
			d->inner = false;
			mc_innerprev_free(&d->innerprev);
		}
		if (r < 0)
			goto out;
		for (size_t k = 0; k < ne; k++) {
			e[k].dir = sets[i].dir;
			*MC_PUSH(&v, &n, &cap) = e[k];
		}
		free(e);
	}
	if (mc_nl_nft_counters(TABLE_NAME, &c, &nc) < 0)
		goto out;
	for (size_t i = 0; i < nc; i++)
		for (int k = 0; k < MC_SEEN_DIRS; k++)
			if (!strcmp(c[i].name, totals[k])) {
				packets[k] = c[i].packets;
				bytes[k] = c[i].bytes;
			}
	mc_stage_inner(&d->innerprev, v, n, packets, bytes, d->now, seen);
	v = NULL;
out:
	free(v);
	free(c);
}
