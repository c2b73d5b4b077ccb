/* SPDX-License-Identifier: MIT */
/* Loading and validation: every bad fixture's diagnostics verbatim, and the examples' model. */
#include <dirent.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/model.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

#define BAD "tests/unit/fixtures/bad"

static char *slurp(const char *path)
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

/* What `mcpsec check` reports for a file, as text. */
static char *diagnose(const char *path, size_t *ret_errors)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_buf out = { 0 };
	struct mc_conf_opts o = { NULL, false };

	mc_conf_load(path, &o, &ds, &s);
	if (s)
		mc_site_validate(s, &ds);
	if (s && !ds.errors) {
		struct mc_plan plan;
		mc_compile(s, NULL, &ds, &plan);
		mc_plan_free(&plan);
	}
	mc_diags_sort(&ds);
	mc_diags_render(&ds, &out);
	*ret_errors = ds.errors;
	mc_diags_free(&ds);
	mc_site_free(s);
	return out.s ? out.s : mc_strdup("");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * git keeps no 0600, and key files others can read draw a warning. Run on a private copy of the
 * fixtures (same relative paths, key files 0600) so that the expected diagnostics do not depend
 * on the checkout's modes, and the checkout is not modified.
 */
static char *enter_private_copy(void)
{
	char tmpl[] = "/tmp/mcpsec-test-conf-XXXXXX";
	char *dir = mkdtemp(tmpl);

	if (!dir)
		return NULL;
	char *cmd = mc_asprintf("mkdir -p %s/tests/unit/fixtures && cp -r " BAD " %s/tests/unit/fixtures/ && "
				"cp -r examples %s/ && chmod 600 %s/" BAD "/*.keys", dir, dir, dir, dir);
	int r = system(cmd);
	free(cmd);
	if (r != 0 || chdir(dir) != 0)
		return NULL;
	return mc_strdup(dir);
}

int main(void)
{
	char *tmp = enter_private_copy();
	T_OK(tmp != NULL, "fixtures copied to a private directory");
	DIR *d = opendir(BAD);
	struct dirent *e;
	char *names[64];
	size_t n = 0;

	T_OK(d != NULL, "fixture directory %s exists (run from the repository root)", BAD);
	while (d && (e = readdir(d)) && n < 64) {
		size_t len = strlen(e->d_name);

		if (len > 5 && !strcmp(e->d_name + len - 5, ".yaml"))
			names[n++] = mc_strdup(e->d_name);
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	T_OK(n >= 10, "at least 10 bad fixtures (found %zu)", n);
	for (size_t i = 0; i < n; i++) {
		char *yaml = mc_asprintf("%s/%s", BAD, names[i]);
		char *expect_path = mc_asprintf("%s/%.*s.expect", BAD, (int)(strlen(names[i]) - 5), names[i]);
		char *want = slurp(expect_path);
		size_t errors;
		char *got = diagnose(yaml, &errors);

		T_OK(errors > 0, "%s has errors", names[i]);
		T_EQ_STR(got, want ? want : "(missing .expect)", "%s: diagnostics match %s verbatim", names[i],
			 expect_path);
		free(got);
		free(want);
		free(yaml);
		free(expect_path);
		free(names[i]);
	}

	/* Secrets never appear in diagnostics, even malformed ones. */
	size_t errors;
	char *out = diagnose(BAD "/algorithms.yaml", &errors);
	T_OK(!strstr(out, "ZZ") && !strstr(out, "24-byte-tdes") && !strstr(out, "0102030405"),
	     "no key value appears in any diagnostic");
	free(out);

	/* The seed's examples load cleanly, in order, with the values the seed gives. */
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_conf_opts o = { NULL, false };
	int r = mc_conf_load("examples/host-a/site.yaml", &o, &ds, &s);
	T_OK(r == 0 && s && mc_site_validate(s, &ds) == 0 && ds.errors == 0, "examples/host-a loads without errors");
	if (s) {
		static const char *order[] = { "ALLOWICMPV6OUT", "ALLOWICMPV6IN", "PROTECTBNAOUT", "PROTECTBNAIN",
						"PROTECTFTPOUT", "PROTECTFTPIN", "BYPASSALLOUT", "BYPASSALLIN" };
		int in_order = s->npol == 8;
		for (size_t i = 0; in_order && i < 8; i++)
			in_order = !strcmp(s->pol[i].name, order[i]);
		T_OK(in_order, "the eight seed policies keep their order");
		const struct mc_policy *ftpin = mc_site_policy(s, "PROTECTFTPIN");
		T_OK(ftpin && ftpin->remote_ports.n == 1 && ftpin->remote_ports.r[0].lo == 20 &&
		     ftpin->remote_ports.r[0].hi == 21, "\"20, 21\" merges into the range 20-21");
		T_OK(ftpin && ftpin->spi == 24578 && ftpin->dir == MC_DIR_IN && ftpin->ipsec_proto == MC_PROTO_ESP,
		     "PROTECTFTPIN: inbound ESP, spi 24578");
		const struct mc_policy *bna = mc_site_policy(s, "PROTECTBNAOUT");
		T_OK(bna && bna->proto == MC_PROTO_BIP && bna->ipsec_proto == MC_PROTO_AH && bna->spi == 2001 &&
		     bna->local.n == 1 && bna->local.r[0].family == AF_INET6, "PROTECTBNAOUT: bip (49), AH, selector PRODUCTION");
		const struct mc_key *k = mc_site_key(s, "DRSYSTEMKEY");
		T_OK(k && k->len == 32 && !strcmp(k->type, "aes"), "ASCII key DRSYSTEMKEY is 32 bytes of aes");
		k = mc_site_key(s, "PRODUCTIONKEY");
		T_OK(k && k->len == 16 && k->bytes[0] == 0x6d && k->bytes[15] == 0x64, "hex key with colons parses");
		struct mc_buf w = { 0 };
		mc_diags_render(&ds, &w);
		const char *c1 = strstr(mc_buf_str(&w), "ESP confidentiality without integrity");
		T_OK(c1 && strstr(c1 + 1, "ESP confidentiality without integrity"),
		     "both confidentiality-only policies are warned about");
		mc_buf_free(&w);
	}
	mc_site_free(s);
	mc_diags_free(&ds);

	uint8_t *bytes;
	size_t len;
	T_OK(mc_hex_parse("0x01 02:03", &bytes, &len) && len == 3 && bytes[2] == 3, "hex accepts 0x, spaces, colons");
	if (len == 3)
		free(bytes);
	T_OK(!mc_hex_parse("0x123", &bytes, &len), "odd number of hex digits is refused");
	T_OK(!mc_hex_parse("", &bytes, &len), "empty hex is refused");
	if (tmp) {
		char *cmd = mc_asprintf("rm -rf %s", tmp);
		T_OK(system(cmd) == 0, "private copy removed");
		free(cmd);
		free(tmp);
	}
	return t_done();
}
