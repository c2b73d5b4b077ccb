/* SPDX-License-Identifier: MIT */
/* MCP listings → site.yaml, and the property that whatever import writes, mcpsec reads back
 * without a YAML or type error (mirror writes through the same emitter), and check's rules
 * (keys aside, which the listing does not carry) accept it. */
#include <stdio.h>

#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/import.h"
#include "../../lib/model.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "fuzz.h"

/* On a failure, what was said about the YAML import wrote, and the YAML. */
static void report(int r, const char *what, const struct mc_diags *ds, const struct mc_buf *out)
{
	if (r >= 0)
		return;
	struct mc_buf b = { 0 };
	mc_diags_render(ds, &b);
	fprintf(stderr, "%s:\n%s\n---\n%s", what, mc_buf_str(&b), mc_buf_str(out));
	mc_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mc_diags ds = { 0 }, ds2 = { 0 };
	struct mc_import_opts o = { NULL, MC_DEF_IPV6_ONLY };
	struct mc_buf out = { 0 };

	if (size > FUZZ_MAX_INPUT)
		return 0;
	char *text = fuzz_cstr(data, size);
	int n = mc_import("fuzz.txt", text, &o, &out, &ds);
	if (n >= 0) {
		struct mc_site *s = NULL;
		int r = mc_conf_parse("imported.yaml", mc_buf_str(&out), out.len, &ds2, &s);
		report(r, "import wrote YAML that does not load", &ds2, &out);
		FUZZ_ASSERT(r == 0);
		FUZZ_ASSERT(s && (int)s->npol == n);
		s->keys_skipped = true;
		r = mc_site_validate(s, &ds2);
		report(r, "import wrote a site that check refuses", &ds2, &out);
		FUZZ_ASSERT(r == 0);
		mc_site_free(s);
	}
	mc_diags_free(&ds);
	mc_diags_free(&ds2);
	mc_buf_free(&out);
	free(text);
	return 0;
}
