/* SPDX-License-Identifier: MIT */
/* Flow space: box difference checked point by point in a small universe, and first-match
 * partitions checked flow by flow against the model's first-match oracle. */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/flowspace.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "randsite.h"
#include "t.h"

#define SMALL 6 /* every dimension 0..5 in the difference test */

static struct mc_box small_box(void)
{
	struct mc_box b = { .family = AF_INET };
	for (int d = 0; d < MC_NDIM; d++) {
		unsigned x = rnd(SMALL), y = rnd(SMALL);
		b.lo[d] = x < y ? x : y;
		b.hi[d] = x < y ? y : x;
	}
	return b;
}

static bool box_has(const struct mc_box *b, const unsigned *p)
{
	for (int d = 0; d < MC_NDIM; d++)
		if (p[d] < b->lo[d] || p[d] > b->hi[d])
			return false;
	return true;
}

static void test_subtract(void)
{
	long points = 0, bad = 0, escaped = 0, maxpieces = 0;

	for (int round = 0; round < 300; round++) {
		struct mc_box a = small_box(), b = small_box();
		struct mc_boxes out = { 0 };
		unsigned p[MC_NDIM];

		mc_box_subtract(&a, &b, &out);
		if ((long)out.n > maxpieces)
			maxpieces = (long)out.n;
		for (size_t i = 0; i < out.n; i++) {
			struct mc_box x;
			/* every piece lies in a and outside b */
			if (!mc_box_intersect(&out.b[i], &a, &x) || memcmp(x.lo, out.b[i].lo, sizeof(x.lo)) ||
			    memcmp(x.hi, out.b[i].hi, sizeof(x.hi)) ||
			    mc_box_intersect(&out.b[i], &b, NULL))
				escaped++;
		}
		for (p[0] = 0; p[0] < SMALL; p[0]++)
			for (p[1] = 0; p[1] < SMALL; p[1]++)
				for (p[2] = 0; p[2] < SMALL; p[2]++)
					for (p[3] = 0; p[3] < SMALL; p[3]++)
						for (p[4] = 0; p[4] < SMALL; p[4]++) {
							int hits = 0;
							if (!box_has(&a, p))
								continue;
							for (size_t i = 0; i < out.n; i++)
								hits += box_has(&out.b[i], p);
							points++;
							bad += hits != (box_has(&b, p) ? 0 : 1);
						}
		mc_boxes_free(&out);
	}
	T_OK(points > 10000, "difference: %ld points of a checked", points);
	T_EQ_INT(bad, 0, "difference: each point of a - b is in exactly one piece, points of b in none");
	T_EQ_INT(escaped, 0, "difference: pieces lie inside a and outside b");
	T_OK(maxpieces <= 2 * MC_NDIM, "difference: at most %d pieces (saw %ld)", 2 * MC_NDIM, maxpieces);
}

static void test_realizable(void)
{
	struct mc_box all = mc_box_all(AF_INET6);
	struct mc_boxes out = { 0 };
	bool tcp_port0 = false, gre_port1 = false, icmp_type255 = false, icmp_type256 = false;
	unsigned tcp0[MC_NDIM] = { 0, 0, 6, 0, 80 }, gre1[MC_NDIM] = { 0, 0, 47, 1, 0 };
	unsigned i255[MC_NDIM] = { 0, 0, 58, 255, 0 }, i256[MC_NDIM] = { 0, 0, 58, 256, 0 };

	mc_box_realizable(&all, &out);
	for (size_t i = 0; i < out.n; i++) {
		tcp_port0 |= box_has(&out.b[i], tcp0);
		gre_port1 |= box_has(&out.b[i], gre1);
		icmp_type255 |= box_has(&out.b[i], i255);
		icmp_type256 |= box_has(&out.b[i], i256);
	}
	T_OK(!tcp_port0 && !gre_port1 && icmp_type255 && !icmp_type256,
	     "realizable: no tcp port 0, no ports for gre, ICMPv6 types 0-255 only");
	mc_boxes_free(&out);
}

/* Every flow of the query box, as (remote, local port, remote port), against the oracle. */
static void test_partition(void)
{
	char path[] = "/tmp/mcpsec-flowspace-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	long flows = 0, wrong = 0, uncovered = 0, sites = 0, failed = 0;
	static const char *remote_all[] = { "fec0::", "fec0::2", "fec0::3", "fec0::4", "fec0::5", "fec0::9" };

	close(fd);
	for (int round = 0; round < 14; round++) {
		struct mc_diags ds;
		struct mc_site *s;
		struct mc_plan plan;
		struct mc_porder order;
		if (!random_site(path, 2 + (int)rnd(12), &ds, &s, &plan))
			continue;
		sites++;
		mc_porder_build(&plan, &order);
		for (int q = 0; q < 4; q++) {
			struct mc_query fq = { .proto = q & 1 ? MC_PROTO_UDP : MC_PROTO_TCP,
					       .dir = q & 2 ? MC_DIR_IN : MC_DIR_OUT };
			struct mc_box box = mc_box_all(AF_INET6);
			struct mc_pieces pc = { 0 };
			mc_addr_parse("fec0::1", &fq.local);
			int ls = fq.dir == MC_DIR_OUT ? MC_D_SRC : MC_D_DST;
			box.lo[ls] = box.hi[ls] = mc_addr_to_u128(&fq.local);
			box.lo[MC_D_PROTO] = box.hi[MC_D_PROTO] = (mc_u128)fq.proto;
			box.lo[MC_D_SPORT] = box.lo[MC_D_DPORT] = 1;
			box.hi[MC_D_SPORT] = box.hi[MC_D_DPORT] = 90;
			failed += mc_partition(&plan, &order, fq.dir, &box, 1, UINT32_MAX, 100000, &pc) != 0;
			for (size_t ra = 0; ra < MC_ARRAY_SIZE(remote_all); ra++)
				for (unsigned lp = 1; lp <= 90; lp++)
					for (unsigned rp = 1; rp <= 90; rp++) {
						unsigned pt[MC_NDIM];
						struct mc_addr rem;
						int hits = 0;
						const struct mc_piece *hit = NULL;
						mc_addr_parse(remote_all[ra], &rem);
						fq.remote = rem;
						pt[MC_D_PROTO] = (unsigned)fq.proto;
						for (size_t i = 0; i < pc.n; i++) {
							const struct mc_box *b = &pc.p[i].box;
							mc_u128 lv = mc_addr_to_u128(&fq.local), rv = mc_addr_to_u128(&rem);
							mc_u128 src = fq.dir == MC_DIR_OUT ? lv : rv, dst = fq.dir == MC_DIR_OUT ? rv : lv;
							pt[MC_D_SPORT] = fq.dir == MC_DIR_OUT ? lp : rp;
							pt[MC_D_DPORT] = fq.dir == MC_DIR_OUT ? rp : lp;
							if (src < b->lo[MC_D_SRC] || src > b->hi[MC_D_SRC] || dst < b->lo[MC_D_DST] ||
							    dst > b->hi[MC_D_DST] || pt[MC_D_PROTO] < b->lo[MC_D_PROTO] ||
							    pt[MC_D_PROTO] > b->hi[MC_D_PROTO] || pt[MC_D_SPORT] < b->lo[MC_D_SPORT] ||
							    pt[MC_D_SPORT] > b->hi[MC_D_SPORT] || pt[MC_D_DPORT] < b->lo[MC_D_DPORT] ||
							    pt[MC_D_DPORT] > b->hi[MC_D_DPORT])
								continue;
							hits++;
							hit = &pc.p[i];
						}
						flows++;
						if (hits != 1) {
							uncovered++;
							continue;
						}
						const char *want = oracle(s, &fq, lp, rp);
						const char *got = hit->rule == SIZE_MAX ? "(none)" : plan.rules[hit->rule].name;
						wrong += strcmp(want, got) != 0;
					}
			mc_pieces_free(&pc);
		}
		mc_porder_free(&order);
		mc_plan_free(&plan);
		mc_site_free(s);
		mc_diags_free(&ds);
	}
	unlink(path);
	T_OK(sites >= 10, "partition: %ld random sites compiled", sites);
	T_OK(flows > 300000, "partition: %ld flows checked", flows);
	T_EQ_INT(failed, 0, "partition: no query hit the size limit");
	T_EQ_INT(uncovered, 0, "partition: every flow lies in exactly one piece");
	T_EQ_INT(wrong, 0, "partition: each piece's rule is the oracle's first match for every flow in it");
}

static void test_text(void)
{
	struct mc_box b = mc_box_all(AF_INET6);
	struct mc_buf out = { 0 };
	struct mc_addr a;

	mc_addr_parse("fec0::127", &a);
	b.lo[MC_D_DST] = b.hi[MC_D_DST] = mc_addr_to_u128(&a);
	b.lo[MC_D_PROTO] = b.hi[MC_D_PROTO] = 6;
	b.lo[MC_D_SPORT] = 1;
	b.lo[MC_D_DPORT] = 20;
	b.hi[MC_D_DPORT] = 21;
	mc_box_str(&b, &out);
	T_EQ_STR(mc_buf_str(&out), "tcp any port any -> fec0::127 port 20-21", "box text: tcp to a host's ports");
	mc_buf_free(&out);
	struct mc_box r = mc_box_reverse(&b);
	mc_box_str(&r, &out);
	T_EQ_STR(mc_buf_str(&out), "tcp fec0::127 port 20-21 -> any port any", "reverse swaps addresses and ports");
	mc_buf_free(&out);
}

int main(void)
{
	test_subtract();
	test_realizable();
	test_partition();
	test_text();
	return t_done();
}
