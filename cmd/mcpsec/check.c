/* SPDX-License-Identifier: MIT */
/* mcpsec check: validate and compile a site without touching the kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/util.h"
#include "cmd.h"

int check_main(int argc, char **argv)
{
	const char *file = NULL;
	bool show_plan = false;
	struct mc_diags ds = { 0 };
	struct mc_plan plan = { 0 };
	struct mc_site *s;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--plan"))
			show_plan = true;
		else if (argv[i][0] == '-' || file) {
			fprintf(stderr, "mcpsec check: unexpected argument '%s'\nusage: mcpsec check [--plan] SITE.yaml\n",
				argv[i]);
			return EXIT_CONFIG;
		} else
			file = argv[i];
	}
	if (!file) {
		fprintf(stderr, "usage: mcpsec check [--plan] SITE.yaml\n");
		return EXIT_CONFIG;
	}
	s = load_site(file, NULL, false, &ds);
	if (s && mc_compile(s, NULL, &ds, &plan) < 0)
		rc = EXIT_CONFIG;
	print_diags(&ds);
	if (!s || ds.errors) {
		fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", file, ds.errors, ds.errors == 1 ? "" : "s",
			ds.warnings, ds.warnings == 1 ? "" : "s");
		rc = EXIT_CONFIG;
	} else {
		printf("%s: ok (%zu policies, %zu kernel policies, %zu SAs; %zu warning%s)\n", file, s->npol,
		       plan.npols, plan.nsas, ds.warnings, ds.warnings == 1 ? "" : "s");
		if (show_plan) {
			struct mc_buf b = { 0 };
			mc_plan_render(&plan, &b);
			fputs(mc_buf_str(&b), stdout);
			mc_buf_free(&b);
		}
	}
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
	return rc;
}
