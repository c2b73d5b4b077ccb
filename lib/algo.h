/* SPDX-License-Identifier: MIT */
/* The algorithms mcpsec accepts, their kernel names and the keys they need (a table). */
#ifndef MCPSEC_ALGO_H
#define MCPSEC_ALGO_H

#include <stdbool.h>
#include <stddef.h>

enum mc_alg_kind { MC_ALG_INTEGRITY, MC_ALG_CONFIDENTIALITY };

struct mc_alg {
	const char *name;      /* as written in site.yaml: "hmac-sha256-128" */
	enum mc_alg_kind kind;
	const char *kernel;    /* crypto API name: "hmac(sha256)" */
	unsigned trunc_bits;   /* ICV length sent as explicit truncation; 0 for ciphers */
	const char *key_type;  /* keys.yaml "algorithm" that must be used: "sha256" */
	bool legacy;           /* allowed, with a warning */
};

/* NULL when unknown. */
const struct mc_alg *mc_alg_find(const char *name, enum mc_alg_kind kind);
/* The key length in bits a cipher's spelling fixes (AES_CBC_256: 256), or 0. */
unsigned mc_alg_name_bits(const char *name);
/* Reverse lookup from what the kernel reports (name and truncation); NULL when not ours. */
const struct mc_alg *mc_alg_from_kernel(const char *kernel, unsigned trunc_bits, enum mc_alg_kind kind);
/* "hmac-sha1-96, hmac-sha256-128, ..." for error messages. */
const char *mc_alg_names(enum mc_alg_kind kind);

/* `mcpsec key --alg` names → keys.yaml algorithm and length: aes128 → ("aes", 16). */
struct mc_keyalg {
	const char *cli, *type;
	size_t len;
	bool legacy;
};
const struct mc_keyalg *mc_keyalg_find(const char *cli);
/* A keys.yaml `algorithm` as written (any spelling of the one vocabulary) → its type ("aes"),
 * and the exact length an --alg name fixes (aes128: 16; 0 when the type allows each of its
 * lengths). NULL when unknown. */
const char *mc_key_type_parse(const char *written, size_t *exact_len);
/* The --alg entry for a key of keys.yaml type and length (aes, 32 → aes256); NULL when none. */
const struct mc_keyalg *mc_keyalg_of(const char *type, size_t len);
const char *mc_keyalg_names(void); /* "sha1, sha256, ..., tdes" */
const char *mc_keyalg_help(void);  /* "sha1 (20 bytes), ..." */

/* Key types of keys.yaml and their exact lengths in bytes (aes: 16 or 32), all derived from
 * the table of --alg names. */
const char *mc_key_type_names(void); /* "sha1, sha256, sha512, aes or tdes" */
bool mc_key_type_known(const char *type);
bool mc_key_len_ok(const char *type, size_t len);
/* "20", "16 or 32": for messages. */
const char *mc_key_lens_text(const char *type);

/*
 * Ciphers with 64-bit blocks (3DES): under one key, after about 2^32 blocks (32 GiB) block
 * collisions leak plaintext (Sweet32, CVE-2016-2183); the odds grow with the square of the data,
 * about q^2 / 2^65 for q blocks. Warned from 2^28 blocks (2 GiB, odds about 1 in 500), well
 * before the limit, so that there is time to roll the key over (mcpsec rekey).
 */
#define MC_SWEET32_WARN_BYTES (2ull << 30)
#define MC_SWEET32_LIMIT_BYTES (32ull << 30)

/* The block size of a cipher in bits (64 for 3DES, 128 for AES); 0 for none. */
unsigned mc_alg_block_bits(const struct mc_alg *a);
/* A warning for an SA that has carried bytes with cipher a, into buf; false when none is due. */
bool mc_sa_block_warning(const struct mc_alg *a, unsigned long long bytes, char *buf, size_t len);

/* The cipher the kernel needs for ESP integrity-only ("ecb(cipher_null)", zero-length key). */
#define MC_NULL_CIPHER "ecb(cipher_null)"

#endif
