/* SPDX-License-Identifier: MIT */
/*
 * The state directory without root: prepare, switch, abandon, recovery after a kill at every
 * step of a commit, trials (begin, arm, revert, end), and mc_state_same, in a temporary
 * directory. The kills use the test build's fault injection (tests/fault: commit-kill:K)
 * in a child process, as an apply killed by a power cut or an OOM killer would be.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/fileio.h"
#include "../../lib/names.h"
#include "../../lib/plan.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "../fault/fault.h"
#include "t.h"
#include "tmpdir.h"


static const char site_v1[] = "ipsec: {default: deny}\npolicies:\n"
			      "  - {name: SSHIN, direction: in, protocol: tcp, local-ports: 22, action: bypass}\n";
static const char site_v2[] = "ipsec: {default: deny}\npolicies:\n"
			      "  - {name: SSHIN, direction: in, protocol: tcp, local-ports: 22, action: bypass}\n"
			      "  - {name: WEBIN, direction: in, protocol: tcp, local-ports: 443, action: bypass}\n";

static bool compile_text(const char *text, struct mc_plan *plan)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	bool ok = mc_conf_parse("site.yaml", text, strlen(text), &ds, &s) == 0 && mc_site_validate(s, &ds) == 0 &&
		  mc_compile(s, NULL, &ds, plan) == 0;
	mc_site_free(s);
	mc_diags_free(&ds);
	return ok;
}

/* The committed site file's bytes, or NULL. */
static char *committed_site(const char *dir, int *err)
{
	struct mc_state st = { 0 };
	char *text = NULL, *p;
	size_t len = 0;

	*err = mc_state_load(dir, &st);
	if (*err == 0 && st.committed && (p = mc_state_site_path(&st))) {
		(void)mc_file_read(p, 0, MC_FILE_MAX, &text, &len, NULL);
		free(p);
	}
	mc_state_free(&st);
	return text;
}

/* Names in dir that a finished commit never leaves: generations other than keep, pending,
 * unfinished generations, temporary files. */
static int leftovers(const char *dir, const char *keep, const char *keep2)
{
	DIR *d = opendir(dir);
	int n = 0;

	for (struct dirent *e; d && (e = readdir(d));) {
		const char *x = e->d_name;
		if ((!strncmp(x, "gen-", 4) || !strncmp(x, "staged-", 7)) && strcmp(x, keep) && (!keep2 || strcmp(x, keep2)))
			n += printf("# leftover: %s\n", x) > 0;
		else if (!strcmp(x, "pending") || strstr(x, ".tmp.") || strstr(x, ".new"))
			n += printf("# leftover: %s\n", x) > 0;
	}
	if (d)
		closedir(d);
	return n;
}

static char *current_gen(const char *dir)
{
	struct mc_state st = { 0 };
	char *g = mc_state_load(dir, &st) == 0 && st.gen ? mc_strdup(st.gen) : NULL;
	mc_state_free(&st);
	return g;
}

static void test_prepare_switch_abandon(const char *dir, const struct mc_plan *p1, const struct mc_plan *p2)
{
	struct mc_state st = { 0 }, next;
	int err;
	char *site = path("site.yaml");

	T_EQ_INT(mc_state_load(dir, &st), 0, "a directory never configured loads");
	T_OK(!st.committed && !mc_state_configured(dir), "and holds nothing committed");
	put("site.yaml", site_v1);
	T_EQ_INT(mc_state_prepare(&st, site, NULL, p1, true, &next), 0, "prepare writes generation %s", next.gen);
	char *text = committed_site(dir, &err);
	/* (A first generation prepared but not switched makes the directory look configured to a
	 * reader without the lock: what matters is that nothing of it reads as committed.) */
	T_OK(!text, "prepared is not committed: no committed site loads yet (load: %d)", err);
	free(text);
	T_EQ_INT(mc_state_switch(&st, &next), 0, "switch commits it");
	text = committed_site(dir, &err);
	T_EQ_STR(text, site_v1, "the committed copy is the site, byte for byte");
	free(text);
	const struct mc_rule *ssh = NULL;
	for (size_t i = 0; i < p1->nrules; i++)
		if (!strcmp(p1->rules[i].name, "SSHIN"))
			ssh = &p1->rules[i];
	const char *named = ssh ? mc_names_rule(&st.names, ssh->priority, ssh->dir, AF_INET6) : NULL;
	T_EQ_STR(named, "SSHIN", "the rule names come from the plan (priority %u)", ssh ? ssh->priority : 0);
	T_OK(mc_state_same(&st, site, NULL, p1, true), "the same site and plan: nothing to commit");
	put("site.yaml", site_v2);
	T_OK(!mc_state_same(&st, site, NULL, p2, true), "another site: something to commit");

	/* A refused kernel change: the prepared generation goes, the committed one stays. */
	char *before = current_gen(dir);
	T_EQ_INT(mc_state_prepare(&st, site, NULL, p2, true, &next), 0, "prepare a second generation");
	char *second = mc_strdup(next.gen);
	mc_state_abandon(&next);
	char *g = path(second);
	struct stat sb;
	T_OK(lstat(g, &sb) < 0 && errno == ENOENT, "abandon removes %s", second);
	char *after = current_gen(dir);
	T_OK(before && after && !strcmp(before, after), "and %s is still committed", before ? before : "?");
	T_EQ_INT(leftovers(dir, after ? after : "", NULL), 0, "nothing else is left");
	free(g);
	free(second);
	free(before);
	free(after);
	free(site);
	mc_state_free(&st);
}

/*
 * Kill a commit at step K = 1, 2, ... until one runs to the end. After each, the next holder of
 * the lock must find exactly the old or the new site committed, never damage; know that a
 * change was cut short whenever the old one is what it finds (the kernel may hold part of the
 * new one); and leave no generation, pending record or temporary file behind.
 */
static void test_kill_sweep(const char *dir, const struct mc_plan *p2)
{
	char *site = path("site.yaml");
	int steps = 0, olds = 0, news = 0, bad = 0;

	for (int k = 1; k <= 40; k++) {
		/* Start from the old site committed. */
		put("site.yaml", site_v1);
		struct mc_state st = { 0 };
		int fd = mc_state_lock(dir, true, NULL);
		(void)mc_state_load(dir, &st);
		struct mc_plan p1;
		if (compile_text(site_v1, &p1)) {
			(void)mc_state_commit(&st, site, NULL, &p1);
			mc_plan_free(&p1);
		}
		mc_state_free(&st);
		mc_state_unlock(fd);
		char *old_gen = current_gen(dir);
		put("site.yaml", site_v2);

		pid_t pid = fork();
		if (pid == 0) {
			char fault[32];
			snprintf(fault, sizeof(fault), "commit-kill:%d", k);
			mc_fault_set(fault);
			struct mc_state cst = { 0 }, next;
			int cfd = mc_state_lock(dir, true, NULL);
			(void)mc_state_load(dir, &cst);
			if (mc_state_prepare(&cst, site, NULL, p2, true, &next) == 0 && mc_state_switch(&cst, &next) == 0)
				_exit(0);
			_exit(cfd < 0 ? 3 : 2);
		}
		int status = 0;
		waitpid(pid, &status, 0);
		bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		bool interrupted = false;
		fd = mc_state_lock(dir, true, &interrupted);
		int err;
		char *text = committed_site(dir, &err);
		char *now = current_gen(dir);
		bool is_old = text && !strcmp(text, site_v1), is_new = text && !strcmp(text, site_v2);
		if (err || !(is_old || is_new) || (is_old && !interrupted) || (killed ? 0 : !is_new) ||
		    leftovers(dir, now ? now : "", NULL)) {
			printf("# kill at step %d: load %d, %s, interrupted %d, exit status %d\n", k, err,
			       is_old ? "old site" : is_new ? "new site" : "neither site", interrupted, status);
			bad++;
		}
		olds += killed && is_old;
		news += killed && is_new;
		mc_state_unlock(fd);
		free(text);
		free(now);
		free(old_gen);
		if (!killed) {
			steps = k - 1;
			break;
		}
	}
	T_OK(steps > 0, "a commit has %d steps; it was killed at each", steps);
	T_EQ_INT(bad, 0, "after every kill: the old or the new site, a cut change known, nothing left over");
	T_OK(olds > 0 && news > 0, "kills left the old site (%d) and the new one (%d) committed", olds, news);
	free(site);
}

/* apply --confirm: begin and arm a trial, roll it back; then another, confirmed. */
static void test_trial(const char *dir, const struct mc_plan *p1, const struct mc_plan *p2)
{
	char *site = path("site.yaml");
	struct mc_state st = { 0 }, next;
	struct mc_trial tr;
	char token[40];

	put("site.yaml", site_v1);
	int fd = mc_state_lock(dir, true, NULL);
	(void)mc_state_load(dir, &st);
	(void)mc_state_commit(&st, site, NULL, p1);
	char *confirmed = mc_strdup(st.gen);
	put("site.yaml", site_v2);
	mc_random_token(token, sizeof(token));
	T_EQ_INT(mc_state_prepare(&st, site, NULL, p2, true, &next), 0, "prepare the generation on trial");
	T_EQ_INT(mc_state_trial_begin(&st, &next, 60, token), 0, "the trial is recorded before the kernel changes");
	T_EQ_INT(mc_state_trial_arm(dir, 60), 0, "armed once the kernel has changed");
	T_EQ_INT(mc_state_switch(&st, &next), 0, "switch");
	T_EQ_INT(mc_state_trial_get(dir, &tr), 1, "a trial runs");
	T_EQ_STR(tr.confirmed, confirmed, "its way back is the confirmed generation");
	int64_t left = 0;
	T_OK(mc_trial_when(&tr, &left) == MC_TRIAL_RUNNING && left > 50 && left <= 60, "%lld s to go",
	     (long long)left);
	T_EQ_INT(mc_state_trial_revert(dir), 0, "rollback");
	int err;
	char *text = committed_site(dir, &err);
	T_EQ_STR(text, site_v1, "after the rollback the confirmed site is committed again");
	free(text);
	T_EQ_INT(mc_state_trial_get(dir, &tr), 0, "and no trial runs");
	mc_state_free(&st);
	mc_state_unlock(fd);

	/* A trial confirmed: the new site stays; its way back goes. */
	fd = mc_state_lock(dir, true, NULL);
	(void)mc_state_load(dir, &st);
	mc_random_token(token, sizeof(token));
	T_EQ_INT(mc_state_prepare(&st, site, NULL, p2, true, &next), 0, "prepare again");
	char *old = mc_strdup(st.gen);
	T_OK(mc_state_trial_begin(&st, &next, 60, token) == 0 && mc_state_trial_arm(dir, 60) == 0 &&
		     mc_state_switch(&st, &next) == 0,
	     "a second trial");
	T_EQ_INT(mc_state_trial_end(dir), 0, "confirm");
	text = committed_site(dir, &err);
	T_EQ_STR(text, site_v2, "the confirmed change stays");
	free(text);
	char *g = path(old);
	struct stat sb;
	T_OK(lstat(g, &sb) < 0 && errno == ENOENT, "the way back (%s) is gone", old);
	T_EQ_INT(mc_state_trial_get(dir, &tr), 0, "no trial runs");
	free(g);
	free(old);
	free(confirmed);
	free(site);
	mc_state_free(&st);
	mc_state_unlock(fd);
}

/* The staged site's bytes and its state (1 staged, 0 not, -errno). */
static int staged_site(const char *dir, char **text)
{
	struct mc_state st;
	size_t len = 0;
	int r = mc_state_staged(dir, &st, NULL);

	*text = NULL;
	if (r == 1) {
		char *p = mc_state_site_path(&st);
		(void)mc_file_read(p, 0, MC_FILE_MAX, text, &len, NULL);
		free(p);
	}
	mc_state_free(&st);
	return r;
}

/* mcpsec stage: a generation no commit names, kept by the lock's clean-up, dropped by a commit
 * of the same file, found damaged when it is. */
static void test_stage(const char *dir, const struct mc_plan *p1, const struct mc_plan *p2)
{
	char *site = path("site.yaml"), *text, *link = mc_asprintf("%s/staged", dir);
	struct mc_state st = { 0 }, sg;
	int r;

	/* Nothing committed: a staged list alone does not make the directory configured. */
	put("site.yaml", site_v2);
	T_EQ_INT(mc_state_stage(dir, site, NULL, "/etc/mcpsec/new.yaml", p2, &sg), 0, "stage into an empty directory");
	T_OK(!mc_state_configured(dir), "a staged list alone is not a configuration");
	T_OK(mc_state_load(dir, &st) == 0 && !st.committed, "nothing is committed");
	mc_state_free(&st);
	mc_state_free(&sg);
	/* Commit v1, stage v2. */
	put("site.yaml", site_v1);
	int fd = mc_state_lock(dir, true, NULL);
	(void)mc_state_load(dir, &st);
	T_EQ_INT(mc_state_commit(&st, site, NULL, p1), 0, "commit v1");
	mc_state_free(&st);
	mc_state_unlock(fd);
	put("site.yaml", site_v2);
	T_EQ_INT(mc_state_stage(dir, site, NULL, "/etc/mcpsec/new\nline.yaml", p2, &sg), 0, "stage v2");
	T_OK(sg.gen && !sg.committed, "a generation of its own, not committed (%s)", sg.gen ? sg.gen : "");
	char *staged_gen = mc_strdup(sg.gen ? sg.gen : "");
	mc_state_free(&sg);
	r = staged_site(dir, &text);
	T_OK(r == 1 && text && !strcmp(text, site_v2), "mc_state_staged reads v2 back");
	free(text);
	T_OK(mc_state_staged(dir, &sg, NULL) == 1 && sg.staged_from && !strcmp(sg.staged_from, "/etc/mcpsec/new?line.yaml"),
	     "the source file is kept, on one line (%s)", sg.staged_from ? sg.staged_from : "");
	T_OK(sg.names.n == 2 && mc_names_prev_priority(&sg.names, "WEBIN", MC_DIR_IN) != 0, "its names are those of the staged plan");
	mc_state_free(&sg);
	int err;
	text = committed_site(dir, &err);
	T_OK(text && !strcmp(text, site_v1), "the committed site is still v1");
	free(text);
	/* The lock's clean-up keeps it. */
	fd = mc_state_lock(dir, true, NULL);
	mc_state_unlock(fd);
	char *cur = current_gen(dir);
	T_OK(staged_site(dir, &text) == 1 && text, "the lock's clean-up keeps the staged generation");
	free(text);
	T_EQ_INT(leftovers(dir, cur ? cur : "", staged_gen), 0, "and leaves nothing else");
	/* Staged again: the old staged generation goes. */
	T_EQ_INT(mc_state_stage(dir, site, NULL, "again.yaml", p2, &sg), 0, "stage v2 again");
	T_EQ_INT(leftovers(dir, cur ? cur : "", sg.gen), 0, "the previous staged generation is gone");
	mc_state_free(&sg);
	/* Damage. */
	(void)mc_state_staged(dir, &sg, NULL);
	char *state_file = mc_asprintf("%s/%s/state", dir, sg.gen);
	mc_state_free(&sg);
	char *orig = NULL;
	size_t olen = 0;
	(void)mc_file_read(state_file, 0, MC_FILE_MAX, &orig, &olen, NULL);
	(void)truncate(state_file, 10);
	T_EQ_INT(staged_site(dir, &text), -EUCLEAN, "a truncated staged state file: damaged");
	free(text);
	(void)unlink(state_file);
	(void)mc_file_write_new(state_file, orig, olen, 0600);
	T_EQ_INT(staged_site(dir, &text), 1, "restored: staged again");
	free(text);
	/* A FIFO where the staged state file was: damage, read without blocking (a read of a FIFO
	 * with no writer would wait for ever; the test's alarm would end it). */
	(void)unlink(state_file);
	(void)mkfifo(state_file, 0600);
	alarm(10);
	T_EQ_INT(staged_site(dir, &text), -EUCLEAN, "a FIFO for the staged state file: damaged, never waited on");
	free(text);
	(void)unlink(state_file);
	(void)mc_file_write_new(state_file, orig, olen, 0600);
	char *saved = mc_asprintf("%s.saved", link);
	(void)rename(link, saved);
	(void)mkfifo(link, 0600);
	T_EQ_INT(staged_site(dir, &text), -EUCLEAN, "'staged' a FIFO: damaged, never waited on");
	alarm(0);
	free(text);
	(void)unlink(link);
	(void)mc_file_write_new(link, "staged-1\n", 9, 0600);
	T_EQ_INT(staged_site(dir, &text), -EUCLEAN, "'staged' a regular file: damaged, not followed");
	free(text);
	(void)unlink(link);
	(void)symlink("../../etc", link);
	T_EQ_INT(staged_site(dir, &text), -EUCLEAN, "'staged' a link out of the directory: damaged");
	free(text);
	(void)unlink(link);
	(void)symlink(cur, link);
	T_EQ_INT(staged_site(dir, &text), -EUCLEAN, "'staged' naming the committed generation: damaged, not read");
	free(text);
	(void)unlink(link);
	(void)rename(saved, link);
	/* A commit of another file keeps it; of the same file, drops it. */
	put("site.yaml", site_v1);
	fd = mc_state_lock(dir, true, NULL);
	(void)mc_state_load(dir, &st);
	struct mc_plan p1b;
	(void)compile_text(site_v1 , &p1b);
	T_EQ_INT(mc_state_commit(&st, site, NULL, &p1b), 0, "commit v1 again (unchanged, a new generation)");
	T_EQ_INT(staged_site(dir, &text), 1, "another file committed: still staged");
	free(text);
	put("site.yaml", site_v2);
	T_EQ_INT(mc_state_commit(&st, site, NULL, p2), 0, "commit v2, the staged file");
	T_EQ_INT(staged_site(dir, &text), 0, "the staged list, applied, is dropped");
	free(text);
	mc_state_free(&st);
	mc_state_unlock(fd);
	free(cur);
	cur = current_gen(dir);
	T_EQ_INT(leftovers(dir, cur ? cur : "", NULL), 0, "its generation too");
	/* Unstage. */
	T_EQ_INT(mc_state_stage(dir, site, NULL, "x.yaml", p1, &sg), 0, "stage once more");
	mc_state_free(&sg);
	T_EQ_INT(mc_state_unstage(dir), 0, "stage --clear");
	T_EQ_INT(staged_site(dir, &text), 0, "nothing staged");
	T_EQ_INT(leftovers(dir, cur ? cur : "", NULL), 0, "nothing left of it");
	T_EQ_INT(mc_state_unstage(dir), 0, "clearing nothing is no error");
	mc_plan_free(&p1b);
	free(orig);
	free(state_file);
	free(saved);
	free(cur);
	free(staged_gen);
	free(link);
	free(site);
}

/* A stage killed at each step: the previous staged list or the new one, whole; nothing left
 * after the next lock. */
static void test_stage_kills(const char *dir, const struct mc_plan *p1, const struct mc_plan *p2)
{
	char *site = path("site.yaml");
	int steps = 0, bad = 0, olds = 0, news = 0;

	for (int k = 1; k <= 40; k++) {
		put("site.yaml", site_v1);
		struct mc_state sg;
		int fd = mc_state_lock(dir, true, NULL);
		(void)mc_state_stage(dir, site, NULL, "v1.yaml", p1, &sg);
		mc_state_free(&sg);
		mc_state_unlock(fd);
		put("site.yaml", site_v2);
		pid_t pid = fork();
		if (pid == 0) {
			char fault[32];
			snprintf(fault, sizeof(fault), "commit-kill:%d", k);
			mc_fault_set(fault);
			int cfd = mc_state_lock(dir, true, NULL);
			_exit(cfd >= 0 && mc_state_stage(dir, site, NULL, "v2.yaml", p2, &sg) == 0 ? 0 : 2);
		}
		int status = 0;
		waitpid(pid, &status, 0);
		bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		fd = mc_state_lock(dir, true, NULL);
		char *text;
		int r = staged_site(dir, &text);
		bool is_old = r == 1 && text && !strcmp(text, site_v1), is_new = r == 1 && text && !strcmp(text, site_v2);
		(void)mc_state_staged(dir, &sg, NULL);
		if (!(is_old || is_new) || (!killed && !is_new) || leftovers(dir, sg.gen ? sg.gen : "", NULL) ||
		    mc_state_configured(dir)) {
			printf("# stage killed at step %d: %d, %s\n", k, r, is_old ? "old" : is_new ? "new" : "neither");
			bad++;
		}
		mc_state_free(&sg);
		olds += killed && is_old;
		news += killed && is_new;
		free(text);
		mc_state_unlock(fd);
		if (!killed) {
			steps = k - 1;
			break;
		}
	}
	T_OK(steps > 0, "a stage has %d steps; it was killed at each", steps);
	T_EQ_INT(bad, 0, "after every kill: the old or the new staged list, whole, nothing left over");
	T_OK(olds > 0 && news > 0, "kills left the old (%d) and the new (%d) staged list", olds, news);
	free(site);
}

int main(void)
{
	struct mc_plan p1, p2;

	T_OK(tmp_setup(), "a temporary directory");
	T_OK(compile_text(site_v1, &p1) && compile_text(site_v2, &p2), "two sites compile");
	char *d1 = path("state1"), *d2 = path("state2"), *d3 = path("state3"), *d4 = path("state4"),
	     *d5 = path("state5");
	test_prepare_switch_abandon(d1, &p1, &p2);
	test_kill_sweep(d2, &p2);
	test_trial(d3, &p1, &p2);
	test_stage(d4, &p1, &p2);
	test_stage_kills(d5, &p1, &p2);
	mc_plan_free(&p1);
	mc_plan_free(&p2);
	T_EQ_INT(tmp_cleanup(), 0, "the temporary directory is removed");
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	free(d5);
	return t_done();
}
