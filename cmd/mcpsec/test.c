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
#include "../../lib/nlx.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "../../lib/engine.h"
#include "cmd.h"

static const char usage_text[] =
	"usage: mcpsec test SITE.yaml|--kernel [--name NAME] --ulp tcp|udp|icmp|icmpv6|bip|N --dir in|out\n"
	"                  --local-ip ADDR --remote-ip ADDR [--local-port P|P-Q|any]\n"
	"                  [--remote-port P|P-Q|any] [--icmp TYPE[/CODE]|TYPE-TYPE|TYPE/CODE-CODE|any] [--json]\n";

/*
 * The plan the kernel holds: mcpsec's policies (its priority band), grouped into rules by
 * (direction, priority), named through the state directory. Foreign policies take no part.
 */
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
	plan->def = MC_DEF_IPV6_ONLY;
	for (int d = 0; d < 4; d++)
		if (st.default_name && !strcmp(st.default_name, mc_default_str((enum mc_default)d)))
			plan->def = (enum mc_default)d;
	plan->enabled = st.enabled;
	for (size_t i = 0; i < k.npols; i++) {
		struct mc_kpolicy *kp = &k.pols[i];
		if (!mc_prio_owned(kp->x.priority) || kp->x.dir > MC_DIR_OUT)
			continue;
		const char *name = mc_state_rule_name(&st, kp->x.priority, kp->x.dir, kp->x.sel.family);
		char unknown[48];
		if (!name) {
			snprintf(unknown, sizeof(unknown), "UNKNOWN-PRIORITY-%u", kp->x.priority);
			name = unknown;
		}
		size_t rule = SIZE_MAX;
		for (size_t j = 0; j < plan->nrules && rule == SIZE_MAX; j++)
			if (plan->rules[j].dir == kp->x.dir && plan->rules[j].priority == kp->x.priority &&
			    !strcmp(plan->rules[j].name, name))
				rule = j;
		if (rule == SIZE_MAX) {
			struct mc_rule *nr = MC_PUSH(&plan->rules, &plan->nrules, &plan->caprules);
			memset(nr, 0, sizeof(*nr));
			nr->name = mc_strdup(name);
			nr->dir = kp->x.dir;
			nr->action = kp->x.action;
			nr->priority = kp->x.priority;
			nr->kind = kp->x.priority >= MC_PRIO_DEFAULT ? MC_RULE_DEFAULT :
				   kp->x.priority < MC_PRIO_USER_LO ? MC_RULE_BUILTIN : MC_RULE_USER;
			rule = plan->nrules - 1;
		}
		plan->rules[rule].nfrag++;
		struct mc_xpolicy *x = MC_PUSH(&plan->pols, &plan->npols, &plan->cappols);
		*x = kp->x;
		x->rule = rule;
	}
	mc_kstate_free(&k);
	mc_state_free(&st);
	mc_nl_close(nl);
	return 0;
}

static void upper_addr(const struct mc_addr *a, char *buf, size_t len)
{
	mc_addr_str(a, buf, len);
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

static void range_text(struct mc_buf *b, unsigned lo, unsigned hi)
{
	if (lo == hi)
		mc_buf_printf(b, "%u", lo);
	else
		mc_buf_printf(b, "%u - %u", lo, hi);
}

static void names_of(struct mc_buf *b, const struct mc_result *r, enum mc_action a)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nmatching; i++)
		if (r->matching_action[i] == a)
			mc_buf_printf(b, "%s%s", n++ ? ", " : "", r->matching[i]);
	if (!n)
		mc_buf_puts(b, "None");
}

static void json_names(struct mc_buf *b, const struct mc_result *r, enum mc_action a)
{
	size_t n = 0;

	mc_buf_puts(b, "[");
	for (size_t i = 0; i < r->nmatching; i++)
		if (r->matching_action[i] == a) {
			if (n++)
				mc_buf_puts(b, ",");
			mc_buf_json_str(b, r->matching[i]);
		}
	mc_buf_puts(b, "]");
}

int test_main(int argc, char **argv)
{
	const char *file = NULL, *name = "TEST", *ulp = NULL, *dir = NULL, *lip = NULL, *rip = NULL;
	const char *lport = NULL, *rport = NULL, *icmp = NULL;
	bool json = false, kernel = false;
	struct mc_query q = { 0 };

	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (is_flag(argv[i], "--json") || is_flag(argv[i], "--kernel")) {
			*(argv[i][2] == 'j' ? &json : &kernel) = true;
			continue;
		}
		if (is_flag(argv[i], "--name")) slot = &name;
		else if (is_flag(argv[i], "--ulp")) slot = &ulp;
		else if (is_flag(argv[i], "--dir")) slot = &dir;
		else if (is_flag(argv[i], "--local-ip")) slot = &lip;
		else if (is_flag(argv[i], "--remote-ip")) slot = &rip;
		else if (is_flag(argv[i], "--local-port")) slot = &lport;
		else if (is_flag(argv[i], "--remote-port")) slot = &rport;
		else if (is_flag(argv[i], "--icmp")) slot = &icmp;
		if (slot && i + 1 < argc) {
			*slot = argv[++i];
		} else if (!slot && argv[i][0] != '-' && !file) {
			file = argv[i];
		} else {
			fprintf(stderr, "mcpsec test: unexpected or incomplete argument '%s'\n%s", argv[i], usage_text);
			return EXIT_CONFIG;
		}
	}
	if (!!file == kernel || !ulp || !dir || !lip || !rip) {
		fputs(usage_text, stderr);
		return EXIT_CONFIG;
	}
	if ((q.proto = mc_proto_parse(ulp)) <= 0) {
		fprintf(stderr, "mcpsec test: --ulp '%s': expected tcp, udp, icmp, icmpv6, bip or 1-255\n", ulp);
		return EXIT_CONFIG;
	}
	if (!strcasecmp(dir, "in") || !strcasecmp(dir, "inbound"))
		q.dir = MC_DIR_IN;
	else if (!strcasecmp(dir, "out") || !strcasecmp(dir, "outbound"))
		q.dir = MC_DIR_OUT;
	else {
		fprintf(stderr, "mcpsec test: --dir must be in or out\n");
		return EXIT_CONFIG;
	}
	if (!mc_addr_parse(lip, &q.local) || !mc_addr_parse(rip, &q.remote) || q.local.family != q.remote.family) {
		fprintf(stderr, "mcpsec test: --local-ip and --remote-ip must be addresses of one family\n");
		return EXIT_CONFIG;
	}
	bool is_icmp = q.proto == MC_PROTO_ICMP || q.proto == MC_PROTO_ICMPV6;
	/* Ports default to 1-65535, as MCP's test does; ICMP type and code to 0-255. */
	q.local_lo = q.remote_lo = is_icmp ? 0 : 1;
	q.local_hi = q.remote_hi = is_icmp ? 255 : 65535;
	if (is_icmp && icmp && strcasecmp(icmp, "any")) {
		char tmp[32];
		snprintf(tmp, sizeof(tmp), "%s", icmp);
		char *slash = strchr(tmp, '/');
		if (slash)
			*slash = '\0';
		if (!mc_parse_range(tmp, 255, &q.local_lo, &q.local_hi) ||
		    (slash && strcasecmp(slash + 1, "any") &&
		     !mc_parse_range(slash + 1, 255, &q.remote_lo, &q.remote_hi))) {
			fprintf(stderr, "mcpsec test: bad --icmp '%s'\n", icmp);
			return EXIT_CONFIG;
		}
	} else if (!is_icmp) {
		if ((lport && strcasecmp(lport, "any") && !mc_parse_range(lport, 65535, &q.local_lo, &q.local_hi)) ||
		    (rport && strcasecmp(rport, "any") && !mc_parse_range(rport, 65535, &q.remote_lo, &q.remote_hi))) {
			fprintf(stderr, "mcpsec test: ports are any, P or P-Q (0-65535)\n");
			return EXIT_CONFIG;
		}
	}

	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan = { 0 };
	if (kernel) {
		int rc = kernel_plan(&plan);
		if (rc)
			return rc;
	} else {
		if (!(s = mc_engine_load_site(file, NULL, false, &ds))) {
			print_diags(&ds);
			mc_diags_free(&ds);
			return EXIT_CONFIG;
		}
		mc_compile(s, NULL, &ds, &plan);
		mc_diags_free(&ds); /* check reports warnings; test answers the question asked */
	}

	struct mc_results res;
	mc_eval(&plan, &q, &res);
	struct mc_buf b = { 0 };
	char la[64], ra[64], pb[8];
	upper_addr(&q.local, la, sizeof(la));
	upper_addr(&q.remote, ra, sizeof(ra));
	const char *ulp_name = mc_proto_str(q.proto, pb, sizeof(pb));
	if (json) {
		mc_buf_puts(&b, "{\"test\":");
		mc_buf_json_str(&b, name);
		mc_buf_printf(&b, ",\"ulp\":\"%s\",\"direction\":\"%s\",\"results\":[", ulp_name, mc_dir_str(q.dir));
		for (size_t i = 0; i < res.n; i++) {
			const struct mc_result *r = &res.r[i];
			mc_buf_printf(&b, "%s{\"result\":\"%s\",\"local_ip\":\"%s\",\"remote_ip\":\"%s\",", i ? "," : "",
				      mc_action_upper(r->result), la, ra);
			if (is_icmp)
				mc_buf_printf(&b, "\"icmp_type\":[%u,%u],\"icmp_code\":[%u,%u]", r->local_lo, r->local_hi,
					      r->remote_lo, r->remote_hi);
			else
				mc_buf_printf(&b, "\"local_port\":[%u,%u],\"remote_port\":[%u,%u]", r->local_lo, r->local_hi,
					      r->remote_lo, r->remote_hi);
			mc_buf_puts(&b, ",\"first_match\":");
			if (r->first)
				mc_buf_json_str(&b, r->first);
			else
				mc_buf_puts(&b, "null");
			if (r->why_none) {
				mc_buf_puts(&b, ",\"reason\":");
				mc_buf_json_str(&b, r->why_none);
			}
			mc_buf_puts(&b, ",\"matching\":{\"bypass\":");
			json_names(&b, r, MC_BYPASS);
			mc_buf_puts(&b, ",\"discard\":");
			json_names(&b, r, MC_DISCARD);
			mc_buf_puts(&b, ",\"protect\":");
			json_names(&b, r, MC_PROTECT);
			mc_buf_puts(&b, "}}");
		}
		mc_buf_puts(&b, "]}\n");
	} else {
		for (size_t i = 0; i < res.n; i++) {
			const struct mc_result *r = &res.r[i];
			char ub[8];
			snprintf(ub, sizeof(ub), "%s", ulp_name);
			for (char *p = ub; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			mc_buf_printf(&b, "Test Result for Test = %s\nULP = %s\nDirection = %s\nTest Result = %s\n", name, ub,
				      q.dir == MC_DIR_IN ? "IN" : "OUT", mc_action_upper(r->result));
			mc_buf_printf(&b, "Local IP Address = %s\nLocal Port or ICMP Type/Code = ", la);
			range_text(&b, r->local_lo, r->local_hi);
			if (is_icmp) {
				mc_buf_puts(&b, "/");
				range_text(&b, r->remote_lo, r->remote_hi);
			}
			mc_buf_printf(&b, "\nRemote IP Address = %s\n", ra);
			if (!is_icmp) {
				mc_buf_puts(&b, "Remote Port = ");
				range_text(&b, r->remote_lo, r->remote_hi);
				mc_buf_puts(&b, "\n");
			}
			if (r->first)
				mc_buf_printf(&b, "First Matched Policy = %s\n", r->first);
			else
				mc_buf_printf(&b, "First Matched Policy = None (%s)\n", r->why_none);
			mc_buf_puts(&b, "Matching Bypass Policies = ");
			names_of(&b, r, MC_BYPASS);
			mc_buf_puts(&b, "\nMatching Discard Policies = ");
			names_of(&b, r, MC_DISCARD);
			mc_buf_puts(&b, "\nMatching Protect Policies = ");
			names_of(&b, r, MC_PROTECT);
			mc_buf_puts(&b, "\n");
		}
	}
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
	mc_results_free(&res);
	mc_plan_free(&plan);
	mc_site_free(s);
	return 0;
}
