/* SPDX-License-Identifier: MIT */
/* mcpsec mirror and mcpsec check-peer: a host's configuration seen from, and against, its peer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/peer.h"
#include "../../lib/util.h"
#include "../../lib/engine.h"
#include "cmd.h"


static bool addr_arg(const char *cmd, const char *flag, const char *value, struct mc_addr *ret)
{
	if (!value || !mc_addr_parse(value, ret)) {
		fprintf(stderr, "mcpsec %s: %s needs an IPv4 or IPv6 address%s%s\n", cmd, flag,
			value ? ", not " : "", value ? value : "");
		return false;
	}
	return true;
}

int mirror_main(int argc, char **argv)
{
	struct mc_mirror_opts o = { 0 };
	const char *file = NULL, *out_path = NULL;
	bool have_peer = false;
	struct mc_diags ds = { 0 };
	struct mc_buf out = { 0 };
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--peer")) {
			if (!addr_arg("mirror", "--peer", i + 1 < argc ? argv[++i] : NULL, &o.peer))
				return EXIT_CONFIG;
			have_peer = true;
		} else if (is_flag(argv[i], "--self")) {
			if (!addr_arg("mirror", "--self", i + 1 < argc ? argv[++i] : NULL, &o.self))
				return EXIT_CONFIG;
			o.have_self = true;
		} else if (is_flag(argv[i], "--out") && i + 1 < argc) {
			out_path = argv[++i];
		} else if (argv[i][0] == '-' || file) {
			fprintf(stderr, "mcpsec mirror: unexpected argument '%s'\n%s", argv[i], command_usage("mirror"));
			return EXIT_CONFIG;
		} else {
			file = argv[i];
		}
	}
	if (!file || !have_peer) {
		fputs(command_usage("mirror"), stderr);
		return EXIT_CONFIG;
	}
	if (o.have_self && o.self.family != o.peer.family) {
		fprintf(stderr, "mcpsec mirror: --self and --peer must be of the same address family\n");
		return EXIT_CONFIG;
	}
	o.source = file;
	struct mc_site *s = mc_engine_load_site(file, NULL, false, &ds);
	if (!s || mc_mirror(s, &o, &out, &ds) < 0) {
		print_diags(&ds);
		rc = EXIT_CONFIG;
	} else {
		rc = write_output("mirror", out_path, &out);
	}
	mc_buf_free(&out);
	mc_site_free(s);
	mc_diags_free(&ds);
	return rc;
}

/* The address of host `of`, guessed from the other host's PROTECT policies when not given. */
static bool peer_addr(const struct mc_site *other, const char *flag, bool given, struct mc_addr *ret)
{
	if (given)
		return true;
	int r = mc_peer_guess(other, ret);
	if (r == 0)
		return true;
	fprintf(stderr, "mcpsec check-peer: %s: cannot tell the peer's address (%s); give %s ADDR\n", other->file,
		r == -EEXIST ? "its PROTECT policies name several remote hosts" : "it has no PROTECT policy to one host",
		flag);
	return false;
}

int check_peer_main(int argc, char **argv)
{
	const char *files[2] = { NULL, NULL };
	struct mc_peer_side side[2];
	bool given[2] = { false, false };
	struct mc_diags ds = { 0 };
	struct mc_site *s[2] = { NULL, NULL };
	struct mc_plan plan[2];
	int rc = 0;

	memset(side, 0, sizeof(side));
	memset(plan, 0, sizeof(plan));
	for (int i = 1; i < argc; i++) {
		int k = is_flag(argv[i], "--addr-a") ? 0 : is_flag(argv[i], "--addr-b") ? 1 : -1;
		if (k >= 0) {
			if (!addr_arg("check-peer", argv[i], i + 1 < argc ? argv[i + 1] : NULL, &side[k].addr))
				return EXIT_CONFIG;
			given[k] = true;
			i++;
		} else if (argv[i][0] == '-' || files[1]) {
			fprintf(stderr, "mcpsec check-peer: unexpected argument '%s'\n%s", argv[i], command_usage("check-peer"));
			return EXIT_CONFIG;
		} else {
			files[files[0] ? 1 : 0] = argv[i];
		}
	}
	if (!files[1]) {
		fputs(command_usage("check-peer"), stderr);
		return EXIT_CONFIG;
	}
	for (int k = 0; k < 2; k++) {
		s[k] = mc_engine_load_site(files[k], NULL, false, &ds);
		if (s[k] && mc_compile(s[k], NULL, &ds, &plan[k]) < 0)
			rc = EXIT_CONFIG;
	}
	if (!s[0] || !s[1] || ds.errors) {
		print_diags(&ds);
		rc = EXIT_CONFIG;
		goto out;
	}
	/* Warnings of each file are `check`'s business; here only the mismatches are shown. */
	mc_diags_free(&ds);
	if (!peer_addr(s[1], "--addr-a", given[0], &side[0].addr) || !peer_addr(s[0], "--addr-b", given[1], &side[1].addr)) {
		rc = EXIT_CONFIG;
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		side[k].site = s[k];
		side[k].plan = &plan[k];
	}
	size_t n = mc_check_peer(&side[0], &side[1], &ds);
	char a[64], b[64];
	mc_addr_str(&side[0].addr, a, sizeof(a));
	mc_addr_str(&side[1].addr, b, sizeof(b));
	if (ds.errors) {
		print_diags(&ds);
		fprintf(stderr, "%zu mismatch%s between %s (%s) and %s (%s)\n", n, n == 1 ? "" : "es", files[0], a,
			files[1], b);
		rc = EXIT_CONFIG;
	} else {
		printf("%s (%s) and %s (%s) agree on all traffic between them\n", files[0], a, files[1], b);
	}
out:
	for (int k = 0; k < 2; k++) {
		if (s[k])
			mc_plan_free(&plan[k]);
		mc_site_free(s[k]);
	}
	mc_diags_free(&ds);
	return rc;
}
