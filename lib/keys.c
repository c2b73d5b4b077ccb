/* SPDX-License-Identifier: MIT */
/* Key values, weak 3DES keys, keys.yaml text edits (see keys.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "keys.h"
#include "util.h"

uint8_t *mc_key_value_parse(const char *input, bool hex, const struct mc_keyalg *alg, size_t *ret_len,
			    const char **err)
{
	uint8_t *bytes = NULL;
	size_t len;

	if (hex) {
		if (!mc_hex_parse(input, &bytes, &len)) {
			*err = "not a hex value (an even number of hex digits; 0x, spaces and colons allowed)";
			return NULL;
		}
	} else {
		len = strlen(input);
		bytes = (uint8_t *)mc_strndup(input, len);
	}
	if (len != alg->len) {
		*err = hex ? "wrong length for the algorithm (see 'mcpsec key --help' for the lengths)"
			   : "an ASCII key must have exactly the algorithm's length in characters";
		mc_wipe_free(bytes, len);
		return NULL;
	}
	*ret_len = len;
	return bytes;
}

/* The 4 weak and 12 semi-weak DES keys (FIPS 74), parity bits included. */
static const uint8_t des_weak[16][8] = {
	{ 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01 }, { 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe },
	{ 0xe0, 0xe0, 0xe0, 0xe0, 0xf1, 0xf1, 0xf1, 0xf1 }, { 0x1f, 0x1f, 0x1f, 0x1f, 0x0e, 0x0e, 0x0e, 0x0e },
	{ 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe }, { 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01 },
	{ 0x1f, 0xe0, 0x1f, 0xe0, 0x0e, 0xf1, 0x0e, 0xf1 }, { 0xe0, 0x1f, 0xe0, 0x1f, 0xf1, 0x0e, 0xf1, 0x0e },
	{ 0x01, 0xe0, 0x01, 0xe0, 0x01, 0xf1, 0x01, 0xf1 }, { 0xe0, 0x01, 0xe0, 0x01, 0xf1, 0x01, 0xf1, 0x01 },
	{ 0x1f, 0xfe, 0x1f, 0xfe, 0x0e, 0xfe, 0x0e, 0xfe }, { 0xfe, 0x1f, 0xfe, 0x1f, 0xfe, 0x0e, 0xfe, 0x0e },
	{ 0x01, 0x1f, 0x01, 0x1f, 0x01, 0x0e, 0x01, 0x0e }, { 0x1f, 0x01, 0x1f, 0x01, 0x0e, 0x01, 0x0e, 0x01 },
	{ 0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1, 0xfe }, { 0xfe, 0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1 },
};

static bool des_eq(const uint8_t *a, const uint8_t *b)
{
	for (int i = 0; i < 8; i++)
		if ((a[i] & 0xfe) != (b[i] & 0xfe))
			return false;
	return true;
}

bool mc_tdes_weak(const uint8_t key[24])
{
	for (int part = 0; part < 3; part++)
		for (size_t w = 0; w < MC_ARRAY_SIZE(des_weak); w++)
			if (des_eq(key + 8 * part, des_weak[w]))
				return true;
	return des_eq(key, key + 8) || des_eq(key + 8, key + 16);
}

/* ---- keys.yaml as text ---- */

static size_t indent_of(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && line[i] == ' ')
		i++;
	return i;
}

static bool blank_or_comment(const char *line, size_t n)
{
	size_t i = indent_of(line, n);
	return i == n || line[i] == '#' || line[i] == '\r';
}

int mc_keyfile_append(const char *text, const char *name, const char *type, const uint8_t *bytes, size_t len,
		      struct mc_buf *out)
{
	bool found = false;

	if (!*text)
		mc_buf_puts(out, "# mcpsec key file: mode 0600, never world-readable. Edit with 'mcpsec key'.\nkeys:\n");
	for (const char *s = text; *s;) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s + 1) : strlen(s);
		if (!strncmp(s, "keys:", 5)) {
			const char *r = s + 5;
			while (*r == ' ' || *r == '\t')
				r++;
			if (*r == '{') {
				const char *close = r + 1;
				while (*close == ' ')
					close++;
				if (*close != '}')
					return -EINVAL; /* a flow mapping with keys in it */
				mc_buf_puts(out, "keys:\n"); /* "keys: {}" becomes a block mapping */
				s += n;
				found = true;
				continue;
			}
			found = true;
		}
		mc_buf_printf(out, "%.*s", (int)n, s);
		s += n;
	}
	if (*text && !found)
		return -EINVAL;
	if (out->len && out->s[out->len - 1] != '\n')
		mc_buf_puts(out, "\n");
	mc_buf_printf(out, "  %s:\n    algorithm: %s\n    hex: \"0x", name, type);
	for (size_t i = 0; i < len; i++)
		mc_buf_printf(out, "%02x", bytes[i]);
	mc_buf_puts(out, "\"\n");
	return 0;
}

int mc_keyfile_remove(const char *text, int line, struct mc_buf *out)
{
	int no = 0;
	bool removing = false, done = false;
	size_t key_indent = 0;

	for (const char *s = text; *s;) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s + 1) : strlen(s);
		size_t content = n - (eol ? 1 : 0);
		no++;
		if (no == line) {
			removing = true;
			key_indent = indent_of(s, content);
		} else if (removing && !blank_or_comment(s, content) && indent_of(s, content) <= key_indent) {
			removing = false;
			done = true;
		} else if (removing && blank_or_comment(s, content) && indent_of(s, content) <= key_indent &&
			   s[indent_of(s, content)] == '#') {
			removing = false; /* a comment at the key's own level belongs to what follows */
			done = true;
		}
		if (!removing)
			mc_buf_printf(out, "%.*s", (int)n, s);
		s += n;
	}
	return done || removing || line <= no ? 0 : -ENOENT;
}

bool mc_hex_parse(const char *s, uint8_t **ret, size_t *ret_len)
{
	size_t n = 0, cap = strlen(s) / 2 + 1;
	uint8_t *out = mc_malloc(cap);
	int half = -1;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s; s++) {
		int v;
		if (*s == ' ' || *s == ':')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			goto bad;
		if (half < 0) {
			half = v;
		} else {
			out[n++] = (uint8_t)(half << 4 | v);
			half = -1;
		}
	}
	if (half >= 0 || n == 0)
		goto bad;
	*ret = out;
	*ret_len = n;
	return true;
bad:
	mc_wipe(out, cap);
	free(out);
	return false;
}

bool mc_key_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("_.-", *s)))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void mc_export_keys_free(struct mc_export_key *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mc_wipe_free(k[i].bytes, k[i].len);
	free(k);
}

int mc_export_parse(const uint8_t *text, size_t len, struct mc_export_key **ret)
{
	struct mc_export_key *e = NULL;
	size_t n = 0, cap = 0;
	char *copy = mc_malloc(len + 1), *save = NULL;
	int rc = 0;

	*ret = NULL;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (strlen(copy) != len)
		rc = -EINVAL; /* a NUL inside */
	for (char *line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		struct mc_export_key *x = MC_PUSH(&e, &n, &cap);
		char hex[200];
		memset(x, 0, sizeof(*x));
		bool ok = sscanf(line, "%79s %15s %199s", x->name, x->type, hex) == 3 && mc_key_name_ok(x->name) &&
			  mc_key_type_known(x->type) && mc_hex_parse(hex, &x->bytes, &x->len) &&
			  mc_key_len_ok(x->type, x->len) && !(!strcmp(x->type, "tdes") && mc_tdes_weak(x->bytes));
		mc_wipe(hex, sizeof(hex));
		if (!ok)
			rc = -EINVAL;
	}
	if (!rc) {
		/* The names sorted find a duplicate in n log n. */
		const char **s = mc_calloc(n ? n : 1, sizeof(*s));
		for (size_t i = 0; i < n; i++)
			s[i] = e[i].name;
		qsort(s, n, sizeof(*s), cmp_str);
		for (size_t i = 1; i < n && !rc; i++)
			if (!strcmp(s[i - 1], s[i]))
				rc = -EEXIST;
		free(s);
	}
	mc_wipe_free(copy, len + 1);
	if (rc) {
		mc_export_keys_free(e, n);
		return rc;
	}
	*ret = e;
	return (int)n;
}
