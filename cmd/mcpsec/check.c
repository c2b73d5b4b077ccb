/* SPDX-License-Identifier: MIT */
/* mcpsec check: validate, compile and lint a site without touching the kernel (with --netns, it
 * reads that namespace's addresses, to say whether the site is this host's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/lint.h"
#include "../../lib/util.h"
#include "../../lib/engine.h"
#include "../../lib/nlx.h"
#include "cmd.h"


/* {"file", "ok", "errors", "warnings", "policies", "kernel_policies", "sas", "diagnostics": [...]} */
static void render_json(const char *file, const struct mc_site *s, const struct mc_plan *plan,
			const struct mc_diags *ds, struct mc_buf *b)
{
	mc_buf_puts(b, "{\"file\":");
	mc_buf_json_str(b, file);
	mc_buf_printf(b, ",\"ok\":%s,\"errors\":%zu,\"warnings\":%zu", ds->errors ? "false" : "true", ds->errors,
		      ds->warnings);
	if (s && !ds->errors)
		mc_buf_printf(b, ",\"policies\":%zu,\"kernel_policies\":%zu,\"sas\":%zu", s->npol, plan->npols,
			      plan->nsas);
	mc_buf_puts(b, ",\"diagnostics\":[");
	for (size_t i = 0; i < ds->n; i++) {
		const struct mc_diag *d = &ds->d[i];
		mc_buf_printf(b, "%s{\"severity\":\"%s\",\"file\":", i ? "," : "",
			      d->sev == MC_ERROR ? "error" : "warning");
		if (d->loc.file)
			mc_buf_json_str(b, d->loc.file);
		else
			mc_buf_puts(b, "null");
		mc_buf_printf(b, ",\"line\":%d,\"col\":%d,\"code\":", d->loc.line, d->loc.col);
		if (d->code)
			mc_buf_json_str(b, d->code);
		else
			mc_buf_puts(b, "null");
		mc_buf_puts(b, ",\"message\":");
		mc_buf_json_str(b, d->msg);
		mc_buf_puts(b, "}");
	}
	mc_buf_puts(b, "]}\n");
}

int check_main(int argc, char **argv)
{
	const char *file = NULL;
	bool show_plan = false, json = false;
	struct mc_diags ds = { 0 };
	struct mc_plan plan = { 0 };
	struct mc_site *s;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--plan"))
			show_plan = true;
		else if (is_flag(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' || file) {
			fprintf(stderr, "mcpsec check: unexpected argument '%s'\n%s", argv[i], command_usage("check"));
			return EXIT_CONFIG;
		} else
			file = argv[i];
	}
	if (!file || (json && show_plan)) {
		fprintf(stderr, "%s%s", file ? "mcpsec check: --plan and --json do not go together\n" : "",
			command_usage("check"));
		return EXIT_CONFIG;
	}
	s = mc_engine_load_site_logic(file, &ds);
	if (s && mc_compile(s, NULL, &ds, &plan) == 0 && !ds.errors)
		mc_lint(s, &plan, &ds);
	/* With --netns, what apply would say of a site written for another host (read only). */
	if (s && !ds.errors && g_opts.netns) {
		struct mc_nl *nl = NULL;
		if ((rc = enter_netns()) || (rc = open_kernel(&nl)))
			goto out;
		if (mc_engine_check_locals(mc_nl_kernel(nl), s, &ds) < 0)
			mc_warn(&ds, mc_loc_file(file), "could not list the addresses of namespace %s", g_opts.netns);
		mc_nl_close(nl);
	}
	if (!s || ds.errors)
		rc = EXIT_CONFIG;
	if (json) {
		struct mc_buf b = { 0 };
		mc_diags_sort(&ds);
		render_json(file, s, &plan, &ds, &b);
		fputs(mc_buf_str(&b), stdout);
		mc_buf_free(&b);
	} else {
		print_diags(&ds);
		if (rc) {
			fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", file, ds.errors,
				ds.errors == 1 ? "" : "s", ds.warnings, ds.warnings == 1 ? "" : "s");
		} else {
			printf("%s: ok (%zu policies, %zu kernel policies, %zu SAs; %zu warning%s)\n", file,
			       s->npol, plan.npols, plan.nsas, ds.warnings, ds.warnings == 1 ? "" : "s");
			if (show_plan) {
				struct mc_buf b = { 0 };
				mc_plan_render(&plan, &b);
				fputs(mc_buf_str(&b), stdout);
				mc_buf_free(&b);
			}
		}
	}
out:
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
	return rc;
}
