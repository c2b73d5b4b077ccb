/* SPDX-License-Identifier: MIT */
/* mcpsec apply | enable | disable: compile, diff against the kernel, send, commit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/nlx.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"

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
	int rc, lock = -1;

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
	if (!dry_run && (lock = mc_state_lock(g_opts.state_dir, true)) < 0) {
		fprintf(stderr, "mcpsec: cannot lock %s: %s\n", g_opts.state_dir, strerror(-lock));
		rc = EXIT_KERNEL;
		goto out;
	}
	rc = compile_for_host(s, nl, &st, &ds, &plan);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (rc) {
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
	mc_state_unlock(lock);
	mc_plan_free(&plan);
	mc_state_free(&st);
	mc_nl_close(nl);
	mc_site_free(s);
	return rc;
}

static int set_enabled(bool enable)
{
	struct mc_state st = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_diags ds = { 0 };
	size_t changes;
	int rc, lock = -1;

	if ((rc = enter_netns()))
		return rc;
	if ((lock = mc_state_lock(g_opts.state_dir, true)) < 0) {
		fprintf(stderr, "mcpsec: cannot lock %s: %s\n", g_opts.state_dir, strerror(-lock));
		return EXIT_KERNEL;
	}
	rc = load_committed(g_opts.state_dir, &st, &ds, &s);
	if (!rc && !(rc = open_kernel(&nl)))
		rc = compile_for_host(s, nl, &st, &ds, &plan);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (rc == -ENOENT) {
		fprintf(stderr, "mcpsec: nothing committed in %s: run 'mcpsec apply SITE.yaml' first\n",
			g_opts.state_dir);
		rc = EXIT_CONFIG;
	}
	if (rc)
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
	mc_state_unlock(lock);
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
