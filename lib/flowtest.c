/* SPDX-License-Identifier: MIT */
/* MCP's test fields → eval queries, and named test suites' expectations (pure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "flowspace.h"
#include "flowtest.h"
#include "model.h"
#include "util.h"

static bool given(const char *s)
{
	return s && strcasecmp(s, "any");
}

/* One side's addresses: any, or ranges of either family. */
struct side {
	bool any;
	struct mc_range *r;
	size_t n, cap;
};

/* A range wholly inside ::ffff:0:0/96 becomes the IPv4 range it maps. */
static bool unmap_range(struct mc_range *r)
{
	struct mc_addr lo, hi;

	if (r->family != AF_INET6)
		return false;
	mc_addr_from_u128(AF_INET6, r->lo, &lo);
	mc_addr_from_u128(AF_INET6, r->hi, &hi);
	if (!mc_addr_unmap(&lo) || !mc_addr_unmap(&hi))
		return false;
	*r = (struct mc_range){ AF_INET, mc_addr_to_u128(&lo), mc_addr_to_u128(&hi) };
	return true;
}

static bool parse_side(const char *text, const char *flag, const struct mc_site *s, struct side *ret,
		       struct mc_buf *notes, struct mc_buf *err)
{
	char *copy = mc_strdup(text), *save = NULL;
	bool ok = true;

	memset(ret, 0, sizeof(*ret));
	for (char *tok = strtok_r(copy, ", ", &save); tok && ok; tok = strtok_r(NULL, ", ", &save)) {
		const struct mc_selector_name *sel = NULL;
		struct mc_range r;
		const char *why;

		if (!strcasecmp(tok, "any")) {
			ret->any = true;
			continue;
		}
		for (size_t i = 0; s && i < s->nsels && !sel; i++)
			if (!strcasecmp(s->sels[i].name, tok))
				sel = &s->sels[i];
		if (sel) {
			ret->any |= sel->addrs.any;
			for (size_t j = 0; j < sel->addrs.n; j++)
				*MC_PUSH(&ret->r, &ret->n, &ret->cap) = sel->addrs.r[j];
			continue;
		}
		if (!mc_range_parse(tok, &r, &why)) {
			if (!strpbrk(tok, ":./-"))
				mc_buf_printf(err, "%s '%s': no selector of that name%s", flag, tok,
					      s ? " in the site" : " (none is committed to take names from)");
			else
				mc_buf_printf(err, "%s '%s': %s (expected any, an address, a prefix, a range or a "
					      "selector name)", flag, tok, why);
			ok = false;
			break;
		}
		char before[96];
		mc_range_str(&r, before, sizeof(before));
		if (unmap_range(&r)) {
			char after[96];
			mc_range_str(&r, after, sizeof(after));
			mc_buf_printf(notes, "%s %s is IPv4-mapped: the kernel sends and decides it as IPv4 %s\n", flag,
				      before, after);
		}
		*MC_PUSH(&ret->r, &ret->n, &ret->cap) = r;
	}
	free(copy);
	if (ok && !ret->any && !ret->n) {
		mc_buf_printf(err, "%s is empty", flag);
		ok = false;
	}
	return ok;
}

/* The side's ranges of one family: all of them, or the whole family for any. */
static size_t side_of_family(const struct side *sd, int family, struct mc_range *out, size_t cap)
{
	size_t n = 0;

	if (sd->any) {
		out[0] = mc_range_all(family);
		return 1;
	}
	for (size_t i = 0; i < sd->n && n < cap; i++)
		if (sd->r[i].family == family)
			out[n++] = sd->r[i];
	return n;
}

static bool parse_ports(const char *s, const char *flag, unsigned *lo, unsigned *hi, struct mc_buf *err)
{
	*lo = 1;
	*hi = 65535;
	if (!given(s))
		return true;
	if (mc_parse_range(s, 65535, lo, hi))
		return true;
	mc_buf_printf(err, "%s '%s': expected any, P or P-Q (0-65535)", flag, s);
	return false;
}

/* The protocol fields: ports, ICMP type/code, or neither (BIP and other protocols without
 * ports). Whatever cannot apply is an error that says what to write instead. */
static bool parse_values(const struct mc_test_input *in, const char *ulp, struct mc_query *q, struct mc_buf *err)
{
	if (mc_proto_is_icmp(q->proto)) {
		const char *type = in->icmp;
		struct mc_icmpspec ic;

		if (given(in->icmp) && given(in->local_port)) {
			mc_buf_printf(err, "give the ICMP type/code once: --icmp or --local-port (MCP's \"Local "
				      "Port or ICMP Type/Code\"), not both");
			return false;
		}
		if (given(in->remote_port)) {
			mc_buf_printf(err, "--remote-port does not apply to %s: it has no ports; give the type/code "
				      "with --icmp TYPE[/CODE]", ulp);
			return false;
		}
		if (!given(type))
			type = in->local_port;
		if (given(type) && !mc_icmp_parse(type, &ic)) {
			mc_buf_printf(err, "ICMP type/code '%s': expected any, TYPE, TYPE-TYPE, TYPE/CODE or "
				      "TYPE/CODE-CODE (0-255)", type);
			return false;
		}
		if (!given(type))
			ic = (struct mc_icmpspec){ false, 0, 255, 0, 255, { 0 } };
		q->local_lo = ic.type_lo;
		q->local_hi = ic.type_hi;
		q->remote_lo = ic.code_lo;
		q->remote_hi = ic.code_hi;
		return true;
	}
	if (given(in->icmp)) {
		mc_buf_printf(err, "--icmp applies to icmp and icmpv6 only, not %s%s", ulp,
			      mc_proto_has_ports(q->proto) ? ": give ports with --local-port and --remote-port" : "");
		return false;
	}
	if (!mc_proto_has_ports(q->proto)) {
		if (given(in->local_port) || given(in->remote_port)) {
			mc_buf_printf(err, "%s has no ports: leave out --local-port and --remote-port", ulp);
			return false;
		}
		q->local_lo = q->local_hi = q->remote_lo = q->remote_hi = 0;
		return true;
	}
	return parse_ports(in->local_port, "--local-port", &q->local_lo, &q->local_hi, err) &&
	       parse_ports(in->remote_port, "--remote-port", &q->remote_lo, &q->remote_hi, err);
}

bool mc_test_build(const struct mc_test_input *in, const struct mc_site *s, struct mc_test_queries *ret,
		   struct mc_buf *notes, struct mc_buf *err)
{
	struct mc_query base = { 0 };
	struct side l = { 0 }, r = { 0 };
	bool ok = false;

	memset(ret, 0, sizeof(*ret));
	if (!in->ulp || !in->dir || !in->local_ip || !in->remote_ip) {
		mc_buf_printf(err, "a test needs ulp, direction, local-ip and remote-ip");
		return false;
	}
	if ((base.proto = mc_proto_parse(in->ulp)) <= 0) {
		mc_buf_printf(err, "ulp '%s': expected tcp, udp, icmp, icmpv6, bip or 1-255", in->ulp);
		return false;
	}
	if (!strcasecmp(in->dir, "in") || !strcasecmp(in->dir, "inbound"))
		base.dir = MC_DIR_IN;
	else if (!strcasecmp(in->dir, "out") || !strcasecmp(in->dir, "outbound"))
		base.dir = MC_DIR_OUT;
	else {
		mc_buf_printf(err, "direction '%s': expected in or out", in->dir);
		return false;
	}
	char pb[8];
	if (!parse_values(in, mc_proto_str(base.proto, pb, sizeof(pb)), &base, err) ||
	    !parse_side(in->local_ip, "--local-ip", s, &l, notes, err) ||
	    !parse_side(in->remote_ip, "--remote-ip", s, &r, notes, err))
		goto out;
	/* IPv6 first, as the policy list is IPv6 first; a family one side lacks is no flow. */
	static const int families[] = { AF_INET6, AF_INET };
	for (size_t f = 0; f < 2; f++) {
		/* ICMP travels over IPv4 only, ICMPv6 over IPv6 only: no other flow exists. */
		if ((base.proto == MC_PROTO_ICMP && families[f] == AF_INET6) ||
		    (base.proto == MC_PROTO_ICMPV6 && families[f] == AF_INET))
			continue;
		struct mc_range lr[64], rr[64];
		size_t nl = side_of_family(&l, families[f], lr, 64), nr = side_of_family(&r, families[f], rr, 64);
		for (size_t i = 0; i < nl; i++)
			for (size_t j = 0; j < nr; j++) {
				struct mc_query *q = MC_PUSH(&ret->q, &ret->n, &ret->cap);
				*q = base;
				mc_addr_from_u128(families[f], lr[i].lo, &q->local);
				mc_addr_from_u128(families[f], lr[i].hi, &q->local_last);
				mc_addr_from_u128(families[f], rr[j].lo, &q->remote);
				mc_addr_from_u128(families[f], rr[j].hi, &q->remote_last);
			}
	}
	if (!ret->n && (base.proto == MC_PROTO_ICMP || base.proto == MC_PROTO_ICMPV6)) {
		mc_buf_printf(err, "%s travels over %s only, and --local-ip %s and --remote-ip %s have no such "
			      "address in common: test %s for %s", base.proto == MC_PROTO_ICMP ? "icmp" : "icmpv6",
			      base.proto == MC_PROTO_ICMP ? "IPv4" : "IPv6", in->local_ip, in->remote_ip,
			      base.proto == MC_PROTO_ICMP ? "icmpv6" : "icmp",
			      base.proto == MC_PROTO_ICMP ? "IPv6" : "IPv4");
		goto out;
	}
	if (!ret->n) {
		mc_buf_printf(err, "--local-ip %s and --remote-ip %s have no address family in common (an "
			      "IPv4-mapped address counts as IPv4)", in->local_ip, in->remote_ip);
		goto out;
	}
	ok = true;
out:
	free(l.r);
	free(r.r);
	if (!ok)
		mc_test_queries_free(ret);
	return ok;
}

void mc_test_queries_free(struct mc_test_queries *q)
{
	free(q->q);
	memset(q, 0, sizeof(*q));
}

void mc_suite_free(struct mc_suite *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->t[i].name);
		free(s->t[i].expect);
	}
	free(s->t);
	for (size_t i = 0; i < s->nstrings; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->file);
	memset(s, 0, sizeof(*s));
}

/* ---- expectations ---- */

/* The test's input with the expectation's sub-range fields in place of the test's own. */
static struct mc_test_input narrowed(const struct mc_suite_test *t, const struct mc_test_expect *e)
{
	struct mc_test_input in = t->in;

	if (e->range.local_ip)
		in.local_ip = e->range.local_ip;
	if (e->range.remote_ip)
		in.remote_ip = e->range.remote_ip;
	if (e->range.icmp || e->range.local_port) {
		/* For ICMP both name the type/code: the expectation's replaces the test's. */
		in.icmp = e->range.icmp;
		in.local_port = e->range.local_port;
	}
	if (e->range.remote_port)
		in.remote_port = e->range.remote_port;
	return in;
}

static int result_of(const char *s)
{
	static const char *const names[] = { "bypass", "discard", "protect" };
	for (int i = 0; s && i < 3; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	return -1;
}

bool mc_suite_prepare(const struct mc_suite_test *t, const struct mc_site *s, struct mc_diags *ds,
		      struct mc_test_queries **ret)
{
	bool ok = true;

	*ret = mc_calloc(t->nexpect + 1, sizeof(**ret));
	if (!t->nexpect) {
		mc_err(ds, t->loc, "test '%s' needs an 'expect' list", t->name);
		ok = false;
	}
	for (size_t i = 0; i < t->nexpect; i++) {
		const struct mc_test_expect *e = &t->expect[i];
		struct mc_test_input in = narrowed(t, e);
		struct mc_buf notes = { 0 }, err = { 0 };

		if (result_of(e->result) < 0) {
			mc_err(ds, e->loc, "test '%s': result must be bypass, discard or protect, not '%s'", t->name,
			       e->result ? e->result : "(none)");
			ok = false;
		}
		if (!mc_test_build(&in, s, &(*ret)[i], &notes, &err)) {
			mc_err(ds, e->loc, "test '%s': %s", t->name, mc_buf_str(&err));
			ok = false;
		}
		mc_buf_free(&notes);
		mc_buf_free(&err);
	}
	return ok;
}

/* Flows as a flow-space box: local addresses → source dimension, remote → destination, local
 * port (or ICMP type) → sport, remote port (or code) → dport. Only overlap and coverage are
 * asked of it, so the direction need not be applied. */
static struct mc_box flow_box(const struct mc_addr *l_lo, const struct mc_addr *l_hi, const struct mc_addr *r_lo,
			      const struct mc_addr *r_hi, unsigned lp_lo, unsigned lp_hi, unsigned rp_lo, unsigned rp_hi)
{
	struct mc_box b = { .family = l_lo->family };

	b.lo[MC_D_SRC] = mc_addr_to_u128(l_lo);
	b.hi[MC_D_SRC] = mc_addr_to_u128(l_hi);
	b.lo[MC_D_DST] = mc_addr_to_u128(r_lo);
	b.hi[MC_D_DST] = mc_addr_to_u128(r_hi);
	b.lo[MC_D_SPORT] = lp_lo;
	b.hi[MC_D_SPORT] = lp_hi;
	b.lo[MC_D_DPORT] = rp_lo;
	b.hi[MC_D_DPORT] = rp_hi;
	return b;
}

static struct mc_box cell_box(const struct mc_result *r)
{
	return flow_box(&r->local_addr_lo, &r->local_addr_hi, &r->remote_addr_lo, &r->remote_addr_hi, r->local_lo,
			r->local_hi, r->remote_lo, r->remote_hi);
}

static struct mc_box query_box(const struct mc_query *q)
{
	return flow_box(&q->local, &q->local_last, &q->remote, &q->remote_last, q->local_lo, q->local_hi,
			q->remote_lo, q->remote_hi);
}

/* rest := rest minus b. */
static void subtract_all(struct mc_boxes *rest, const struct mc_box *b)
{
	struct mc_boxes out = { 0 };

	for (size_t i = 0; i < rest->n; i++)
		if (rest->b[i].family == b->family)
			mc_box_subtract(&rest->b[i], b, &out);
		else
			mc_boxes_push(&out, &rest->b[i]);
	mc_boxes_free(rest);
	*rest = out;
}

static void addr_span_text(const struct mc_addr *lo, const struct mc_addr *hi, struct mc_buf *out)
{
	char a[64], b[64];
	struct mc_range all = mc_range_all(lo->family);

	if (mc_addr_to_u128(lo) == all.lo && mc_addr_to_u128(hi) == all.hi)
		mc_buf_puts(out, lo->family == AF_INET ? "any (IPv4)" : "any");
	else if (mc_addr_eq(lo, hi))
		mc_buf_puts(out, mc_addr_str(lo, a, sizeof(a)));
	else
		mc_buf_printf(out, "%s-%s", mc_addr_str(lo, a, sizeof(a)), mc_addr_str(hi, b, sizeof(b)));
}

static void value_text(const char *label, unsigned lo, unsigned hi, struct mc_buf *out)
{
	if (lo == hi)
		mc_buf_printf(out, " %s %u", label, lo);
	else
		mc_buf_printf(out, " %s %u-%u", label, lo, hi);
}

/* "local fec0::1 remote any remote port 20-21": the sub-range a mismatch is about. */
static void cell_text(const struct mc_query *q, const struct mc_result *r, struct mc_buf *out)
{
	bool icmp = mc_proto_is_icmp(q->proto), ports = mc_proto_has_ports(q->proto);

	mc_buf_puts(out, "local ");
	addr_span_text(&r->local_addr_lo, &r->local_addr_hi, out);
	mc_buf_puts(out, " remote ");
	addr_span_text(&r->remote_addr_lo, &r->remote_addr_hi, out);
	if (icmp) {
		value_text("icmp type", r->local_lo, r->local_hi, out);
		value_text("code", r->remote_lo, r->remote_hi, out);
	} else if (ports) {
		value_text("local port", r->local_lo, r->local_hi, out);
		value_text("remote port", r->remote_lo, r->remote_hi, out);
	}
}

size_t mc_test_check_cell(const struct mc_suite_test *t, const struct mc_test_queries *expect_q,
			  const struct mc_query *q, const struct mc_result *r, struct mc_buf *out)
{
	size_t bad = 0, met = 0;
	struct mc_boxes rest = { 0 }; /* the cell's flows no expectation has covered yet */
	struct mc_box whole = cell_box(r);

	mc_boxes_push(&rest, &whole);
	for (size_t i = 0; i < t->nexpect; i++) {
		const struct mc_test_expect *e = &t->expect[i];
		bool meets = false;

		for (size_t k = 0; k < expect_q[i].n; k++) {
			struct mc_box eb = query_box(&expect_q[i].q[k]), common;
			if (mc_box_intersect(&whole, &eb, &common)) {
				meets = true;
				subtract_all(&rest, &eb);
			}
		}
		if (!meets)
			continue;
		met++;
		int want = result_of(e->result);
		bool first_ok = !e->first_match ||
				(r->first ? !strcasecmp(e->first_match, r->first) : !strcasecmp(e->first_match, "none"));
		if (want == (int)r->result && first_ok)
			continue;
		bad++;
		mc_buf_printf(out, "  test %s, ", t->name);
		cell_text(q, r, out);
		mc_buf_printf(out, ": expected %s", mc_action_str((enum mc_action)want));
		if (e->first_match)
			mc_buf_printf(out, " (first match %s)", e->first_match);
		mc_buf_printf(out, ", got %s (first match %s) [expect at line %d]\n", mc_action_str(r->result),
			      r->first ? r->first : "none", e->loc.line);
	}
	if (rest.n) {
		/* Name the first part left over: a new split of the traffic is a change to look at. */
		struct mc_result part = *r;
		const struct mc_box *x = &rest.b[0];
		mc_addr_from_u128(x->family, x->lo[MC_D_SRC], &part.local_addr_lo);
		mc_addr_from_u128(x->family, x->hi[MC_D_SRC], &part.local_addr_hi);
		mc_addr_from_u128(x->family, x->lo[MC_D_DST], &part.remote_addr_lo);
		mc_addr_from_u128(x->family, x->hi[MC_D_DST], &part.remote_addr_hi);
		part.local_lo = (unsigned)x->lo[MC_D_SPORT];
		part.local_hi = (unsigned)x->hi[MC_D_SPORT];
		part.remote_lo = (unsigned)x->lo[MC_D_DPORT];
		part.remote_hi = (unsigned)x->hi[MC_D_DPORT];
		bad++;
		mc_buf_printf(out, "  test %s, ", t->name);
		cell_text(q, &part, out);
		mc_buf_printf(out, ": no expectation covers it%s; got %s (first match %s)\n",
			      met ? " (only part of the sub-range is expected)" : "", mc_action_str(r->result),
			      r->first ? r->first : "none");
	}
	mc_boxes_free(&rest);
	return bad;
}

void mc_suite_prepared_free(struct mc_test_queries *expect_q, size_t n)
{
	for (size_t i = 0; expect_q && i < n; i++)
		mc_test_queries_free(&expect_q[i]);
	free(expect_q);
}
