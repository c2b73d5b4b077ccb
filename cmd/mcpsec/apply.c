/* SPDX-License-Identifier: MIT */
/* mcpsec apply | enable | disable: the engine's transaction (lib/engine.c), and what to say. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/diag.h"
#include "../../lib/engine.h"
#include "../../lib/nlx.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"

#define APPLY_USAGE "usage: mcpsec apply [--dry-run [--ip-xfrm]] SITE.yaml\n"

/* An engine status as mcpsec's exit code. */
static int exit_code(enum mc_engine_status s)
{
	switch (s) {
	case MC_ENGINE_OK: return 0;
	case MC_ENGINE_CONFLICT: return EXIT_KERNEL;
	case MC_ENGINE_REFUSED: return EXIT_KERNEL;
	case MC_ENGINE_PARTIAL: return EXIT_PARTIAL;
	case MC_ENGINE_LOCAL: return EXIT_LOCAL;
	}
	return EXIT_KERNEL;
}

static void print_dry_run(const struct mc_plan *plan, const struct mc_diff *diff, bool ip_cmds)
{
	struct mc_buf b = { 0 };

	mc_plan_render(plan, &b);
	mc_buf_printf(&b, "\noperations (%zu): policies %zu add, %zu update, %zu delete, %zu unchanged; "
		      "SAs %zu add, %zu replace, %zu delete, %zu unchanged\n", diff->n, diff->pol_add,
		      diff->pol_upd, diff->pol_del, diff->pol_same, diff->sa_add, diff->sa_replace, diff->sa_del,
		      diff->sa_same);
	mc_diff_render(diff, false, &b);
	if (ip_cmds) {
		mc_buf_puts(&b, "\nas ip commands (keys not shown):\n");
		mc_diff_render(diff, true, &b);
	}
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
}

/* Opens the kernel and the state directory (locked unless dry), compiles s (or, when s is NULL,
 * the committed site, returned in *committed). Returns 0 or an exit code, having said why. */
static int begin(struct mc_site *s, bool lock_it, struct mc_nl **nl, struct mc_state *st, int *lock,
		 struct mc_site **committed, struct mc_plan *plan)
{
	struct mc_diags ds = { 0 };
	int rc, r;

	if ((rc = enter_netns()) || (rc = open_kernel(nl)))
		return rc;
	if (lock_it && (*lock = mc_state_lock(g_opts.state_dir, true)) < 0) {
		fprintf(stderr, "mcpsec: cannot lock %s: %s\n", g_opts.state_dir, mc_state_dir_error(*lock));
		return EXIT_LOCAL;
	}
	if (!s) {
		r = mc_engine_load_committed(g_opts.state_dir, st, &ds, committed);
		if (r == -ENOENT) {
			fprintf(stderr, "mcpsec: nothing committed in %s: run 'mcpsec apply SITE.yaml' first\n",
				g_opts.state_dir);
			return EXIT_CONFIG;
		}
		s = *committed;
	} else if ((r = mc_state_load(g_opts.state_dir, st)) < 0) {
		fprintf(stderr, "mcpsec: cannot read state directory %s: %s\n", g_opts.state_dir, strerror(-r));
		return EXIT_LOCAL;
	}
	if (!r)
		r = mc_engine_compile(*nl, s, st, &ds, plan);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (r == -EINVAL)
		return EXIT_CONFIG;
	return r < 0 ? EXIT_KERNEL : 0;
}

/* Diff, send, commit; says what happened. */
static int transact(struct mc_nl *nl, struct mc_state *st, const struct mc_plan *plan, bool with_policies,
		    const struct mc_engine_commit *commit, size_t *changes)
{
	struct mc_diags ds = { 0 };
	struct mc_diff diff;
	size_t done = 0;
	enum mc_engine_status es = mc_engine_diff(nl, plan, with_policies, st, &ds, &diff);

	if (es == MC_ENGINE_OK)
		es = mc_engine_send(nl, st, &diff, plan, commit, &ds, &done);
	print_diags(&ds);
	if (es == MC_ENGINE_CONFLICT)
		fprintf(stderr, "mcpsec: nothing was changed\n");
	else if (es == MC_ENGINE_OK && diff.n)
		printf("changed: policies %zu added, %zu updated, %zu removed (%zu unchanged); "
		       "SAs %zu added, %zu replaced, %zu removed (%zu unchanged)\n",
		       diff.pol_add, diff.pol_upd, diff.pol_del, diff.pol_same, diff.sa_add, diff.sa_replace,
		       diff.sa_del, diff.sa_same);
	*changes = diff.n;
	mc_diff_free(&diff);
	mc_diags_free(&ds);
	return exit_code(es);
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
	int rc, lock = -1;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--dry-run") || is_flag(argv[i], "-n"))
			dry_run = true;
		else if (is_flag(argv[i], "--ip-xfrm"))
			ip_cmds = true;
		else if (argv[i][0] == '-' || file) {
			fprintf(stderr, "mcpsec apply: unexpected argument '%s'\n" APPLY_USAGE, argv[i]);
			return EXIT_CONFIG;
		} else
			file = argv[i];
	}
	if (!file) {
		fprintf(stderr, APPLY_USAGE);
		return EXIT_CONFIG;
	}
	/* Validation first: a broken file never reaches the kernel. A dry run only warns about
	 * key file permissions, since it sends nothing. */
	s = mc_engine_load_site(file, NULL, !dry_run, &ds);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (!s) {
		fprintf(stderr, "mcpsec: %s has errors; nothing was applied\n", file);
		return EXIT_CONFIG;
	}
	if ((rc = begin(s, !dry_run, &nl, &st, &lock, NULL, &plan))) {
		if (rc == EXIT_CONFIG)
			fprintf(stderr, "mcpsec: nothing was applied\n");
		goto out;
	}
	if (dry_run) {
		struct mc_diff diff;
		enum mc_engine_status es = mc_engine_diff(nl, &plan, s->enabled, &st, &ds, &diff);
		print_diags(&ds);
		if (es == MC_ENGINE_OK)
			print_dry_run(&plan, &diff, ip_cmds);
		else if (es == MC_ENGINE_CONFLICT)
			fprintf(stderr, "mcpsec: nothing was changed\n");
		rc = exit_code(es);
		mc_diff_free(&diff);
		goto out;
	}
	struct mc_engine_commit commit = { file, s->keys_file, s->enabled };
	if ((rc = transact(nl, &st, &plan, s->enabled, &commit, &changes)))
		goto out;
	if (!changes)
		printf("no changes: the kernel already enforces %s (%zu kernel policies, %zu SAs)\n", file,
		       s->enabled ? plan.npols : 0, plan.nsas);
	if (!s->enabled)
		printf("ipsec.enabled is false: the configuration is committed but not enforced "
		       "(run 'mcpsec enable')\n");
out:
	mc_diags_free(&ds);
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
	size_t changes;
	int rc, lock = -1;

	if ((rc = begin(NULL, true, &nl, &st, &lock, &s, &plan)))
		goto out;
	/* The committed files again, with the flag changed: a new generation like any commit. */
	char *site = mc_state_site_path(&st), *keys = mc_state_keys_path(&st);
	struct mc_engine_commit commit = { site, s->keys_file ? keys : NULL, enable };
	rc = transact(nl, &st, &plan, enable, &commit, &changes);
	free(site);
	free(keys);
	if (rc)
		goto out;
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
