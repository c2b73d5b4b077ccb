/* SPDX-License-Identifier: MIT */
/* Lint: each check's fixtures verbatim, and the shadowing analysis against an exhaustive
 * first-match search over a universe that holds every equivalence class of the random sites. */
#include <sys/socket.h>

#include "fixture.h"
#include "randsite.h"
#include "t.h"

#define LINT "tests/unit/fixtures/lint"

/* One representative of every class the generator can tell apart: addresses inside and outside
 * each remote set, ports inside and outside each range (the generator stays below 90). */
static const char *universe_remote[] = { "fec0::", "fec0::2", "fec0::3", "fec0::4", "fec0::5", "fec0::9" };
static const int universe_proto[] = { MC_PROTO_TCP, MC_PROTO_UDP, 47 };

/* first[i]: policy i is the first match for some flow of the universe. */
static void universe_first_matches(const struct mc_site *s, bool *first)
{
	struct mc_query q = { 0 };

	mc_addr_parse("fec0::1", &q.local);
	for (int d = 0; d < 2; d++)
		for (size_t p = 0; p < MC_ARRAY_SIZE(universe_proto); p++)
			for (size_t r = 0; r < MC_ARRAY_SIZE(universe_remote); r++) {
				bool ports = universe_proto[p] != 47;
				q.dir = (enum mc_dir)d;
				q.proto = universe_proto[p];
				mc_addr_parse(universe_remote[r], &q.remote);
				for (unsigned lp = ports; lp <= (ports ? 91u : 0u); lp++)
					for (unsigned rp = ports; rp <= (ports ? 91u : 0u); rp++) {
						unsigned l = lp == 91 ? 65000 : lp, rr = rp == 91 ? 65000 : rp;
						const char *name = oracle(s, &q, l, rr);
						for (size_t i = 0; i < s->npol; i++)
							if (name == s->pol[i].name)
								first[i] = true;
					}
			}
}

static void test_shadow_differential(void)
{
	char path[] = "/tmp/mcpsec-lint-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	long policies = 0, flagged = 0, wrong_flag = 0, missed = 0, sites = 0;

	close(fd);
	for (int round = 0; round < 40; round++) {
		struct mc_diags ds;
		struct mc_site *s;
		struct mc_plan plan;
		if (!random_site(path, 3 + (int)rnd(12), &ds, &s, &plan))
			continue;
		sites++;
		mc_lint(s, &plan, &ds);
		bool *first = mc_calloc(s->npol + 1, sizeof(bool));
		universe_first_matches(s, first);
		for (size_t i = 0; i < s->npol; i++) {
			bool said = false;
			char *prefix = mc_asprintf("policy '%s' can never", s->pol[i].name);
			for (size_t k = 0; k < ds.n; k++)
				said |= ds.d[k].code && !strcmp(ds.d[k].code, "shadowed") &&
					!strncmp(ds.d[k].msg, prefix, strlen(prefix));
			free(prefix);
			policies++;
			flagged += said;
			wrong_flag += said && first[i];
			missed += !said && !first[i];
		}
		free(first);
		mc_plan_free(&plan);
		mc_site_free(s);
		mc_diags_free(&ds);
	}
	unlink(path);
	T_OK(sites >= 30, "shadowing: %ld random sites", sites);
	T_OK(flagged > 10 && flagged < policies, "shadowing: %ld of %ld policies reported shadowed", flagged, policies);
	T_EQ_INT(wrong_flag, 0, "shadowing: no policy reported shadowed is ever the first match");
	T_EQ_INT(missed, 0, "shadowing: every policy that is never the first match is reported");
}

int main(void)
{
	test_shadow_differential();
	char *tmp = enter_private_copy(LINT);
	T_OK(tmp != NULL, "fixtures copied to a private directory");
	size_t n = check_fixtures(LINT, false);
	T_OK(n >= 3, "at least 3 lint fixtures (found %zu)", n);

	/* The seed's examples: only the two validation warnings (confidentiality without integrity). */
	size_t errors;
	char *out = diagnose("examples/host-a/site.yaml", &errors);
	T_OK(errors == 0 && !strstr(out, "shadowed") && !strstr(out, "discards") && !strstr(out, "coming back"),
	     "examples/host-a: no lint warning beyond validation");
	free(out);
	leave_private_copy(tmp);
	return t_done();
}
