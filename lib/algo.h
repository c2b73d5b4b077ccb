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
const char *mc_keyalg_names(void); /* "sha1, sha256, ..., tdes" */
const char *mc_keyalg_help(void);  /* "sha1 (20 bytes), ..." */

/* Key types of keys.yaml and their exact lengths in bytes (aes: 16 or 32), all derived from
 * the table of --alg names. */
const char *mc_key_type_names(void); /* "sha1, sha256, sha512, aes or tdes" */
bool mc_key_type_known(const char *type);
bool mc_key_len_ok(const char *type, size_t len);
/* "20", "16 or 32": for messages. */
const char *mc_key_lens_text(const char *type);

/* The cipher the kernel needs for ESP integrity-only ("ecb(cipher_null)", zero-length key). */
#define MC_NULL_CIPHER "ecb(cipher_null)"

#endif
