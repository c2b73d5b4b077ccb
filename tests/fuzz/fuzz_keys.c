/* SPDX-License-Identifier: MIT */
/* keys.yaml text → keys; no message may quote a value (the key file is secret). */
#include <stdio.h>

#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/model.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	int r = mc_conf_parse_keys("keys.yaml", (const char *)data, size, &ds, &s);
	FUZZ_ASSERT(s != NULL);
	FUZZ_ASSERT((r < 0) == (ds.errors > 0));
	/* A file that loads without errors gives usable keys only. */
	for (size_t i = 0; r == 0 && i < s->nkeys; i++)
		FUZZ_ASSERT(s->keys[i].len > 0 && s->keys[i].bytes);
	mc_diags_free(&ds);
	mc_site_free(s);
	return 0;
}
