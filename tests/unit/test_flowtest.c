/* SPDX-License-Identifier: MIT */
/* MCP's test fields → queries: mapped addresses, ICMP type in the local port, inputs that cannot
 * apply, address sets; and a suite expectation's coverage of a result. */
#include <sys/socket.h>

#include "../../lib/conf.h"
#include "../../lib/flowtest.h"
#include "../../lib/util.h"
#include "t.h"

static bool build(const struct mc_test_input *in, const struct mc_site *s, struct mc_test_queries *q,
		  struct mc_buf *notes, struct mc_buf *err)
{
	mc_buf_free(notes);
	mc_buf_free(err);
	return mc_test_build(in, s, q, notes, err);
}

int main(void)
{
	struct mc_test_queries q = { 0 };
	struct mc_buf notes = { 0 }, err = { 0 };
	char a[64];

	struct mc_test_input in = { .ulp = "TCP", .dir = "OUT", .local_ip = "::ffff:192.0.2.100",
				    .remote_ip = "::ffff:192.0.2.127", .remote_port = "23" };
	T_OK(build(&in, NULL, &q, &notes, &err) && q.n == 1 && q.q[0].local.family == AF_INET &&
	     !strcmp(mc_addr_str(&q.q[0].remote, a, sizeof(a)), "192.0.2.127") && q.q[0].remote_lo == 23,
	     "mapped addresses become IPv4: %s", mc_buf_str(&err));
	T_OK(strstr(mc_buf_str(&notes), "is IPv4-mapped") != NULL, "and a note says so");
	mc_test_queries_free(&q);

	in.local_ip = "fec0::1";
	T_OK(!build(&in, NULL, &q, &notes, &err) && strstr(mc_buf_str(&err), "no address family in common"),
	     "an IPv6 local with a mapped remote is no flow");

	in = (struct mc_test_input){ .ulp = "icmpv6", .dir = "in", .local_ip = "any", .remote_ip = "any",
				     .local_port = "135" };
	T_OK(build(&in, NULL, &q, &notes, &err) && q.n >= 1 && q.q[0].local_lo == 135 && q.q[0].local_hi == 135 &&
	     q.q[0].remote_lo == 0 && q.q[0].remote_hi == 255, "ICMPv6: --local-port 135 is type 135, any code");
	mc_test_queries_free(&q);
	in.local_port = "135/0";
	T_OK(build(&in, NULL, &q, &notes, &err) && q.q[0].remote_hi == 0, "and 135/0 is type 135 code 0");
	mc_test_queries_free(&q);

	static const struct {
		struct mc_test_input in;
		const char *why;
	} bad[] = {
		{ { "tcp", "in", "any", "any", NULL, NULL, "8" }, "--icmp applies to icmp and icmpv6 only" },
		{ { "icmp", "in", "any", "any", "3", NULL, "4" }, "give the ICMP type/code once" },
		{ { "icmpv6", "in", "any", "any", NULL, "80", NULL }, "--remote-port does not apply" },
		{ { "bip", "in", "any", "any", "3", NULL, NULL }, "bip has no ports" },
		{ { "bip", "in", "any", "any", NULL, "any", NULL }, NULL },
		{ { "udp", "sideways", "any", "any", NULL, NULL, NULL }, "direction 'sideways'" },
		{ { "udp", "in", "NOSUCH", "any", NULL, NULL, NULL }, "no selector of that name" },
		{ { "udp", "in", "fec0::1", "10.0.0.1", NULL, NULL, NULL }, "no address family in common" },
		{ { "udp", "in", "any", "any", "70000", NULL, NULL }, "--local-port '70000'" },
	};
	for (size_t i = 0; i < MC_ARRAY_SIZE(bad); i++) {
		bool ok = build(&bad[i].in, NULL, &q, &notes, &err);
		if (bad[i].why)
			T_OK(!ok && strstr(mc_buf_str(&err), bad[i].why), "refused: %s (%s)", bad[i].why, mc_buf_str(&err));
		else
			T_OK(ok, "bip with --remote-port any is no port given");
		mc_test_queries_free(&q);
	}

	/* any × any: one query per family; a list: one per range; selector names from a site. */
	in = (struct mc_test_input){ .ulp = "udp", .dir = "out", .local_ip = "any", .remote_ip = "any" };
	T_OK(build(&in, NULL, &q, &notes, &err) && q.n == 2 && q.q[0].local.family == AF_INET6 &&
	     q.q[1].local.family == AF_INET, "any and any: IPv6, then IPv4");
	mc_test_queries_free(&q);
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	const char site[] = "selectors:\n  PEERS: [fec0::2, fec0::10-fec0::1f]\npolicies:\n"
			    "  - { name: A, direction: out, action: bypass }\n";
	T_OK(mc_conf_parse("site.yaml", site, sizeof(site) - 1, &ds, &s) == 0, "a site with a selector");
	in = (struct mc_test_input){ .ulp = "udp", .dir = "out", .local_ip = "fec0::1", .remote_ip = "peers, fec0::9" };
	T_OK(build(&in, s, &q, &notes, &err) && q.n == 3 && !strcmp(mc_addr_str(&q.q[1].remote_last, a, sizeof(a)), "fec0::1f"),
	     "a selector name (any case) and an address: three ranges (%s)", mc_buf_str(&err));
	mc_test_queries_free(&q);
	mc_site_free(s);
	mc_diags_free(&ds);
	mc_buf_free(&notes);
	mc_buf_free(&err);
	return t_done();
}
