/* SPDX-License-Identifier: MIT */
/* site.yaml and keys.yaml → model. The only file that includes <yaml.h>. */
#ifndef MCPSEC_CONF_H
#define MCPSEC_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_diags;
struct mc_site;
struct mc_suite;

struct mc_conf_opts {
	const char *keys_path;  /* use this key file instead of the one the site names */
	bool strict_key_perms;  /* refuse (not just warn about) a key file others can read */
	bool skip_keys;         /* read no key file (callers that need only names) */
	bool keys_optional;     /* test and check: keys that do not exist yet are warnings (the
				 * policy logic can be tested before keys are generated) */
};

/*
 * Loads site.yaml and its key file. Syntax, type and key errors go to ds with file:line:col;
 * cross-field rules are mc_site_validate()'s. *ret is the model (caller frees with mc_site_free),
 * partial when there were errors so that validation can still report its own; NULL only when
 * the file could not be read or parsed. Returns 0, or -EINVAL when this load added errors.
 */
int mc_conf_load(const char *path, const struct mc_conf_opts *opts, struct mc_diags *ds,
		 struct mc_site **ret);

/* Loads a key file on its own (the returned site has only keys). Same diagnostics as above. */
int mc_conf_load_keys(const char *path, bool strict_perms, struct mc_diags *ds, struct mc_site **ret);
/* The same, also handing over the text that was read, checked and parsed (*text NULL when it
 * could not be read; the caller wipes and frees it): an editor of the file works on that text,
 * never on a second read by name. */
int mc_conf_load_keys_text(const char *path, bool strict_perms, struct mc_diags *ds, struct mc_site **ret,
			   char **text, size_t *len);

/*
 * The same from text in memory (fuzzers, tests): name is used in diagnostics. A site's key file
 * is not read. Each returns 0, or -EINVAL when it added errors; *ret is always set.
 */
int mc_conf_parse(const char *name, const char *buf, size_t len, struct mc_diags *ds, struct mc_site **ret);
int mc_conf_parse_keys(const char *name, const char *buf, size_t len, struct mc_diags *ds, struct mc_site **ret);

/* A test suite (tests.yaml: `tests:`, each test in the test command's terms with an `expect`
 * list) → *ret (caller frees with mc_suite_free). Returns 0, or -EINVAL when it added errors. */
int mc_conf_load_suite(const char *path, struct mc_diags *ds, struct mc_suite *ret);

#endif
