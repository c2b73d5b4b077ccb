/* SPDX-License-Identifier: MIT */
/* DIR/staged.seen (mcpsecd reads back whatever the file holds) → a staged table, and the
 * round trip: a table read, saved and read again is the same table. The input is tried as it
 * is, and with an 'end' line of the right count and sum appended, so that the search reaches
 * past the sum check into every line's parser. */
#include <errno.h>
#include <stdio.h>

#include "../../lib/crypto.h"
#include "../../lib/stage.h"
#include "../../lib/util.h"
#include "fuzz.h"

static void one(const char *text, size_t len)
{
	struct mc_stage t, t2;
	char why[200];

	mc_stage_init(&t, 8, 0);
	int r = mc_stage_load(&t, text, len, "staged-1", "gen-1", why, sizeof(why));
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ESTALE);
	FUZZ_ASSERT(r == 0 || t.n == 0);
	if (r == 0) {
		struct mc_buf b = { 0 }, j = { 0 }, j2 = { 0 };
		mc_stage_save(&t, "staged-1", "gen-1", 1u << 20, &b);
		mc_stage_init(&t2, 8, 0);
		FUZZ_ASSERT(mc_stage_load(&t2, b.s, b.len, "staged-1", "gen-1", why, sizeof(why)) == 0);
		mc_stage_json(&t, &j);
		mc_stage_json(&t2, &j2);
		FUZZ_ASSERT(!strcmp(j.s, j2.s));
		mc_buf_free(&b);
		mc_buf_free(&j);
		mc_buf_free(&j2);
		mc_stage_free(&t2);
	}
	mc_stage_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	one((const char *)data, size);
	size_t flows = 0;
	for (size_t i = 0; i + 5 <= size; i++)
		flows += (i == 0 || data[i - 1] == '\n') && !memcmp(data + i, "flow ", 5);
	char sum[65];
	mc_sha256_hex(data, size, sum);
	struct mc_buf b = { 0 };
	mc_buf_printf(&b, "%.*send %zu %s\n", (int)size, (const char *)data, flows, sum);
	one(b.s, b.len);
	mc_buf_free(&b);
	return 0;
}
