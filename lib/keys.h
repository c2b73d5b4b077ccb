/* SPDX-License-Identifier: MIT */
/* Named manual keys: values typed by people, weak keys, and editing keys.yaml as text (so that
 * comments and order survive). Pure. */
#ifndef MCPSEC_KEYS_H
#define MCPSEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_buf;
struct mc_keyalg;

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

/* Whether s is a key name: 1-64 of A-Z a-z 0-9 _ . - */
bool mc_key_name_ok(const char *s);

/* One key of an export's plaintext ("NAME TYPE HEX" lines). */
struct mc_export_key {
	char name[80], type[16];
	uint8_t *bytes; /* caller wipes and frees (mc_export_keys_free) */
	size_t len;
};
/*
 * Parses an export's plaintext (not NUL-terminated: len bytes). Returns the number of keys, or
 * -EINVAL for a malformed line or a weak key, -EEXIST for a name given twice (an import must
 * never write a key file with a duplicate key). Messages are the caller's: never the text.
 */
int mc_export_parse(const uint8_t *text, size_t len, struct mc_export_key **ret);
void mc_export_keys_free(struct mc_export_key *k, size_t n);

/* Parses a hex key ("0x" prefix, spaces and colons allowed) into bytes; false when malformed. */
bool mc_hex_parse(const char *s, uint8_t **ret, size_t *ret_len);

#endif
