/* SPDX-License-Identifier: MIT */
/* Randomness, fingerprints and passphrase encryption for key files. The only OpenSSL user. */
#ifndef MCPSEC_CRYPTO_H
#define MCPSEC_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

struct mc_buf;

/* len bytes from OpenSSL's CSPRNG. Returns 0, or -EIO when it could not deliver. */
int mc_random(uint8_t *buf, size_t len);

/* SHA-256 of data as 64 lowercase hex digits (the state directory's integrity sums). */
void mc_sha256_hex(const void *data, size_t len, char out[65]);

/* A short, non-reversible fingerprint for telling keys apart: 8 hex digits of
 * SHA-256("mcpsec-key-fingerprint" || key). */
void mc_key_fingerprint(const uint8_t *key, size_t len, char out[9]);

/*
 * Export files. Format (text, so it can be mailed or pasted):
 *
 *   -----BEGIN MCPSEC KEYS-----
 *   Version: 1
 *   KDF: scrypt N=32768 r=8 p=1
 *   base64( salt[16] | nonce[12] | AES-256-GCM ciphertext | tag[16] )
 *   -----END MCPSEC KEYS-----
 *
 * The key is scrypt(passphrase, salt); the version and KDF lines are authenticated as
 * associated data, so a changed header fails like a changed byte.
 */
int mc_seal(const char *pass, size_t passlen, const uint8_t *pt, size_t ptlen, struct mc_buf *out);
/* Returns 0 (plaintext in *pt, caller wipes and frees), -EBADMSG when the passphrase is wrong
 * or the file was changed, -EINVAL when it is not an export file, -EIO on a library failure. */
/* The armored text → the binary blob (salt, nonce, ciphertext, tag); -EINVAL when it is not
 * an export file. No key derivation: the part of mc_unseal that reads untrusted text. */
int mc_unseal_armor(const char *text, uint8_t **blob, size_t *blen);
int mc_unseal(const char *pass, size_t passlen, const char *text, uint8_t **pt, size_t *ptlen);

#endif
