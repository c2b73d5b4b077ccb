/* SPDX-License-Identifier: MIT */
/* site.yaml text → model → validation → plan → lint: what `mcpsec check` does with a file. */
#include <stdio.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/lint.h"
#include "../../lib/model.h"
#include "../../lib/plan.h"
#include "../../lib/validate.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	int r = mc_conf_parse("fuzz.yaml", (const char *)data, size, &ds, &s);
	FUZZ_ASSERT(s != NULL);
	FUZZ_ASSERT((r < 0) == (ds.errors > 0));
	if (r == 0 && mc_site_validate(s, &ds) == 0) {
		memset(&plan, 0, sizeof(plan));
		if (mc_compile(s, NULL, &ds, &plan) == 0)
			mc_lint(s, &plan, &ds);
		mc_plan_free(&plan);
	}
	/* Every diagnostic has a place in this file and a message. */
	for (size_t i = 0; i < ds.n; i++)
		FUZZ_ASSERT(ds.d[i].msg && ds.d[i].msg[0]);
	mc_diags_free(&ds);
	mc_site_free(s);
	return 0;
}
