/* SPDX-License-Identifier: MIT */
/*
 * mcpsec key: named manual keys in keys.yaml. Values come from OpenSSL's CSPRNG, a prompt or
 * stdin, never from argv; they are printed only by `key show --reveal`. The key file is edited
 * as text (comments and order stay), written atomically at mode 0600, and refused when others
 * can read it or it belongs to someone else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../../lib/algo.h"
#include "../../lib/conf.h"
#include "../../lib/crypto.h"
#include "../../lib/diag.h"
#include "../../lib/fileio.h"
#include "../../lib/keys.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"

#define DEFAULT_KEYS "/etc/mcpsec/keys.yaml"

/* The usage, with the --alg names from the one algorithm table. */
static void key_usage(void)
{
	fprintf(stderr, "%s  FILE defaults to " DEFAULT_KEYS "\n  ALG: %s\n", command_usage("key"), mc_keyalg_help());
}

struct key_opts {
	const char *keys, *alg, *out, *passfile;
	const char *sites[8];
	size_t nsites;
	const char *names[64];
	size_t nnames;
	bool hex, ascii, replace, reveal, json, dry_run;
};

/* A secret in memory: locked (never swapped) where the system allows, wiped when done. */
struct secret {
	char *s;
	size_t len, cap;
};

static void secret_free(struct secret *x)
{
	if (!x->s)
		return;
	mc_wipe(x->s, x->cap);
	munlock(x->s, x->cap);
	free(x->s);
	memset(x, 0, sizeof(*x));
}

/* One line from stdin (when it is not a terminal) or from the terminal with echo off. */
static int read_secret(const char *prompt, struct secret *ret)
{
	FILE *in = stdin;
	struct termios saved, quiet;
	bool tty = isatty(STDIN_FILENO);

	ret->cap = 4096;
	ret->s = mc_calloc(1, ret->cap);
	(void)mlock(ret->s, ret->cap);
	if (tty) {
		fprintf(stderr, "%s", prompt);
		tcgetattr(STDIN_FILENO, &saved);
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	bool ok = fgets(ret->s, (int)ret->cap, in) != NULL;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	if (!ok) {
		secret_free(ret);
		return -EIO;
	}
	ret->len = strcspn(ret->s, "\r\n");
	ret->s[ret->len] = '\0';
	return 0;
}

static int read_passphrase(const struct key_opts *o, bool confirm, struct secret *ret)
{
	if (o->passfile) {
		/* mc_file_read: non-blocking (a FIFO must not hang us), checked on the descriptor that
		 * was read: a regular file that only its owner (root or the caller) can read, like the
		 * key file itself. */
		struct stat st;
		char *text = NULL;
		size_t len = 0;
		int r = mc_file_read(o->passfile, MC_READ_SECRET, 4095, &text, &len, &st);
		const char *why = r == -EINVAL ? "not a regular file" : r == -EFBIG ? "longer than 4095 bytes" :
				  r < 0 ? strerror(-r) :
				  (st.st_mode & 0077) ? "group and others must not have access to a passphrase file (chmod 600)" :
				  st.st_uid != 0 && st.st_uid != getuid() ? "owned by someone else" : NULL;
		if (why) {
			fprintf(stderr, "mcpsec key: %s: %s\n", o->passfile, why);
			if (text) {
				mc_wipe(text, len);
				free(text);
			}
			return EXIT_CONFIG;
		}
		ret->cap = 4096;
		ret->s = mc_calloc(1, ret->cap);
		(void)mlock(ret->s, ret->cap);
		ret->len = strcspn(text, "\r\n");
		memcpy(ret->s, text, ret->len);
		ret->s[ret->len] = '\0';
		mc_wipe(text, len);
		free(text);
	} else if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "mcpsec key: give --passphrase-file FILE, or run on a terminal to be asked\n");
		return EXIT_CONFIG;
	} else {
		struct secret again = { 0 };
		if (read_secret("passphrase: ", ret) < 0)
			return EXIT_CONFIG;
		if (confirm && (read_secret("passphrase again: ", &again) < 0 || strcmp(again.s, ret->s))) {
			secret_free(&again);
			secret_free(ret);
			fprintf(stderr, "mcpsec key: the passphrases differ\n");
			return EXIT_CONFIG;
		}
		secret_free(&again);
	}
	if (ret->len < 8) {
		secret_free(ret);
		fprintf(stderr, "mcpsec key: the passphrase must have at least 8 characters\n");
		return EXIT_CONFIG;
	}
	return 0;
}

/* The key file as a model and as text; a missing file is an empty one (when allowed). */
struct keyfile {
	struct mc_site *site;
	char *text;
	size_t textlen;
	bool exists;
};

static void keyfile_free(struct keyfile *k)
{
	mc_site_free(k->site);
	if (k->text) {
		mc_wipe(k->text, k->textlen);
		free(k->text);
	}
	memset(k, 0, sizeof(*k));
}

static int keyfile_load(const char *path, bool may_be_missing, struct keyfile *ret)
{
	struct mc_diags ds = { 0 };
	struct stat st;

	memset(ret, 0, sizeof(*ret));
	if (stat(path, &st) < 0) {
		if (errno == ENOENT && may_be_missing) {
			ret->site = mc_calloc(1, sizeof(*ret->site));
			ret->text = mc_strdup("");
			return 0;
		}
		fprintf(stderr, "mcpsec key: %s: %s\n", path, strerror(errno));
		return EXIT_CONFIG;
	}
	ret->exists = true;
	/* Strict: a key file others can read, or someone else's, is refused, not just warned about. */
	char *text = NULL;
	size_t len = 0;
	if (mc_conf_load_keys_text(path, true, &ds, &ret->site, &text, &len) < 0) {
		print_diags(&ds);
		mc_diags_free(&ds);
		fprintf(stderr, "mcpsec key: %s has errors; nothing was changed\n", path);
		if (text) {
			mc_wipe(text, len);
			free(text);
		}
		keyfile_free(ret);
		return EXIT_CONFIG;
	}
	mc_diags_free(&ds);
	/* The text edited is the text checked and parsed: one read. */
	ret->text = text ? text : mc_strdup("");
	ret->textlen = len;
	return 0;
}

static int keyfile_write(const char *path, struct mc_buf *text)
{
	int r = mc_file_write_atomic(path, text->s ? text->s : "", text->len, 0600);
	mc_buf_wipe(text);
	if (r < 0) {
		fprintf(stderr, "mcpsec key: writing %s: %s\n", path, strerror(-r));
		return EXIT_LOCAL;
	}
	return 0;
}

/* The named key of a loaded file, or NULL after saying it is not there. */
static const struct mc_key *find_key(const struct keyfile *kf, const struct key_opts *o, const char *name)
{
	const struct mc_key *k = mc_site_key(kf->site, name);
	if (!k)
		fprintf(stderr, "mcpsec key: %s has no key '%s'\n", o->keys, name);
	return k;
}

/* Text with key `name` replaced by (or extended with) the given value. */
static int put_key(const struct keyfile *kf, const char *name, const char *type, const uint8_t *bytes, size_t len,
		   struct mc_buf *out)
{
	const struct mc_key *old = mc_site_key(kf->site, name);
	struct mc_buf without = { 0 };
	const char *base = kf->text;

	if (old) {
		mc_keyfile_remove(kf->text, old->loc.line, &without);
		base = mc_buf_str(&without);
	}
	int r = mc_keyfile_append(base, name, type, bytes, len, out);
	mc_buf_wipe(&without);
	return r;
}

/* Sites whose policies may use the keys: the ones given, and the committed one. */
static void policies_using(const struct key_opts *o, const char *name, struct mc_buf *out)
{
	const char *paths[9];
	size_t n = 0;
	struct mc_state st = { 0 };
	char *committed = NULL;

	for (size_t i = 0; i < o->nsites; i++)
		paths[n++] = o->sites[i];
	if (mc_state_load(g_opts.state_dir, &st) == 0 && st.committed)
		paths[n++] = committed = mc_state_site_path(&st);
	for (size_t i = 0; i < n; i++) {
		struct mc_diags ds = { 0 };
		struct mc_site *s = NULL;
		struct mc_conf_opts co = { .skip_keys = true }; /* names only: no key file needed */
		mc_conf_load(paths[i], &co, &ds, &s);
		for (size_t p = 0; s && p < s->npol; p++) {
			const struct mc_policy *pol = &s->pol[p];
			if ((pol->integrity_key && !strcmp(pol->integrity_key, name)) ||
			    (pol->confidentiality_key && !strcmp(pol->confidentiality_key, name)))
				mc_buf_printf(out, "%s%s", out->len ? "," : "", pol->name);
		}
		mc_site_free(s);
		mc_diags_free(&ds);
	}
	free(committed);
	mc_state_free(&st);
}

int key_random(const struct mc_keyalg *alg, uint8_t *bytes)
{
	for (int tries = 0; tries < 16; tries++) {
		if (mc_random(bytes, alg->len) < 0)
			return -EIO;
		if (strcmp(alg->type, "tdes") || !mc_tdes_weak(bytes))
			return 0;
	}
	return -EIO;
}

static int cmd_generate_or_set(const struct key_opts *o, bool generate)
{
	const struct mc_keyalg *alg = o->alg ? mc_keyalg_find(o->alg) : NULL;
	struct keyfile kf;
	struct mc_buf text = { 0 };
	uint8_t *bytes = NULL;
	size_t len = 0;
	int rc;

	if (o->nnames != 1 || !alg || (!generate && o->hex == o->ascii)) {
		fprintf(stderr, "mcpsec key: %s\n",
			o->nnames != 1 ? "give one key name"
			: !alg ? "--alg must be one of the ALG names below"
			       : "say whether the value is --hex or --ascii");
		key_usage();
		return EXIT_CONFIG;
	}
	if (!mc_key_name_ok(o->names[0])) {
		fprintf(stderr, "mcpsec key: bad key name '%s' (1-64 letters, digits, '_', '.', '-')\n", o->names[0]);
		return EXIT_CONFIG;
	}
	if ((rc = keyfile_load(o->keys, true, &kf)))
		return rc;
	if (mc_site_key(kf.site, o->names[0]) && !o->replace) {
		fprintf(stderr, "mcpsec key: %s already has a key '%s' (delete it first, or --replace)\n", o->keys,
			o->names[0]);
		keyfile_free(&kf);
		return EXIT_CONFIG;
	}
	if (generate) {
		bytes = mc_malloc(alg->len);
		(void)mlock(bytes, alg->len);
		len = alg->len;
		if (key_random(alg, bytes) < 0) {
			fprintf(stderr, "mcpsec key: the random generator failed; no key was made\n");
			rc = EXIT_LOCAL;
			goto out;
		}
	} else {
		struct secret v = { 0 };
		const char *err = NULL;
		if (read_secret(o->hex ? "key (hex): " : "key (ASCII): ", &v) < 0) {
			fprintf(stderr, "mcpsec key: no value given on stdin\n");
			rc = EXIT_CONFIG;
			goto out;
		}
		bytes = mc_key_value_parse(v.s, o->hex, alg, &len, &err);
		secret_free(&v);
		if (!bytes) {
			fprintf(stderr, "mcpsec key: %s: %s (%s needs %zu bytes)\n", o->names[0], err, alg->cli, alg->len);
			rc = EXIT_CONFIG;
			goto out;
		}
		(void)mlock(bytes, len);
	}
	if (!strcmp(alg->type, "tdes") && mc_tdes_weak(bytes)) {
		fprintf(stderr, "mcpsec key: %s: a weak or degenerate 3DES key (a weak DES third, or K1 = K2 or K2 = K3)\n",
			o->names[0]);
		rc = EXIT_CONFIG;
		goto out;
	}
	if (put_key(&kf, o->names[0], alg->type, bytes, len, &text) < 0) {
		fprintf(stderr, "mcpsec key: %s: 'keys:' is written in flow style; edit it by hand\n", o->keys);
		rc = EXIT_CONFIG;
		goto out;
	}
	if ((rc = keyfile_write(o->keys, &text)))
		goto out;
	char fp[9];
	mc_key_fingerprint(bytes, len, fp);
	printf("%s: %s %s key (%zu bytes, fingerprint %s) in %s\n", o->names[0], generate ? "generated" : "stored",
	       alg->cli, len, fp, o->keys);
	if (alg->legacy)
		fprintf(stderr, "mcpsec key: warning: tdes is a legacy algorithm; prefer aes256\n");
out:
	mc_wipe_free(bytes, len ? len : alg->len);
	mc_buf_wipe(&text);
	keyfile_free(&kf);
	return rc;
}

static int cmd_list(const struct key_opts *o)
{
	struct keyfile kf;
	struct mc_buf b = { 0 };
	int rc;

	if ((rc = keyfile_load(o->keys, false, &kf)))
		return rc;
	if (o->json)
		mc_buf_puts(&b, "{\"keys_file\":");
	if (o->json) {
		mc_buf_json_str(&b, o->keys);
		mc_buf_puts(&b, ",\"keys\":[");
	} else {
		mc_buf_printf(&b, "%-20s %-8s %5s  %-11s  %s\n", "NAME", "TYPE", "BYTES", "FINGERPRINT", "USED BY");
	}
	for (size_t i = 0; i < kf.site->nkeys; i++) {
		const struct mc_key *k = &kf.site->keys[i];
		struct mc_buf used = { 0 };
		char fp[9];
		mc_key_fingerprint(k->bytes, k->len, fp);
		policies_using(o, k->name, &used);
		if (o->json) {
			mc_buf_printf(&b, "%s{\"name\":", i ? "," : "");
			mc_buf_json_str(&b, k->name);
			mc_buf_puts(&b, ",\"algorithm\":");
			mc_buf_json_str(&b, k->type);
			mc_buf_printf(&b, ",\"bytes\":%zu,\"fingerprint\":\"%s\",\"used_by\":[", k->len, fp);
			char *save = NULL, *copy = mc_strdup(mc_buf_str(&used));
			int first = 1;
			for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), first = 0) {
				mc_buf_puts(&b, first ? "" : ",");
				mc_buf_json_str(&b, t);
			}
			free(copy);
			mc_buf_puts(&b, "]}");
		} else {
			mc_buf_printf(&b, "%-20s %-8s %5zu  %-11s  %s\n", k->name, k->type, k->len, fp,
				      used.len ? mc_buf_str(&used) : "-");
		}
		mc_buf_free(&used);
	}
	if (o->json)
		mc_buf_puts(&b, "]}\n");
	fputs(mc_buf_str(&b), stdout);
	mc_buf_free(&b);
	keyfile_free(&kf);
	return 0;
}

static int cmd_show(const struct key_opts *o)
{
	struct keyfile kf;
	int rc;

	if (o->nnames != 1) {
		key_usage();
		return EXIT_CONFIG;
	}
	if (!o->reveal) {
		fprintf(stderr, "mcpsec key show prints the secret value: add --reveal if that is what you want\n");
		return EXIT_CONFIG;
	}
	if ((rc = keyfile_load(o->keys, false, &kf)))
		return rc;
	const struct mc_key *k = find_key(&kf, o, o->names[0]);
	if (!k) {
		keyfile_free(&kf);
		return EXIT_CONFIG;
	}
	printf("0x");
	for (size_t i = 0; i < k->len; i++)
		printf("%02x", k->bytes[i]);
	printf("\n");
	keyfile_free(&kf);
	return 0;
}

static int cmd_export(const struct key_opts *o)
{
	struct keyfile kf;
	struct secret pass = { 0 };
	struct mc_buf pt = { 0 }, out = { 0 };
	int rc;

	if (!o->nnames || !o->out) {
		fprintf(stderr, "mcpsec key export: give the key names and --out FILE\n");
		key_usage();
		return EXIT_CONFIG;
	}
	for (size_t i = 0; i < o->nnames; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(o->names[i], o->names[j])) {
				fprintf(stderr, "mcpsec key export: '%s' is named twice\n", o->names[i]);
				return EXIT_CONFIG;
			}
	if ((rc = keyfile_load(o->keys, false, &kf)))
		return rc;
	for (size_t i = 0; i < o->nnames; i++) {
		const struct mc_key *k = find_key(&kf, o, o->names[i]);
		if (!k) {
			rc = EXIT_CONFIG;
			goto out;
		}
		mc_buf_printf(&pt, "%s %s ", k->name, k->type);
		for (size_t j = 0; j < k->len; j++)
			mc_buf_printf(&pt, "%02x", k->bytes[j]);
		mc_buf_puts(&pt, "\n");
	}
	if ((rc = read_passphrase(o, true, &pass)))
		goto out;
	if (mc_seal(pass.s, pass.len, (const uint8_t *)pt.s, pt.len, &out) < 0) {
		fprintf(stderr, "mcpsec key: encryption failed (OpenSSL)\n");
		rc = EXIT_LOCAL;
		goto out;
	}
	int r = mc_file_write_atomic(o->out, out.s, out.len, 0600);
	if (r < 0) {
		fprintf(stderr, "mcpsec key: writing %s: %s\n", o->out, strerror(-r));
		rc = EXIT_LOCAL;
		goto out;
	}
	printf("exported %zu key%s to %s (scrypt + AES-256-GCM); import it on the peer with "
	       "'mcpsec key import %s'\n", o->nnames, o->nnames == 1 ? "" : "s", o->out, o->out);
out:
	secret_free(&pass);
	mc_buf_wipe(&pt);
	mc_buf_free(&out);
	keyfile_free(&kf);
	return rc;
}

struct import_entry {
	char name[80], type[16];
	uint8_t *bytes;
	size_t len;
	const struct mc_key *old; /* the key of that name already in the file, if any */
};

static int cmp_old_line_desc(const void *a, const void *b)
{
	const struct import_entry *x = a, *y = b;
	int lx = x->old ? x->old->loc.line : 0, ly = y->old ? y->old->loc.line : 0;
	return ly - lx;
}

/* Reads the sealed file; returns its plaintext (caller wipes) or NULL after saying why. */
static uint8_t *unseal_file(const struct key_opts *o, size_t *ptlen)
{
	struct secret pass = { 0 };
	uint8_t *pt = NULL;
	char *armored = NULL;
	size_t alen = 0;
	int rd = mc_file_read(o->names[0], 0, MC_FILE_MAX, &armored, &alen, NULL);

	if (rd < 0) {
		fprintf(stderr, "mcpsec key: %s: %s\n", o->names[0], rd == -EINVAL ? "not a regular file" : strerror(-rd));
		return NULL;
	}
	if (read_passphrase(o, false, &pass) == 0) {
		int r = mc_unseal(pass.s, pass.len, armored, &pt, ptlen);
		if (r < 0)
			fprintf(stderr, "mcpsec key: %s: %s; nothing was imported\n", o->names[0],
				r == -EBADMSG ? "wrong passphrase, or the file was changed"
				: r == -EINVAL ? "not an mcpsec key export file"
					       : "decryption failed (OpenSSL)");
		else
			(void)mlock(pt, *ptlen);
	}
	secret_free(&pass);
	free(armored);
	return pt;
}

/* What an import did: JSON with names only (never a value or a fingerprint), or a line. */
static void say_imported(const struct key_opts *o, bool changed, const struct mc_buf names[3], size_t added,
			 size_t replaced, size_t same)
{
	if (!o->json) {
		printf("%s %s: %zu new, %zu replaced, %zu already there\n", o->dry_run ? "would import into" : "imported into",
		       o->keys, added, replaced, same);
		return;
	}
	struct mc_buf j = { 0 };
	mc_buf_puts(&j, "{\"keys_file\":");
	mc_buf_json_str(&j, o->keys);
	mc_buf_printf(&j, ",\"dry_run\":%s,\"changed\":%s,\"new\":[%s],\"replaced\":[%s],\"unchanged\":[%s]}\n",
		      o->dry_run ? "true" : "false", changed ? "true" : "false", mc_buf_str(&names[0]),
		      mc_buf_str(&names[1]), mc_buf_str(&names[2]));
	fputs(mc_buf_str(&j), stdout);
	mc_buf_free(&j);
}

static int cmd_import(const struct key_opts *o)
{
	struct keyfile kf = { 0 };
	struct import_entry *e = NULL;
	size_t ne = 0, cape = 0, ptlen = 0, added = 0, same = 0, replaced = 0;
	struct mc_buf text = { 0 }, names[3] = { { 0 } }; /* new, replaced, already there: for --json */
	uint8_t *pt = NULL;
	int rc;

	if (o->nnames != 1) {
		fprintf(stderr, "mcpsec key import: give the export file\n");
		key_usage();
		return EXIT_CONFIG;
	}
	if ((rc = keyfile_load(o->keys, true, &kf)))
		return rc;
	if (!(pt = unseal_file(o, &ptlen))) {
		rc = EXIT_CONFIG;
		goto out;
	}
	/* Check everything first: an import is all or nothing. */
	struct mc_export_key *xk = NULL;
	int nk = mc_export_parse(pt, ptlen, &xk);
	if (nk < 0) {
		fprintf(stderr, "mcpsec key: %s %s; nothing was imported\n", o->names[0],
			nk == -EEXIST ? "holds one key name twice" : "holds a malformed or weak key");
		rc = EXIT_CONFIG;
		goto out;
	}
	for (int i = 0; i < nk; i++) {
		struct import_entry *x = MC_PUSH(&e, &ne, &cape);
		memset(x, 0, sizeof(*x));
		memcpy(x->name, xk[i].name, sizeof(x->name));
		memcpy(x->type, xk[i].type, sizeof(x->type));
		x->bytes = xk[i].bytes;
		x->len = xk[i].len;
		xk[i].bytes = NULL; /* moved */
		xk[i].len = 0;
		x->old = mc_site_key(kf.site, x->name);
		bool equal = x->old && x->old->len == x->len && !strcmp(x->old->type, x->type) &&
			     !memcmp(x->old->bytes, x->bytes, x->len);
		struct mc_buf *list = &names[equal ? 2 : x->old ? 1 : 0];
		mc_buf_puts(list, list->len ? "," : "");
		mc_buf_json_str(list, x->name);
		if (equal) {
			same++;
			ne--; /* nothing to do for it */
			mc_wipe(x->bytes, x->len);
			free(x->bytes);
		} else if (x->old && !o->replace) {
			fprintf(stderr, "mcpsec key: %s already has a different key '%s' (use --replace); nothing was "
				"imported\n", o->keys, x->name);
			mc_export_keys_free(xk, (size_t)nk);
			rc = EXIT_CONFIG;
			goto out;
		}
	}
	mc_export_keys_free(xk, (size_t)nk);
	/* Take out the keys being replaced, bottom up so that line numbers stay right, then append. */
	qsort(e, ne, sizeof(*e), cmp_old_line_desc);
	mc_buf_puts(&text, kf.text);
	for (size_t i = 0; i < ne; i++) {
		struct mc_buf next = { 0 };
		if (e[i].old) {
			mc_keyfile_remove(mc_buf_str(&text), e[i].old->loc.line, &next);
			replaced++;
		} else {
			mc_buf_puts(&next, mc_buf_str(&text));
			added++;
		}
		mc_buf_wipe(&text);
		text = next;
	}
	for (size_t i = 0; i < ne; i++) {
		struct mc_buf next = { 0 };
		if (mc_keyfile_append(mc_buf_str(&text), e[i].name, e[i].type, e[i].bytes, e[i].len, &next) < 0) {
			fprintf(stderr, "mcpsec key: %s: 'keys:' is written in flow style; edit it by hand\n", o->keys);
			mc_buf_wipe(&next);
			rc = EXIT_CONFIG;
			goto out;
		}
		mc_buf_wipe(&text);
		text = next;
	}
	if (ne && !o->dry_run && (rc = keyfile_write(o->keys, &text)))
		goto out;
	say_imported(o, ne > 0, names, added, replaced, same);
out:
	for (size_t i = 0; i < MC_ARRAY_SIZE(names); i++)
		mc_buf_free(&names[i]);
	for (size_t i = 0; i < ne; i++)
		mc_wipe_free(e[i].bytes, e[i].len);
	free(e);
	mc_wipe_free(pt, ptlen);
	mc_buf_wipe(&text);
	keyfile_free(&kf);
	return rc;
}

static int cmd_delete(const struct key_opts *o)
{
	struct keyfile kf;
	struct mc_buf used = { 0 }, text = { 0 };
	int rc;

	if (o->nnames != 1) {
		key_usage();
		return EXIT_CONFIG;
	}
	if ((rc = keyfile_load(o->keys, false, &kf)))
		return rc;
	const struct mc_key *k = find_key(&kf, o, o->names[0]);
	if (!k) {
		rc = EXIT_CONFIG;
		goto out;
	}
	policies_using(o, k->name, &used);
	if (used.len) {
		fprintf(stderr, "mcpsec key: '%s' is used by %s; change those policies first\n", k->name, mc_buf_str(&used));
		rc = EXIT_CONFIG;
		goto out;
	}
	mc_keyfile_remove(kf.text, k->loc.line, &text);
	if ((rc = keyfile_write(o->keys, &text)))
		goto out;
	printf("deleted key '%s' from %s\n", o->names[0], o->keys);
out:
	mc_buf_free(&used);
	mc_buf_wipe(&text);
	keyfile_free(&kf);
	return rc;
}

int key_main(int argc, char **argv)
{
	struct key_opts o = { .keys = DEFAULT_KEYS };
	const char *sub = argc > 1 ? argv[1] : NULL;

	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (is_flag(argv[i], "--keys") && v)
			o.keys = argv[++i];
		else if (is_flag(argv[i], "--alg") && v)
			o.alg = argv[++i];
		else if (is_flag(argv[i], "--out") && v)
			o.out = argv[++i];
		else if (is_flag(argv[i], "--passphrase-file") && v)
			o.passfile = argv[++i];
		else if (is_flag(argv[i], "--site") && v && o.nsites < MC_ARRAY_SIZE(o.sites))
			o.sites[o.nsites++] = argv[++i];
		else if (is_flag(argv[i], "--hex"))
			o.hex = true;
		else if (is_flag(argv[i], "--ascii"))
			o.ascii = true;
		else if (is_flag(argv[i], "--replace"))
			o.replace = true;
		else if (is_flag(argv[i], "--reveal"))
			o.reveal = true;
		else if (is_flag(argv[i], "--json"))
			o.json = true;
		else if (is_flag(argv[i], "--dry-run") || is_flag(argv[i], "-n"))
			o.dry_run = true;
		else if (argv[i][0] != '-' && o.nnames < MC_ARRAY_SIZE(o.names))
			o.names[o.nnames++] = argv[i];
		else {
			fprintf(stderr, "mcpsec key: unexpected argument '%s'%s\n", argv[i],
				argv[i][0] == '-' && !v ? " (or its value is missing)" : "");
			key_usage();
			return EXIT_CONFIG;
		}
	}
	if (!sub) {
		key_usage();
		return EXIT_CONFIG;
	}
	if (!strcmp(sub, "generate"))
		return cmd_generate_or_set(&o, true);
	if (!strcmp(sub, "set"))
		return cmd_generate_or_set(&o, false);
	if (!strcmp(sub, "list"))
		return cmd_list(&o);
	if (!strcmp(sub, "show"))
		return cmd_show(&o);
	if (!strcmp(sub, "export"))
		return cmd_export(&o);
	if (!strcmp(sub, "import"))
		return cmd_import(&o);
	if (!strcmp(sub, "delete"))
		return cmd_delete(&o);
	fprintf(stderr, "mcpsec key: unknown subcommand '%s'\n", sub);
	key_usage();
	return EXIT_CONFIG;
}
