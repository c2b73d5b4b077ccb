/* SPDX-License-Identifier: MIT */
/* Plan rendering: readable text and `ip xfrm` equivalents. Never prints key bytes unless asked. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "algo.h"
#include "eval.h"
#include "plan.h"
#include "util.h"
#include "wire.h"

void mc_plan_free(struct mc_plan *p)
{
	for (size_t i = 0; i < p->nrules; i++) {
		free(p->rules[i].name);
		free(p->rules[i].shadowed_by);
		free(p->rules[i].local_note);
	}
	free(p->rules);
	free(p->pols);
	free(p->shadow);
	free(p->lo4);
	mc_wipe(p->sas, p->capsas * sizeof(*p->sas));
	free(p->sas);
	mc_evalindex_free(p->eval_index);
	memset(p, 0, sizeof(*p));
}

static void field_str(struct mc_buf *out, const char *label, uint16_t v, uint16_t mask)
{
	if (!mask)
		return;
	if (mask == 0xffff) {
		mc_buf_printf(out, " %s %u", label, v);
		return;
	}
	/* A value/mask block is a contiguous range: show it as one. */
	unsigned hi = (unsigned)v | (uint16_t)~mask;
	mc_buf_printf(out, " %s %u-%u", label, v, hi);
}

void mc_sel_str(const struct mc_sel *s, enum mc_dir dir, struct mc_buf *out)
{
	char a[64], b[64], pb[8];
	struct mc_prefix src = { s->saddr, s->plen_s }, dst = { s->daddr, s->plen_d };
	bool icmp = MC_WIRE_IS_ICMP(s->proto);

	(void)dir;
	mc_prefix_str(&src, a, sizeof(a));
	mc_prefix_str(&dst, b, sizeof(b));
	mc_buf_printf(out, "%s -> %s", a, b);
	if (s->proto)
		mc_buf_printf(out, " %s", mc_proto_str(s->proto, pb, sizeof(pb)));
	field_str(out, icmp ? "type" : "sport", s->sport, s->sport_mask);
	field_str(out, icmp ? "code" : "dport", s->dport, s->dport_mask);
}

/* One side in MCP's terms: "fec0::1 port 20-21", "any", "any port 500". */
static void side_str(struct mc_buf *out, const struct mc_addr *a, uint8_t plen, uint16_t v, uint16_t mask,
		     bool ports)
{
	char t[64];
	struct mc_prefix p = { *a, plen };

	if (plen == 0)
		mc_buf_puts(out, "any");
	else if (plen == mc_family_bits(a->family))
		mc_buf_puts(out, mc_addr_str(a, t, sizeof(t)));
	else {
		mc_prefix_str(&p, t, sizeof(t));
		mc_buf_puts(out, t);
	}
	if (ports)
		field_str(out, "port", v, mask);
}

void mc_sel_local_str(const struct mc_sel *s, enum mc_dir dir, struct mc_buf *out)
{
	char pb[8];
	bool icmp = MC_WIRE_IS_ICMP(s->proto), out_dir = dir == MC_DIR_OUT;

	mc_buf_printf(out, "%s local ", s->proto ? mc_proto_str(s->proto, pb, sizeof(pb)) : "any");
	/* Outbound the local side is the source; inbound it is the destination. */
	side_str(out, out_dir ? &s->saddr : &s->daddr, out_dir ? s->plen_s : s->plen_d,
		 out_dir ? s->sport : s->dport, out_dir ? s->sport_mask : s->dport_mask, !icmp);
	mc_buf_puts(out, " remote ");
	side_str(out, out_dir ? &s->daddr : &s->saddr, out_dir ? s->plen_d : s->plen_s,
		 out_dir ? s->dport : s->sport, out_dir ? s->dport_mask : s->sport_mask, !icmp);
	if (icmp) {
		field_str(out, "type", s->sport, s->sport_mask);
		field_str(out, "code", s->dport, s->dport_mask);
	}
}

void mc_xsa_algs_str(const struct mc_xsa *x, struct mc_buf *out)
{
	mc_buf_puts(out, mc_ipsec_proto_str(x->proto));
	if (x->confidentiality)
		mc_buf_printf(out, " %s-%zu", x->confidentiality->name, x->ekey_len * 8);
	if (x->integrity)
		mc_buf_printf(out, " %s", x->integrity->name);
}

/* Items grouped by the rule they belong to, in their order within each rule: items
 * idx[first[r]] .. idx[first[r + 1] - 1] are rule r's (a counting sort, one pass each way). */
struct by_rule {
	size_t *first, *idx;
};

static void group_by_rule(size_t nrules, size_t n, const void *items, size_t size, size_t rule_off,
			  struct by_rule *g)
{
	g->first = mc_calloc(nrules + 2, sizeof(*g->first));
	g->idx = mc_calloc(n + 1, sizeof(*g->idx));
	for (size_t i = 0; i < n; i++) {
		size_t r = *(const size_t *)((const char *)items + i * size + rule_off);
		if (r < nrules)
			g->first[r + 2]++;
	}
	for (size_t r = 2; r < nrules + 2; r++)
		g->first[r] += g->first[r - 1];
	for (size_t i = 0; i < n; i++) {
		size_t r = *(const size_t *)((const char *)items + i * size + rule_off);
		if (r < nrules)
			g->idx[g->first[r + 1]++] = i;
	}
}

static void by_rule_free(struct by_rule *g)
{
	free(g->first);
	free(g->idx);
}

void mc_plan_render(const struct mc_plan *p, struct mc_buf *out)
{
	char a[64], b[64];
	struct by_rule pols, sas;

	/* Each rule's policies and SAs found once, not by a scan per rule: 100,000 rules render in
	 * linear time. */
	group_by_rule(p->nrules, p->npols, p->pols, sizeof(*p->pols), offsetof(struct mc_xpolicy, rule), &pols);
	group_by_rule(p->nrules, p->nsas, p->sas, sizeof(*p->sas), offsetof(struct mc_xsa, rule), &sas);
	mc_buf_printf(out, "ipsec %s, default %s: %zu rules, %zu kernel policies, %zu SAs\n",
		      p->enabled ? "enabled" : "disabled (committed, not enforced)",
		      mc_default_str(p->def), p->nrules, p->npols, p->nsas);
	for (int d = 1; d >= 0; d--) {
		mc_buf_printf(out, "\n%s (first match wins):\n", d ? "outbound" : "inbound");
		for (size_t i = 0; i < p->nrules; i++) {
			const struct mc_rule *r = &p->rules[i];
			if ((int)r->dir != d)
				continue;
			mc_buf_printf(out, "  %-24s %-7s priority %u  %zu kernel polic%s", r->name,
				      mc_action_str(r->action), r->priority, r->nfrag, r->nfrag == 1 ? "y" : "ies");
			if (r->nshadowed)
				mc_buf_printf(out, " (%zu shadowed by %s)", r->nshadowed, r->shadowed_by);
			mc_buf_puts(out, "\n");
			if (r->clear_passes)
				mc_buf_printf(out, "      phase-in: %s\n", mc_clear_passes_str(r->dir));
			size_t shown = 0;
			for (size_t k = pols.first[i]; k < pols.first[i + 1]; k++) {
				if (shown++ == 8) {
					mc_buf_printf(out, "      ... %zu more\n", r->nfrag - 8);
					break;
				}
				mc_buf_puts(out, "      ");
				mc_sel_str(&p->pols[pols.idx[k]].sel, r->dir, out);
				mc_buf_puts(out, "\n");
			}
			for (size_t k = sas.first[i]; k < sas.first[i + 1]; k++) {
				const struct mc_xsa *x = &p->sas[sas.idx[k]];
				mc_buf_printf(out, "      SA spi %u (0x%08x) ", x->spi, x->spi);
				mc_xsa_algs_str(x, out);
				const char *local = "(this host, resolved at apply)";
				bool out_dir = r->dir == MC_DIR_OUT;
				mc_buf_printf(out, " %s -> %s\n",
					      x->local_unresolved && out_dir ? local : mc_addr_str(&x->saddr, a, sizeof(a)),
					      x->local_unresolved && !out_dir ? local : mc_addr_str(&x->daddr, b, sizeof(b)));
			}
			if (r->local_note)
				mc_buf_printf(out, "      (%s)\n", r->local_note);
		}
	}
	by_rule_free(&pols);
	by_rule_free(&sas);
}

static const char *ip_proto(uint8_t proto, char *buf, size_t len)
{
	if (proto == MC_PROTO_ICMPV6)
		return "ipv6-icmp";
	if (proto == MC_PROTO_ICMP)
		return "icmp";
	if (proto == MC_PROTO_TCP)
		return "tcp";
	if (proto == MC_PROTO_UDP)
		return "udp";
	snprintf(buf, len, "%u", proto);
	return buf;
}

void mc_xpolicy_ip_cmd(const struct mc_xpolicy *x, const char *verb, struct mc_buf *out)
{
	char a[64], b[64], pb[8];
	struct mc_prefix src = { x->sel.saddr, x->sel.plen_s }, dst = { x->sel.daddr, x->sel.plen_d };
	bool icmp = MC_WIRE_IS_ICMP(x->sel.proto);
	bool masked = (x->sel.sport_mask && x->sel.sport_mask != 0xffff) ||
		      (x->sel.dport_mask && x->sel.dport_mask != 0xffff);

	mc_prefix_str(&src, a, sizeof(a));
	mc_prefix_str(&dst, b, sizeof(b));
	/* iproute2 has no syntax for port masks: such selectors cannot be written as ip commands. */
	if (masked)
		mc_buf_puts(out, "# not expressible with ip (port mask): ");
	mc_buf_printf(out, "ip xfrm policy %s src %s dst %s", verb, a, b);
	if (x->sel.proto)
		mc_buf_printf(out, " proto %s", ip_proto(x->sel.proto, pb, sizeof(pb)));
	if (x->sel.sport_mask)
		mc_buf_printf(out, icmp ? " type %u" : " sport %u", x->sel.sport);
	if (x->sel.dport_mask)
		mc_buf_printf(out, icmp ? " code %u" : " dport %u", x->sel.dport);
	mc_buf_printf(out, " dir %s", x->dir == 0 ? "in" : "out");
	if (!strcmp(verb, "delete")) {
		mc_buf_puts(out, "\n");
		return;
	}
	mc_buf_printf(out, " priority %u action %s", x->priority, x->action == MC_DISCARD ? "block" : "allow");
	if (x->action == MC_PROTECT)
		mc_buf_printf(out, " tmpl proto %s spi 0x%08x reqid %u mode transport%s",
			      mc_ipsec_proto_str(x->tmpl_proto), x->tmpl_spi, x->tmpl_reqid, x->tmpl_optional ? " level use" : "");
	mc_buf_puts(out, "\n");
}

static void key_arg(struct mc_buf *out, const uint8_t *k, size_t len, bool show, const char *what)
{
	if (!show) {
		mc_buf_printf(out, "<%s-key, %zu bytes>", what, len);
		return;
	}
	mc_buf_puts(out, "0x");
	for (size_t i = 0; i < len; i++)
		mc_buf_printf(out, "%02x", k[i]);
}

void mc_xsa_ip_cmd(const struct mc_xsa *x, const char *verb, bool show_keys, const char *rule_name,
		   struct mc_buf *out)
{
	char a[64], b[64];

	mc_buf_printf(out, "ip xfrm state %s src %s dst %s proto %s spi 0x%08x", verb,
		      mc_addr_str(&x->saddr, a, sizeof(a)), mc_addr_str(&x->daddr, b, sizeof(b)),
		      mc_ipsec_proto_str(x->proto), x->spi);
	if (!strcmp(verb, "delete")) {
		mc_buf_printf(out, "   # %s\n", rule_name);
		return;
	}
	mc_buf_printf(out, " reqid %u mode transport replay-window 0", x->reqid);
	if (x->oseq_may_wrap)
		mc_buf_puts(out, " extra-flag oseq-may-wrap");
	static const char *const lim[] = { "byte-soft", "byte-hard", "packet-soft", "packet-hard", "time-soft", "time-hard" };
	const uint64_t v[] = { x->lft.soft_bytes, x->lft.hard_bytes, x->lft.soft_packets, x->lft.hard_packets,
			       x->lft.soft_secs, x->lft.hard_secs };
	for (size_t i = 0; i < 6; i++)
		if (v[i])
			mc_buf_printf(out, " limit %s %llu", lim[i], (unsigned long long)v[i]);
	if (x->integrity) {
		mc_buf_printf(out, " auth-trunc '%s' ", x->integrity->kernel);
		key_arg(out, x->ikey, x->ikey_len, show_keys, "integrity");
		mc_buf_printf(out, " %u", x->integrity->trunc_bits);
	}
	if (x->confidentiality) {
		mc_buf_printf(out, " enc '%s' ", x->confidentiality->kernel);
		key_arg(out, x->ekey, x->ekey_len, show_keys, "confidentiality");
	} else if (x->proto == MC_PROTO_ESP) {
		mc_buf_printf(out, " enc '%s' \"\"", MC_NULL_CIPHER);
	}
	mc_buf_printf(out, "   # %s\n", rule_name);
}

uint64_t mc_sel_hash(enum mc_dir dir, const struct mc_sel *s)
{
	const uint8_t *p = (const uint8_t *)s;
	uint64_t h = 1469598103934665603ull ^ (uint64_t)dir; /* FNV-1a */

	for (size_t i = 0; i < sizeof(*s); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

bool mc_sel_eq(const struct mc_sel *a, const struct mc_sel *b)
{
	/* Selectors are built from zeroed memory, so padding compares equal too. */
	return !memcmp(a, b, sizeof(*a));
}
