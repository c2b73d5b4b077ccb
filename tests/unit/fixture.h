/* SPDX-License-Identifier: MIT */
/* Fixture files: a private copy (key files 0600), `mcpsec check`'s diagnostics as text, and each
 * fixture's diagnostics compared verbatim with its .expect file. Header-only. */
#ifndef MCPSEC_TEST_FIXTURE_H
#define MCPSEC_TEST_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/eval.h"
#include "../../lib/lint.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

static inline char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct mc_buf b = { 0 };
	char line[1024];

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f))
		mc_buf_puts(&b, line);
	fclose(f);
	return b.s ? b.s : mc_strdup("");
}

/* What `mcpsec check` reports for a file (validation, compilation, lint), as text. */
static inline char *diagnose(const char *path, size_t *ret_errors)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_buf out = { 0 };
	struct mc_conf_opts o = { 0 };

	mc_conf_load(path, &o, &ds, &s);
	if (s)
		mc_site_validate(s, &ds);
	if (s && !ds.errors) {
		struct mc_plan plan;
		if (mc_compile(s, NULL, &ds, &plan) == 0 && !ds.errors)
			mc_lint(s, &plan, &ds);
		mc_plan_free(&plan);
	}
	mc_diags_sort(&ds);
	mc_diags_render(&ds, &out);
	*ret_errors = ds.errors;
	mc_diags_free(&ds);
	mc_site_free(s);
	return out.s ? out.s : mc_strdup("");
}

static inline int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * git keeps no 0600, and key files others can read draw a warning. Run on a private copy of the
 * fixture directory dir (same relative path, *.keys 0600) and of examples/, so that expected
 * diagnostics do not depend on the checkout's modes and the checkout is not modified.
 */
static inline char *enter_private_copy(const char *dir)
{
	char tmpl[] = "/tmp/mcpsec-test-fixtures-XXXXXX";
	char *tmp = mkdtemp(tmpl);

	if (!tmp)
		return NULL;
	char *cmd = mc_asprintf("mkdir -p %s/%s && cp -r %s/. %s/%s/ && cp -r examples %s/ && "
				"chmod 600 %s/%s/*.keys 2>/dev/null; true", tmp, dir, dir, tmp, dir, tmp, tmp, dir);
	int r = system(cmd);
	free(cmd);
	if (r != 0 || chdir(tmp) != 0)
		return NULL;
	return mc_strdup(tmp);
}

static inline void leave_private_copy(char *tmp)
{
	if (!tmp)
		return;
	char *cmd = mc_asprintf("rm -rf %s", tmp);
	T_OK(system(cmd) == 0, "private copy removed");
	free(cmd);
	free(tmp);
}

/* Checks every dir/NAME.yaml against dir/NAME.expect; want_errors: fixtures must have errors
 * (or must not). Returns the number of fixtures. */
static inline size_t check_fixtures(const char *dir, bool want_errors)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *names[64];
	size_t n = 0;

	T_OK(d != NULL, "fixture directory %s exists (run from the repository root)", dir);
	while (d && (e = readdir(d)) && n < 64) {
		size_t len = strlen(e->d_name);
		if (len > 5 && !strcmp(e->d_name + len - 5, ".yaml"))
			names[n++] = mc_strdup(e->d_name);
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char *yaml = mc_asprintf("%s/%s", dir, names[i]);
		char *expect_path = mc_asprintf("%s/%.*s.expect", dir, (int)(strlen(names[i]) - 5), names[i]);
		char *want = slurp(expect_path);
		size_t errors;
		char *got = diagnose(yaml, &errors);

		T_OK(want_errors ? errors > 0 : errors == 0, "%s has %s", names[i], want_errors ? "errors" : "no errors");
		T_EQ_STR(got, want ? want : "(missing .expect)", "%s: diagnostics match %s verbatim", names[i],
			 expect_path);
		free(got);
		free(want);
		free(yaml);
		free(expect_path);
		free(names[i]);
	}
	return n;
}

/* Two evaluations give the same sub-ranges, results and first matches; map (may be NULL)
 * renames b's policy names first. */
static inline bool same_results(const struct mc_results *a, const struct mc_results *b,
				const char *(*map)(const char *))
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const char *fa = a->r[i].first ? a->r[i].first : "", *fb = b->r[i].first ? b->r[i].first : "";
		if (map && b->r[i].first)
			fb = map(fb);
		if (a->r[i].result != b->r[i].result || a->r[i].remote_lo != b->r[i].remote_lo ||
		    a->r[i].remote_hi != b->r[i].remote_hi || a->r[i].local_lo != b->r[i].local_lo ||
		    a->r[i].local_hi != b->r[i].local_hi || strcmp(fa, fb))
			return false;
	}
	return true;
}

#endif
