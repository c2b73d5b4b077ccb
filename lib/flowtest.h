/* SPDX-License-Identifier: MIT */
/*
 * A policy test in the terms of `mcpsec test` (MCP's test dialog): the flow as the
 * administrator types it → queries for eval.c; and named test suites (tests.yaml) with the
 * results they expect per sub-range. Pure: parsing the YAML is conf.c's, printing the command's.
 */
#ifndef MCPSEC_FLOWTEST_H
#define MCPSEC_FLOWTEST_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "eval.h"

struct mc_buf;
struct mc_site;

/* The fields of MCP's test, as text; NULL is "not given". */
struct mc_test_input {
	const char *ulp, *dir, *local_ip, *remote_ip, *local_port, *remote_port, *icmp;
};

struct mc_test_queries {
	struct mc_query *q;
	size_t n, cap;
};

/*
 * The queries that cover the flows of a test: one per address family and address range pair
 * (--local-ip/--remote-ip take any, an address, a prefix, a range or, with a site, a selector
 * name, or a comma-separated list). IPv4-mapped IPv6 addresses become IPv4, as the kernel sends
 * them; notes says so. For ICMP, a local port is the ICMP type/code (MCP's "Local Port or ICMP
 * Type/Code"); fields that cannot apply to the protocol are errors, never ignored. On error
 * returns false with the message in err (no prefix).
 */
bool mc_test_build(const struct mc_test_input *in, const struct mc_site *s, struct mc_test_queries *ret,
		   struct mc_buf *notes, struct mc_buf *err);
void mc_test_queries_free(struct mc_test_queries *q);

/* One expectation of a suite test: for the flows in its sub-range (the test's own fields
 * narrowed by the ones given here), the result and, when given, the first match. */
struct mc_test_expect {
	struct mc_test_input range; /* ulp and dir unused */
	const char *result;         /* bypass | discard | protect, any case */
	const char *first_match;    /* a policy name (case-insensitive), "none", or NULL */
	struct mc_loc loc;
};

struct mc_suite_test {
	char *name;
	struct mc_test_input in;
	struct mc_test_expect *expect;
	size_t nexpect, capexpect;
	struct mc_loc loc;
};

struct mc_suite {
	char *file;
	struct mc_suite_test *t;
	size_t n, cap;
	char **strings; /* every text the inputs point to, owned */
	size_t nstrings, capstrings;
};

void mc_suite_free(struct mc_suite *s);

/*
 * A test's expectations read once: errors (a bad range, an unknown result) into ds, false if any;
 * *ret the flows of each expectation (t->nexpect lists), for mc_test_check_cell(); free with
 * mc_suite_prepared_free().
 */
bool mc_suite_prepare(const struct mc_suite_test *t, const struct mc_site *s, struct mc_diags *ds,
		      struct mc_test_queries **ret);
void mc_suite_prepared_free(struct mc_test_queries *expect_q, size_t n);

/*
 * Checks one result cell of a test against its expectations (expect_q: mc_suite_prepare()'s).
 * Every expectation whose sub-range meets the cell must agree with it; a cell, or part of one,
 * no expectation covers is a mismatch too (a new split of the traffic is a change to look at).
 * Appends one line per mismatch to out ("remote port 20-21: expected protect (first match
 * PROTECTFTPIN), got bypass (first match BYPASSALLIN)").
 */
size_t mc_test_check_cell(const struct mc_suite_test *t, const struct mc_test_queries *expect_q,
			  const struct mc_query *q, const struct mc_result *r, struct mc_buf *out);

#endif
