/* SPDX-License-Identifier: MIT */
/* Raw netlink bytes → the daemon's event decoder and the dump decoders (SA and policy). The
 * first byte picks the decoder's view of a buffer; the rest is the message. Under ASan any read
 * past the buffer is a crash: the input is copied to a heap block of exactly its size. */
#include <stdio.h>

#include "../../lib/event.h"
#include "../../lib/nlx.h"
#include "../../lib/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mc_event ev;
	struct mc_ksa sa;
	struct mc_kpolicy pol;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	size_t len = size - 1;
	uint8_t *msg = malloc(len ? len : 1);
	if (!msg)
		abort();
	memcpy(msg, data + 1, len);
	switch (data[0] % 3) {
	case 0:
		(void)mc_nl_decode_event(msg, len, &ev);
		break;
	case 1:
		if (mc_nl_decode_sa(msg, len, &sa) == 0)
			FUZZ_ASSERT(sa.x.ikey_len <= sizeof(sa.x.ikey) && sa.x.ekey_len <= sizeof(sa.x.ekey));
		break;
	default:
		if (mc_nl_decode_policy(msg, len, &pol) == 0)
			FUZZ_ASSERT(pol.ntmpl >= 0);
		break;
	}
	free(msg);
	return 0;
}
