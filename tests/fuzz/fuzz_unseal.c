/* SPDX-License-Identifier: MIT */
/* What `key import` reads from an untrusted file before and after decryption: the armor (base64
 * between the markers) and the plaintext's "NAME TYPE HEX" lines. The scrypt + AES-GCM step in
 * between is OpenSSL's and costs ~60 ms a try, so the fuzzer feeds both parsers directly. */
#include <errno.h>
#include <stdio.h>

#include "../../lib/crypto.h"
#include "../../lib/keys.h"
#include "../../lib/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *blob = NULL;
	size_t blen = 0;
	struct mc_export_key *k = NULL;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	char *text = fuzz_cstr(data, size);
	if (mc_unseal_armor(text, &blob, &blen) == 0) {
		FUZZ_ASSERT(blen >= 44); /* salt, nonce and tag at least */
		mc_wipe_free(blob, blen);
	}
	int n = mc_export_parse(data, size, &k);
	FUZZ_ASSERT(n >= 0 || n == -EINVAL || n == -EEXIST);
	for (int i = 0; i < n; i++) {
		FUZZ_ASSERT(mc_key_name_ok(k[i].name) && k[i].len > 0);
		for (int j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(k[i].name, k[j].name) != 0);
	}
	if (n > 0)
		mc_export_keys_free(k, (size_t)n);
	free(text);
	return 0;
}
