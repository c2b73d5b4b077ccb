/* SPDX-License-Identifier: MIT */
/* Algorithm table. RFC 4868 truncations are explicit: the kernel's default for hmac(sha256)
 * is 96 bits, not 128 (net/xfrm/xfrm_algo.c aalg_list[]; doc/kernel-notes.md §7). */
#include <stdio.h>
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

/* Every key mcpsec knows: the `mcpsec key --alg` name, the keys.yaml algorithm and its exact
 * length. The only list of them: everything else (lengths allowed per type, names in messages,
 * help) is derived from it and from algs[] above. */
static const struct mc_keyalg keyalgs[] = {
	{ "sha1", "sha1", 20, false },	 { "sha256", "sha256", 32, false }, { "sha512", "sha512", 64, false },
	{ "aes128", "aes", 16, false },	 { "aes256", "aes", 32, false },    { "tdes", "tdes", 24, true },
};

/* Spellings beside the canonical names: MCP's (HMAC_SHA1_96, HMAC-SHA-256, AES_CBC, TDES),
 * the truncation left out (the RFC's for each hash), and key-type-like names for ciphers. */
static const struct {
	const char *squeezed, *name;
} alg_aliases[] = {
	{ "hmacsha1", "hmac-sha1-96" },	    { "hmacsha256", "hmac-sha256-128" }, { "hmacsha512", "hmac-sha512-256" },
	{ "aes", "aes-cbc" },		    { "aes128", "aes-cbc" },		 { "aes256", "aes-cbc" },
	{ "aescbc128", "aes-cbc" },	    { "aescbc256", "aes-cbc" },		 { "tdes", "tdes-cbc" },
	{ "3des", "tdes-cbc" },		    { "3descbc", "tdes-cbc" },
};

/* The key length a cipher's spelling fixes (aes128, AES_CBC_256, aes-cbc-256: 128 or 256), in
 * bits; 0 when the name leaves it to the key. The aliases above are where such names exist. */
unsigned mc_alg_name_bits(const char *name)
{
	char sq[64];

	mc_squeeze(name, sq, sizeof(sq));
	for (size_t k = 0; k < MC_ARRAY_SIZE(alg_aliases); k++)
		if (!strcmp(sq, alg_aliases[k].squeezed)) {
			size_t n = strlen(sq);
			if (n > 3 && !strcmp(sq + n - 3, "128"))
				return 128;
			if (n > 3 && !strcmp(sq + n - 3, "256"))
				return 256;
		}
	return 0;
}

const struct mc_alg *mc_alg_find(const char *name, enum mc_alg_kind kind)
{
	char sq[64], canon[64];

	mc_squeeze(name, sq, sizeof(sq));
	for (size_t k = 0; k < MC_ARRAY_SIZE(alg_aliases); k++)
		if (!strcmp(sq, alg_aliases[k].squeezed))
			name = alg_aliases[k].name;
	mc_squeeze(name, sq, sizeof(sq));
	for (size_t i = 0; i < MC_ARRAY_SIZE(algs); i++) {
		mc_squeeze(algs[i].name, canon, sizeof(canon));
		if (algs[i].kind == kind && !strcmp(canon, sq))
			return &algs[i];
	}
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

/* A list of names joined as text once, kept for the life of the process. */
static const char *joined(char *buf, size_t cap, const char *const *names, size_t n, const char *last_sep)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? last_sep : ", ";
		len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s", sep, names[i]);
	}
	return buf;
}

const char *mc_alg_names(enum mc_alg_kind kind)
{
	static char text[2][256];
	const char *names[MC_ARRAY_SIZE(algs)];
	size_t n = 0;

	if (!text[kind][0]) {
		for (size_t i = 0; i < MC_ARRAY_SIZE(algs); i++)
			if (algs[i].kind == kind)
				names[n++] = algs[i].name;
		joined(text[kind], sizeof(text[kind]), names, n, ", ");
	}
	return text[kind];
}

/* One vocabulary for key algorithms, in keys.yaml and on the command line: the --alg names,
 * the keys.yaml types, and MCP's spellings (SHA-1, AES, TDES), in any case. "aes" alone is a
 * type of two lengths: in keys.yaml the key's length decides, `key generate` makes aes256. */
static const struct {
	const char *squeezed, *cli;
} key_aliases[] = {
	{ "aes", "aes256" },
	{ "3des", "tdes" },
	{ "aescbc", "aes256" },
};

const struct mc_keyalg *mc_keyalg_find(const char *cli)
{
	char sq[32], canon[32];

	mc_squeeze(cli, sq, sizeof(sq));
	for (size_t k = 0; k < MC_ARRAY_SIZE(key_aliases); k++)
		if (!strcmp(sq, key_aliases[k].squeezed))
			snprintf(sq, sizeof(sq), "%s", key_aliases[k].cli);
	for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++) {
		mc_squeeze(keyalgs[i].cli, canon, sizeof(canon));
		if (!strcmp(canon, sq))
			return &keyalgs[i];
	}
	return NULL;
}

const char *mc_key_type_parse(const char *written, size_t *exact_len)
{
	char sq[32];
	const struct mc_keyalg *k = mc_keyalg_find(written);

	*exact_len = 0;
	if (!k)
		return NULL;
	/* "aes" names the type (each length); "aes128" and "aes256" fix the length. */
	mc_squeeze(written, sq, sizeof(sq));
	if (strcmp(sq, "aes") && strcmp(sq, "aescbc"))
		*exact_len = k->len;
	return k->type;
}

const struct mc_keyalg *mc_keyalg_of(const char *type, size_t len)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++)
		if (!strcmp(keyalgs[i].type, type) && keyalgs[i].len == len)
			return &keyalgs[i];
	return NULL;
}

const char *mc_keyalg_names(void)
{
	static char text[256];
	const char *names[MC_ARRAY_SIZE(keyalgs)];

	if (!text[0]) {
		for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++)
			names[i] = keyalgs[i].cli;
		joined(text, sizeof(text), names, MC_ARRAY_SIZE(keyalgs), ", ");
	}
	return text;
}

const char *mc_keyalg_help(void)
{
	static char text[512];
	size_t len = 0;

	if (text[0])
		return text;
	for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s (%zu bytes)", i ? ", " : "", keyalgs[i].cli,
					keyalgs[i].len);
	return text;
}

const char *mc_key_type_names(void)
{
	static char text[256];
	const char *names[MC_ARRAY_SIZE(keyalgs)];
	size_t n = 0;

	if (!text[0]) {
		for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++)
			if (!n || strcmp(names[n - 1], keyalgs[i].type))
				names[n++] = keyalgs[i].type;
		joined(text, sizeof(text), names, n, " or ");
	}
	return text;
}

bool mc_key_type_known(const char *type)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++)
		if (!strcmp(keyalgs[i].type, type))
			return true;
	return false;
}

bool mc_key_len_ok(const char *type, size_t len)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++)
		if (!strcmp(keyalgs[i].type, type) && keyalgs[i].len == len)
			return true;
	return false;
}

const char *mc_key_lens_text(const char *type)
{
	static char text[MC_ARRAY_SIZE(keyalgs)][64];

	for (size_t i = 0; i < MC_ARRAY_SIZE(keyalgs); i++) {
		if (strcmp(keyalgs[i].type, type))
			continue;
		if (!text[i][0]) {
			size_t len = 0;
			for (size_t j = i; j < MC_ARRAY_SIZE(keyalgs) && !strcmp(keyalgs[j].type, type); j++)
				len += (size_t)snprintf(text[i] + len, sizeof(text[i]) - len, "%s%zu", j == i ? "" : " or ",
							keyalgs[j].len);
		}
		return text[i];
	}
	return "?";
}

unsigned mc_alg_block_bits(const struct mc_alg *a)
{
	if (!a || a->kind != MC_ALG_CONFIDENTIALITY)
		return 0;
	return !strcmp(a->key_type, "tdes") ? 64 : 128;
}

bool mc_sa_block_warning(const struct mc_alg *a, unsigned long long bytes, char *buf, size_t len)
{
	if (mc_alg_block_bits(a) != 64 || bytes < MC_SWEET32_WARN_BYTES)
		return false;
	snprintf(buf, len, "%s (64-bit blocks) has carried %.1f GiB under this key; past %llu GiB (2^32 "
		 "blocks) block collisions leak plaintext (Sweet32): roll the key over now (mcpsec rekey)",
		 a->name, (double)bytes / (double)(1ull << 30), MC_SWEET32_LIMIT_BYTES >> 30);
	return true;
}
