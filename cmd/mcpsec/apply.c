/* SPDX-License-Identifier: MIT */
/* mcpsec apply | enable | disable | confirm | rollback: the engine's transactions
 * (lib/engine.c), the lockout guard, the trial timer, and what to say. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/diag.h"
#include "../../lib/engine.h"
#include "../../lib/fileio.h"
#include "../../lib/nlx.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"


/* An engine status as mcpsec's exit code. */
static int exit_code(enum mc_engine_status s)
{
	switch (s) {
	case MC_ENGINE_OK: return 0;
	case MC_ENGINE_CONFLICT: return EXIT_KERNEL;
	case MC_ENGINE_REFUSED: return EXIT_KERNEL;
	case MC_ENGINE_PARTIAL: return EXIT_PARTIAL;
	case MC_ENGINE_LOCAL: return EXIT_LOCAL;
	case MC_ENGINE_STOPPED: return EXIT_KERNEL; /* mcpsecd's alone: never a command's */
	case MC_ENGINE_INVALID: return EXIT_CONFIG;
	case MC_ENGINE_DECLINED: return EXIT_CONFIG;
	}
	return EXIT_KERNEL;
}

/* The trial's timer: `mcpsec rollback --token T --after PID`, detached (its own session, no
 * terminal, SIGHUP ignored) so that it outlives the session that ran apply, even when the new
 * policies cut that session. It inherits this process's namespace, and waits for the trial
 * with its token to appear (this process records it after the kernel change), then for its
 * deadline. */
static int start_timer(const char *token)
{
	char dir[PATH_MAX], after[32];
	pid_t pid;
	int status;

	if (!realpath(g_opts.state_dir, dir))
		return -errno;
	snprintf(after, sizeof(after), "%ld", (long)getpid());
	fflush(NULL);
	if ((pid = fork()) < 0)
		return -errno;
	if (pid == 0) {
		if (setsid() < 0)
			_exit(1);
		signal(SIGHUP, SIG_IGN);
		pid_t p2 = fork();
		if (p2)
			_exit(p2 < 0);
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || chdir("/") < 0)
			_exit(1);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execl("/proc/self/exe", "mcpsec", "--state-dir", dir, "rollback", "--token", token, "--after", after,
		      (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -ECHILD;
	return 0;
}

static bool parse_seconds(const char *v, long *ret)
{
	char *end;

	if (!v)
		return false;
	errno = 0;
	*ret = strtol(v, &end, 10);
	return !errno && end != v && !*end && *ret >= 1 && *ret <= 86400;
}

/* The namespace, the kernel and the state directory's lock, in that order. Returns 0 or an
 * exit code, having said why. */
static int open_locked(struct mc_nl **nl, int *lock)
{
	int rc;

	struct mc_diags ds = { 0 };

	if ((rc = enter_netns()) || (rc = open_kernel(nl)))
		return rc;
	*lock = mc_engine_lock(mc_nl_kernel(*nl), g_opts.state_dir, true, &ds, NULL);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (*lock < 0) {
		fprintf(stderr, "mcpsec: cannot lock %s: %s\n", g_opts.state_dir, mc_state_dir_error(*lock));
		return EXIT_LOCAL;
	}
	return 0;
}

/* Rolls back a trial whose deadline passed (its timer died) before anything else. */
static int settle(struct mc_nl *nl)
{
	struct mc_diags ds = { 0 };
	bool done;
	enum mc_engine_status es = mc_engine_settle(mc_nl_kernel(nl), g_opts.state_dir, &ds, &done);

	print_diags(&ds);
	mc_diags_free(&ds);
	if (done)
		fprintf(stderr, "mcpsec: a change that was not confirmed in time was rolled back first\n");
	return exit_code(es);
}

/* Refuses to work over a change that waits for confirmation. */
static int refuse_in_trial(const char *what)
{
	struct mc_trial tr;
	int64_t left;

	if (mc_state_trial_get(g_opts.state_dir, &tr) != 1)
		return 0;
	(void)mc_trial_when(&tr, &left);
	fprintf(stderr, "mcpsec: %s: a change is waiting for confirmation (%s, %lld s left): run 'mcpsec confirm' "
		"or 'mcpsec rollback' first%s\n", what, tr.gen, (long long)(left > 0 ? left : 0),
		strcmp(what, "apply") ? "" : ", or add --force");
	return EXIT_CONFIG;
}

static void print_dry_run(const struct mc_plan *plan, const struct mc_diff *diff, bool ip_cmds)
{
	struct mc_buf b = { 0 };

	mc_plan_render(plan, &b);
	mc_buf_printf(&b, "\noperations (%zu): policies %zu add, %zu update, %zu delete, %zu unchanged; "
		      "SAs %zu add, %zu replace, %zu delete, %zu unchanged", diff->n, diff->pol_add,
		      diff->pol_upd, diff->pol_del, diff->pol_same, diff->sa_add, diff->sa_replace, diff->sa_del,
		      diff->sa_same);
	if (diff->sa_upd)
		mc_buf_printf(&b, ", %zu lifetimes updated in place", diff->sa_upd);
	mc_buf_puts(&b, "\n");
	mc_diff_render(diff, false, &b);
	if (ip_cmds) {
		mc_buf_puts(&b, "\nas ip commands (keys not shown):\n");
		mc_diff_render(diff, true, &b);
	}
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
}

/* MCP: committing is not enabling. A host that was disabled stays so until 'mcpsec enable',
 * unless the file itself says enabled: true. */
static bool stays_disabled(const struct mc_site *s, const struct mc_state *st)
{
	return s && st->committed && !st->enabled && !s->enabled_given;
}

/* Opens the kernel and the state directory (locked unless dry) and reads the committed state;
 * when s is NULL, the committed site too (returned in *committed). Returns 0 or an exit code,
 * having said why. */
static int begin(struct mc_site *s, bool lock_it, struct mc_nl **nl, struct mc_state *st, int *lock,
		 struct mc_site **committed)
{
	struct mc_diags ds = { 0 };
	int rc, r;

	if (lock_it)
		rc = open_locked(nl, lock);
	else if (!(rc = enter_netns()))
		rc = open_kernel(nl);
	if (rc || (lock_it && (rc = settle(*nl))))
		return rc;
	if (!s) {
		/* Only disable loads the committed site here: it needs no key (SAs are kept). */
		r = mc_engine_load_committed(g_opts.state_dir, true, st, &ds, committed);
		print_diags(&ds);
		mc_diags_free(&ds);
		if (r == -ENOENT) {
			fprintf(stderr, "mcpsec: nothing committed in %s: run 'mcpsec apply SITE.yaml' first\n",
				g_opts.state_dir);
			return EXIT_CONFIG;
		}
		return r < 0 ? EXIT_CONFIG : 0;
	}
	if ((r = mc_state_load(g_opts.state_dir, st)) < 0) {
		if (!lock_it) {
			fprintf(stderr, "mcpsec: cannot read state directory %s: %s\n", g_opts.state_dir, strerror(-r));
			return EXIT_LOCAL;
		}
		/* A damaged directory is replaced by this commit (under the lock): that is how it is
		 * repaired, and how a host in lockdown gets its policies back. */
		fprintf(stderr, "mcpsec: warning: the committed configuration in %s cannot be read (%s); this apply "
			"replaces it\n", g_opts.state_dir, mc_state_dir_error(r));
		mc_state_free(st);
		memset(st, 0, sizeof(*st));
		st->dir = mc_strdup(g_opts.state_dir);
	}
	if (stays_disabled(s, st))
		s->enabled = false;
	return 0;
}

/* "policies":{...},"sas":{...},"changes":[...] of apply --json: the counts and every operation by
 * name (the object names and algorithms, never key bytes). */
static void json_diff(const struct mc_diff *d, struct mc_buf *b)
{
	mc_buf_printf(b, "\"policies\":{\"added\":%zu,\"updated\":%zu,\"removed\":%zu,\"unchanged\":%zu},"
		      "\"sas\":{\"added\":%zu,\"replaced\":%zu,\"removed\":%zu,\"unchanged\":%zu,"
		      "\"lifetimes_updated\":%zu},\"changes\":", d->pol_add, d->pol_upd, d->pol_del, d->pol_same,
		      d->sa_add, d->sa_replace, d->sa_del, d->sa_same, d->sa_upd);
	mc_diff_render_json(d, b);
	mc_buf_puts(b, ",");
}

struct apply_opts {
	bool dry_run, ip_cmds, force, json;
	long confirm;
	const char *file;
};

/* What a change's hooks see and keep: the lockout guard's verdict, the diff's counts and, for
 * --json, its rendering. */
struct change_ctx {
	const struct apply_opts *o; /* NULL: disable */
	const struct mc_site *s;
	struct mc_buf *json;        /* apply --json: the "policies","sas","changes" part */
	struct mc_diff counts;      /* the operations reported (counts only: ops not kept) */
	bool would_commit;          /* --dry-run --json: a new generation unless all is so already */
};

/* The lockout guard: what this change would cut, judged against what the kernel enforces now,
 * before the kernel changes. */
static bool judge_cuts(void *ctx, const struct mc_plan *plan, const struct mc_plan *kernel)
{
	struct change_ctx *c = ctx;
	const struct apply_opts *o = c->o;
	bool warn_only = o->dry_run || o->confirm || o->force;
	size_t cuts = lockout_check(c->s->enabled ? plan : NULL, kernel, warn_only ? "warning" : "error");

	if (cuts && !warn_only) {
		fprintf(stderr, "mcpsec: nothing was applied. Fix the policies, or try the change with "
			"'apply --confirm SECONDS' (rolled back unless confirmed), or apply it anyway with --force\n");
		return false;
	}
	return true;
}

static void report_change(void *ctx, const struct mc_plan *plan, const struct mc_diff *diff, const struct mc_state *st)
{
	struct change_ctx *c = ctx;

	c->counts = *diff;
	c->counts.ops = NULL;
	c->counts.names = NULL;
	if (c->json) {
		c->json->len = 0;
		json_diff(diff, c->json);
	}
	if (!c->o || !c->o->dry_run)
		return;
	if (c->json) /* what apply would do: a new generation unless everything is already so */
		c->would_commit = !mc_engine_unchanged(st, diff, plan, c->o->file, c->s->keys_file, c->s->enabled);
	else
		print_dry_run(plan, diff, c->o->ip_cmds);
}

/* Compile, judge, diff, send, commit (lib/engine.c); says what happened (into c->json instead of
 * stdout when given). */
static int transact(struct mc_nl *nl, struct mc_state *st, struct mc_engine_change *ch, struct change_ctx *c,
		    size_t *changes)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e = { 0 };

	ch->report = report_change;
	ch->ctx = c;
	enum mc_engine_status es = mc_engine_apply(mc_nl_kernel(nl), st, ch, &ds, &e);
	print_diags(&ds);
	if (es == MC_ENGINE_CONFLICT || es == MC_ENGINE_INVALID)
		fprintf(stderr, "mcpsec: nothing was %s\n", es == MC_ENGINE_INVALID && c->o ? "applied" : "changed");
	if (c->json && !(es == MC_ENGINE_OK || es == MC_ENGINE_REFUSED || es == MC_ENGINE_PARTIAL))
		c->json->len = 0;
	else if (!c->json && es == MC_ENGINE_OK && c->counts.n && !ch->report_only)
		printf("changed: policies %zu added, %zu updated, %zu removed (%zu unchanged); "
		       "SAs %zu added, %zu replaced, %zu removed (%zu unchanged)%s\n",
		       c->counts.pol_add, c->counts.pol_upd, c->counts.pol_del, c->counts.pol_same, c->counts.sa_add,
		       c->counts.sa_replace, c->counts.sa_del, c->counts.sa_same,
		       c->counts.sa_upd ? ", lifetimes updated in place" : "");
	*changes = es == MC_ENGINE_OK || es == MC_ENGINE_PARTIAL || ch->report_only ? c->counts.n : 0;
	mc_diags_free(&ds);
	return exit_code(es);
}

/* apply --json: one object on stdout whatever happened, the errors on stderr as always.
 * changed: the kernel or the committed configuration changed (a refused change that was undone
 * did not; a partial one did). */
static void print_json_result(const char *file, const struct mc_site *s, bool dry_run, long confirm, int rc,
			      size_t changes, bool committed, const struct mc_buf *diff)
{
	struct mc_buf b = { 0 };
	struct mc_trial tr;

	mc_buf_puts(&b, "{\"site\":");
	mc_buf_json_str(&b, file);
	if (g_opts.netns) {
		mc_buf_puts(&b, ",\"netns\":");
		mc_buf_json_str(&b, g_opts.netns);
	}
	mc_buf_puts(&b, ",\"state_dir\":");
	mc_buf_json_str(&b, g_opts.state_dir);
	mc_buf_printf(&b, ",\"dry_run\":%s,\"exit_status\":%d,\"changed\":%s,\"committed\":%s,",
		      dry_run ? "true" : "false", rc,
		      ((!rc || rc == EXIT_PARTIAL) && changes) || committed ? "true" : "false",
		      committed ? "true" : "false");
	if (s)
		mc_buf_printf(&b, "\"enabled\":%s,", s->enabled ? "true" : "false");
	mc_buf_puts(&b, mc_buf_str(diff));
	if (!dry_run && !rc && confirm && mc_state_trial_get(g_opts.state_dir, &tr) == 1)
		mc_buf_printf(&b, "\"trial\":{\"generation\":\"%s\",\"seconds\":%ld,\"deadline\":%lld},", tr.gen,
			      confirm, (long long)tr.deadline);
	b.len--; /* the last comma */
	mc_buf_puts(&b, "}\n");
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
}

static int parse_apply(int argc, char **argv, struct apply_opts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--dry-run") || is_flag(argv[i], "-n"))
			o->dry_run = true;
		else if (is_flag(argv[i], "--json"))
			o->json = true;
		else if (is_flag(argv[i], "--ip-xfrm"))
			o->ip_cmds = true;
		else if (is_flag(argv[i], "--force"))
			o->force = true;
		else if (is_flag(argv[i], "--confirm")) {
			if (!parse_seconds(i + 1 < argc ? argv[i + 1] : NULL, &o->confirm)) {
				fprintf(stderr, "mcpsec apply: --confirm needs a number of seconds from 1 to 86400\n%s", command_usage("apply"));
				return EXIT_CONFIG;
			}
			i++;
		} else if (argv[i][0] == '-' || o->file) {
			fprintf(stderr, "mcpsec apply: unexpected argument '%s'\n%s", argv[i], command_usage("apply"));
			return EXIT_CONFIG;
		} else
			o->file = argv[i];
	}
	if (!o->file || (o->json && o->ip_cmds)) {
		fprintf(stderr, "%s%s", o->file ? "mcpsec apply: --ip-xfrm and --json do not go together\n" : "",
			command_usage("apply"));
		return EXIT_CONFIG;
	}
	return 0;
}

/* apply --confirm: a confirmed generation to go back to, and the rollback timer started first
 * (if it cannot start, nothing changes). */
static int start_trial(const struct mc_state *st, char *token, size_t len)
{
	if (!st->committed || !st->gen) {
		fprintf(stderr, "mcpsec: --confirm needs a committed configuration to go back to, and %s has none: "
			"commit one first (for a first rollout, a site with 'enabled: false' commits without "
			"enforcing); nothing was applied\n", g_opts.state_dir);
		return EXIT_CONFIG;
	}
	mc_random_token(token, len);
	int r = start_timer(token);
	if (r < 0) {
		fprintf(stderr, "mcpsec: cannot start the rollback timer: %s; nothing was applied\n", strerror(-r));
		return EXIT_LOCAL;
	}
	return 0;
}

/* What an apply did, in words. */
static void say_applied(const struct apply_opts *o, const struct mc_site *s, const struct mc_state *st,
			const struct mc_plan *plan, size_t changes, bool unchanged)
{
	if (!changes && unchanged)
		printf("no changes: the kernel already enforces %s (%zu kernel policies, %zu SAs)\n", o->file,
		       s->enabled ? plan->npols : 0, plan->nsas);
	else if (!changes)
		printf("committed %s: the kernel already enforced it (%zu kernel policies, %zu SAs)\n", o->file,
		       s->enabled ? plan->npols : 0, plan->nsas);
	if (stays_disabled(s, st))
		printf("committed; IPsec stays disabled (mcpsec enable to enforce; or write 'enabled: true' in "
		       "the file)\n");
	else if (!s->enabled)
		printf("ipsec.enabled is false: the configuration is committed but not enforced "
		       "(run 'mcpsec enable')\n");
	struct mc_trial tr;
	if (o->confirm && mc_state_trial_get(g_opts.state_dir, &tr) == 1) {
		char when[32];
		time_t d = (time_t)tr.deadline;
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&d));
		printf("on trial: unless 'mcpsec confirm' runs within %ld s (by %s), the previous configuration "
		       "is restored\n", o->confirm, when);
	}
}

int apply_main(int argc, char **argv)
{
	struct apply_opts o;
	struct mc_diags ds = { 0 };
	struct mc_state st = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_site *s = NULL;
	struct mc_buf jb = { 0 };
	size_t changes = 0;
	bool committed = false, unchanged = false;
	int rc, lock = -1;

	if ((rc = parse_apply(argc, argv, &o)))
		return rc;
	/* Validation first: a broken file never reaches the kernel. A dry run only warns about
	 * key file permissions, since it sends nothing. */
	s = mc_engine_load_site(o.file, NULL, !o.dry_run, &ds);
	print_diags(&ds);
	mc_diags_free(&ds);
	if (!s) {
		fprintf(stderr, "mcpsec: %s has errors; nothing was applied\n", o.file);
		rc = EXIT_CONFIG;
		goto out;
	}
	if ((rc = begin(s, !o.dry_run, &nl, &st, &lock, NULL)))
		goto out;
	if (!o.dry_run && !o.force && (rc = refuse_in_trial("apply")))
		goto out;
	/* A site written for another host applies, but not without a word. */
	(void)mc_engine_check_locals(mc_nl_kernel(nl), s, &ds);
	print_diags(&ds);
	mc_diags_truncate(&ds, 0);
	if (o.dry_run && stays_disabled(s, &st))
		fprintf(stderr, "mcpsec: note: IPsec is disabled on this host and the file leaves ipsec.enabled out: "
			"apply would commit it and IPsec would stay disabled (mcpsec enable to enforce)\n");
	char token[40];
	if (!o.dry_run && o.confirm && (rc = start_trial(&st, token, sizeof(token))))
		goto out;
	struct mc_engine_commit commit = { o.file, s->keys_file, s->enabled, o.confirm, o.confirm ? token : NULL,
					   &unchanged };
	struct mc_engine_change ch = { .site = s, .with_policies = s->enabled, .commit = o.dry_run ? NULL : &commit,
				       .report_only = o.dry_run, .judge = judge_cuts };
	struct change_ctx c = { .o = &o, .s = s, .json = o.json ? &jb : NULL };
	struct mc_plan plan = { 0 };
	ch.keep = &plan; /* for what say_applied counts */
	rc = transact(nl, &st, &ch, &c, &changes);
	committed = o.dry_run ? c.would_commit : !rc && !unchanged;
	if (!rc && !o.dry_run && !o.json)
		say_applied(&o, s, &st, &plan, changes, unchanged);
	mc_plan_free(&plan);
out:
	if (o.json)
		print_json_result(o.file, s, o.dry_run, o.confirm, rc, changes, committed, &jb);
	mc_buf_free(&jb);
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	mc_state_free(&st);
	mc_nl_close(nl);
	mc_site_free(s);
	return rc;
}

/*
 * Stages file (source: as status shows it): validated and compiled for this host as apply does
 * it (under the lock, with the committed priorities), then kept in the state directory beside
 * the committed list, never enforced. Returns an exit code; *gen (may be NULL) gets the staged
 * list's name.
 */
static int stage_file(const char *file, const char *source, char *gen, size_t genlen)
{
	struct mc_diags ds = { 0 };
	struct mc_state st = { 0 }, staged = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_site *s = mc_engine_load_site(file, NULL, true, &ds);
	struct mc_plan plan = { 0 };
	int rc, r, lock = -1;

	print_diags(&ds);
	mc_diags_truncate(&ds, 0);
	if (!s) {
		fprintf(stderr, "mcpsec: %s has errors; nothing was staged\n", file);
		rc = EXIT_CONFIG;
		goto out;
	}
	if ((rc = begin(s, true, &nl, &st, &lock, NULL)))
		goto out;
	(void)mc_engine_check_locals(mc_nl_kernel(nl), s, &ds);
	if ((r = mc_engine_compile(mc_nl_kernel(nl), s, &st, &ds, &plan)) < 0) {
		print_diags(&ds);
		fprintf(stderr, "mcpsec: %s does not compile for this host; nothing was staged\n", file);
		rc = r == -EINVAL ? EXIT_CONFIG : EXIT_KERNEL;
		goto out;
	}
	print_diags(&ds);
	if ((r = mc_state_stage(g_opts.state_dir, file, s->keys_file, source, &plan, &staged)) < 0) {
		fprintf(stderr, "mcpsec: writing the staged list to %s: %s; nothing was staged\n", g_opts.state_dir,
			mc_state_dir_error(r));
		rc = EXIT_LOCAL;
		goto out;
	}
	if (gen)
		snprintf(gen, genlen, "%s", staged.gen);
out:
	mc_plan_free(&plan);
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	mc_state_free(&staged);
	mc_state_free(&st);
	mc_nl_close(nl);
	mc_site_free(s);
	return rc;
}

static int unstage(bool say)
{
	struct mc_state staged = { 0 };
	struct mc_nl *nl = NULL;
	int rc, r, lock = -1;

	if ((rc = open_locked(&nl, &lock)))
		goto out;
	bool was = mc_state_staged(g_opts.state_dir, &staged, NULL) != 0; /* damaged: dropped too */
	if ((r = mc_state_unstage(g_opts.state_dir)) < 0) {
		fprintf(stderr, "mcpsec: dropping the staged list in %s: %s\n", g_opts.state_dir, strerror(-r));
		rc = EXIT_LOCAL;
	} else if (say && was) {
		printf("the staged list%s%s is dropped; nothing changed in the kernel\n",
		       staged.staged_from ? " from " : "", staged.staged_from ? staged.staged_from : "");
	} else if (say) {
		printf("nothing was staged\n");
	}
out:
	mc_state_unlock(lock);
	mc_state_free(&staged);
	mc_nl_close(nl);
	return rc;
}

static volatile sig_atomic_t learn_stop;
static void on_learn_signal(int sig)
{
	(void)sig;
	learn_stop = 1;
}

/* The list staged while learning: everything passes, so that every flow is seen and decided. */
static const char learning_list[] =
	"# mcpsec stage --learn: staged while learning, never enforced\n"
	"policies:\n"
	"  - { name: LEARNIN, direction: in, action: bypass }\n"
	"  - { name: LEARNOUT, direction: out, action: bypass }\n";

/*
 * mcpsec stage --learn SECONDS: stages the learning list, lets mcpsecd see SECONDS of traffic,
 * asks it for the suggested site, drops the learning list. Needs mcpsecd, and nothing staged.
 */
static int learn(long seconds, const char *out)
{
	struct mc_state sg = { 0 };
	struct mc_buf dm = { 0 }, text = { 0 };
	char dir[] = "/tmp/mcpsec-learn-XXXXXX", *file = NULL;
	int rc = 0, r = mc_state_staged(g_opts.state_dir, &sg, NULL);

	mc_state_free(&sg);
	if (r != 0) {
		fprintf(stderr, "mcpsec stage --learn: a list is staged already ('mcpsec status ipsec staged'); "
			"'mcpsec stage --clear' first\n");
		return EXIT_CONFIG;
	}
	if (ask_daemon("totals", &dm) < 0) {
		fprintf(stderr, "mcpsec stage --learn: no mcpsecd watches this namespace: it is mcpsecd that sees the "
			"traffic (start '%s')\n", mcpsecd_command());
		return EXIT_LOCAL;
	}
	if (!mkdtemp(dir)) {
		fprintf(stderr, "mcpsec stage --learn: a temporary directory: %s\n", strerror(errno));
		return EXIT_LOCAL;
	}
	file = mc_asprintf("%s/learning.yaml", dir);
	if (mc_file_write_new(file, learning_list, sizeof(learning_list) - 1, 0600) < 0 ||
	    (rc = stage_file(file, "(mcpsec stage --learn)", NULL, 0))) {
		rc = rc ? rc : EXIT_LOCAL;
		goto out;
	}
	/* mcpsecd starts observing within a second of seeing the list. */
	bool observing = false;
	for (int i = 0; i < 100 && !observing; i++) {
		mc_buf_free(&dm);
		observing = ask_daemon("staged", &dm) == 0 && strstr(mc_buf_str(&dm), "\"observing\":true");
		if (!observing)
			usleep(100000);
	}
	if (!observing) {
		fprintf(stderr, "mcpsec stage --learn: mcpsecd does not observe the traffic ('mcpsec log --staged' says "
			"why)\n");
		rc = EXIT_LOCAL;
		goto drop;
	}
	struct sigaction sa = { .sa_handler = on_learn_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "mcpsec: learning from this namespace's traffic for %ld s (Ctrl-C ends it early)\n", seconds);
	time_t start = time(NULL);
	while (!learn_stop && time(NULL) - start < seconds)
		sleep(1);
	char req[48];
	snprintf(req, sizeof(req), "suggest %lld", (long long)(time(NULL) - start));
	if (ask_daemon(req, &text) < 0 || strncmp(mc_buf_str(&text), "# Suggested", 11)) {
		fprintf(stderr, "mcpsec stage --learn: mcpsecd gave no suggestion: %s\n", mc_buf_str(&text));
		rc = EXIT_LOCAL;
		goto drop;
	}
	rc = write_output("stage", out, &text);
	if (!rc)
		fprintf(stderr, "mcpsec: %s: a list to edit, not a list to trust: it allows exactly the traffic seen "
			"while learning. Review it, then 'mcpsec stage' it before you apply it.\n", out ? out : "written");
drop:
	if (unstage(false) && !rc)
		rc = EXIT_LOCAL;
out:
	if (file)
		(void)unlink(file);
	(void)rmdir(dir);
	free(file);
	mc_buf_free(&dm);
	mc_buf_free(&text);
	return rc;
}

/* mcpsec stage FILE | --clear | --learn SECONDS [--out FILE] */
int stage_main(int argc, char **argv)
{
	const char *file = NULL, *out = NULL;
	bool clear = false;
	long seconds = 0;
	struct mc_buf dm = { 0 };
	char gen[32] = "";
	int rc;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--clear"))
			clear = true;
		else if (is_flag(argv[i], "--learn") && i + 1 < argc) {
			char *end;
			seconds = strtol(argv[++i], &end, 10);
			if (*end || seconds < 1 || seconds > 7 * 86400) {
				fprintf(stderr, "mcpsec stage: --learn takes seconds, 1 to 604800\n");
				return EXIT_CONFIG;
			}
		} else if (is_flag(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "mcpsec stage: unknown option '%s'\n", argv[i]);
			return EXIT_CONFIG;
		} else if (!file)
			file = argv[i];
		else {
			fprintf(stderr, "mcpsec stage: unexpected argument '%s'\n", argv[i]);
			return EXIT_CONFIG;
		}
	}
	if ((int)clear + (file != NULL) + (seconds > 0) != 1 || (out && !seconds)) {
		fputs(command_usage("stage"), stderr);
		return EXIT_CONFIG;
	}
	if (clear)
		return unstage(true);
	if (seconds)
		return learn(seconds, out);
	char *source = realpath(file, NULL);
	rc = stage_file(file, source ? source : file, gen, sizeof(gen));
	free(source);
	if (rc)
		return rc;
	printf("staged %s (%s): nothing changed in the kernel; 'mcpsec status ipsec staged' shows what it would "
	       "do to the traffic seen from now on\n", file, gen);
	if (ask_daemon("totals", &dm) < 0)
		fprintf(stderr, "mcpsec: warning: no mcpsecd watches this namespace: no traffic is observed until it "
			"runs (start '%s')\n", mcpsecd_command());
	mc_buf_free(&dm);
	return 0;
}

static int disable(void)
{
	struct mc_state st = { 0 };
	struct mc_site *s = NULL;
	struct mc_nl *nl = NULL;
	size_t changes;
	int rc, lock = -1;

	if ((rc = begin(NULL, true, &nl, &st, &lock, &s)))
		goto out;
	if ((rc = refuse_in_trial("disable")))
		goto out;
	/* The committed files again, with the flag changed: a new generation like any commit. */
	char *site = mc_state_site_path(&st), *keys = mc_state_keys_path(&st);
	struct mc_engine_commit commit = { site, s->keys_file ? keys : NULL, false, 0, NULL, NULL };
	struct mc_engine_change ch = { .site = s, .with_policies = false, .commit = &commit };
	struct change_ctx c = { .s = s };
	rc = transact(nl, &st, &ch, &c, &changes);
	free(site);
	free(keys);
	if (!rc)
		fprintf(stderr, "mcpsec: warning: IPsec disabled: mcpsec's policies are removed and traffic "
			"now flows without IPsec protection or discard rules (SAs are kept)\n");
out:
	mc_state_unlock(lock);
	mc_state_free(&st);
	mc_nl_close(nl);
	mc_site_free(s);
	return rc;
}
/* enable's lockout guard: refuses what would cut connections, or (--force) only warns. */
static bool judge_enable(void *ctx, const struct mc_plan *plan, const struct mc_plan *kernel)
{
	(void)ctx;
	return lockout_check(plan, kernel, "error") == 0;
}

static bool judge_enable_forced(void *ctx, const struct mc_plan *plan, const struct mc_plan *kernel)
{
	(void)ctx;
	(void)lockout_check(plan, kernel, "warning");
	return true;
}

/* enable: the committed configuration, failing closed (lib/engine.c mc_engine_enforce). */
static int enable(bool force)
{
	struct mc_diags ds = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_enforcement e;
	int rc, lock = -1;

	if ((rc = open_locked(&nl, &lock))) {
		/* A state directory that cannot even be locked cannot be read either: fail closed. */
		if (rc == EXIT_LOCAL && nl) {
			char why[256];
			snprintf(why, sizeof(why), "state directory %s: %s", g_opts.state_dir, mc_state_dir_error(lock));
			if (mc_engine_fail_closed(mc_nl_kernel(nl), g_opts.state_dir, why, &ds, &e) == MC_ENGINE_OK)
				goto report;
			print_diags(&ds);
		}
		goto out;
	}
	if ((rc = settle(nl)))
		goto out;
	/* A change on trial is enforced as it stands, never refused (a host must not stay open
	 * because a decision is pending); only confirm or rollback decides it, so nothing new is
	 * committed over it. */
	struct mc_trial tr;
	bool on_trial = mc_state_trial_get(g_opts.state_dir, &tr) == 1;
	/* The lockout guard judges the committed plan against what the kernel enforces now (at
	 * boot nothing is connected). */
	struct mc_enforce_opts o = { .commit_enabled = !on_trial, .judge = force ? judge_enable_forced : judge_enable };
	enum mc_engine_status es = mc_engine_enforce(mc_nl_kernel(nl), g_opts.state_dir, &o, &ds, &e);
	print_diags(&ds);
	if (es == MC_ENGINE_DECLINED) {
		fprintf(stderr, "mcpsec: nothing was enabled; add --force to enable it anyway\n");
		rc = EXIT_CONFIG;
		goto out;
	}
	if (on_trial)
		fprintf(stderr, "mcpsec: %s is on trial: enforced as it stands; 'mcpsec confirm' keeps it, 'mcpsec "
			"rollback' (or its deadline) goes back to %s\n", tr.gen, tr.confirmed);
	if (e.rolled_back)
		fprintf(stderr, "mcpsec: a change that was not confirmed (or belonged to an earlier boot) was rolled "
			"back first\n");
	if (es != MC_ENGINE_OK) {
		rc = exit_code(es);
		goto out;
	}
report:
	rc = 0;
	char why[sizeof(e.reason) + 80];
	mc_enforcement_str(&e, why, sizeof(why));
	switch (e.level) {
	case MC_ENFORCE_FULL:
		printf("IPsec enabled: %zu kernel policies enforce the committed configuration\n", e.npols);
		break;
	case MC_ENFORCE_NOTHING:
		/* MCP's NW TCPIP OPTION IPSEC with no policies discards everything; mcpsec has no list
		 * to enforce, so it installs nothing and says what a list would do. */
		fprintf(stderr, "mcpsec: nothing committed in %s: enable installed nothing and traffic flows as "
			"before.\nmcpsec: run 'mcpsec apply SITE.yaml' first; once a list is committed, enable "
			"installs it, and a direction with no policy of its own then discards all its traffic "
			"(built-in bypasses excepted), as MCP does ('mcpsec check' says so)\n", g_opts.state_dir);
		rc = EXIT_CONFIG;
		break;
	default:
		fprintf(stderr, "mcpsec: NOT ENFORCED: %s\n", why);
		if (e.level == MC_ENFORCE_NO_SAS)
			fprintf(stderr, "mcpsec: %zu kernel policies are installed; traffic they would protect is "
				"dropped, never sent in clear\n", e.npols);
		else if (e.level == MC_ENFORCE_LOCKDOWN)
			fprintf(stderr, "mcpsec: lockdown: only loopback, the host's own addresses, Neighbor Discovery "
				"and MLD pass; everything else is discarded until the state directory is repaired "
				"(or a site is applied)\n");
		rc = EXIT_NOT_ENFORCED;
	}
out:
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	mc_nl_close(nl);
	return rc;
}

/* mcpsec enable | disable: the command's own name says which. */
int enable_main(int argc, char **argv)
{
	bool enabling = !strcmp(argv[0], "enable"), force = argc == 2 && is_flag(argv[1], "--force");

	if (argc != 1 && !(enabling && force)) {
		fputs(command_usage(argv[0]), stderr);
		return EXIT_CONFIG;
	}
	return enabling ? enable(force) : disable();
}

/* confirm: keep the change on trial. */
static int confirm(void)
{
	struct mc_nl *nl = NULL;
	struct mc_trial tr;
	int rc, lock = -1, r;

	if ((rc = open_locked(&nl, &lock)))
		goto out;
	if ((rc = settle(nl)))
		goto out;
	if ((r = mc_state_trial_get(g_opts.state_dir, &tr)) != 1) {
		fprintf(stderr, "mcpsec: no change is waiting for confirmation in %s\n", g_opts.state_dir);
		rc = EXIT_CONFIG;
		goto out;
	}
	if ((r = mc_state_trial_end(g_opts.state_dir)) < 0) {
		fprintf(stderr, "mcpsec: confirming: %s\n", mc_state_dir_error(r));
		rc = EXIT_LOCAL;
		goto out;
	}
	printf("confirmed: %s is the committed configuration\n", tr.gen);
out:
	mc_state_unlock(lock);
	mc_nl_close(nl);
	return rc;
}

/* rollback now: the trial goes back to its confirmed generation. */
static int rollback(void)
{
	struct mc_diags ds = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_trial tr;
	int rc, lock = -1;

	if ((rc = open_locked(&nl, &lock)))
		goto out;
	if (mc_state_trial_get(g_opts.state_dir, &tr) != 1) {
		fprintf(stderr, "mcpsec: no change is waiting for confirmation in %s\n", g_opts.state_dir);
		rc = EXIT_CONFIG;
		goto out;
	}
	enum mc_engine_status es = mc_engine_rollback(mc_nl_kernel(nl), g_opts.state_dir, &ds);
	print_diags(&ds);
	rc = exit_code(es);
	if (!rc)
		printf("rolled back: %s is the committed configuration again\n", tr.confirmed);
out:
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	mc_nl_close(nl);
	return rc;
}

/* Whether pid lives and runs this same program (the apply that started a timer does). */
static bool same_program(pid_t pid)
{
	char link[64], mine[PATH_MAX], theirs[PATH_MAX];
	ssize_t a, b;

	snprintf(link, sizeof(link), "/proc/%ld/exe", (long)pid);
	b = readlink(link, theirs, sizeof(theirs) - 1);
	if (b < 0)
		return errno == EACCES; /* alive but not ours to look at: assume the worst, and wait */
	a = readlink("/proc/self/exe", mine, sizeof(mine) - 1);
	return a == b && a > 0 && !memcmp(mine, theirs, (size_t)a);
}

/* How long the timer waits for the change it was started for to be recorded: apply starts it
 * just before the change, whose intent (with the timer's token) is written before the kernel is
 * touched. A timer given a token nobody records leaves after this. */
#define TIMER_WAIT_RECORD 120

/*
 * The trial's timer (`mcpsec rollback --token T --after PID`, started by apply --confirm, which
 * is PID). It never trusts that apply finished: while the trial with its token is committed it
 * rolls it back at the deadline (unless confirmed or rolled back before); when apply is gone
 * and its change was never committed, it takes the lock, which brings the kernel back from a
 * change cut short (mc_engine_lock), and leaves.
 */
static int trial_timer(const char *token, pid_t after)
{
	struct mc_diags ds = { 0 };
	struct mc_nl *nl = NULL;
	struct mc_trial tr;
	int64_t started = mc_boottime(), left;
	int rc, lock = -1;
	bool expired = false;

	openlog("mcpsec", LOG_PID, LOG_DAEMON);
	for (bool seen = false; !expired; sleep(1)) {
		/* Whether apply lives is read first: what it records before leaving is then seen. A
		 * process that is not this same program is not the apply that started us. */
		bool applying = same_program(after);
		if (mc_state_trial_get(g_opts.state_dir, &tr) == 1 && !strcmp(tr.token, token)) {
			seen = true;
			expired = mc_trial_when(&tr, &left) != MC_TRIAL_RUNNING;
			continue;
		}
		seen |= mc_state_trial_read(g_opts.state_dir, &tr) == 1 && !strcmp(tr.token, token);
		if (applying && (seen || mc_boottime() - started < TIMER_WAIT_RECORD))
			continue;
		if (applying)
			return 0; /* the change was never recorded: not this timer's */
		break; /* apply is gone; its trial, if any, is not committed */
	}
	if ((rc = open_locked(&nl, &lock)))
		goto out;
	if (expired && mc_state_trial_get(g_opts.state_dir, &tr) == 1 && !strcmp(tr.token, token)) {
		enum mc_engine_status es = mc_engine_rollback(mc_nl_kernel(nl), g_opts.state_dir, &ds);
		rc = exit_code(es);
		syslog(rc ? LOG_ERR : LOG_WARNING, "%s: the change %s was not confirmed in time: %s %s",
		       g_opts.state_dir, tr.gen, rc ? "rolling back failed; still on" : "rolled back to", tr.confirmed);
	}
out:
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	mc_nl_close(nl);
	return rc;
}

int confirm_main(int argc, char **argv)
{
	const char *token = NULL;
	uint32_t after = 0;

	if (!strcmp(argv[0], "confirm")) {
		if (argc != 1) {
			fputs(command_usage("confirm"), stderr);
			return EXIT_CONFIG;
		}
		return confirm();
	}
	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--after") && i + 1 < argc) {
			/* A process id: positive and within pid_t. */
			if (!mc_parse_u32(argv[++i], INT32_MAX, &after) || !after) {
				fprintf(stderr, "mcpsec rollback: --after needs a process id\n");
				return EXIT_CONFIG;
			}
		} else if (is_flag(argv[i], "--token") && i + 1 < argc)
			token = argv[++i];
		else {
			fputs(command_usage("rollback"), stderr);
			return EXIT_CONFIG;
		}
	}
	if (!token != !after) {
		fprintf(stderr, "mcpsec rollback: --token and --after go together (the trial timer's own options)\n");
		return EXIT_CONFIG;
	}
	return token ? trial_timer(token, (pid_t)after) : rollback();
}
