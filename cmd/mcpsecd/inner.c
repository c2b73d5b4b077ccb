/* SPDX-License-Identifier: MIT */
/*
 * The staging observer's inner flows: the clear-text side of protected traffic, which the
 * device observer sees only as ESP or AH. Conntrack sees it: a protected packet is tracked
 * before it is encrypted (the output hook, its route an IPsec bundle) and after it is
 * decrypted (prerouting again, with a secpath). The only libnftables user.
 *
 * Two modes, chosen when a list is staged:
 * - own: the namespace has no netfilter rules and tracks nothing. mcpsecd adds one table that
 *   leaves every packet untracked except protected ones (a `notrack` costs bypassed traffic
 *   one rule, not conntrack's lookup), and turns on accounting for the counters.
 * - read-only: the host's own rules are there (a firewall), and may need conntrack for every
 *   packet. Nothing is added to them: mcpsecd reads conntrack as they have it, and keeps the
 *   flows the enforced list protects (lib/stage.c mc_stage_inner).
 * Each drain dumps the table (ctnetlink, lib/nlx.c) and takes the counters' differences.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <nftables/libnftables.h>

#include "../../lib/drops.h"
#include "../../lib/fileio.h"
#include "../../lib/nlx.h"
#include "../../lib/proc.h"

#include "daemon.h"

#define TABLE "inet mcpsecd_staging"
#define ACCT "/proc/sys/net/netfilter/nf_conntrack_acct"
#define COUNT "/proc/sys/net/netfilter/nf_conntrack_count"

/* Runs an nft script; 0, or -1 with the first line of nft's error in why. */
static int nft(const char *script, bool *nonempty, char *why, size_t len)
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
	} else if (nonempty) {
		const char *o = nft_ctx_get_output_buffer(c);
		*nonempty = o && o[strspn(o, " \t\n")];
	}
	nft_ctx_free(c);
	return r ? -1 : 0;
}

/* Removes mcpsecd's table, if there is one (a daemon killed while staging left it): whether
 * there was. *acct_off (unless NULL): whether the table says accounting was off before it (its chain
 * ACCT_OFF, made empty and never jumped to: a note that outlives a killed mcpsecd). */
#define ACCT_OFF "acct_was_off"
static bool drop_table(bool *acct_off)
{
	char why[240];
	if (nft("list table " TABLE "\n", NULL, why, sizeof(why)) < 0)
		return false;
	if (acct_off)
		*acct_off = nft("list chain " TABLE " " ACCT_OFF "\n", NULL, why, sizeof(why)) == 0;
	(void)nft("delete table " TABLE "\n", NULL, why, sizeof(why));
	return true;
}

/* iptables' legacy tables (not in the nftables ruleset): their names, when any is loaded. */
static bool legacy_rules(void)
{
	static const char *const names[] = { "/proc/net/ip_tables_names", "/proc/net/ip6_tables_names" };
	bool any = false;
	for (size_t i = 0; i < MC_ARRAY_SIZE(names); i++) {
		char *text = NULL;
		size_t len = 0;
		if (mc_file_read(names[i], MC_READ_NOFOLLOW, 4096, &text, &len, NULL) == 0 && len)
			any = true;
		free(text);
	}
	return any;
}

void inner_stop(struct daemon *d)
{
	bool acct_off = false;
	/* a table this mcpsecd did not make: a killed one's, whose tracked entries remain; the
	 * accounting it turned on is put back as that one would have */
	if (drop_table(&acct_off) && d->inner == INNER_OFF) {
		d->inner_leftover = true;
		if (acct_off)
			(void)mc_proc_sysctl_set(ACCT, false);
	}
	if (d->inner != INNER_OFF && !d->inner_acct_was)
		(void)mc_proc_sysctl_set(ACCT, false);
	d->inner = INNER_OFF;
	mc_ctprev_free(&d->ctprev);
}

const char *inner_mode(const struct daemon *d)
{
	switch (d->inner) {
	case INNER_OWN: return "conntrack, for protected traffic only";
	case INNER_READ: return "conntrack as the host's own rules keep it";
	case INNER_OFF: break;
	}
	return "nothing (neither list protects anything, or conntrack cannot be used: the log says which)";
}

int inner_start(struct daemon *d, char *why, size_t len)
{
	bool rules = false;

	inner_stop(d);
	bool leftover = d->inner_leftover;
	d->inner_leftover = false;
	why[0] = '\0';
	if (nft("list ruleset\n", &rules, why, len) < 0)
		return -1;
	/* Someone's rules, or entries tracked already (not by a table a killed mcpsecd left):
	 * leave conntrack as it is, only read it. */
	if (rules || legacy_rules() || (!leftover && mc_proc_sysctl_on(COUNT, false))) {
		struct mc_ctflow *v = NULL;
		size_t n = 0;
		int r = mc_nl_ct_dump(&v, &n);
		free(v);
		if (r < 0) {
			snprintf(why, len, "conntrack cannot be read: %s", strerror(-r));
			return -1;
		}
		d->inner_acct_was = mc_proc_sysctl_on(ACCT, false);
		if (!d->inner_acct_was)
			(void)mc_proc_sysctl_set(ACCT, true);
		d->inner = INNER_READ;
		return 0;
	}
	d->inner_acct_was = mc_proc_sysctl_on(ACCT, false);
	/* Untracked unless protected: inbound after decryption (a secpath), outbound routed into an
	 * IPsec bundle (the ESP packet that follows has a plain route: untracked too). The chain
	 * "on" is never jumped to: its ct expression is what makes the kernel run conntrack in
	 * this namespace at all. */
	static const char script[] =
		"table " TABLE " {\n"
		"  chain pre { type filter hook prerouting priority raw; policy accept; meta secpath missing notrack; }\n"
		"  chain out { type filter hook output priority raw; policy accept; rt ipsec missing notrack; }\n"
		"  chain on { ct state new; }\n"
		"}\n";
	if (nft(script, NULL, why, len) < 0 ||
	    (!d->inner_acct_was && nft("add chain " TABLE " " ACCT_OFF "\n", NULL, why, len) < 0))
		goto fail;
	if (!d->inner_acct_was && mc_proc_sysctl_set(ACCT, true) < 0) {
		snprintf(why, len, "conntrack accounting (%s) cannot be turned on", ACCT);
		goto fail;
	}
	d->inner = INNER_OWN;
	return 0;
fail:
	(void)drop_table(NULL);
	return -1;
}

void inner_drain(struct daemon *d, struct mc_seen_flows *seen)
{
	struct mc_ctflow *v = NULL;
	size_t n = 0, n4 = 0, n6 = 0;
	struct mc_addr *own4 = NULL, *own6 = NULL, *own = NULL;

	if (d->inner == INNER_OFF || !d->plan_valid || mc_nl_ct_dump(&v, &n) < 0)
		return;
	if (n) { /* the directions: a flow from one of these is outbound */
		(void)mc_nl_own_addrs(d->nl, AF_INET, &own4, &n4);
		(void)mc_nl_own_addrs(d->nl, AF_INET6, &own6, &n6);
		own = mc_calloc(n4 + n6 + 1, sizeof(*own));
		if (n4)
			memcpy(own, own4, n4 * sizeof(*own));
		if (n6)
			memcpy(own + n4, own6, n6 * sizeof(*own));
	}
	mc_stage_inner(&d->plan, own, n4 + n6, &d->ctprev, v, n, d->now, seen);
	free(own);
	free(own4);
	free(own6);
}
