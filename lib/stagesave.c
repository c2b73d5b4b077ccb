/* SPDX-License-Identifier: MIT */
/*
 * A staged list's table kept across a restart of mcpsecd (stage.h: mc_stage_save, load). Text,
 * one record a line, every field checked on the way back in: the file is mcpsecd's own, but
 * it lies in a directory that can be damaged in any way, so nothing of it is trusted.
 *
 *   mcpsec-staged-table 1
 *   lists STAGED-GEN ENFORCED-GEN
 *   since EPOCH
 *   evicted N
 *   unattributed PACKETS BYTES                  (a balance: may be negative)
 *   change NAME FLOWS PACKETS BYTES             (each change, in mc_change_str's order)
 *   flow DIR INNER FAMILY PROTO SRC PLEN SPORT MASK DST PLEN DPORT MASK PACKETS BYTES FIRST LAST
 *        E-ACTION E-POLICY E-SAPROTO E-SPI S-ACTION S-POLICY S-SAPROTO S-SPI   (one line; newest first)
 *   end FLOWS SHA256                            (the SHA-256 of every line before it)
 *
 * Names are written with every byte but [A-Za-z0-9_.-] as %XX, the empty name as "%".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "crypto.h"
#include "stage.h"
#include "util.h"

#define MAGIC_WORD "mcpsec-staged-table"
#define MAGIC_VERSION "1"

static void put_name(struct mc_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char out[3 * 80 + 2], *o = out;

	*o++ = ' ';
	if (!*s)
		*o++ = '%';
	for (const unsigned char *p = (const unsigned char *)s; *p && o < out + sizeof(out) - 4; p++) {
		bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			     *p == '_' || *p == '.' || *p == '-';
		if (plain) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	mc_buf_puts(b, out);
}

static void put_decision(struct mc_buf *b, const struct mc_decision *d)
{
	mc_buf_printf(b, " %d", (int)d->action);
	put_name(b, d->policy);
	mc_buf_printf(b, " %u %" PRIu32, (unsigned)d->sa_proto, d->spi);
}

static void put_flow(struct mc_buf *b, const struct mc_sflow *e)
{
	const struct mc_sel *f = &e->s.flow;
	char src[64], dst[64];

	mc_buf_printf(b, "flow %s %d %d %u %s %u %u %u %s %u %u %u %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64,
		      e->s.dir == MC_DIR_IN ? "in" : "out", e->s.inner ? 1 : 0, f->family == AF_INET ? 4 : 6,
		      (unsigned)f->proto, mc_addr_str(&f->saddr, src, sizeof(src)), (unsigned)f->plen_s,
		      (unsigned)f->sport, (unsigned)f->sport_mask, mc_addr_str(&f->daddr, dst, sizeof(dst)),
		      (unsigned)f->plen_d, (unsigned)f->dport, (unsigned)f->dport_mask, e->s.packets, e->s.bytes,
		      e->s.first, e->s.last);
	put_decision(b, &e->enforced);
	put_decision(b, &e->staged);
	mc_buf_puts(b, "\n");
}

void mc_stage_save(const struct mc_stage *t, const char *staged_gen, const char *enforced_gen, size_t max,
		   struct mc_buf *b)
{
	size_t start = b->len;
	mc_buf_puts(b, MAGIC_WORD " " MAGIC_VERSION "\nlists");
	put_name(b, staged_gen);
	put_name(b, enforced_gen);
	mc_buf_printf(b, "\nsince %" PRId64 "\nevicted %" PRIu64 "\nunattributed %" PRId64 " %" PRId64 "\n", t->since,
		      t->evicted, t->unattributed_packets, t->unattributed_bytes);
	for (int c = 0; c < MC_CHANGE_N; c++)
		mc_buf_printf(b, "change %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", mc_change_str((enum mc_change)c),
			      t->flows[c], t->packets[c], t->bytes[c]);
	/* room for the last line, whatever the flows take */
	size_t n = 0, room = max > 128 ? start + max - 128 : start;
	for (uint32_t i = t->newest; i != UINT32_MAX; i = t->v[i].older) {
		size_t before = b->len;
		put_flow(b, &t->v[i]);
		if (b->len > room) {
			b->len = before; /* the oldest are left out */
			b->s[before] = '\0';
			break;
		}
		n++;
	}
	char sum[65];
	mc_sha256_hex(b->s + start, b->len - start, sum);
	mc_buf_printf(b, "end %zu %s\n", n, sum);
}

/* ---- reading back ---- */

struct rd {
	char *line; /* the current line, cut into tokens */
	char *tok[32];
	int ntok;
	char *why;
	size_t why_len;
	unsigned lineno;
};

static int bad(struct rd *r, const char *what)
{
	if (r->lineno)
		snprintf(r->why, r->why_len, "line %u: %s", r->lineno, what);
	else
		snprintf(r->why, r->why_len, "%s", what);
	return -EINVAL;
}

/* Cuts the next line (ending in a newline) of *p into tokens at single spaces. */
static bool next_line(struct rd *r, char **p, char *end)
{
	char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl)
		return false;
	*nl = '\0';
	r->line = *p;
	*p = nl + 1;
	r->lineno++;
	r->ntok = 0;
	for (char *s = r->line;;) {
		if (r->ntok == (int)MC_ARRAY_SIZE(r->tok))
			return true; /* too many: the caller's count check refuses it */
		r->tok[r->ntok++] = s;
		char *sp = strchr(s, ' ');
		if (!sp)
			break;
		*sp = '\0';
		s = sp + 1;
	}
	return true;
}

static bool is_line(const struct rd *r, const char *word, int ntok)
{
	return r->ntok == ntok && !strcmp(r->tok[0], word);
}

static bool i64_of(const char *s, int64_t *v)
{
	uint64_t x;
	if (*s == '-') {
		if (!mc_parse_u64(s + 1, (uint64_t)INT64_MAX, &x) || !x)
			return false;
		*v = -(int64_t)x;
		return true;
	}
	if (!mc_parse_u64(s, (uint64_t)INT64_MAX, &x))
		return false;
	*v = (int64_t)x;
	return true;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A name as put_name wrote it, into out (len bytes, NUL included). */
static bool name_of(const char *s, char *out, size_t len)
{
	size_t n = 0;

	if (!strcmp(s, "%")) {
		out[0] = '\0';
		return true;
	}
	for (; *s; s++) {
		char c = *s;
		if (c == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return false;
			c = (char)(hi << 4 | lo);
			s += 2;
		} else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			     c == '.' || c == '-')) {
			return false;
		}
		if (n + 1 >= len)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0;
}

static bool decision_of(char **tok, struct mc_decision *d)
{
	uint64_t action, proto, spi;

	memset(d, 0, sizeof(*d));
	if (!mc_parse_u64(tok[0], MC_PROTECT, &action) || !name_of(tok[1], d->policy, sizeof(d->policy)) ||
	    !mc_parse_u64(tok[2], 255, &proto) || !mc_parse_u64(tok[3], UINT32_MAX, &spi))
		return false;
	d->action = (enum mc_action)action;
	d->sa_proto = (uint8_t)proto;
	d->spi = (uint32_t)spi;
	return true;
}

/* One side of a selector: an address of the family, its prefix, a port and its mask. */
static bool side_of(char **tok, int family, struct mc_addr *a, uint8_t *plen, uint16_t *port, uint16_t *mask)
{
	uint64_t p, v, m;

	if (!mc_addr_parse(tok[0], a) || a->family != family || !mc_parse_u64(tok[1], mc_family_bits(family), &p) ||
	    !mc_parse_u64(tok[2], 65535, &v) || !mc_parse_u64(tok[3], 65535, &m))
		return false;
	*plen = (uint8_t)p;
	*port = (uint16_t)v;
	*mask = (uint16_t)m;
	return true;
}

#define FLOW_TOKENS 25

static bool flow_of(struct rd *r, struct mc_sflow *e)
{
	char **t = r->tok;
	uint64_t inner, fam, proto;
	struct mc_sel *f = &e->s.flow;

	memset(e, 0, sizeof(*e));
	if (!is_line(r, "flow", FLOW_TOKENS))
		return false;
	if (!strcmp(t[1], "in"))
		e->s.dir = MC_DIR_IN;
	else if (!strcmp(t[1], "out"))
		e->s.dir = MC_DIR_OUT;
	else
		return false;
	if (!mc_parse_u64(t[2], 1, &inner) || !mc_parse_u64(t[3], 6, &fam) || (fam != 4 && fam != 6) || !mc_parse_u64(t[4], 255, &proto))
		return false;
	e->s.inner = inner;
	f->family = fam == 4 ? AF_INET : AF_INET6;
	f->proto = (uint8_t)proto;
	return side_of(&t[5], f->family, &f->saddr, &f->plen_s, &f->sport, &f->sport_mask) &&
	       side_of(&t[9], f->family, &f->daddr, &f->plen_d, &f->dport, &f->dport_mask) &&
	       mc_parse_u64(t[13], UINT64_MAX, &e->s.packets) && mc_parse_u64(t[14], UINT64_MAX, &e->s.bytes) &&
	       i64_of(t[15], &e->s.first) && i64_of(t[16], &e->s.last) && decision_of(&t[17], &e->enforced) &&
	       decision_of(&t[21], &e->staged);
}

static int parse(struct mc_stage *tmp, char *p, char *end, const char *staged_gen, const char *enforced_gen,
		 struct rd *r, const char *orig)
{
	const char *begin = p;
	char a[80], b[80];
	uint64_t v[3], n = 0;

	if (!next_line(r, &p, end) || !is_line(r, MAGIC_WORD, 2) || strcmp(r->tok[1], MAGIC_VERSION))
		return bad(r, "not a staged table (no '" MAGIC_WORD " " MAGIC_VERSION "' line)");
	if (!next_line(r, &p, end) || !is_line(r, "lists", 3) || !name_of(r->tok[1], a, sizeof(a)) ||
	    !name_of(r->tok[2], b, sizeof(b)))
		return bad(r, "malformed 'lists' line");
	if (strcmp(a, staged_gen) || strcmp(b, enforced_gen))
		return -ESTALE;
	if (!next_line(r, &p, end) || !is_line(r, "since", 2) || !i64_of(r->tok[1], &tmp->since))
		return bad(r, "malformed 'since' line");
	if (!next_line(r, &p, end) || !is_line(r, "evicted", 2) || !mc_parse_u64(r->tok[1], UINT64_MAX, &tmp->evicted))
		return bad(r, "malformed 'evicted' line");
	if (!next_line(r, &p, end) || !is_line(r, "unattributed", 3) || !i64_of(r->tok[1], &tmp->unattributed_packets) ||
	    !i64_of(r->tok[2], &tmp->unattributed_bytes))
		return bad(r, "malformed 'unattributed' line");
	for (int c = 0; c < MC_CHANGE_N; c++) {
		if (!next_line(r, &p, end) || !is_line(r, "change", 5) || strcmp(r->tok[1], mc_change_str((enum mc_change)c)) ||
		    !mc_parse_u64(r->tok[2], UINT64_MAX, &v[0]) || !mc_parse_u64(r->tok[3], UINT64_MAX, &v[1]) ||
		    !mc_parse_u64(r->tok[4], UINT64_MAX, &v[2]))
			return bad(r, "malformed 'change' line");
		tmp->flows[c] = v[0];
		tmp->packets[c] = v[1];
		tmp->bytes[c] = v[2];
	}
	/* Newest first in the file: each put as the oldest would need a table that grows at its
	 * old end, so they are put in reverse, once all are read. */
	struct mc_sflow *fl = NULL;
	size_t nf = 0, cap = 0;
	int ret = 0;
	for (;;) {
		if (!next_line(r, &p, end)) {
			ret = bad(r, "cut short (no 'end' line)");
			break;
		}
		if (!strcmp(r->tok[0], "end")) {
			char sum[65];
			mc_sha256_hex(orig, (size_t)(r->line - begin), sum);
			if (!is_line(r, "end", 3) || !mc_parse_u64(r->tok[1], tmp->max, &n) || n != nf)
				ret = bad(r, "the 'end' line does not count the flows read");
			else if (strcmp(r->tok[2], sum))
				ret = bad(r, "its SHA-256 sum does not match: damaged");
			else if (p != end)
				ret = bad(r, "text after the 'end' line");
			break;
		}
		if (nf == tmp->max) {
			ret = bad(r, "more flows than the table holds");
			break;
		}
		if (!flow_of(r, MC_PUSH(&fl, &nf, &cap))) {
			ret = bad(r, "malformed 'flow' line");
			break;
		}
	}
	for (size_t i = nf; ret == 0 && i-- > 0;)
		if (!mc_stage_put(tmp, &fl[i]))
			ret = bad(r, "a flow is there twice");
	free(fl);
	return ret;
}

int mc_stage_load(struct mc_stage *t, const char *text, size_t len, const char *staged_gen,
		  const char *enforced_gen, char *why, size_t why_len)
{
	struct mc_stage tmp;
	struct rd r = { .why = why, .why_len = why_len };
	char *copy = mc_malloc(len + 1);

	why[0] = '\0';
	memcpy(copy, text, len);
	copy[len] = '\0';
	mc_stage_init(&tmp, t->max, t->since);
	int ret = memchr(copy, '\0', len) ? bad(&r, "a NUL byte")
					   : parse(&tmp, copy, copy + len, staged_gen, enforced_gen, &r, text);
	free(copy);
	if (ret < 0) {
		mc_stage_free(&tmp);
		return ret;
	}
	tmp.last_summary = t->last_summary;
	for (int c = 0; c < MC_CHANGE_N; c++)
		tmp.flows_at_summary += tmp.flows[c];
	mc_stage_free(t);
	*t = tmp;
	return 0;
}
