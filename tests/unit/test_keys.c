/* SPDX-License-Identifier: MIT */
/* Keys: generation, typed values, weak 3DES keys, sealed exports, key file text edits. */
#include <errno.h>

#include "../../lib/crypto.h"
#include "../../lib/algo.h"
#include "../../lib/keys.h"
#include "../../lib/util.h"
#include "t.h"

static void test_generation(void)
{
	static const char *algs[] = { "sha1", "sha256", "sha512", "aes128", "aes256", "tdes" };
	static const size_t lens[] = { 20, 32, 64, 16, 32, 24 };
	uint8_t a[64], b[64];
	int distinct = 0, sized = 0;

	for (size_t i = 0; i < MC_ARRAY_SIZE(algs); i++) {
		const struct mc_keyalg *k = mc_keyalg_find(algs[i]);
		sized += k && k->len == lens[i];
		if (k && mc_random(a, k->len) == 0 && mc_random(b, k->len) == 0)
			distinct += memcmp(a, b, k->len) != 0;
	}
	T_EQ_INT(sized, 6, "lengths: sha1 20, sha256 32, sha512 64, aes128 16, aes256 32, tdes 24");
	T_EQ_INT(distinct, 6, "two generated keys of each algorithm differ");
	T_OK(!mc_keyalg_find("des") && !mc_keyalg_find("md5") && !mc_keyalg_find("aes512"), "unknown --alg names are refused");
	/* One vocabulary: MCP's spellings and the keys.yaml types name the same keys. */
	T_OK(mc_keyalg_find("SHA-1") == mc_keyalg_find("sha1") && mc_keyalg_find("TDES") == mc_keyalg_find("tdes") &&
	     mc_keyalg_find("AES") == mc_keyalg_find("aes256") && mc_keyalg_find("AES-128") == mc_keyalg_find("aes128"),
	     "SHA-1, TDES, AES (256 bits) and AES-128 are --alg names");
	size_t exact = 99;
	T_OK(mc_key_type_parse("aes128", &exact) && !strcmp(mc_key_type_parse("aes128", &exact), "aes") && exact == 16,
	     "keys.yaml algorithm aes128 is an aes key of exactly 16 bytes");
	T_OK(mc_key_type_parse("AES", &exact) && exact == 0 && !strcmp(mc_key_type_parse("SHA-256", &exact), "sha256") &&
	     !strcmp(mc_key_type_parse("Sha-1", &exact), "sha1") && !mc_key_type_parse("md5", &exact),
	     "keys.yaml algorithm AES allows each length; SHA-256 and Sha-1 are types; md5 is unknown");
	/* A crude check that the generator is not stuck: 4096 bytes use most byte values. */
	uint8_t big[4096];
	int seen[256] = { 0 }, values = 0;
	T_OK(mc_random(big, sizeof(big)) == 0, "4096 random bytes");
	for (size_t i = 0; i < sizeof(big); i++)
		values += !seen[big[i]]++;
	T_OK(values > 240, "%d of 256 byte values occur", values);
}

static void test_values(void)
{
	const struct mc_keyalg *aes = mc_keyalg_find("aes128"), *sha1 = mc_keyalg_find("sha1");
	const char *err = NULL;
	size_t len = 0;
	uint8_t *v;

	v = mc_key_value_parse("0x00112233445566778899aabbccddeeff", true, aes, &len, &err);
	T_OK(v && len == 16 && v[15] == 0xff, "hex with 0x");
	free(v);
	v = mc_key_value_parse("00:11:22:33 44:55:66:77 88:99:aa:bb cc:dd:ee:ff", true, aes, &len, &err);
	T_OK(v && len == 16 && v[1] == 0x11, "hex with colons and spaces");
	free(v);
	v = mc_key_value_parse("0011", true, aes, &len, &err);
	T_OK(!v && strstr(err, "wrong length"), "hex of the wrong length");
	v = mc_key_value_parse("00112233445566778899aabbccddeefg", true, aes, &len, &err);
	T_OK(!v && strstr(err, "not a hex value"), "a non-hex digit");
	v = mc_key_value_parse("0x123", true, aes, &len, &err);
	T_OK(!v && strstr(err, "not a hex value"), "an odd number of digits");
	T_OK(!strstr(err, "123"), "errors never quote the value");
	v = mc_key_value_parse("twenty-byte-ascii-ok", false, sha1, &len, &err);
	T_OK(v && len == 20, "ASCII of exactly the length");
	free(v);
	v = mc_key_value_parse("nineteen-bytes-ascii", false, aes, &len, &err);
	T_OK(!v && strstr(err, "exactly"), "ASCII of another length is refused");
}

static void test_tdes(void)
{
	uint8_t k[24];
	static const uint8_t weak[8] = { 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01 };
	static const uint8_t semi[8] = { 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe };

	for (int i = 0; i < 24; i++)
		k[i] = (uint8_t)(0x10 + 7 * i);
	T_OK(!mc_tdes_weak(k), "an ordinary 3DES key passes");
	memcpy(k + 8, weak, 8);
	T_OK(mc_tdes_weak(k), "a weak DES key as the second third");
	for (int i = 8; i < 16; i++)
		k[i] = (uint8_t)(0x60 + i);
	memcpy(k + 16, semi, 8);
	k[16] ^= 1; /* parity bits do not matter */
	T_OK(mc_tdes_weak(k), "a semi-weak third, parity bit flipped");
	for (int i = 0; i < 24; i++)
		k[i] = (uint8_t)(0x10 + 7 * (i % 8));
	k[16] = 0x99;
	T_OK(mc_tdes_weak(k), "K1 = K2 (single DES in disguise)");
}

static void test_seal(void)
{
	const char *pt = "K1 sha256 00112233\nK2 aes 4455\n";
	struct mc_buf out = { 0 };
	uint8_t *back = NULL;
	size_t n = 0;

	T_OK(mc_seal("correct horse", 13, (const uint8_t *)pt, strlen(pt), &out) == 0, "sealed");
	T_OK(strstr(out.s, "-----BEGIN MCPSEC KEYS-----\nVersion: 1\nKDF: scrypt N=32768 r=8 p=1\n") == out.s,
	     "armored with version and KDF");
	/* Strings with spaces: base64 has none, so a chance match of random body bytes is impossible. */
	T_OK(!strstr(out.s, "K1 sha256") && !strstr(out.s, "sha256 00112233") && !strstr(out.s, "aes 4455"),
	     "no name or value in clear");
	T_OK(mc_unseal("correct horse", 13, out.s, &back, &n) == 0 && n == strlen(pt) && !memcmp(back, pt, n),
	     "round trip");
	free(back);
	T_EQ_INT(mc_unseal("correct horsf", 13, out.s, &back, &n), -EBADMSG, "a wrong passphrase is refused");
	struct mc_buf again = { 0 };
	mc_seal("correct horse", 13, (const uint8_t *)pt, strlen(pt), &again);
	T_OK(strcmp(again.s, out.s), "two exports of the same keys differ (fresh salt and nonce)");
	mc_buf_free(&again);
	/* Flip one base64 character of the body: every one must be caught. */
	char *body = strstr(out.s, "p=1\n") + 4;
	size_t bodylen = strcspn(body, "-"), caught = 0, tried = 0;
	for (size_t i = 0; i < bodylen; i += 7) {
		if (body[i] == '\n' || body[i] == '=')
			continue;
		char saved = body[i];
		body[i] = saved == 'A' ? 'B' : 'A';
		int r = mc_unseal("correct horse", 13, out.s, &back, &n);
		caught += r == -EBADMSG || r == -EINVAL;
		if (r == 0)
			free(back);
		tried++;
		body[i] = saved;
	}
	T_OK(tried > 10 && caught == tried, "%zu of %zu single-character changes refused", caught, tried);
	char *hdr = strstr(out.s, "N=32768");
	hdr[2] = '1';
	T_OK(mc_unseal("correct horse", 13, out.s, &back, &n) < 0, "a changed header is refused");
	hdr[2] = '3';
	T_EQ_INT(mc_unseal("x", 1, "keys: {}\n", &back, &n), -EINVAL, "not an export file");
	mc_buf_free(&out);
}

static void test_keyfile(void)
{
	const char *text = "# site keys\nkeys:\n  # the AH key\n  BNA:\n    algorithm: sha1   # 20 bytes\n"
			   "    hex: \"0x00\"\n\n  FTP: { algorithm: aes, ascii: \"sixteen-chars-ok\" }\n"
			   "  # last\n  LAST:\n    algorithm: sha1\n    hex: \"0x01\"\n";
	struct mc_buf out = { 0 };
	uint8_t v[2] = { 0xab, 0xcd };

	T_OK(mc_keyfile_remove(text, 4, &out) == 0, "remove BNA");
	T_EQ_STR(out.s, "# site keys\nkeys:\n  # the AH key\n  FTP: { algorithm: aes, ascii: \"sixteen-chars-ok\" }\n"
			"  # last\n  LAST:\n    algorithm: sha1\n    hex: \"0x01\"\n",
		 "its lines go; comments and the other keys stay, in order");
	mc_buf_free(&out);
	mc_keyfile_remove(text, 8, &out);
	T_OK(!strstr(out.s, "FTP") && strstr(out.s, "BNA") && strstr(out.s, "# last"), "a one-line flow key goes alone");
	mc_buf_free(&out);
	mc_keyfile_remove(text, 10, &out);
	T_OK(!strstr(out.s, "LAST") && strstr(out.s, "# last\n"), "the last key; the comment above it stays");
	mc_buf_free(&out);
	T_OK(mc_keyfile_append(text, "NEW", "sha1", v, 2, &out) == 0 &&
	     !strcmp(out.s + strlen(text), "  NEW:\n    algorithm: sha1\n    hex: \"0xabcd\"\n") &&
	     !strncmp(out.s, text, strlen(text)), "append keeps the text and adds a block-style key");
	mc_buf_free(&out);
	T_OK(mc_keyfile_append("", "NEW", "sha1", v, 2, &out) == 0 && strstr(out.s, "keys:\n  NEW:\n"),
	     "a new file gets a header and keys:");
	mc_buf_free(&out);
	T_OK(mc_keyfile_append("keys: {}\n", "NEW", "sha1", v, 2, &out) == 0 && !strncmp(out.s, "keys:\n  NEW:", 12),
	     "keys: {} becomes a block mapping");
	mc_buf_free(&out);
	T_EQ_INT(mc_keyfile_append("keys: { A: { algorithm: sha1, hex: \"00\" } }\n", "NEW", "sha1", v, 2, &out),
		 -EINVAL, "a flow-style key mapping is not rewritten");
	mc_buf_free(&out);
}

/* An export's plaintext: every line checked, a name given twice refused (an import must never
 * write a key file with a duplicate key), nothing quoted. */
static void test_export_parse(void)
{
	struct mc_export_key *k = NULL;
	const char *good = "A1 sha1 00112233445566778899aabbccddeeff00112233\nA2 aes 000102030405060708090a0b0c0d0e0f\n";
	int n = mc_export_parse((const uint8_t *)good, strlen(good), &k);
	T_EQ_INT(n, 2, "two keys parsed");
	T_OK(n == 2 && !strcmp(k[1].name, "A2") && k[1].len == 16 && k[1].bytes[15] == 0x0f, "names, lengths, bytes");
	if (n > 0)
		mc_export_keys_free(k, (size_t)n);
	const char *dup = "K1 sha1 00112233445566778899aabbccddeeff00112233\nK1 sha1 00112233445566778899aabbccddeeff00112233\n";
	T_EQ_INT(mc_export_parse((const uint8_t *)dup, strlen(dup), &k), -EEXIST, "a name given twice is refused");
	const char *weak = "T tdes 0101010101010101fefefefefefefefe0123456789abcdef\n";
	T_EQ_INT(mc_export_parse((const uint8_t *)weak, strlen(weak), &k), -EINVAL, "a weak 3DES key is refused");
	const char nul[] = "A1 sha1 0011223344556677\0" "8899aabbccddeeff00112233\n";
	T_EQ_INT(mc_export_parse((const uint8_t *)nul, sizeof(nul) - 1, &k), -EINVAL, "a NUL inside is refused");
}

int main(void)
{
	test_export_parse();
	test_generation();
	test_values();
	test_tdes();
	test_seal();
	test_keyfile();
	return t_done();
}
