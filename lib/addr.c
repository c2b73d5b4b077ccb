/* SPDX-License-Identifier: MIT */
/* Address parsing and minimal prefix / value-mask covers of ranges. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "util.h"

unsigned mc_family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

mc_u128 mc_addr_to_u128(const struct mc_addr *a)
{
	mc_u128 v = 0;
	unsigned n = a->family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | a->a[i];
	return v;
}

void mc_addr_from_u128(int family, mc_u128 v, struct mc_addr *ret)
{
	unsigned n = family == AF_INET ? 4 : 16;

	memset(ret, 0, sizeof(*ret));
	ret->family = (uint8_t)family;
	for (unsigned i = n; i-- > 0;) {
		ret->a[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

bool mc_addr_parse(const char *s, struct mc_addr *ret)
{
	struct mc_addr a = { 0 };

	if (inet_pton(AF_INET, s, a.a) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.a) == 1)
		a.family = AF_INET6;
	else
		return false;
	*ret = a;
	return true;
}

const char *mc_addr_str(const struct mc_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, a->a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

void mc_prefix_str(const struct mc_prefix *p, char *buf, size_t len)
{
	char a[64];

	snprintf(buf, len, "%s/%u", mc_addr_str(&p->addr, a, sizeof(a)), p->plen);
}

bool mc_addr_eq(const struct mc_addr *a, const struct mc_addr *b)
{
	return a->family == b->family && !memcmp(a->a, b->a, 16);
}

bool mc_addr_unmap(struct mc_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (a->family != AF_INET6 || memcmp(a->a, mapped, 12))
		return false;
	memmove(a->a, a->a + 12, 4);
	memset(a->a + 4, 0, 12);
	a->family = AF_INET;
	return true;
}

bool mc_addr_is_any(const struct mc_addr *a)
{
	static const uint8_t zero[16];

	return !memcmp(a->a, zero, 16);
}

static mc_u128 low_mask(unsigned bits)
{
	return bits >= 128 ? ~(mc_u128)0 : (((mc_u128)1 << bits) - 1);
}

struct mc_range mc_range_all(int family)
{
	return (struct mc_range){ .family = (uint8_t)family, .lo = 0,
				  .hi = low_mask(mc_family_bits(family)) };
}

bool mc_range_is_host(const struct mc_range *r)
{
	return r->lo == r->hi;
}

bool mc_range_parse(const char *s, struct mc_range *ret, const char **ret_err)
{
	char tmp[128];
	char *sep;
	struct mc_addr a, b;

	if (strlen(s) >= sizeof(tmp)) {
		*ret_err = "address too long";
		return false;
	}
	strcpy(tmp, s);
	if ((sep = strchr(tmp, '/'))) {
		uint32_t plen;

		*sep = '\0';
		if (!mc_addr_parse(tmp, &a)) {
			*ret_err = "not an IPv4 or IPv6 address";
			return false;
		}
		if (!mc_parse_u32(sep + 1, mc_family_bits(a.family), &plen) || strchr(sep + 1, 'x')) {
			*ret_err = "bad prefix length";
			return false;
		}
		unsigned host = mc_family_bits(a.family) - plen;
		mc_u128 v = mc_addr_to_u128(&a);
		if (v & low_mask(host)) {
			*ret_err = "prefix has host bits set";
			return false;
		}
		*ret = (struct mc_range){ a.family, v, v | low_mask(host) };
		return true;
	}
	/* "A-B": '-' never occurs inside an IPv4 or IPv6 address. */
	if ((sep = strchr(tmp, '-'))) {
		*sep = '\0';
		if (!mc_addr_parse(tmp, &a) || !mc_addr_parse(sep + 1, &b)) {
			*ret_err = "not an address range A-B";
			return false;
		}
		if (a.family != b.family) {
			*ret_err = "range mixes IPv4 and IPv6";
			return false;
		}
		mc_u128 lo = mc_addr_to_u128(&a), hi = mc_addr_to_u128(&b);
		if (lo > hi) {
			*ret_err = "range start is above its end";
			return false;
		}
		*ret = (struct mc_range){ a.family, lo, hi };
		return true;
	}
	if (!mc_addr_parse(tmp, &a)) {
		*ret_err = "not an IPv4 or IPv6 address";
		return false;
	}
	mc_u128 v = mc_addr_to_u128(&a);
	*ret = (struct mc_range){ a.family, v, v };
	return true;
}

/*
 * Greedy minimal cover: from lo, take the largest aligned block that starts at lo and does not
 * pass hi. This is the classic range-to-CIDR walk, minimal for a single interval.
 */
size_t mc_blocks(mc_u128 lo, mc_u128 hi, unsigned width,
		 void (*emit)(void *ctx, const struct mc_block *b), void *ctx)
{
	size_t n = 0;

	for (;;) {
		unsigned size = 0; /* log2 of the block size */

		while (size < width) {
			mc_u128 m = low_mask(size + 1);
			if ((lo & m) != 0 || lo + m > hi || lo + m < lo)
				break;
			size++;
		}
		struct mc_block b = { lo, width - size };
		if (emit)
			emit(ctx, &b);
		n++;
		mc_u128 last = lo + low_mask(size);
		if (last >= hi)
			break;
		lo = last + 1;
	}
	return n;
}

static int cmp_range(const void *a, const void *b)
{
	const struct mc_range *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

size_t mc_ranges_merge(struct mc_range *r, size_t n)
{
	size_t out = 0;

	if (!n)
		return 0;
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 1; i < n; i++) {
		struct mc_range *cur = &r[out];
		if (r[i].family == cur->family &&
		    (r[i].lo <= cur->hi || (cur->hi != ~(mc_u128)0 && r[i].lo == cur->hi + 1))) {
			if (r[i].hi > cur->hi)
				cur->hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

struct prefix_sink {
	int family;
	struct mc_prefix **v;
	size_t *n, *cap;
};

static void emit_prefix(void *ctx, const struct mc_block *b)
{
	struct prefix_sink *s = ctx;
	struct mc_prefix *p = MC_PUSH(s->v, s->n, s->cap);

	mc_addr_from_u128(s->family, b->value, &p->addr);
	p->plen = (uint8_t)b->plen;
}

void mc_ranges_to_prefixes(const struct mc_range *r, size_t n, int family, struct mc_prefix **ret,
			   size_t *nret, size_t *cap)
{
	struct prefix_sink s = { family, ret, nret, cap };

	for (size_t i = 0; i < n; i++)
		if (r[i].family == family)
			mc_blocks(r[i].lo, r[i].hi, mc_family_bits(family), emit_prefix, &s);
}

struct port_sink {
	struct mc_portmask *v;
	size_t n, max;
};

static void emit_port(void *ctx, const struct mc_block *b)
{
	struct port_sink *s = ctx;

	if (s->n < s->max)
		s->v[s->n] = (struct mc_portmask){ (uint16_t)b->value,
						   (uint16_t)(b->plen ? 0xffffu << (16 - b->plen) : 0) };
	s->n++;
}

size_t mc_port_blocks(unsigned lo, unsigned hi, struct mc_portmask *ret, size_t max)
{
	struct port_sink s = { ret, 0, max };

	mc_blocks(lo, hi, 16, emit_port, &s);
	return s.n;
}

void mc_range_str(const struct mc_range *r, char *buf, size_t len)
{
	struct mc_addr lo, hi;
	char x[64], y[64];
	mc_u128 size = r->hi - r->lo;

	mc_addr_from_u128(r->family, r->lo, &lo);
	mc_addr_from_u128(r->family, r->hi, &hi);
	mc_addr_str(&lo, x, sizeof(x));
	if (r->lo == r->hi) {
		snprintf(buf, len, "%s", x);
	} else if (((size + 1) & size) == 0 && (r->lo & size) == 0) {
		unsigned plen = mc_family_bits(r->family); /* size + 1 is a power of two (or 2^128) */
		for (mc_u128 v = size; v; v >>= 1)
			plen--;
		snprintf(buf, len, "%s/%u", x, plen);
	} else {
		snprintf(buf, len, "%s-%s", x, mc_addr_str(&hi, y, sizeof(y)));
	}
}
