/* SPDX-License-Identifier: MIT */
/* mcpsec apply | enable | disable: compile, diff against the kernel, send, commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/nlx.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"

/* Compiles a site against this host (route lookups, own addresses, committed priorities). */
static int compile_for_host(const struct mc_site *s, struct mc_nl *nl, struct mc_state *st,
			    struct mc_plan *plan)
{
	struct host_facts hf;
	struct mc_diags ds = { 0 };
	int rc;

	if ((rc = gather_host(nl, &hf)))
		return rc;
	struct mc_host host = { route_src_cb, nl, hf.own6, hf.nown6, mc_state_prev_priority, st };
	int r = mc_compile(s, &host, &ds, plan);
	print_diags(&ds);
	mc_diags_free(&ds);
	free_host(&hf);
	if (r < 0) {
		mc_plan_free(plan);
		return EXIT_CONFIG;
	}
	return 0;
}

int apply_main(int argc, char **argv)
{
	bool dry_run = false, ip_cmds = false;
	const char *file = NULL;
	struct mc_diags ds = { 0 };
	struct mc_state st = { 0 };
	struct mc_plan plan = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_site *s = NULL;
	size_t changes;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--dry-run") || is_flag(argv[i], "-n"))
			dry_run = true;
		else if (is_flag(argv[i], "--ip-xfrm"))
			ip_cmds = true;
		else if (argv[i][0] == '-' || file) {
			fprintf(stderr, "mcpsec apply: unexpected argument '%s'\n"
				"usage: mcpsec apply [--dry-run [--ip-xfrm]] SITE.yaml\n", argv[i]);
			return EXIT_CONFIG;
		} else
			file = argv[i];
	}
	if (!file) {
		fprintf(stderr, "usage: mcpsec apply [--dry-run [--ip-xfrm]] SITE.yaml\n");
		return EXIT_CONFIG;
	}
	/* Validation first: a broken file never reaches the kernel. A dry run only warns about
	 * key file permissions, since it sends nothing. */
	s = load_site(file, NULL, !dry_run, &ds);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (!s) {
		fprintf(stderr, "mcpsec: %s has errors; nothing was applied\n", file);
		return EXIT_CONFIG;
	}
	if ((rc = enter_netns()) || (rc = open_kernel(&nl)))
		goto out;
	if (mc_state_load(g_opts.state_dir, &st) < 0) {
		fprintf(stderr, "mcpsec: cannot read state directory %s\n", g_opts.state_dir);
		rc = EXIT_KERNEL;
		goto out;
	}
	if ((rc = compile_for_host(s, nl, &st, &plan))) {
		fprintf(stderr, "mcpsec: nothing was applied\n");
		goto out;
	}
	if (dry_run) {
		struct mc_buf b = { 0 };
		mc_plan_render(&plan, &b);
		fputs(mc_buf_str(&b), stdout);
		mc_buf_free(&b);
	}
	rc = sync_kernel(nl, &plan, s->enabled, dry_run, ip_cmds, &st, &changes);
	if (rc || dry_run)
		goto out;
	if (!changes)
		printf("no changes: the kernel already enforces %s (%zu kernel policies, %zu SAs)\n", file,
		       s->enabled ? plan.npols : 0, plan.nsas);
	int r = mc_state_commit(&st, file, s->keys_file, &plan);
	if (r < 0) {
		fprintf(stderr, "mcpsec: applied, but committing to %s failed: %s\n", g_opts.state_dir, strerror(-r));
		rc = EXIT_KERNEL;
		goto out;
	}
	if (!s->enabled)
		printf("ipsec.enabled is false: the configuration is committed but not enforced "
		       "(run 'mcpsec enable')\n");
out:
	mc_plan_free(&plan);
	mc_state_free(&st);
	mc_nl_close(nl);
	mc_site_free(s);
	return rc;
}

/* Loads the committed site from the state directory. */
static int load_committed(struct mc_state *st, struct mc_site **ret)
{
	struct mc_diags ds = { 0 };

	if (mc_state_load(g_opts.state_dir, st) < 0 || !st->committed) {
		fprintf(stderr, "mcpsec: nothing committed in %s: run 'mcpsec apply SITE.yaml' first\n",
			g_opts.state_dir);
		return EXIT_CONFIG;
	}
	char *site = mc_state_site_path(st), *keys = mc_state_keys_path(st);
	FILE *f = fopen(keys, "re");
	bool have_keys = f != NULL;
	if (f)
		fclose(f);
	*ret = load_site(site, have_keys ? keys : NULL, true, &ds);
	print_diags(&ds);
	mc_diags_free(&ds);
	free(site);
	free(keys);
	return *ret ? 0 : EXIT_CONFIG;
}

static int set_enabled(bool enable)
{
	struct mc_state st = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan = { 0 };
	struct mc_nl *nl = NULL;
	size_t changes;
	int rc;

	if ((rc = enter_netns()) || (rc = load_committed(&st, &s)) || (rc = open_kernel(&nl)))
		goto out;
	if ((rc = compile_for_host(s, nl, &st, &plan)))
		goto out;
	if ((rc = sync_kernel(nl, &plan, enable, false, false, &st, &changes)))
		goto out;
	int r = mc_state_set_enabled(&st, enable);
	if (r < 0) {
		fprintf(stderr, "mcpsec: recording the enabled flag in %s: %s\n", g_opts.state_dir, strerror(-r));
		rc = EXIT_KERNEL;
		goto out;
	}
	if (enable)
		printf("IPsec enabled: %zu kernel policies enforce the committed configuration\n", plan.npols);
	else
		fprintf(stderr, "mcpsec: warning: IPsec disabled: mcpsec's policies are removed and traffic "
			"now flows without IPsec protection or discard rules (SAs are kept)\n");
out:
	mc_plan_free(&plan);
	mc_state_free(&st);
	mc_nl_close(nl);
	mc_site_free(s);
	return rc;
}

/* mcpsec enable | disable: the command's own name says which. */
int enable_main(int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: mcpsec %s\n", argv[0]);
		return EXIT_CONFIG;
	}
	return set_enabled(!strcmp(argv[0], "enable"));
}
