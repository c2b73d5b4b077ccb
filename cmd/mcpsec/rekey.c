/* SPDX-License-Identifier: MIT */
/* mcpsec rekey: one step of a make-before-break key rollover, written into site.yaml (and the
 * key file, and with --peer-out the peer's mirrored site). mcpsec phase-in and phase-out: one
 * step of turning protection on or off without loss, the same way. The kernel is changed by
 * apply. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/algo.h"
#include "../../lib/crypto.h"
#include "../../lib/diag.h"
#include "../../lib/fileio.h"
#include "../../lib/engine.h"
#include "../../lib/keys.h"
#include "../../lib/peer.h"
#include "../../lib/rekey.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"


#define MAX_POLICIES 64

/* A key accept makes: the successor of key old. */
struct new_key {
	const char *old;
	char *name;
	const char *type;
	uint8_t *bytes;
	size_t len;
};

struct rekey {
	const char *cmd;   /* "rekey", "phase-in" or "phase-out" */
	bool phase, in;    /* a phase-in (in) or phase-out step, not a rollover */
	enum mc_enforce to; /* its target */
	const char *site_path, *peer_out;
	const char *names[MAX_POLICIES];
	size_t nnames;
	struct mc_mirror_opts mirror;
	bool have_peer, force, dry_run;
	struct mc_site *site;
	const struct mc_policy *pol[MAX_POLICIES];
	struct mc_rekey_fresh fresh[MAX_POLICIES];
	struct new_key keys[2 * MAX_POLICIES];
	size_t nkeys;
	enum mc_rekey_step step;
};

/* An error line of this command ("mcpsec rekey: ...", "mcpsec phase-in: ..."). */
static void say(const struct rekey *rk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct rekey *rk, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mcpsec %s: ", rk->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static int parse_args(struct rekey *rk, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (is_flag(argv[i], "--site") && v) {
			rk->site_path = argv[++i];
		} else if (is_flag(argv[i], "--peer-out") && v) {
			rk->peer_out = argv[++i];
		} else if ((is_flag(argv[i], "--peer") || is_flag(argv[i], "--self")) && v) {
			bool peer = is_flag(argv[i], "--peer");
			if (!mc_addr_parse(argv[++i], peer ? &rk->mirror.peer : &rk->mirror.self)) {
				say(rk, "%s needs an address, not %s\n", argv[i - 1], argv[i]);
				return EXIT_CONFIG;
			}
			rk->have_peer |= peer;
			rk->mirror.have_self |= !peer;
		} else if (is_flag(argv[i], "--force")) {
			rk->force = true;
		} else if (is_flag(argv[i], "--dry-run")) {
			rk->dry_run = true;
		} else if (argv[i][0] == '-' || rk->nnames == MAX_POLICIES) {
			say(rk, "unexpected argument '%s'\n%s", argv[i], command_usage(rk->cmd));
			return EXIT_CONFIG;
		} else {
			rk->names[rk->nnames++] = argv[i];
		}
	}
	if (!rk->site_path || !rk->nnames || (rk->have_peer != (rk->peer_out != NULL))) {
		say(rk, "%s\n%s",
			!rk->site_path ? "--site is required" : !rk->nnames ? "name at least one PROTECT policy"
									      : "--peer and --peer-out go together",
			command_usage(rk->cmd));
		return EXIT_CONFIG;
	}
	return 0;
}

/* A phase step: every policy at the same phase, and a step from it. */
static int find_phase(struct rekey *rk)
{
	enum mc_enforce at = rk->pol[0]->enforce;

	for (size_t i = 1; i < rk->nnames; i++)
		if (rk->pol[i]->enforce != at) {
			say(rk, "the policies are at different phases ('%s': %s, '%s': %s); step them in separate runs\n",
			    rk->pol[0]->name, mc_enforce_str(at), rk->pol[i]->name, mc_enforce_str(rk->pol[i]->enforce));
			return EXIT_CONFIG;
		}
	if (rk->pol[0]->next.given) {
		say(rk, "policy '%s' is in a key rollover: finish it first (mcpsec rekey)\n", rk->pol[0]->name);
		return EXIT_CONFIG;
	}
	if (!mc_enforce_step(at, rk->in, &rk->to)) {
		say(rk, "policy '%s' is at phase %s: %s\n", rk->pol[0]->name, mc_enforce_str(at),
		    rk->in ? "its protection is on already (nothing to phase in)"
			   : "it sends in clear and accepts clear already; finish the phase-out by replacing it with a "
			     "BYPASS policy (or removing it), on both hosts");
		return EXIT_CONFIG;
	}
	return 0;
}

/* The named policies, all PROTECT, all at the same step. */
static int find_policies(struct rekey *rk)
{
	int rc = 0;

	for (size_t i = 0; i < rk->nnames; i++) {
		const struct mc_policy *p = mc_site_policy(rk->site, rk->names[i]);
		if (!p) {
			say(rk, "%s has no policy '%s'\n", rk->site_path, rk->names[i]);
			rc = EXIT_CONFIG;
			continue;
		}
		if (p->action != MC_PROTECT) {
			say(rk, "policy '%s' is %s: only PROTECT policies %s\n", p->name, mc_action_str(p->action),
			    !rk->phase ? "have keys to roll over" : rk->in ? "are phased in (to start, write it as "
			    "a PROTECT policy with 'enforce: accept', its spi and keys)" : "are phased out");
			rc = EXIT_CONFIG;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (rk->pol[j] == p) {
				say(rk, "policy '%s' is named twice\n", p->name);
				rc = EXIT_CONFIG;
			}
		rk->pol[i] = p;
	}
	if (rc)
		return rc;
	if (rk->phase)
		return find_phase(rk);
	rk->step = mc_rekey_step_of(rk->pol[0]);
	for (size_t i = 1; i < rk->nnames; i++)
		if (mc_rekey_step_of(rk->pol[i]) != rk->step) {
			say(rk, "the policies are at different phases ('%s': %s, '%s': %s); "
				"roll them over in separate runs\n", rk->pol[0]->name, mc_rekey_phase_of(rk->pol[0]),
				rk->pol[i]->name, mc_rekey_phase_of(rk->pol[i]));
			return EXIT_CONFIG;
		}
	return 0;
}

/*
 * A step starts only from what this host runs: the file's phase must be the committed one, or
 * the operator would skip a step here (switch before this host even accepts). --force skips the
 * check (a host rebuilt from files, say).
 */
static int check_committed(struct rekey *rk)
{
	struct mc_state st = { 0 };
	struct mc_diags ds = { 0 };
	struct mc_site *cs = NULL;
	int r = mc_engine_load_committed(g_opts.state_dir, true, &st, &ds, &cs), rc = 0;

	if (r == -ENOENT) {
		say(rk, "nothing is committed in %s: apply %s first (or --force)\n",
			g_opts.state_dir, rk->site_path);
		rc = EXIT_CONFIG;
	} else if (r < 0) {
		print_diags(&ds);
		rc = EXIT_CONFIG;
	}
	for (size_t i = 0; i < rk->nnames && !rc; i++) {
		const struct mc_policy *cp = mc_site_policy(cs, rk->pol[i]->name);
		const char *want = rk->phase ? mc_enforce_str(rk->pol[i]->enforce) : mc_rekey_phase_of(rk->pol[i]);
		const char *have = !cp || cp->action != MC_PROTECT ? "(not committed as PROTECT)"
				   : rk->phase ? mc_enforce_str(cp->enforce) : mc_rekey_phase_of(cp);
		if (cp && !strcmp(want, have) && cp->spi == rk->pol[i]->spi)
			continue;
		say(rk, "policy '%s': %s is at phase %s but this host runs %s: apply it here "
			"(and the peer's file on the peer) before the next step (or --force)\n",
			rk->pol[i]->name, rk->site_path, want, have);
		rc = EXIT_CONFIG;
	}
	mc_site_free(cs);
	mc_state_free(&st);
	mc_diags_free(&ds);
	return rc;
}

static bool spi_used(const struct mc_site *s, const struct rekey *rk, size_t upto, uint32_t spi)
{
	for (size_t i = 0; i < s->npol; i++)
		if (s->pol[i].spi == spi || (s->pol[i].next.given && s->pol[i].next.spi == spi))
			return true;
	for (size_t i = 0; i < upto; i++)
		if (rk->fresh[i].spi == spi)
			return true;
	return false;
}

static int key_taken(const char *name, void *ctx)
{
	const struct rekey *rk = ctx;

	if (mc_site_key(rk->site, name))
		return 1;
	for (size_t i = 0; i < rk->nkeys; i++)
		if (!strcmp(rk->keys[i].name, name))
			return 1;
	for (size_t i = 0; i < rk->site->npol; i++) {
		const struct mc_policy *p = &rk->site->pol[i];
		const char *used[] = { p->integrity_key, p->confidentiality_key, p->next.integrity_key,
				       p->next.confidentiality_key };
		for (size_t j = 0; j < MC_ARRAY_SIZE(used); j++)
			if (used[j] && !strcmp(used[j], name))
				return 1;
	}
	return 0;
}

/* The successor of key old (one per old key in a run: keys shared by policies stay shared). */
static const char *successor(struct rekey *rk, const char *old)
{
	const struct mc_key *k = old ? mc_site_key(rk->site, old) : NULL;

	if (!old)
		return NULL;
	for (size_t i = 0; i < rk->nkeys; i++)
		if (!strcmp(rk->keys[i].old, old))
			return rk->keys[i].name;
	const struct mc_keyalg *alg = k ? mc_keyalg_of(k->type, k->len) : NULL;
	if (!alg)
		return NULL;
	struct new_key *nk = &rk->keys[rk->nkeys];
	nk->old = old;
	nk->name = mc_rekey_key_name(old, key_taken, rk);
	nk->type = alg->type;
	nk->len = alg->len;
	nk->bytes = mc_malloc(alg->len);
	(void)mlock(nk->bytes, alg->len);
	rk->nkeys++;
	if (key_random(alg, nk->bytes) < 0)
		return NULL;
	return nk->name;
}

/* accept: a fresh SPI (unique in the site) and fresh keys for each policy. */
static int make_fresh(struct rekey *rk)
{
	for (size_t i = 0; i < rk->nnames; i++) {
		const struct mc_policy *p = rk->pol[i];
		uint32_t spi = 0;
		for (int tries = 0; tries < 64 && (spi < 0x1000 || spi == UINT32_MAX || spi_used(rk->site, rk, i, spi));
		     tries++)
			if (mc_random((uint8_t *)&spi, sizeof(spi)) < 0)
				spi = 0;
		if (spi < 0x1000 || spi_used(rk->site, rk, i, spi)) {
			say(rk, "the random generator failed; nothing was written\n");
			return EXIT_LOCAL;
		}
		rk->fresh[i].spi = spi;
		rk->fresh[i].integrity_key = successor(rk, p->integrity_key);
		rk->fresh[i].confidentiality_key = successor(rk, p->confidentiality_key);
		if ((p->integrity_key && !rk->fresh[i].integrity_key) ||
		    (p->confidentiality_key && !rk->fresh[i].confidentiality_key)) {
			say(rk, "policy '%s': cannot make a successor of its keys (the random "
				"generator failed, or a key of an unknown type)\n", p->name);
			return EXIT_LOCAL;
		}
	}
	return 0;
}

/* The key file's text with the new keys appended, into out. */
static int keys_text(struct rekey *rk, struct mc_buf *out)
{
	char *text = read_text_file(rk->site->keys_file);
	struct mc_buf cur = { 0 };
	int r = 0;

	if (!text) {
		say(rk, "%s: %s\n", rk->site->keys_file, strerror(errno));
		return EXIT_LOCAL;
	}
	mc_buf_puts(&cur, text);
	mc_wipe_free(text, strlen(text));
	for (size_t i = 0; i < rk->nkeys && !r; i++) {
		struct mc_buf next = { 0 };
		r = mc_keyfile_append(mc_buf_str(&cur), rk->keys[i].name, rk->keys[i].type, rk->keys[i].bytes,
				      rk->keys[i].len, &next);
		mc_buf_wipe(&cur);
		cur = next;
	}
	if (r < 0) {
		say(rk, "%s: 'keys:' is written in flow style; nothing was written\n",
			rk->site->keys_file);
		mc_buf_wipe(&cur);
		return EXIT_CONFIG;
	}
	*out = cur;
	return 0;
}

/* Whether the edited site has each policy where the step puts it. */
static bool step_done(const struct rekey *rk, const struct mc_site *s)
{
	for (size_t i = 0; i < rk->nnames; i++) {
		const struct mc_policy *p = mc_site_policy(s, rk->pol[i]->name);
		bool ok = p != NULL;
		if (ok && rk->phase)
			ok = p->enforce == rk->to && p->spi == rk->pol[i]->spi && !p->next.given;
		else if (ok && rk->step == MC_REKEY_ACCEPT)
			ok = p->next.given && p->next.phase == MC_PHASE_ACCEPT && p->next.spi == rk->fresh[i].spi &&
			     p->spi == rk->pol[i]->spi;
		else if (ok && rk->step == MC_REKEY_SWITCH)
			ok = p->next.given && p->next.phase == MC_PHASE_SWITCH && p->next.spi == rk->pol[i]->next.spi;
		else if (ok)
			ok = !p->next.given && p->spi == rk->pol[i]->next.spi;
		if (!ok)
			return false;
	}
	return true;
}

/* What a phase step does to each policy, and what comes next. */
static void print_phase(const struct rekey *rk, const struct mc_site *s)
{
	static const char *const does[2][3] = {
		{ "accepts clear as well as IPsec", "accepts clear as well as IPsec", "requires IPsec: clear is dropped" },
		{ "sends in clear; its SA is installed", "sends with IPsec", "sends with IPsec" },
	};
	char names[1024] = "";

	for (size_t i = 0; i < rk->nnames; i++) {
		const struct mc_policy *p = mc_site_policy(s, rk->pol[i]->name);
		printf("%s (%s): %s: ", p->name, mc_dir_str(p->dir), mc_enforce_str(rk->to));
		printf("%s (spi %u)\n", does[p->dir == MC_DIR_OUT][mc_enforce_rank(rk->to)], p->spi);
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? " " : "", rk->names[i]);
	}
	if (rk->dry_run)
		return;
	printf("\nThis host runs phase %s (committed); %s is now at phase %s.\n",
	       rk->force ? "(not checked: --force)" : mc_enforce_str(rk->pol[0]->enforce), rk->site_path,
	       mc_enforce_str(rk->to));
	if (rk->peer_out)
		printf("The peer: %s is now at phase %s; the peer runs what it last applied.\n", rk->peer_out,
		       mc_enforce_str(rk->to));
	printf("Next:\n  1. mcpsec apply %s here, and the peer's file %s on the peer (%s)\n", rk->site_path,
	       rk->peer_out ? rk->peer_out : "(mirror it: --peer ADDR --peer-out FILE)",
	       rk->to == MC_ENFORCE_PROTECT && rk->in ? "protect only after the peer applied accept: its SAs must be there"
	       : rk->to == MC_ENFORCE_REQUIRE ? "require only after the peer applied protect: until then it sends in clear"
	       : rk->to == MC_ENFORCE_ACCEPT ? "accept only after the peer applied protect: until then it requires IPsec"
	       : "either host first: both still accept clear");
	printf("     before applying: 'mcpsec check-peer %s PEER.yaml' with the file the peer runs reports any "
	       "order that would drop traffic\n", rk->site_path);
	enum mc_enforce after;
	if (mc_enforce_step(rk->to, rk->in, &after))
		printf("  2. when both hosts run it: mcpsec %s %s --site %s%s%s (%s)\n", rk->cmd, names, rk->site_path,
		       rk->peer_out ? " ... --peer-out " : "", rk->peer_out ? rk->peer_out : "", mc_enforce_str(after));
	else if (rk->in)
		printf("  2. nothing: protection is on once both hosts run phase require\n");
	else
		printf("  2. when both hosts run it, replace the policies by BYPASS policies (or remove them) and apply on "
		       "both hosts\n");
}

static void print_plan(const struct rekey *rk, const struct mc_site *s)
{
	if (rk->phase) {
		print_phase(rk, s);
		return;
	}
	for (size_t i = 0; i < rk->nnames; i++) {
		const struct mc_policy *p = mc_site_policy(s, rk->pol[i]->name);
		printf("%s (%s): %s: ", p->name, mc_dir_str(p->dir), mc_rekey_step_str(rk->step));
		if (rk->step == MC_REKEY_ACCEPT)
			printf("next SA spi %u (0x%08x) installed beside spi %u%s\n", p->next.spi, p->next.spi, p->spi,
			       p->dir == MC_DIR_IN ? "; both accepted" : "; still sending with the current one");
		else if (rk->step == MC_REKEY_SWITCH && p->dir == MC_DIR_OUT)
			printf("sends with spi %u from now on\n", p->next.spi);
		else if (rk->step == MC_REKEY_SWITCH)
			printf("accepts both still (the peer's outbound policy switches)\n");
		else
			printf("spi %u is the only SA; spi %u is removed\n", p->spi, rk->pol[i]->spi);
	}
	for (size_t i = 0; i < rk->nkeys; i++) {
		char fp[9];
		mc_key_fingerprint(rk->keys[i].bytes, rk->keys[i].len, fp);
		printf("new key %s (successor of %s): %zu bytes, fingerprint %s\n", rk->keys[i].name, rk->keys[i].old,
		       rk->keys[i].len, fp);
	}
}

static void print_next(const struct rekey *rk)
{
	static const char *prereq[] = {
		"both hosts may apply accept in either order",
		"switch only after the peer applied accept: a host that switches first sends with an SA its peer refuses",
		"retire only after the peer applied switch: the peer may still send with the old SA",
	};
	char names[1024] = "";

	for (size_t i = 0; i < rk->nnames; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? " " : "", rk->names[i]);
	const char *now = rk->step == MC_REKEY_RETIRE ? "none (rollover complete)" : mc_rekey_step_str(rk->step);
	printf("\nThis host runs phase %s (committed); %s is now at phase %s.\n",
	       rk->force ? "(not checked: --force)" : mc_rekey_phase_of(rk->pol[0]), rk->site_path, now);
	if (rk->peer_out)
		printf("The peer: %s is now at phase %s; the peer runs what it last applied.\n", rk->peer_out, now);
	printf("Next:\n");
	int n = 1;
	if (rk->nkeys) {
		printf("  %d. the peer needs the new keys: mcpsec key export", n++);
		for (size_t i = 0; i < rk->nkeys; i++)
			printf(" %s", rk->keys[i].name);
		printf(" --keys %s --out FILE, then 'mcpsec key import FILE' there\n", rk->site->keys_file);
	}
	printf("  %d. mcpsec apply %s here, and the peer's file %s on the peer (%s)\n", n++, rk->site_path,
	       rk->peer_out ? rk->peer_out : "(mirror it: mcpsec rekey --peer ADDR --peer-out FILE)", prereq[rk->step]);
	printf("     before applying: 'mcpsec check-peer %s PEER.yaml' with the file the peer runs reports any "
	       "order that would drop traffic\n", rk->site_path);
	if (rk->step != MC_REKEY_RETIRE)
		printf("  %d. when both hosts run it: mcpsec rekey %s --site %s%s%s (%s)\n", n, names, rk->site_path,
		       rk->peer_out ? " ... --peer-out " : "", rk->peer_out ? rk->peer_out : "",
		       mc_rekey_step_str((enum mc_rekey_step)(rk->step + 1)));
	else if (rk->nkeys == 0)
		printf("  %d. the old keys are no longer used once both hosts retired: remove them with 'mcpsec key "
		       "delete NAME' on each host (kept until then: a rollback to the previous configuration needs them)\n", n);
}

/* The step's edit of the site's text, after the checks that make it safe: the policies exist,
 * the committed configuration is at the file's phase, the peer's file can be written, fresh
 * keys for accept. */
static int plan_edit(struct rekey *rk, const char *text, struct mc_buf *site, struct mc_diags *ds)
{
	struct mc_buf peer = { 0 };
	int rc;

	if ((rc = find_policies(rk)) || (!rk->force && (rc = check_committed(rk))))
		return rc;
	/* The peer's file can be written (mirror's own errors, against the file as the user wrote it). */
	if (rk->have_peer && mc_mirror(rk->site, &rk->mirror, &peer, ds) < 0) {
		print_diags(ds);
		mc_buf_free(&peer);
		return EXIT_CONFIG;
	}
	mc_buf_free(&peer);
	if (rk->phase) {
		if (mc_phase_edit(text, rk->pol, rk->nnames, rk->to, site, ds) < 0) {
			print_diags(ds);
			return EXIT_CONFIG;
		}
		return 0;
	}
	if (rk->step == MC_REKEY_ACCEPT && !rk->site->keys_file &&
	    (rk->pol[0]->integrity_key || rk->pol[0]->confidentiality_key)) {
		say(rk, "%s names no key file (ipsec.keys)\n", rk->site_path);
		return EXIT_CONFIG;
	}
	if (rk->step == MC_REKEY_ACCEPT && (rc = make_fresh(rk)))
		return rc;
	if (mc_rekey_edit(text, rk->pol, rk->nnames, rk->step, rk->fresh, site, ds) < 0) {
		print_diags(ds);
		return EXIT_CONFIG;
	}
	return 0;
}

/* The peer's file first, then the keys, then the site: one that cannot be written (a link
 * planted in its place, a full disk) leaves the site and keys as they were, and the site never
 * names a key that is not there yet. */
static int swap_in(const struct rekey *rk, const struct mc_buf *peer, const char *tmp_site, const char *tmp_keys)
{
	int rc;

	if (rk->have_peer && (rc = write_output("rekey", rk->peer_out, peer))) {
		say(rk, "%s was not changed\n", rk->site_path);
		return rc;
	}
	if (tmp_keys && rename(tmp_keys, rk->site->keys_file) < 0) {
		say(rk, "%s: %s; nothing was changed\n", rk->site->keys_file, strerror(errno));
		return EXIT_LOCAL;
	}
	if (rename(tmp_site, rk->site_path) < 0) {
		say(rk, "%s: %s (the new keys are in %s, unused)\n", rk->site_path, strerror(errno),
			rk->site->keys_file);
		return EXIT_LOCAL;
	}
	return 0;
}

static int step_main(int argc, char **argv, const char *cmd)
{
	struct rekey rk = { .cmd = cmd, .phase = strcmp(cmd, "rekey") != 0, .in = !strcmp(cmd, "phase-in") };
	struct mc_diags ds = { 0 };
	struct mc_buf site = { 0 }, keys = { 0 }, peer = { 0 };
	struct mc_site *edited = NULL;
	char *text = NULL, *tmp_site = NULL, *tmp_keys = NULL;
	struct stat sst;
	int rc, r;

	if ((rc = parse_args(&rk, argc, argv)))
		return rc;
	/* The mode the edited file keeps is the mode of what was read (one open, no second look). */
	size_t len = 0;
	if ((r = mc_file_read(rk.site_path, 0, MC_FILE_MAX, &text, &len, &sst)) < 0 || memchr(text, '\0', len)) {
		say(&rk, "%s: %s\n", rk.site_path,
			r == -EINVAL || r == 0 ? "not a regular text file" : strerror(-r));
		free(text);
		return EXIT_CONFIG;
	}
	if (!(rk.site = mc_engine_load_site(rk.site_path, NULL, true, &ds))) {
		print_diags(&ds);
		rc = EXIT_CONFIG;
		goto out;
	}
	mc_diags_truncate(&ds, 0); /* warnings are check's and apply's to show; the site's locations stay */
	if ((rc = plan_edit(&rk, text, &site, &ds)))
		goto out;
	/* Both files are written beside the originals and checked as apply would read them before
	 * either replaces its original: keys first, so that the site never names a missing key. */
	tmp_site = mc_asprintf("%s.%s.%ld", rk.site_path, rk.cmd, (long)getpid());
	if (rk.nkeys) {
		if ((rc = keys_text(&rk, &keys)))
			goto out;
		tmp_keys = mc_asprintf("%s.rekey.%ld", rk.site->keys_file, (long)getpid());
	}
	r = mc_file_write_atomic(tmp_site, site.s, site.len, sst.st_mode & 0777);
	if (r == 0 && tmp_keys)
		r = mc_file_write_atomic(tmp_keys, keys.s, keys.len, 0600);
	if (r < 0) {
		say(&rk, "writing beside %s: %s; nothing was changed\n", rk.site_path, strerror(-r));
		rc = EXIT_LOCAL;
		goto out;
	}
	if (!(edited = mc_engine_load_site(tmp_site, tmp_keys, true, &ds)) || !step_done(&rk, edited)) {
		print_diags(&ds);
		say(&rk, "the edited %s does not read back as the step intends; nothing was "
			"changed (please report this)\n", rk.site_path);
		rc = EXIT_LOCAL;
		goto out;
	}
	if (rk.have_peer && mc_mirror(edited, &rk.mirror, &peer, &ds) < 0) {
		print_diags(&ds);
		rc = EXIT_CONFIG;
		goto out;
	}
	if (rk.dry_run) {
		print_plan(&rk, edited);
		printf("\n--dry-run: nothing was written. %s would be:\n%s", rk.site_path, mc_buf_str(&site));
		goto out;
	}
	if ((rc = swap_in(&rk, &peer, tmp_site, tmp_keys)))
		goto out;
	print_plan(&rk, edited);
	if (!rk.phase)
		print_next(&rk);
out:
	if (tmp_site)
		unlink(tmp_site);
	if (tmp_keys)
		unlink(tmp_keys);
	free(tmp_site);
	free(tmp_keys);
	for (size_t i = 0; i < rk.nkeys; i++) {
		free(rk.keys[i].name);
		mc_wipe_free(rk.keys[i].bytes, rk.keys[i].len);
	}
	mc_buf_free(&site);
	mc_buf_wipe(&keys);
	mc_buf_free(&peer);
	mc_site_free(edited);
	mc_site_free(rk.site);
	mc_diags_free(&ds);
	free(text);
	return rc;
}

int rekey_main(int argc, char **argv)
{
	return step_main(argc, argv, "rekey");
}

int phase_in_main(int argc, char **argv)
{
	return step_main(argc, argv, "phase-in");
}

int phase_out_main(int argc, char **argv)
{
	return step_main(argc, argv, "phase-out");
}
