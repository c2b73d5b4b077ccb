/* SPDX-License-Identifier: MIT */
/* Range and port decomposition against a brute-force oracle, and address parsing. */
#include <sys/socket.h>

#include "../../lib/addr.h"
#include "../../lib/util.h"
#include "t.h"

/* Oracle: the minimal number of aligned blocks covering [lo, hi] is found by walking the binary
 * trie of the field: a node fully inside counts 1, a disjoint node 0, else its two halves. */
static unsigned long oracle_count(mc_u128 lo, mc_u128 hi, mc_u128 node_lo, unsigned bits)
{
	mc_u128 node_hi = bits >= 128 ? ~(mc_u128)0 : node_lo + (((mc_u128)1 << bits) - 1);
	if (node_hi < lo || node_lo > hi)
		return 0;
	if (node_lo >= lo && node_hi <= hi)
		return 1;
	return oracle_count(lo, hi, node_lo, bits - 1) +
	       oracle_count(lo, hi, node_lo + ((mc_u128)1 << (bits - 1)), bits - 1);
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xffffff;
}

static void check_ports(unsigned lo, unsigned hi, int *bad_cover, int *bad_min, int *bad_overlap)
{
	struct mc_portmask v[64];
	size_t n = mc_port_blocks(lo, hi, v, 64);
	static unsigned char hit[65536];

	memset(hit, 0, sizeof(hit));
	for (size_t i = 0; i < n; i++)
		for (unsigned p = 0; p < 65536; p++)
			if ((p & v[i].mask) == v[i].value) {
				if (hit[p])
					(*bad_overlap)++;
				hit[p] = 1;
			}
	for (unsigned p = 0; p < 65536; p++)
		if (hit[p] != (p >= lo && p <= hi))
			(*bad_cover)++;
	if (n != oracle_count(lo, hi, 0, 16))
		(*bad_min)++;
}

struct collect {
	struct mc_block b[300];
	size_t n;
};

static void collect(void *ctx, const struct mc_block *b)
{
	struct collect *c = ctx;
	if (c->n < 300)
		c->b[c->n++] = *b;
}

int main(void)
{
	unsigned seed = 42;
	int bad_cover = 0, bad_min = 0, bad_overlap = 0;

	/* Ports: exhaustive membership for 300 random ranges plus the edges. */
	unsigned edges[][2] = { { 0, 65535 }, { 1, 65535 }, { 1, 65534 }, { 20, 21 }, { 1024, 65535 },
				{ 0, 0 }, { 65535, 65535 }, { 1, 1023 } };
	for (size_t i = 0; i < MC_ARRAY_SIZE(edges); i++)
		check_ports(edges[i][0], edges[i][1], &bad_cover, &bad_min, &bad_overlap);
	for (int i = 0; i < 300; i++) {
		unsigned a = rnd(&seed) & 0xffff, b = rnd(&seed) & 0xffff;
		check_ports(a < b ? a : b, a < b ? b : a, &bad_cover, &bad_min, &bad_overlap);
	}
	T_EQ_INT(bad_cover, 0, "port blocks cover exactly the range (308 ranges, every port checked)");
	T_EQ_INT(bad_overlap, 0, "port blocks never overlap");
	T_EQ_INT(bad_min, 0, "port block count equals the trie oracle's minimum");

	struct mc_portmask v[64];
	T_EQ_INT(mc_port_blocks(1, 65535, v, 64), 16, "1-65535 needs 16 blocks");
	T_EQ_INT(mc_port_blocks(1, 65534, v, 64), 30, "1-65534 is the 30-block worst case");
	T_EQ_INT(mc_port_blocks(20, 21, v, 64), 1, "20-21 is one block");
	T_OK(v[0].value == 20 && v[0].mask == 0xfffe, "20-21 is 20/0xfffe");

	/* IPv4 ranges: compare to the oracle and check edges of each prefix. */
	int v4bad = 0;
	for (int i = 0; i < 2000; i++) {
		uint32_t a = (uint32_t)rnd(&seed) << 8 ^ rnd(&seed), b = a + (rnd(&seed) % 100000);
		if (b < a)
			b = UINT32_MAX;
		struct collect c = { .n = 0 };
		size_t n = mc_blocks(a, b, 32, collect, &c);
		if (n != oracle_count(a, b, 0, 32))
			v4bad++;
		/* Contiguous and exact: each block starts where the previous ended. */
		mc_u128 next = a;
		for (size_t k = 0; k < c.n; k++) {
			mc_u128 size = (mc_u128)1 << (32 - c.b[k].plen);
			if (c.b[k].value != next || (c.b[k].value & (size - 1)))
				v4bad++;
			next = c.b[k].value + size;
		}
		if (next != (mc_u128)b + 1)
			v4bad++;
	}
	T_EQ_INT(v4bad, 0, "2000 random IPv4 ranges: minimal, aligned, contiguous, exact");

	int v6bad = 0;
	for (int i = 0; i < 300; i++) {
		mc_u128 a = ((mc_u128)rnd(&seed) << 100) | ((mc_u128)rnd(&seed) << 40) | rnd(&seed);
		mc_u128 b = a + ((mc_u128)rnd(&seed) << (rnd(&seed) % 90)) + rnd(&seed);
		if (b < a)
			continue;
		size_t n = mc_blocks(a, b, 128, NULL, NULL);
		if (n != oracle_count(a, b, 0, 128))
			v6bad++;
	}
	T_EQ_INT(v6bad, 0, "300 random IPv6 ranges: block count equals the oracle");
	T_EQ_INT(mc_blocks(0, ~(mc_u128)0, 128, NULL, NULL), 1, "all of IPv6 is one block (::/0)");

	struct mc_range r;
	const char *err = NULL;
	T_OK(mc_range_parse("10.0.0.1-10.0.0.254", &r, &err) && mc_blocks(r.lo, r.hi, 32, NULL, NULL) == 14,
	     "10.0.0.1-10.0.0.254 is 14 prefixes");
	T_OK(mc_range_parse("2001:db8::1-2001:db8::ffff", &r, &err) && mc_blocks(r.lo, r.hi, 128, NULL, NULL) == 16,
	     "2001:db8::1-2001:db8::ffff is 16 prefixes");
	T_OK(!mc_range_parse("10.0.0.1/24", &r, &err) && !strcmp(err, "prefix has host bits set"),
	     "10.0.0.1/24 is refused: host bits set");
	T_OK(!mc_range_parse("10.0.0.9-10.0.0.1", &r, &err) && !strcmp(err, "range start is above its end"),
	     "reversed range is refused");
	T_OK(!mc_range_parse("10.0.0.1-::1", &r, &err) && !strcmp(err, "range mixes IPv4 and IPv6"),
	     "mixed-family range is refused");
	T_OK(!mc_range_parse("fec0::/129", &r, &err) && !strcmp(err, "bad prefix length"), "/129 is refused");
	T_OK(mc_range_parse("FEC0::2222:A00:BFF:FE3A:100", &r, &err) && r.family == AF_INET6 && r.lo == r.hi,
	     "upper-case IPv6 host parses");

	struct mc_range m[4];
	mc_range_parse("10.0.0.0/25", &m[0], &err);
	mc_range_parse("10.0.0.128/25", &m[1], &err);
	mc_range_parse("fec0::1", &m[2], &err);
	mc_range_parse("10.0.0.5", &m[3], &err);
	size_t n = mc_ranges_merge(m, 4);
	T_EQ_INT(n, 2, "adjacent and contained ranges merge; families stay apart");
	struct mc_prefix *p = NULL;
	size_t np = 0, cap = 0;
	mc_ranges_to_prefixes(m, n, AF_INET, &p, &np, &cap);
	char buf[64];
	if (np)
		mc_prefix_str(&p[0], buf, sizeof(buf));
	T_OK(np == 1 && !strcmp(buf, "10.0.0.0/24"), "two /25 halves become one /24");
	free(p);
	return t_done();
}
