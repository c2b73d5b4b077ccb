/* SPDX-License-Identifier: MIT */
/* mcpsec test's evaluator against a naive oracle: random ordered policy lists, random flows,
 * every port pair checked against a first-match scan of the model itself. */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/eval.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

#include "randsite.h"

static const char *remote_addr[] = { "fec0::2", "fec0::3", "fec0::4", "fec0::9" };

/* IPv4 through lo: the kernel consults no policy (doc/kernel-notes.md §5), unless lo's
 * sysctls say it does. Under deny, 126.255.255.255-128.0.0.0 splits into three answers. */
static void test_lo4(void)
{
	static const char site[] = "ipsec: {default: deny}\npolicies:\n"
				   "  - {name: NOTCP, direction: out, protocol: tcp, action: discard}\n";
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan;
	struct mc_addr own;
	mc_addr_parse("192.0.2.100", &own);
	struct mc_host host = { .own4 = &own, .nown4 = 1 };

	T_OK(mc_conf_parse("lo4.yaml", site, strlen(site), &ds, &s) == 0 && mc_site_validate(s, &ds) == 0 &&
	     mc_compile(s, &host, &ds, &plan) == 0, "a deny site compiles");
	for (int v = 0; v < 3; v++) {
		struct mc_query q = { .proto = MC_PROTO_TCP, .dir = v == 2 ? MC_DIR_IN : MC_DIR_OUT,
				      .local_lo = 1, .local_hi = 65535, .remote_lo = 1, .remote_hi = 65535 };
		struct mc_results res;
		mc_addr_parse("10.0.0.1", &q.local);
		mc_addr_parse(v == 1 ? "192.0.2.99" : "126.255.255.255", &q.remote);
		mc_addr_parse(v == 1 ? "192.0.2.101" : "128.0.0.0", &q.remote_last);
		mc_eval(&plan, &q, &res);
		T_EQ_INT(res.n, 3, "query %d: three answers (before, through lo, after)", v);
		if (res.n == 3) {
			T_OK(res.r[0].result == MC_DISCARD && res.r[2].result == MC_DISCARD && res.r[0].first,
			     "query %d: outside lo the list decides", v);
			T_OK(res.r[1].result == MC_BYPASS && !res.r[1].first && !res.r[1].nmatching &&
			     strstr(res.r[1].why_none, v == 2 ? "disable_policy" : "disable_xfrm"),
			     "query %d: through lo no policy decides: %s", v, res.r[1].why_none);
		}
		mc_results_free(&res);
	}
	/* lo's sysctls at 0: the kernel checks lo too, and so does the answer. */
	host.lo4_xfrm_out = true;
	mc_plan_set_lo4(&plan, &host);
	struct mc_query q = { .proto = MC_PROTO_TCP, .dir = MC_DIR_OUT, .local_lo = 1, .local_hi = 65535,
			      .remote_lo = 1, .remote_hi = 65535 };
	struct mc_results res;
	mc_addr_parse("127.0.0.1", &q.local);
	mc_addr_parse("127.0.0.1", &q.remote);
	mc_eval(&plan, &q, &res);
	T_OK(res.n == 1 && res.r[0].result == MC_DISCARD && res.r[0].first && !strcmp(res.r[0].first, "NOTCP"),
	     "with lo's disable_xfrm off, IPv4 to 127.0.0.1 meets the list");
	mc_results_free(&res);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
}

int main(void)
{
	char path[] = "/tmp/mcpsec-eval-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	long points = 0, wrong = 0, not_covered = 0, not_maximal = 0, sites = 0;

	T_OK(fd >= 0, "temporary site file");
	close(fd);
	test_lo4();
	for (int round = 0; round < 60; round++) {
		struct mc_diags ds;
		struct mc_site *s;
		struct mc_plan plan;
		if (!random_site(path, 2 + (int)rnd(12), &ds, &s, &plan))
			continue;
		sites++;
		for (int k = 0; k < 10; k++) {
			struct mc_query q = { 0 };
			q.proto = rnd(2) ? MC_PROTO_TCP : MC_PROTO_UDP;
			q.dir = rnd(2) ? MC_DIR_IN : MC_DIR_OUT;
			mc_addr_parse("fec0::1", &q.local);
			mc_addr_parse(remote_addr[rnd(4)], &q.remote);
			q.local_lo = 1 + rnd(70);
			q.local_hi = q.local_lo + rnd(12);
			q.remote_lo = 1 + rnd(70);
			q.remote_hi = q.remote_lo + rnd(40);
			struct mc_results res;
			mc_eval(&plan, &q, &res);
			for (unsigned lp = q.local_lo; lp <= q.local_hi; lp++)
				for (unsigned rp = q.remote_lo; rp <= q.remote_hi; rp++) {
					const struct mc_result *cell = NULL;
					int hits = 0;
					for (size_t i = 0; i < res.n; i++)
						if (res.r[i].local_lo <= lp && lp <= res.r[i].local_hi &&
						    res.r[i].remote_lo <= rp && rp <= res.r[i].remote_hi)
							cell = &res.r[i], hits++;
					points++;
					if (hits != 1) {
						not_covered++;
						continue;
					}
					const char *want = oracle(s, &q, lp, rp);
					if (!cell->first || strcmp(cell->first, want))
						wrong++;
				}
			/* Maximal along the remote dimension: neighbours in one local range differ. */
			for (size_t i = 1; i < res.n; i++)
				if (res.r[i].local_lo == res.r[i - 1].local_lo && res.r[i].remote_lo == res.r[i - 1].remote_hi + 1 &&
				    res.r[i].first == res.r[i - 1].first && res.r[i].nmatching == res.r[i - 1].nmatching &&
				    res.r[i].result == res.r[i - 1].result) {
					bool same = true;
					for (size_t m = 0; m < res.r[i].nmatching; m++)
						same &= res.r[i].matching[m] == res.r[i - 1].matching[m];
					not_maximal += same;
				}
			mc_results_free(&res);
		}
		mc_plan_free(&plan);
		mc_diags_free(&ds);
		mc_site_free(s);
	}
	/* Address ranges: the remote side a range over every remote the generator uses, split by
	 * address as by port; each (remote address, local port, remote port) point checked. */
	long apoints = 0, awrong = 0, acovered_bad = 0, asplits = 0;
	for (int round = 0; round < 30; round++) {
		struct mc_diags ds;
		struct mc_site *s;
		struct mc_plan plan;
		if (!random_site(path, 2 + (int)rnd(12), &ds, &s, &plan))
			continue;
		for (int k = 0; k < 4; k++) {
			struct mc_query q = { 0 };
			q.proto = rnd(2) ? MC_PROTO_TCP : MC_PROTO_UDP;
			q.dir = rnd(2) ? MC_DIR_IN : MC_DIR_OUT;
			mc_addr_parse("fec0::1", &q.local);
			mc_addr_parse("fec0::", &q.remote);
			mc_addr_parse("fec0::a", &q.remote_last);
			q.local_lo = 1 + rnd(70);
			q.local_hi = q.local_lo + rnd(6);
			q.remote_lo = 1 + rnd(70);
			q.remote_hi = q.remote_lo + rnd(20);
			struct mc_results res;
			mc_eval(&plan, &q, &res);
			for (size_t i = 0; i < res.n; i++)
				asplits += !mc_addr_eq(&res.r[i].remote_addr_lo, &q.remote) ||
					   !mc_addr_eq(&res.r[i].remote_addr_hi, &q.remote_last);
			for (unsigned a = 0; a <= 10; a++) {
				struct mc_query pt = q;
				mc_addr_from_u128(AF_INET6, mc_addr_to_u128(&q.remote) + a, &pt.remote);
				memset(&pt.remote_last, 0, sizeof(pt.remote_last));
				mc_u128 av = mc_addr_to_u128(&pt.remote);
				for (unsigned lp = q.local_lo; lp <= q.local_hi; lp++)
					for (unsigned rp = q.remote_lo; rp <= q.remote_hi; rp++) {
						const struct mc_result *cell = NULL;
						int hits = 0;
						for (size_t i = 0; i < res.n; i++)
							if (mc_addr_to_u128(&res.r[i].remote_addr_lo) <= av &&
							    av <= mc_addr_to_u128(&res.r[i].remote_addr_hi) &&
							    res.r[i].local_lo <= lp && lp <= res.r[i].local_hi &&
							    res.r[i].remote_lo <= rp && rp <= res.r[i].remote_hi)
								cell = &res.r[i], hits++;
						apoints++;
						if (hits != 1) {
							acovered_bad++;
							continue;
						}
						const char *want = oracle(s, &pt, lp, rp);
						if (!cell->first || strcmp(cell->first, want))
							awrong++;
					}
			}
			mc_results_free(&res);
		}
		mc_plan_free(&plan);
		mc_diags_free(&ds);
		mc_site_free(s);
	}
	T_OK(apoints > 10000, "%ld (remote address, local port, remote port) points of address-range queries", apoints);
	T_OK(asplits > 0, "address-range answers were split by address (%ld results on part of the range)", asplits);
	T_EQ_INT(acovered_bad, 0, "every point of an address-range query lies in exactly one result");
	T_EQ_INT(awrong, 0, "every such point's first match equals the model's first-match scan");
	unlink(path);
	T_OK(sites >= 50, "%ld random policy lists compiled", sites);
	T_OK(points > 50000, "%ld (local port, remote port) points checked", points);
	T_EQ_INT(not_covered, 0, "every point lies in exactly one result");
	T_EQ_INT(wrong, 0, "every point's first match equals the model's first-match scan");
	T_EQ_INT(not_maximal, 0, "adjacent results never share an outcome (maximal sub-ranges)");
	return t_done();
}
