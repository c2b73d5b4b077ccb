/* SPDX-License-Identifier: MIT */
/* Loading and validation: every bad fixture's diagnostics verbatim, and the examples' model. */
#include <dirent.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/keys.h"
#include "../../lib/diag.h"
#include "../../lib/model.h"
#include "../../lib/plan.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "fixture.h"
#include "t.h"

#define BAD "tests/unit/fixtures/bad"

int main(void)
{
	char *tmp = enter_private_copy(BAD);
	T_OK(tmp != NULL, "fixtures copied to a private directory");
	size_t n = check_fixtures(BAD, true);
	T_OK(n >= 10, "at least 10 bad fixtures (found %zu)", n);

	/* Secrets never appear in diagnostics, even malformed ones. */
	size_t errors;
	char *out = diagnose(BAD "/algorithms.yaml", &errors);
	T_OK(!strstr(out, "ZZ") && !strstr(out, "24-byte-tdes") && !strstr(out, "0102030405") && !strstr(out, "a1b2c3d4"),
	     "no key value appears in any diagnostic");
	free(out);

	/* The seed's examples load cleanly, in order, with the values the seed gives. */
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_conf_opts o = { 0 };
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
	leave_private_copy(tmp);
	return t_done();
}
