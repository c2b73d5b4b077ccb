/* SPDX-License-Identifier: MIT */
/* mcpsec test: MCP's policy test. Which policy decides a flow, per uniform sub-range. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/eval.h"
#include "../../lib/conf.h"
#include "../../lib/flowtest.h"
#include "../../lib/nlx.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "../../lib/engine.h"
#include "../../lib/proc.h"
#include "cmd.h"

/* The usage, and what ADDRS may be. */
static void usage(const char *why, const char *arg)
{
	if (why)
		fprintf(stderr, "mcpsec test: %s '%s'\n", why, arg);
	fprintf(stderr, "%s  ADDRS: any, an address, a prefix, a range A-B, a selector name of the site, or a list "
		"of these\n", command_usage("test"));
}

/* The plan the kernel holds (mcpsec's policies, named through the state directory). */
static int kernel_plan(struct mc_plan *plan)
{
	struct mc_state st = { 0 };
	struct mc_kstate k = { 0 };
	struct mc_nl *nl = NULL;
	int rc, r;

	memset(plan, 0, sizeof(*plan));
	if ((rc = enter_netns()) || (rc = open_kernel(&nl)))
		return rc;
	(void)mc_state_load(g_opts.state_dir, &st);
	if ((r = mc_nl_dump(nl, &k)) < 0) {
		fprintf(stderr, "mcpsec: reading the kernel's XFRM policies: %s\n", strerror(-r));
		mc_nl_close(nl);
		mc_state_free(&st);
		return EXIT_KERNEL;
	}
	mc_plan_from_kernel(&k, &st, plan);
	/* What the kernel routes through lo (and so never checks) is the host's, as for a site. */
	struct mc_host host;
	struct mc_diags ds = { 0 };
	if (mc_engine_host(mc_nl_kernel(nl), &host, &ds) == 0)
		mc_plan_set_lo4(plan, &host);
	mc_engine_host_free(&host);
	mc_diags_free(&ds);
	mc_kstate_free(&k);
	mc_state_free(&st);
	mc_nl_close(nl);
	return 0;
}

/* "FEC0::1", "FEC0::1 - FEC0::FF", or ANY for a whole family. */
static void addr_text(const struct mc_addr *lo, const struct mc_addr *hi, bool upper, struct mc_buf *b)
{
	char x[64], y[64];
	struct mc_range all = mc_range_all(lo->family);

	mc_addr_str(lo, x, sizeof(x));
	mc_addr_str(hi, y, sizeof(y));
	if (mc_addr_to_u128(lo) == all.lo && mc_addr_to_u128(hi) == all.hi && !mc_addr_eq(lo, hi)) {
		mc_buf_printf(b, "%s (%s)", upper ? "ANY" : "any", lo->family == AF_INET ? "IPv4" : "IPv6");
		return;
	}
	for (char *p = x; upper && *p; p++)
		*p = (char)toupper((unsigned char)*p);
	for (char *p = y; upper && *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (mc_addr_eq(lo, hi))
		mc_buf_puts(b, x);
	else
		mc_buf_printf(b, "%s - %s", x, y);
}

static void range_text(struct mc_buf *b, unsigned lo, unsigned hi)
{
	if (lo == hi)
		mc_buf_printf(b, "%u", lo);
	else
		mc_buf_printf(b, "%u - %u", lo, hi);
}

/* MCP lists every matching policy; one that repeats an earlier policy exactly is not in the
 * kernel and can never be the first match: it is listed, marked. */
static void names_of(struct mc_buf *b, const struct mc_result *r, enum mc_action a)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nmatching; i++)
		if (r->matching_action[i] == a)
			mc_buf_printf(b, "%s%s%s", n++ ? ", " : "", r->matching[i],
				      r->matching_never_first[i] ? " (never first: repeats an earlier policy)" : "");
	if (!n)
		mc_buf_puts(b, "None");
}

/* A JSON list of the matching rules' names: those with action a, or (a < 0) those never first. */
static void json_names(struct mc_buf *b, const struct mc_result *r, int a)
{
	size_t n = 0;

	mc_buf_puts(b, "[");
	for (size_t i = 0; i < r->nmatching; i++)
		if (a < 0 ? r->matching_never_first[i] : (int)r->matching_action[i] == a) {
			if (n++)
				mc_buf_puts(b, ",");
			mc_buf_json_str(b, r->matching[i]);
		}
	mc_buf_puts(b, "]");
}

static void json_addr(struct mc_buf *b, const char *key, const struct mc_addr *lo, const struct mc_addr *hi)
{
	char x[64], y[64];
	struct mc_buf t = { 0 };

	addr_text(lo, hi, false, &t);
	mc_buf_printf(b, "\"%s\":", key);
	mc_buf_json_str(b, mc_buf_str(&t));
	mc_buf_printf(b, ",\"%s_range\":[\"%s\",\"%s\"]", key, mc_addr_str(lo, x, sizeof(x)), mc_addr_str(hi, y, sizeof(y)));
	mc_buf_free(&t);
}

static void print_result_json(struct mc_buf *b, const struct mc_query *q, const struct mc_result *r)
{
	bool icmp = mc_proto_is_icmp(q->proto), ports = mc_proto_has_ports(q->proto);

	mc_buf_printf(b, "{\"result\":\"%s\",", mc_action_upper(r->result));
	if (r->result == MC_PROTECT)
		mc_buf_printf(b, "\"clear_passes\":%s,", r->clear_passes ? "true" : "false");
	json_addr(b, "local_ip", &r->local_addr_lo, &r->local_addr_hi);
	mc_buf_puts(b, ",");
	json_addr(b, "remote_ip", &r->remote_addr_lo, &r->remote_addr_hi);
	if (icmp)
		mc_buf_printf(b, ",\"icmp_type\":[%u,%u],\"icmp_code\":[%u,%u]", r->local_lo, r->local_hi, r->remote_lo,
			      r->remote_hi);
	else if (ports)
		mc_buf_printf(b, ",\"local_port\":[%u,%u],\"remote_port\":[%u,%u]", r->local_lo, r->local_hi,
			      r->remote_lo, r->remote_hi);
	mc_buf_puts(b, ",\"first_match\":");
	if (r->first)
		mc_buf_json_str(b, r->first);
	else
		mc_buf_puts(b, "null");
	if (r->why_none) {
		mc_buf_puts(b, ",\"reason\":");
		mc_buf_json_str(b, r->why_none);
	}
	for (int a = MC_BYPASS; a <= MC_PROTECT; a++) {
		mc_buf_printf(b, "%s\"%s\":", a == MC_BYPASS ? ",\"matching\":{" : ",", mc_action_str((enum mc_action)a));
		json_names(b, r, a);
	}
	mc_buf_puts(b, "},\"never_first\":");
	json_names(b, r, -1);
	mc_buf_puts(b, "}");
}

/* One result in the layout of MCP's IPsec Test Results. */
static void print_result_text(struct mc_buf *b, const char *name, const struct mc_query *q, const struct mc_result *r)
{
	bool icmp = mc_proto_is_icmp(q->proto), ports = mc_proto_has_ports(q->proto);
	char pb[8], ub[8];

	snprintf(ub, sizeof(ub), "%s", mc_proto_str(q->proto, pb, sizeof(pb)));
	for (char *p = ub; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	mc_buf_printf(b, "Test Result for Test = %s\nULP = %s\nDirection = %s\nTest Result = %s\n", name, ub,
		      q->dir == MC_DIR_IN ? "IN" : "OUT", mc_action_upper(r->result));
	mc_buf_puts(b, "Local IP Address = ");
	addr_text(&r->local_addr_lo, &r->local_addr_hi, true, b);
	mc_buf_puts(b, "\nLocal Port or ICMP Type/Code = ");
	if (icmp) {
		range_text(b, r->local_lo, r->local_hi);
		mc_buf_puts(b, "/");
		range_text(b, r->remote_lo, r->remote_hi);
	} else if (ports) {
		range_text(b, r->local_lo, r->local_hi);
	} else {
		mc_buf_printf(b, "None (%s has no ports)", ub);
	}
	mc_buf_puts(b, "\nRemote IP Address = ");
	addr_text(&r->remote_addr_lo, &r->remote_addr_hi, true, b);
	mc_buf_puts(b, "\n");
	if (ports) {
		mc_buf_puts(b, "Remote Port = ");
		range_text(b, r->remote_lo, r->remote_hi);
		mc_buf_puts(b, "\n");
	}
	if (r->first)
		mc_buf_printf(b, "First Matched Policy = %s\n", r->first);
	else
		mc_buf_printf(b, "First Matched Policy = None (%s)\n", r->why_none);
	if (r->result == MC_PROTECT && r->clear_passes)
		mc_buf_printf(b, "Phase-In = %s\n", mc_clear_passes_str(q->dir));
	/* "Matching Bypass Policies = ...", then Discard, then Protect, as MCP lists them. */
	static const char *const word[] = { "Bypass", "Discard", "Protect" };
	for (int a = MC_BYPASS; a <= MC_PROTECT; a++) {
		mc_buf_printf(b, "Matching %s Policies = ", word[a]);
		names_of(b, r, (enum mc_action)a);
		mc_buf_puts(b, "\n");
	}
}

/*
 * A TCP client that connects without bind() is decided at local port 0, before the kernel
 * picks its port (doc/kernel-notes.md): a DISCARD there fails the connect (EPERM); otherwise
 * over IPv4 the kernel decides again with the port it picked, while over IPv6 the connection
 * keeps the first decision. For an outbound TCP test whose local ports include port 0 or a
 * port the kernel may pick, says what such a client meets when it differs from what its ports
 * meet. Returns whether it differs; q0 receives the query at local port 0.
 */
static bool same_outcome(const struct mc_result *a, const struct mc_result *b)
{
	return a->result == b->result && (a->first == b->first || (a->first && b->first && !strcmp(a->first, b->first)));
}

static bool unbound_client(const struct mc_plan *plan, const struct mc_query *q, unsigned eph_lo, unsigned eph_hi,
			   struct mc_results *r0, struct mc_buf *text)
{
	struct mc_query z = *q, e = *q;
	struct mc_results re;
	bool differs = false;

	memset(r0, 0, sizeof(*r0));
	if (q->proto != MC_PROTO_TCP || q->dir != MC_DIR_OUT || (q->local_lo > 0 && (q->local_hi < eph_lo || q->local_lo > eph_hi)))
		return false;
	z.local_lo = z.local_hi = 0;
	e.local_lo = eph_lo;
	e.local_hi = eph_hi;
	mc_eval(plan, &z, r0);
	mc_eval(plan, &e, &re);
	for (size_t i = 0; i < r0->n && !differs; i++)
		for (size_t j = 0; j < re.n && !differs; j++)
			differs = !same_outcome(&r0->r[i], &re.r[j]);
	if (differs) {
		bool v6 = q->local.family == AF_INET6;
		mc_buf_printf(text, "Unbound Client = a TCP client that connects without bind() is decided at local port 0, "
			      "before its port is chosen:");
		for (size_t i = 0; i < r0->n; i++) {
			mc_buf_printf(text, "%s %s by %s", i ? ";" : "", mc_action_upper(r0->r[i].result),
				      r0->r[i].first ? r0->r[i].first : "no policy");
			if (r0->n > 1) {
				mc_buf_puts(text, " (remote port ");
				range_text(text, r0->r[i].remote_lo, r0->r[i].remote_hi);
				mc_buf_puts(text, ")");
			}
		}
		mc_buf_printf(text, ", while of the ports the kernel picks (%u-%u)", eph_lo, eph_hi);
		for (size_t j = 0; j < re.n && j < 4; j++) {
			mc_buf_puts(text, j ? ", " : " ");
			range_text(text, re.r[j].local_lo, re.r[j].local_hi);
			mc_buf_printf(text, " meet %s by %s", mc_action_upper(re.r[j].result),
				      re.r[j].first ? re.r[j].first : "no policy");
		}
		mc_buf_printf(text, "%s. %s\n", re.n > 4 ? " and more" : "",
			      v6 ? "Over IPv6 the whole connection keeps the decision made at port 0."
				 : "Over IPv4 a DISCARD at port 0 fails the connect (EPERM); otherwise the kernel decides "
				   "again with the port it picked.");
	}
	mc_results_free(&re);
	return differs;
}

/* The plan a test runs against: the site's compiled, or the kernel's (NULL site). ds is the
 * caller's: it owns the file names the site's locations point to, so it outlives the site. */
static int load_plan(const char *file, struct mc_site **s, struct mc_plan *plan, struct mc_diags *ds)
{
	size_t mark = ds->n;

	*s = NULL;
	if (!file) {
		int rc = kernel_plan(plan);
		/* Selector names come from the committed site (names only: keys are not read). */
		struct mc_state st = { 0 };
		if (!rc && mc_engine_load_committed(g_opts.state_dir, true, &st, ds, s) < 0)
			*s = NULL;
		mc_state_free(&st);
		mc_diags_truncate(ds, mark);
		return rc;
	}
	/* Keys that do not exist yet are warnings: the policy logic is tested without them. */
	if (!(*s = mc_engine_load_site_logic(file, ds))) {
		print_diags(ds);
		return EXIT_CONFIG;
	}
	for (size_t i = mark; i < ds->n; i++)
		if (ds->d[i].code && !strcmp(ds->d[i].code, "keys-missing"))
			fprintf(stderr, "mcpsec test: warning: %s\n", ds->d[i].msg);
	/* With --netns the host is known, as apply knows it: its own addresses (so the built-in
	 * own-address bypass) and its ephemeral port range. */
	struct mc_host host = { 0 };
	if (g_opts.netns) {
		struct mc_nl *nl = NULL;
		int rc = enter_netns();
		if (!rc && !(rc = open_kernel(&nl)) && mc_engine_host(mc_nl_kernel(nl), &host, ds) < 0)
			rc = EXIT_KERNEL;
		mc_nl_close(nl);
		if (rc) {
			print_diags(ds);
			return rc;
		}
	}
	mc_compile(*s, g_opts.netns ? &host : NULL, ds, plan);
	mc_engine_host_free(&host);
	/* check reports the rest; test answers the question asked. */
	mc_diags_truncate(ds, mark);
	return 0;
}

/* A named test suite: every test, each result in MCP's layout, then the mismatches. */
/* The end of a suite test's JSON object: passed, and one string per mismatch line (without
 * the indentation). */
static void json_mismatches(size_t nbad, const struct mc_buf *why, struct mc_buf *out)
{
	mc_buf_printf(out, "],\"passed\":%s,\"mismatches\":[", nbad ? "false" : "true");
	const char *p = mc_buf_str(why);
	for (size_t n = 0; *p; n++) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = mc_strndup(p + 2, len - 2);
		if (n)
			mc_buf_puts(out, ",");
		mc_buf_json_str(out, line);
		free(line);
		p += len + (nl ? 1 : 0);
	}
	mc_buf_puts(out, "]}");
}

static int run_suite(const char *suite_file, const char *file, bool json)
{
	struct mc_diags ds = { 0 };
	struct mc_suite su;
	struct mc_site *s = NULL;
	struct mc_plan plan = { 0 };
	struct mc_buf out = { 0 }, bad = { 0 };
	size_t failed_tests = 0, mismatches = 0;
	int rc;

	if (mc_conf_load_suite(suite_file, &ds, &su) < 0) {
		print_diags(&ds);
		mc_suite_free(&su);
		mc_diags_free(&ds);
		return EXIT_CONFIG;
	}
	if ((rc = load_plan(file, &s, &plan, &ds))) {
		mc_suite_free(&su);
		mc_diags_free(&ds);
		return rc;
	}
	/* Every test and expectation read once, all errors reported before anything runs. */
	struct prepared {
		struct mc_test_queries flows, *expect;
	} *prep = mc_calloc(su.n + 1, sizeof(*prep));
	for (size_t i = 0; i < su.n; i++) {
		struct mc_buf notes = { 0 }, err = { 0 };
		(void)mc_suite_prepare(&su.t[i], s, &ds, &prep[i].expect);
		if (!mc_test_build(&su.t[i].in, s, &prep[i].flows, &notes, &err))
			mc_err(&ds, su.t[i].loc, "test '%s': %s", su.t[i].name, mc_buf_str(&err));
		mc_buf_free(&notes);
		mc_buf_free(&err);
	}
	if (ds.errors) {
		print_diags(&ds);
		rc = EXIT_CONFIG;
		goto out;
	}
	if (json)
		mc_buf_puts(&out, "{\"tests\":[");
	for (size_t i = 0; i < su.n; i++) {
		const struct mc_suite_test *t = &su.t[i];
		const struct mc_test_queries *tq = &prep[i].flows;
		struct mc_buf why = { 0 };
		size_t nbad = 0, nres = 0;

		if (json) {
			mc_buf_printf(&out, "%s{\"test\":", i ? "," : "");
			mc_buf_json_str(&out, t->name);
			mc_buf_puts(&out, ",\"results\":[");
		}
		for (size_t k = 0; k < tq->n; k++) {
			struct mc_results res;
			mc_eval(&plan, &tq->q[k], &res);
			for (size_t j = 0; j < res.n; j++) {
				nbad += mc_test_check_cell(t, prep[i].expect, &tq->q[k], &res.r[j], &why);
				if (json) {
					if (nres)
						mc_buf_puts(&out, ",");
					print_result_json(&out, &tq->q[k], &res.r[j]);
				} else {
					print_result_text(&out, t->name, &tq->q[k], &res.r[j]);
				}
				nres++;
			}
			mc_results_free(&res);
		}
		if (json)
			json_mismatches(nbad, &why, &out);
		mc_buf_puts(&bad, mc_buf_str(&why));
		failed_tests += nbad > 0;
		mismatches += nbad;
		mc_buf_free(&why);
	}
	if (json)
		mc_buf_printf(&out, "],\"passed\":%zu,\"failed\":%zu}\n", su.n - failed_tests, failed_tests);
	fputs(mc_buf_str(&out), stdout);
	if (!json) {
		printf("\n%zu test%s: %zu passed, %zu failed\n", su.n, su.n == 1 ? "" : "s", su.n - failed_tests,
		       failed_tests);
		if (mismatches)
			printf("Mismatches:\n%s", mc_buf_str(&bad));
	}
	rc = failed_tests ? EXIT_CONFIG : 0;
out:
	for (size_t i = 0; i < su.n; i++) {
		mc_test_queries_free(&prep[i].flows);
		mc_suite_prepared_free(prep[i].expect, su.t[i].nexpect);
	}
	free(prep);
	mc_buf_free(&out);
	mc_buf_free(&bad);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_suite_free(&su);
	mc_diags_free(&ds);
	return rc;
}

/* Without --netns the host's own addresses are unknown: apply bypasses IPv6 traffic between
 * two of them (BUILTIN-OWN-ADDR-*), and IPv4 to them goes through lo, outside IPsec; a flow
 * whose two sides overlap may be such traffic. */
static void own_address_note(const char *file, const struct mc_test_queries *tq, struct mc_buf *notes)
{
	for (size_t k = 0; file && !g_opts.netns && k < tq->n; k++) {
		const struct mc_query *q = &tq->q[k];
		const struct mc_addr *ll = q->local_last.family ? &q->local_last : &q->local;
		const struct mc_addr *rl = q->remote_last.family ? &q->remote_last : &q->remote;
		mc_u128 top = mc_range_all(q->local.family).hi; /* "any" of the flow's family */
		bool any = (!mc_addr_to_u128(&q->local) && mc_addr_to_u128(ll) == top) ||
			   (!mc_addr_to_u128(&q->remote) && mc_addr_to_u128(rl) == top);
		bool lo8 = q->local.family == AF_INET && mc_addr_to_u128(&q->remote) >> 24 == 127 &&
			   mc_addr_to_u128(rl) >> 24 == 127; /* 127.0.0.0/8: known without --netns */
		if (any || lo8 || mc_addr_to_u128(&q->local) > mc_addr_to_u128(rl) ||
		    mc_addr_to_u128(&q->remote) > mc_addr_to_u128(ll))
			continue;
		mc_buf_puts(notes, q->local.family == AF_INET6 ?
			    "traffic between two of the host's own IPv6 addresses bypasses at apply "
			    "(BUILTIN-OWN-ADDR-IN/OUT); give --netns NAME to test with that namespace's addresses\n" :
			    "IPv4 to the host's own addresses goes through lo, where Linux applies no IPsec; "
			    "give --netns NAME to test with that namespace's addresses\n");
		break;
	}
}

/* Every query's results in MCP's layout (or JSON), and the unbound client's connect where it
 * differs (kernel: the installed policies, decided with this namespace's ephemeral range). */
static void render_results(const struct mc_plan *plan, const struct mc_test_queries *tq, const char *name, bool json,
			   bool kernel, struct mc_buf *b)
{
	char pb[8];
	if (json) {
		mc_buf_puts(b, "{\"test\":");
		mc_buf_json_str(b, name);
		mc_buf_printf(b, ",\"ulp\":\"%s\",\"direction\":\"%s\",\"results\":[",
			      mc_proto_str(tq->q[0].proto, pb, sizeof(pb)), mc_dir_str(tq->q[0].dir));
	}
	size_t nres = 0;
	unsigned eph_lo = MC_EPHEMERAL_LO, eph_hi = MC_EPHEMERAL_HI;
	struct mc_buf unbound = { 0 }, unbound_json = { 0 };
	size_t nunbound = 0;
	if (kernel)
		mc_proc_ephemeral(&eph_lo, &eph_hi); /* the kernel's policies: this namespace's range */
	for (size_t k = 0; k < tq->n; k++) {
		struct mc_results res, r0;
		mc_eval(plan, &tq->q[k], &res);
		for (size_t i = 0; i < res.n; i++, nres++) {
			if (json) {
				if (nres)
					mc_buf_puts(b, ",");
				print_result_json(b, &tq->q[k], &res.r[i]);
			} else {
				print_result_text(b, name, &tq->q[k], &res.r[i]);
			}
		}
		mc_results_free(&res);
		bool differs = unbound_client(plan, &tq->q[k], eph_lo, eph_hi, &r0, &unbound);
		for (size_t i = 0; i < r0.n; i++, nunbound++) {
			if (nunbound)
				mc_buf_puts(&unbound_json, ",");
			mc_buf_printf(&unbound_json, "{\"family\":\"%s\",\"differs\":%s,\"connect\":",
				      tq->q[k].local.family == AF_INET6 ? "ipv6" : "ipv4", differs ? "true" : "false");
			print_result_json(&unbound_json, &tq->q[k], &r0.r[i]);
			mc_buf_puts(&unbound_json, "}");
		}
		mc_results_free(&r0);
	}
	if (json)
		mc_buf_printf(b, "],\"ephemeral_ports\":[%u,%u],\"unbound_client\":[%s]}\n", eph_lo, eph_hi,
			      mc_buf_str(&unbound_json));
	else if (unbound.len)
		mc_buf_puts(b, mc_buf_str(&unbound));
	mc_buf_free(&unbound);
	mc_buf_free(&unbound_json);
}

int test_main(int argc, char **argv)
{
	const char *file = NULL, *name = "TEST", *suite = NULL;
	struct mc_test_input in = { 0 };
	bool json = false, kernel = false;

	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (is_flag(argv[i], "--json") || is_flag(argv[i], "--kernel")) {
			*(argv[i][2] == 'j' ? &json : &kernel) = true;
			continue;
		}
		if (is_flag(argv[i], "--name")) slot = &name;
		else if (is_flag(argv[i], "--suite")) slot = &suite;
		else if (is_flag(argv[i], "--ulp")) slot = &in.ulp;
		else if (is_flag(argv[i], "--dir")) slot = &in.dir;
		else if (is_flag(argv[i], "--local-ip")) slot = &in.local_ip;
		else if (is_flag(argv[i], "--remote-ip")) slot = &in.remote_ip;
		else if (is_flag(argv[i], "--local-port")) slot = &in.local_port;
		else if (is_flag(argv[i], "--remote-port")) slot = &in.remote_port;
		else if (is_flag(argv[i], "--icmp")) slot = &in.icmp;
		if (slot && i + 1 < argc) {
			*slot = argv[++i];
		} else if (!slot && argv[i][0] != '-' && !file) {
			file = argv[i];
		} else {
			usage("unexpected or incomplete argument", argv[i]);
			return EXIT_CONFIG;
		}
	}
	if (!!file == kernel) {
		usage(NULL, NULL);
		return EXIT_CONFIG;
	}
	if (suite) {
		if (in.ulp || in.dir || in.local_ip || in.remote_ip || in.local_port || in.remote_port || in.icmp) {
			fprintf(stderr, "mcpsec test: --suite takes the flows from the suite file: leave out --ulp, "
				"--dir, the addresses and the ports\n");
			return EXIT_CONFIG;
		}
		return run_suite(suite, file, json);
	}
	if (!in.ulp || !in.dir || !in.local_ip || !in.remote_ip) {
		usage(NULL, NULL);
		return EXIT_CONFIG;
	}

	struct mc_site *s = NULL;
	struct mc_plan plan = { 0 };
	struct mc_test_queries tq;
	struct mc_buf notes = { 0 }, err = { 0 };
	struct mc_diags ds = { 0 };
	int rc;

	if ((rc = load_plan(file, &s, &plan, &ds))) {
		mc_diags_free(&ds);
		return rc;
	}
	if (!mc_test_build(&in, s, &tq, &notes, &err)) {
		fprintf(stderr, "mcpsec test: %s\n", mc_buf_str(&err));
		mc_buf_free(&err);
		mc_buf_free(&notes);
		mc_plan_free(&plan);
		mc_site_free(s);
		mc_diags_free(&ds);
		return EXIT_CONFIG;
	}
	own_address_note(file, &tq, &notes);
	/* Notes go to stderr: stdout stays the answer (and valid JSON). */
	for (const char *p = mc_buf_str(&notes), *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		fprintf(stderr, "mcpsec test: note: %.*s\n", (int)(nl - p), p);
	}

	struct mc_buf b = { 0 };
	render_results(&plan, &tq, name, json, !file, &b);
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
	mc_buf_free(&notes);
	mc_buf_free(&err);
	mc_test_queries_free(&tq);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
	return 0;
}
