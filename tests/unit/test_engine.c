/* SPDX-License-Identifier: MIT */
/*
 * The transaction without root, through an in-memory kernel (fake_kernel.h): apply and commit;
 * a refusal at every operation undone; a failed commit undone; SAs refused (policies only, NOT
 * ENFORCED); a damaged state directory (lockdown); a trial rolled back; drift repaired.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/engine.h"
#include "../../lib/fileio.h"
#include "../../lib/plan.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "fake_kernel.h"
#include "../fault/fault.h"
#include "../fault/fault.h"
#include "t.h"
#include "tmpdir.h"


#define PEER "fec0::2222:a00:bff:fe3a:127"
static const char keys[] = "keys:\n  K1: { algorithm: sha256, ascii: \"unit-test-sha256-key-0123456789a\" }\n";
static const char site_v1[] = "ipsec: {default: deny, keys: keys.yaml}\npolicies:\n"
			      "  - {name: SSHIN, direction: in, protocol: tcp, local-ports: 22, action: bypass}\n"
			      "  - {name: SSHOUT, direction: out, protocol: tcp, remote-ports: 22, action: bypass}\n";
static const char site_v2[] = "ipsec: {default: deny, keys: keys.yaml}\npolicies:\n"
			      "  - {name: SSHIN, direction: in, protocol: tcp, local-ports: 22, action: bypass}\n"
			      "  - {name: SSHOUT, direction: out, protocol: tcp, remote-ports: 22, action: bypass}\n"
			      "  - {name: WEBIN, direction: in, protocol: tcp, local-ports: 443, action: bypass}\n"
			      "  - name: PROT\n    direction: out\n    remote: " PEER "\n    action: protect\n    spi: 4097\n"
			      "    esp: {integrity: hmac-sha256-128, integrity-key: K1}\n"
			      "  - name: PROTIN\n    direction: in\n    remote: " PEER "\n    action: protect\n    spi: 4098\n"
			      "    esp: {integrity: hmac-sha256-128, integrity-key: K1}\n";

/* A change's hooks, as apply's: a judge that may decline, a report that counts. */
struct hooks {
	bool decline;
	int judged, reported;
	bool kernel_seen;   /* the judge was shown what the kernel enforces */
	size_t ops;         /* operations reported */
	char first_del[80]; /* the name of the first deletion reported */
};

static bool judge(void *ctx, const struct mc_plan *plan, const struct mc_plan *kernel)
{
	struct hooks *h = ctx;
	(void)plan;
	h->judged++;
	h->kernel_seen = kernel != NULL;
	return !h->decline;
}

static void report(void *ctx, const struct mc_plan *plan, const struct mc_diff *diff, const struct mc_state *st)
{
	struct hooks *h = ctx;
	(void)plan;
	(void)st;
	h->reported++;
	h->ops = diff->n;
	for (size_t i = 0; i < diff->n && !h->first_del[0]; i++)
		if (diff->ops[i].kind == MC_OP_POL_DEL)
			snprintf(h->first_del, sizeof(h->first_del), "%s", diff->ops[i].name);
}

/* apply through the one transaction: load, then mc_engine_apply compiles for the (fake) host,
 * judges, diffs, reports, sends and commits. h may be NULL; dry: report only. */
static enum mc_engine_status apply_hooked(struct fake_kernel *f, const char *dir, const char *text, long trial,
					  bool dry, struct hooks *h, size_t *done)
{
	struct mc_diags ds = { 0 };
	struct mc_state st = { 0 };
	struct mc_enforcement e = { 0 };
	char *site = path("site.yaml"), *kf = path("keys.yaml");
	enum mc_engine_status es = MC_ENGINE_LOCAL;

	put("site.yaml", text);
	struct mc_site *s = mc_engine_load_site(site, NULL, true, &ds);
	int lock = mc_engine_lock(&f->k, dir, true, &ds, NULL);
	if (s && lock >= 0 && mc_state_load(dir, &st) == 0) {
		struct mc_engine_commit c = { site, kf, true, trial, trial ? "unit-token" : NULL, NULL };
		struct mc_engine_change ch = { .site = s, .with_policies = true, .commit = dry ? NULL : &c,
					       .report_only = dry, .judge = h ? judge : NULL,
					       .report = h ? report : NULL, .ctx = h };
		es = mc_engine_apply(&f->k, &st, &ch, &ds, &e);
		*done = e.changes;
	}
	if (ds.errors && es == MC_ENGINE_OK)
		es = MC_ENGINE_LOCAL;
	mc_state_unlock(lock);
	mc_state_free(&st);
	mc_site_free(s);
	mc_diags_free(&ds);
	free(site);
	free(kf);
	return es;
}

static enum mc_engine_status apply_text(struct fake_kernel *f, const char *dir, const char *text, long trial,
					size_t *done)
{
	return apply_hooked(f, dir, text, trial, false, NULL, done);
}

static char *committed_site(const char *dir)
{
	struct mc_state st = { 0 };
	char *text = NULL, *p;
	size_t len = 0;

	if (mc_state_load(dir, &st) == 0 && st.committed && (p = mc_state_site_path(&st))) {
		(void)mc_file_read(p, 0, MC_FILE_MAX, &text, &len, NULL);
		free(p);
	}
	mc_state_free(&st);
	return text;
}

static bool has_pending(const char *dir)
{
	char *p = mc_asprintf("%s/pending", dir);
	struct stat sb;
	bool has = lstat(p, &sb) == 0;
	free(p);
	return has;
}

static void test_apply_and_refusals(void)
{
	struct fake_kernel f;
	char *dir = path("state-refuse");
	size_t done = 0;

	fake_kernel_init(&f);
	T_EQ_INT(apply_text(&f, dir, site_v1, 0, &done), MC_ENGINE_OK, "apply v1 into an empty kernel");
	T_OK(done > 0 && f.held.npols == done, "%zu policies sent, %zu held", done, f.held.npols);
	T_OK(f.in_block && f.out_block, "the kernel's default is block while mcpsec enforces");
	char *v1 = fake_kernel_text(&f), *text = committed_site(dir);
	T_EQ_STR(text, site_v1, "v1 is committed");
	free(text);

	/* v2 refused at each of its operations in turn: every time, the kernel and the state are
	 * v1's again. */
	struct fake_kernel probe;
	char *pdir = path("state-probe");
	fake_kernel_init(&probe);
	(void)apply_text(&probe, pdir, site_v1, 0, &done);
	long before = probe.ops_seen;
	(void)apply_text(&probe, pdir, site_v2, 0, &done);
	long nops = probe.ops_seen - before;
	fake_kernel_free(&probe);
	free(pdir);
	long undone = 0, bad = 0;
	for (long k = 1; k <= nops; k++) {
		f.refuse_at = f.ops_seen + k;
		f.refuse_err = -ENOBUFS;
		enum mc_engine_status es = apply_text(&f, dir, site_v2, 0, &done);
		char *now = fake_kernel_text(&f);
		text = committed_site(dir);
		bool ok = es == MC_ENGINE_REFUSED && !strcmp(now, v1) && text && !strcmp(text, site_v1) &&
			  !has_pending(dir);
		if (!ok)
			printf("# refused at operation %ld of %ld: status %d, kernel %s v1's, %s committed\n", k, nops,
			       es, strcmp(now, v1) ? "is not" : "is", text && !strcmp(text, site_v1) ? "v1" : "not v1");
		undone += ok;
		bad += !ok;
		free(now);
		free(text);
	}
	T_OK(nops > 5, "v2 is %ld operations", nops);
	T_EQ_INT(bad, 0, "refused at each of them (%ld): undone, v1 in the kernel and committed", undone);

	/* The commit fails after the kernel changed (a full disk at the switch): undone too. */
	f.refuse_at = 0;
	mc_fault_set("switch-fail");
	enum mc_engine_status es = apply_text(&f, dir, site_v2, 0, &done);
	mc_fault_set(NULL);
	char *now = fake_kernel_text(&f);
	T_EQ_INT(es, MC_ENGINE_LOCAL, "a commit that fails after the kernel changed is a local failure");
	T_EQ_STR(now, v1, "and the kernel is put back to v1");
	free(now);
	text = committed_site(dir);
	T_EQ_STR(text, site_v1, "v1 stays committed");
	free(text);

	/* Then v2 goes through, SAs and all. */
	T_EQ_INT(apply_text(&f, dir, site_v2, 0, &done), MC_ENGINE_OK, "apply v2");
	T_EQ_INT(f.held.nsas, 2, "its two SAs are installed");
	free(v1);
	free(dir);
	fake_kernel_free(&f);
}

/* The transaction's hooks: a declining judge changes nothing, a dry run sends nothing, and the
 * report names every operation, a deletion by the committed name (a copy the diff owns). */
static void test_hooks(void)
{
	struct fake_kernel f;
	char *dir = path("state-hooks");
	size_t done = 0;
	struct hooks h = { 0 };

	fake_kernel_init(&f);
	T_EQ_INT(apply_hooked(&f, dir, site_v1, 0, false, &h, &done), MC_ENGINE_OK, "apply v1 with hooks");
	T_OK(h.judged == 1 && !h.kernel_seen, "judged once, against a kernel with nothing of mcpsec's");
	T_OK(h.reported == 1 && h.ops == done && done > 0, "reported once: the %zu operations sent", h.ops);
	char *v1 = fake_kernel_text(&f);
	long seen = f.ops_seen;
	h = (struct hooks){ .decline = true };
	T_EQ_INT(apply_hooked(&f, dir, site_v2, 0, false, &h, &done), MC_ENGINE_DECLINED, "a declining judge: declined");
	T_OK(h.kernel_seen && h.reported == 0 && f.ops_seen == seen, "judged against v1 in the kernel; nothing sent");
	char *now = fake_kernel_text(&f), *text = committed_site(dir);
	T_OK(!strcmp(now, v1) && text && !strcmp(text, site_v1), "the kernel and the state are v1's");
	free(now);
	free(text);
	h = (struct hooks){ 0 };
	T_EQ_INT(apply_hooked(&f, dir, site_v2, 0, true, &h, &done), MC_ENGINE_OK, "a dry run of v2");
	T_OK(h.reported == 1 && h.ops > 0 && f.ops_seen == seen, "reports %zu operations, sends none", h.ops);
	T_EQ_INT(apply_hooked(&f, dir, site_v2, 0, false, NULL, &done), MC_ENGINE_OK, "apply v2");
	h = (struct hooks){ 0 };
	T_EQ_INT(apply_hooked(&f, dir, site_v1, 0, false, &h, &done), MC_ENGINE_OK, "back to v1");
	T_OK(!strcmp(h.first_del, "WEBIN") || !strcmp(h.first_del, "PROT") || !strcmp(h.first_del, "PROTIN"),
	     "a policy v1 drops is reported by its committed name: %s", h.first_del);
	free(v1);
	free(dir);
	fake_kernel_free(&f);
}

/* What the state directory holds while the kernel changes. */
struct during {
	const char *dir;
	int execs;
	bool pending;     /* the intent was recorded */
	char *committed;  /* the committed site at that moment */
};

static void look_at_state(void *ctx)
{
	struct during *d = ctx;
	if (d->execs++)
		return;
	d->pending = has_pending(d->dir);
	d->committed = committed_site(d->dir);
}

/* The commit's order: the intent (pending) before the kernel changes, the switch after. */
static void test_commit_order(void)
{
	struct fake_kernel f;
	char *dir = path("state-order");
	size_t done = 0;

	fake_kernel_init(&f);
	(void)apply_text(&f, dir, site_v1, 0, &done);
	struct during d = { .dir = dir };
	f.on_exec = look_at_state;
	f.on_exec_ctx = &d;
	T_EQ_INT(apply_text(&f, dir, site_v2, 0, &done), MC_ENGINE_OK, "apply v2, watched");
	T_OK(d.execs >= 1 && d.pending, "while the kernel changed, the intent (pending) was already recorded");
	T_OK(d.committed && !strcmp(d.committed, site_v1), "and v1 was still the committed configuration");
	char *text = committed_site(dir);
	T_OK(text && !strcmp(text, site_v2) && !has_pending(dir), "after it, v2 is committed and no intent is left");
	free(text);
	free(d.committed);
	free(dir);
	fake_kernel_free(&f);
}

/* A kernel without ESP/AH: every policy anyway (PROTECT traffic dropped, never in clear). */
static void test_no_sas(void)
{
	struct fake_kernel f;
	char *dir = path("state-nosa");
	size_t done = 0;
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;

	fake_kernel_init(&f);
	f.no_sas = true;
	enum mc_engine_status es = apply_text(&f, dir, site_v2, 0, &done);
	T_EQ_INT(es, MC_ENGINE_REFUSED, "apply with SAs into a kernel without ESP: refused");
	T_OK(f.held.npols == 0 && f.held.nsas == 0, "and nothing stays (%zu policies)", f.held.npols);
	/* Committed by a host that had ESP; enforced here at boot. */
	struct fake_kernel g;
	fake_kernel_init(&g);
	(void)apply_text(&g, dir, site_v2, 0, &done);
	size_t want = g.held.npols;
	fake_kernel_free(&g);
	int lock = mc_state_lock(dir, true, NULL);
	es = mc_engine_enforce(&f.k, dir, NULL, &ds, &e);
	mc_state_unlock(lock);
	T_OK(es == MC_ENGINE_OK && e.level == MC_ENFORCE_NO_SAS, "enforce: policies only (level %d)", e.level);
	T_OK(f.held.npols == want && f.held.nsas == 0, "every policy (%zu of %zu), no SA", f.held.npols, want);
	char reason[512];
	mc_enforcement_str(&e, reason, sizeof(reason));
	T_OK(reason[0] != '\0', "NOT ENFORCED says why: %s", reason);
	mc_diags_free(&ds);
	free(dir);
	fake_kernel_free(&f);
}

/* A state directory whose committed generation is gone: the lockdown set. */
static void test_lockdown(void)
{
	struct fake_kernel f;
	char *dir = path("state-damaged");
	size_t done = 0;
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;

	fake_kernel_init(&f);
	(void)apply_text(&f, dir, site_v1, 0, &done);
	struct mc_state st = { 0 };
	(void)mc_state_load(dir, &st);
	char *cmd = mc_asprintf("rm -rf '%s/%s'", dir, st.gen);
	T_EQ_INT(system(cmd), 0, "the committed generation %s is removed", st.gen);
	free(cmd);
	mc_state_free(&st);
	int lock = mc_state_lock(dir, true, NULL);
	enum mc_engine_status es = mc_engine_enforce(&f.k, dir, NULL, &ds, &e);
	mc_state_unlock(lock);
	T_OK(es == MC_ENGINE_OK && e.level == MC_ENFORCE_LOCKDOWN, "enforce: lockdown (level %d)", e.level);
	char *now = fake_kernel_text(&f);
	T_OK(strstr(now, "discard") && strstr(now, "bypass") && !strstr(now, "dport 22"),
	     "the kernel holds the built-in bypasses and discards, none of the site's policies");
	T_OK(f.in_block && f.out_block, "and blocks by default");
	free(now);
	mc_diags_free(&ds);
	free(dir);
	fake_kernel_free(&f);
}

/* apply --confirm, then rollback: the kernel and the state are v1's again. */
static void test_trial_rollback(void)
{
	struct fake_kernel f;
	char *dir = path("state-trial");
	size_t done = 0;
	struct mc_diags ds = { 0 };

	fake_kernel_init(&f);
	(void)apply_text(&f, dir, site_v1, 0, &done);
	char *v1 = fake_kernel_text(&f);
	T_EQ_INT(apply_text(&f, dir, site_v2, 60, &done), MC_ENGINE_OK, "apply v2 on trial for 60 s");
	char *now = fake_kernel_text(&f);
	T_OK(strcmp(now, v1), "the kernel holds v2");
	free(now);
	int lock = mc_state_lock(dir, true, NULL);
	T_EQ_INT(mc_engine_rollback(&f.k, dir, &ds), MC_ENGINE_OK, "rollback");
	mc_state_unlock(lock);
	now = fake_kernel_text(&f);
	T_EQ_STR(now, v1, "the kernel holds v1 again");
	free(now);
	char *text = committed_site(dir);
	T_EQ_STR(text, site_v1, "and v1 is committed");
	free(text);
	free(v1);
	mc_diags_free(&ds);
	free(dir);
	fake_kernel_free(&f);
}

/* Drift (policies and an SA removed behind mcpsec's back) is repaired, and once is enough. */
static void test_repair(void)
{
	struct fake_kernel f;
	char *dir = path("state-repair");
	size_t done = 0;
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;

	fake_kernel_init(&f);
	(void)apply_text(&f, dir, site_v2, 0, &done);
	char *want = fake_kernel_text(&f);
	f.held.npols -= 3;
	f.held.nsas -= 1;
	int lock = mc_state_lock(dir, true, NULL);
	enum mc_engine_status es = mc_engine_enforce(&f.k, dir, NULL, &ds, &e);
	T_OK(es == MC_ENGINE_OK && e.level == MC_ENFORCE_FULL && e.changes == 4, "repaired: %zu changes", e.changes);
	char *now = fake_kernel_text(&f);
	T_EQ_STR(now, want, "the kernel holds the committed configuration again");
	free(now);
	es = mc_engine_enforce(&f.k, dir, NULL, &ds, &e);
	T_OK(es == MC_ENGINE_OK && e.changes == 0, "a second pass changes nothing (%zu)", e.changes);
	mc_state_unlock(lock);
	free(want);
	mc_diags_free(&ds);
	free(dir);
	fake_kernel_free(&f);
}

int main(void)
{
	T_OK(tmp_setup(), "a temporary directory");
	put("keys.yaml", keys);
	test_apply_and_refusals();
	test_hooks();
	test_commit_order();
	test_no_sas();
	test_lockdown();
	test_trial_rollback();
	test_repair();
	T_EQ_INT(tmp_cleanup(), 0, "the temporary directory is removed");
	return t_done();
}
