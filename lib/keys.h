/* SPDX-License-Identifier: MIT */
/* Named manual keys: values typed by people, weak keys, and editing keys.yaml as text (so that
 * comments and order survive). Pure. */
#ifndef MCPSEC_KEYS_H
#define MCPSEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_buf;

/* `mcpsec key --alg` names → keys.yaml algorithm and length: aes128 → ("aes", 16). */
struct mc_keyalg {
	const char *cli, *type;
	size_t len;
	bool legacy;
};
const struct mc_keyalg *mc_keyalg_find(const char *cli);
const char *mc_keyalg_names(void); /* "sha1, sha256, ..." */

/*
 * A value as typed: hex ("0x" prefix, spaces and colons allowed) or ASCII (exactly the
 * algorithm's length). Returns the bytes (caller wipes and frees) or NULL with *err set to a
 * message that never quotes the value.
 */
uint8_t *mc_key_value_parse(const char *input, bool hex, const struct mc_keyalg *alg, size_t *ret_len,
			    const char **err);

/* A 3DES key whose thirds are weak or semi-weak DES keys, or repeat (K1 = K2 or K2 = K3, which
 * is single DES). Parity bits are ignored. */
bool mc_tdes_weak(const uint8_t key[24]);

/* keys.yaml text with one key appended (block style, hex value); creates the document when
 * text is empty. Returns 0, or -EINVAL when the file's `keys:` is not a block mapping we can
 * append to (flow style). */
int mc_keyfile_append(const char *text, const char *name, const char *type, const uint8_t *bytes, size_t len,
		      struct mc_buf *out);
/* keys.yaml text without the key whose name is at line (1-based), with the lines that belong to it
 * (more indented, or blank/comment lines between). Returns 0 or -ENOENT. */
int mc_keyfile_remove(const char *text, int line, struct mc_buf *out);

/* Parses a hex key ("0x" prefix, spaces and colons allowed) into bytes; false when malformed. */
bool mc_hex_parse(const char *s, uint8_t **ret, size_t *ret_len);

#endif
