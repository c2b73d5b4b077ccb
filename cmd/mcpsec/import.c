/* SPDX-License-Identifier: MIT */
/* mcpsec import: MCP policy listings → site.yaml on stdout (or --out FILE). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/diag.h"
#include "../../lib/import.h"
#include "../../lib/util.h"
#include "cmd.h"


int import_main(int argc, char **argv)
{
	struct mc_import_opts o = { NULL, MC_DEF_IPV6_ONLY };
	const char *file = NULL, *out_path = NULL;
	struct mc_diags ds = { 0 };
	struct mc_buf out = { 0 };
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--keys") && i + 1 < argc) {
			o.keys_text = argv[++i];
		} else if (is_flag(argv[i], "--out") && i + 1 < argc) {
			out_path = argv[++i];
		} else if (is_flag(argv[i], "--default") && i + 1 < argc) {
			if (!mc_default_parse(argv[++i], &o.def)) {
				fprintf(stderr, "mcpsec import: --default must be ipv6-only, bypass, deny or deny-all "
					"(MCP: IPv6Only, BYPASS, DENY, DENYALL)\n");
				return EXIT_CONFIG;
			}
		} else if ((argv[i][0] == '-' && argv[i][1]) || file) {
			fprintf(stderr, "mcpsec import: unexpected argument '%s'\n%s", argv[i], command_usage("import"));
			return EXIT_CONFIG;
		} else {
			file = argv[i];
		}
	}
	if (!file) {
		fputs(command_usage("import"), stderr);
		return EXIT_CONFIG;
	}
	char *text = read_text_file(file);
	if (!text) {
		fprintf(stderr, "mcpsec import: cannot read %s: %s\n", file,
			errno == EINVAL ? "not a regular text file (for a pipe, give - and use stdin)" : strerror(errno));
		return EXIT_CONFIG;
	}
	if (mc_import(strcmp(file, "-") ? file : "<stdin>", text, &o, &out, &ds) < 0) {
		print_diags(&ds);
		fprintf(stderr, "%s: %zu error%s; nothing written\n", file, ds.errors, ds.errors == 1 ? "" : "s");
		rc = EXIT_CONFIG;
	} else {
		rc = write_output("import", out_path, &out);
	}
	free(text);
	mc_buf_free(&out);
	mc_diags_free(&ds);
	return rc;
}
