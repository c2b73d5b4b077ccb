/* SPDX-License-Identifier: MIT */
/* Algorithm table. RFC 4868 truncations are explicit: the kernel's default for
 * hmac(sha256) is 96 bits, not 128 (xfrm-kernel.md §7). */
#include <string.h>

#include "algo.h"
#include "util.h"

static const struct mc_alg algs[] = {
	{ "hmac-sha1-96", MC_ALG_INTEGRITY, "hmac(sha1)", 96, "sha1", false },
	{ "hmac-sha256-128", MC_ALG_INTEGRITY, "hmac(sha256)", 128, "sha256", false },
	{ "hmac-sha512-256", MC_ALG_INTEGRITY, "hmac(sha512)", 256, "sha512", false },
	{ "aes-cbc", MC_ALG_CONFIDENTIALITY, "cbc(aes)", 0, "aes", false },
	{ "tdes-cbc", MC_ALG_CONFIDENTIALITY, "cbc(des3_ede)", 0, "tdes", true },
};

static const struct {
	const char *type;
	size_t len1, len2; /* allowed byte lengths; len2 0 when only one */
	const char *text;
} key_types[] = {
	{ "sha1", 20, 0, "20" },
	{ "sha256", 32, 0, "32" },
	{ "sha512", 64, 0, "64" },
	{ "aes", 16, 32, "16 or 32" },
	{ "tdes", 24, 0, "24" },
};

const struct mc_alg *mc_alg_find(const char *name, enum mc_alg_kind kind)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(algs); i++)
		if (algs[i].kind == kind && !strcmp(algs[i].name, name))
			return &algs[i];
	return NULL;
}

const struct mc_alg *mc_alg_from_kernel(const char *kernel, unsigned trunc_bits, enum mc_alg_kind kind)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(algs); i++)
		if (algs[i].kind == kind && !strcmp(algs[i].kernel, kernel) &&
		    (kind == MC_ALG_CONFIDENTIALITY || algs[i].trunc_bits == trunc_bits))
			return &algs[i];
	return NULL;
}

const char *mc_alg_names(enum mc_alg_kind kind)
{
	return kind == MC_ALG_INTEGRITY ? "hmac-sha1-96, hmac-sha256-128, hmac-sha512-256"
					: "aes-cbc, tdes-cbc";
}

bool mc_key_type_known(const char *type)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(key_types); i++)
		if (!strcmp(key_types[i].type, type))
			return true;
	return false;
}

bool mc_key_len_ok(const char *type, size_t len)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(key_types); i++)
		if (!strcmp(key_types[i].type, type))
			return len == key_types[i].len1 || (key_types[i].len2 && len == key_types[i].len2);
	return false;
}

const char *mc_key_lens_text(const char *type)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(key_types); i++)
		if (!strcmp(key_types[i].type, type))
			return key_types[i].text;
	return "?";
}
