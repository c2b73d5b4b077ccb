/* SPDX-License-Identifier: MIT */
/* OpenSSL: RAND_bytes, SHA-256, scrypt, AES-256-GCM (see crypto.h for the export format). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "crypto.h"
#include "util.h"

#define SALT_LEN 16
#define NONCE_LEN 12
#define TAG_LEN 16
#define SCRYPT_N 32768u
#define SCRYPT_R 8u
#define SCRYPT_P 1u
#define BEGIN "-----BEGIN MCPSEC KEYS-----\n"
#define END "-----END MCPSEC KEYS-----\n"
#define HEADER "Version: 1\nKDF: scrypt N=32768 r=8 p=1\n"

int mc_random(uint8_t *buf, size_t len)
{
	return len > (size_t)INT32_MAX || RAND_bytes(buf, (int)len) != 1 ? -EIO : 0;
}

void mc_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	unsigned mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, data, len))
		EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void mc_key_fingerprint(const uint8_t *key, size_t len, char out[9])
{
	static const char label[] = "mcpsec-key-fingerprint";
	uint8_t md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned mdlen = 0;

	memset(md, 0, sizeof(md));
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, label, sizeof(label) - 1) &&
	    EVP_DigestUpdate(c, key, len))
		EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	snprintf(out, 9, "%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
}

static int derive(const char *pass, size_t passlen, const uint8_t *salt, uint8_t key[32])
{
	return EVP_PBE_scrypt(pass, passlen, salt, SALT_LEN, SCRYPT_N, SCRYPT_R, SCRYPT_P, 64u << 20, key, 32) == 1
		       ? 0
		       : -EIO;
}

int mc_seal(const char *pass, size_t passlen, const uint8_t *pt, size_t ptlen, struct mc_buf *out)
{
	size_t blen = SALT_LEN + NONCE_LEN + ptlen + TAG_LEN;
	uint8_t *blob = mc_malloc(blen), key[32];
	EVP_CIPHER_CTX *c = NULL;
	int n, rc = -EIO;

	if (ptlen > (1u << 20) || mc_random(blob, SALT_LEN + NONCE_LEN) < 0 || derive(pass, passlen, blob, key) < 0)
		goto out;
	if (!(c = EVP_CIPHER_CTX_new()) || !EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) ||
	    !EVP_EncryptInit_ex(c, NULL, NULL, key, blob + SALT_LEN) ||
	    !EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)HEADER, (int)strlen(HEADER)) ||
	    !EVP_EncryptUpdate(c, blob + SALT_LEN + NONCE_LEN, &n, pt, (int)ptlen) ||
	    !EVP_EncryptFinal_ex(c, blob + SALT_LEN + NONCE_LEN + n, &n) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, blob + SALT_LEN + NONCE_LEN + ptlen))
		goto out;
	char *b64 = mc_malloc(4 * (blen / 3 + 1) + 1);
	int len = EVP_EncodeBlock((unsigned char *)b64, blob, (int)blen);
	mc_buf_puts(out, BEGIN HEADER);
	for (int i = 0; i < len; i += 64)
		mc_buf_printf(out, "%.*s\n", len - i < 64 ? len - i : 64, b64 + i);
	mc_buf_puts(out, END);
	free(b64);
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	mc_wipe(key, sizeof(key));
	mc_wipe_free(blob, blen);
	return rc;
}

/* The export text as it was written: line ends as "\n" (a mailer's "\r\n" undone) and a last
 * newline (Ansible's lookup('file') and many editors strip it). Caller wipes and frees. */
static int unseal_armor(const char *text, uint8_t **ret, size_t *ret_len);

static char *armor_text(const char *text, size_t *len)
{
	size_t n = strlen(text), w = 0;
	char *t = mc_malloc(n + 2);

	for (size_t i = 0; i < n; i++)
		if (text[i] != '\r')
			t[w++] = text[i];
	if (!w || t[w - 1] != '\n')
		t[w++] = '\n';
	t[w] = '\0';
	*len = w + 1;
	return t;
}

int mc_unseal_armor(const char *text, uint8_t **ret, size_t *ret_len)
{
	size_t tlen;
	char *norm = armor_text(text, &tlen);
	int r = unseal_armor(norm, ret, ret_len);

	mc_wipe_free(norm, tlen);
	return r;
}

static int unseal_armor(const char *text, uint8_t **ret, size_t *ret_len)
{
	const char *b = strstr(text, BEGIN HEADER), *e = b ? strstr(b, END) : NULL;
	uint8_t *blob = NULL;
	char *b64;
	size_t w = 0;

	*ret = NULL;
	*ret_len = 0;
	if (!b || !e)
		return -EINVAL;
	b += strlen(BEGIN HEADER);
	if (e < b)
		return -EINVAL;
	b64 = mc_malloc((size_t)(e - b) + 1);
	for (const char *s = b; s < e; s++)
		if (*s != '\n' && *s != '\r')
			b64[w++] = *s;
	b64[w] = '\0';
	int dl = -1;
	if (w % 4 == 0 && w >= 4 && w <= INT_MAX) {
		blob = mc_malloc(w / 4 * 3 + 1);
		dl = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)w);
	}
	/* EVP_DecodeBlock counts padding as bytes: take them off. */
	size_t blen = dl < 0 ? 0 : (size_t)dl - (b64[w - 1] == '=') - (b64[w - 2] == '=');
	mc_wipe_free(b64, w);
	if (dl < 0 || blen < SALT_LEN + NONCE_LEN + TAG_LEN) {
		mc_wipe_free(blob, w / 4 * 3 + 1);
		return -EINVAL;
	}
	*ret = blob;
	*ret_len = blen;
	return 0;
}

int mc_unseal(const char *pass, size_t passlen, const char *text, uint8_t **pt, size_t *ptlen)
{
	uint8_t key[32], *blob = NULL, *plain = NULL;
	EVP_CIPHER_CTX *c = NULL;
	size_t blen, clen = 0;
	int n, rc;

	*pt = NULL;
	*ptlen = 0;
	if ((rc = mc_unseal_armor(text, &blob, &blen)) < 0)
		return rc;
	clen = blen - SALT_LEN - NONCE_LEN - TAG_LEN;
	rc = -EIO;
	if (derive(pass, passlen, blob, key) < 0)
		goto out;
	plain = mc_malloc(clen + 1);
	if (!(c = EVP_CIPHER_CTX_new()) || !EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) ||
	    !EVP_DecryptInit_ex(c, NULL, NULL, key, blob + SALT_LEN) ||
	    !EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)HEADER, (int)strlen(HEADER)) ||
	    !EVP_DecryptUpdate(c, plain, &n, blob + SALT_LEN + NONCE_LEN, (int)clen) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, blob + SALT_LEN + NONCE_LEN + clen))
		goto out;
	if (EVP_DecryptFinal_ex(c, plain + n, &n) != 1) {
		rc = -EBADMSG; /* wrong passphrase, or a changed byte: GCM cannot tell which */
		goto out;
	}
	plain[clen] = '\0';
	*pt = plain;
	*ptlen = clen;
	plain = NULL;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	mc_wipe(key, sizeof(key));
	mc_wipe_free(plain, clen + 1);
	mc_wipe_free(blob, blen);
	return rc;
}
