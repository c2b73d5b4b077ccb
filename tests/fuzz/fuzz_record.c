/* SPDX-License-Identifier: MIT */
/* log.jsonl lines (mcpsec log reads whatever the file holds) → records, and the round trip:
 * a record parsed and written again parses to the same record. */
#include <stdio.h>

#include "../../lib/monitor.h"
#include "../../lib/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mc_record r, r2;
	struct mc_buf b = { 0 }, t = { 0 };

	if (size > FUZZ_MAX_INPUT)
		return 0;
	char *line = fuzz_cstr(data, size);
	if (mc_record_parse(line, &r)) {
		mc_record_json(&r, NULL, &b);
		mc_record_text(&r, &t);
		FUZZ_ASSERT(mc_record_parse(mc_buf_str(&b), &r2));
		struct mc_buf b2 = { 0 };
		mc_record_json(&r2, NULL, &b2);
		FUZZ_ASSERT(!strcmp(mc_buf_str(&b), mc_buf_str(&b2)));
		mc_buf_free(&b2);
	}
	mc_buf_free(&b);
	mc_buf_free(&t);
	free(line);
	return 0;
}
