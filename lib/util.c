/* SPDX-License-Identifier: MIT */
/* Growable strings, checked allocation, strict number parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void (*oom_handler)(void);

void mc_set_oom_handler(void (*fn)(void))
{
	oom_handler = fn;
}

static void *checked(void *p)
{
	if (!p) {
		if (oom_handler)
			oom_handler();
		abort(); /* no handler: a library caller that did not plan for OOM */
	}
	return p;
}

void *mc_malloc(size_t n) { return checked(malloc(n ? n : 1)); }
void *mc_calloc(size_t n, size_t size) { return checked(calloc(n ? n : 1, size ? size : 1)); }
void *mc_realloc(void *p, size_t n) { return checked(realloc(p, n ? n : 1)); }
char *mc_strdup(const char *s) { return checked(strdup(s)); }
char *mc_strndup(const char *s, size_t n) { return checked(strndup(s, n)); }

char *mc_asprintf(const char *fmt, ...)
{
	struct mc_buf b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	mc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return b.s ? b.s : mc_strdup("");
}

void mc_buf_vprintf(struct mc_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		b->s = mc_realloc(b->s, cap);
		b->cap = cap;
	}
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void mc_buf_printf(struct mc_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mc_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void mc_buf_puts(struct mc_buf *b, const char *s)
{
	mc_buf_printf(b, "%s", s);
}

void mc_buf_json_str(struct mc_buf *b, const char *s)
{
	mc_buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			mc_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			mc_buf_printf(b, "\\u%04x", *p);
		else
			mc_buf_printf(b, "%c", *p);
	}
	mc_buf_puts(b, "\"");
}

const char *mc_buf_str(const struct mc_buf *b)
{
	return b->s ? b->s : "";
}

void mc_buf_free(struct mc_buf *b)
{
	free(b->s);
	*b = (struct mc_buf){ 0 };
}

void mc_wipe(void *p, size_t n)
{
	if (p)
		explicit_bzero(p, n);
}

void mc_buf_wipe(struct mc_buf *b)
{
	mc_wipe(b->s, b->cap);
	mc_buf_free(b);
}

bool mc_parse_quantity(const char *s, enum mc_unit unit, uint64_t *ret)
{
	static const struct {
		enum mc_unit unit;
		const char *suffix;
		uint64_t mult;
	} suffixes[] = {
		{ MC_UNIT_SECONDS, "", 1 },	     { MC_UNIT_SECONDS, "s", 1 },	  { MC_UNIT_SECONDS, "m", 60 },
		{ MC_UNIT_SECONDS, "h", 3600 },	     { MC_UNIT_SECONDS, "d", 86400 },	  { MC_UNIT_BYTES, "", 1 },
		{ MC_UNIT_BYTES, "B", 1 },	     { MC_UNIT_BYTES, "K", 1ull << 10 },  { MC_UNIT_BYTES, "KiB", 1ull << 10 },
		{ MC_UNIT_BYTES, "M", 1ull << 20 },  { MC_UNIT_BYTES, "MiB", 1ull << 20 }, { MC_UNIT_BYTES, "G", 1ull << 30 },
		{ MC_UNIT_BYTES, "GiB", 1ull << 30 }, { MC_UNIT_BYTES, "T", 1ull << 40 }, { MC_UNIT_BYTES, "TiB", 1ull << 40 },
		{ MC_UNIT_COUNT, "", 1 },
	};
	const char *p = s;
	unsigned long long v = 0;

	if (!s || *s < '0' || *s > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned)(*p++ - '0');
	}
	for (size_t i = 0; i < MC_ARRAY_SIZE(suffixes); i++) {
		if (suffixes[i].unit != unit || strcmp(p, suffixes[i].suffix))
			continue;
		if (v == 0 || v > UINT64_MAX / suffixes[i].mult)
			return false;
		*ret = v * suffixes[i].mult;
		return true;
	}
	return false;
}

bool mc_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;
	int base = 10;

	if (!s || !*s)
		return false;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return false;
	}
	for (const char *p = s; *p; p++)
		if (!(base == 16 ? ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
				    (*p >= 'A' && *p <= 'F'))
				 : (*p >= '0' && *p <= '9')))
			return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*ret = (uint64_t)v;
	return true;
}

bool mc_parse_u32(const char *s, uint32_t max, uint32_t *ret)
{
	uint64_t v;

	if (!mc_parse_u64(s, max, &v))
		return false;
	*ret = (uint32_t)v;
	return true;
}

bool mc_parse_range(const char *s, unsigned max, unsigned *lo, unsigned *hi)
{
	char tmp[32];
	char *dash;
	uint32_t a, b;

	if (strlen(s) >= sizeof(tmp))
		return false;
	strcpy(tmp, s);
	if ((dash = strchr(tmp, '-'))) {
		*dash = '\0';
		char *x = tmp, *y = dash + 1;
		while (*y == ' ')
			y++;
		size_t l = strlen(x);
		while (l && x[l - 1] == ' ')
			x[--l] = '\0';
		if (!mc_parse_u32(x, max, &a) || !mc_parse_u32(y, max, &b) || a > b)
			return false;
	} else {
		if (!mc_parse_u32(tmp, max, &a))
			return false;
		b = a;
	}
	*lo = a;
	*hi = b;
	return true;
}


void mc_wipe_free(void *p, size_t n)
{
	if (!p)
		return;
	mc_wipe(p, n);
	free(p);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

bool mc_strset_has(const struct mc_strset *set, const char *s)
{
	if (!set->cap)
		return false;
	for (size_t i = fnv1a(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
		if (!set->slot[i])
			return false;
		if (!strcmp(set->slot[i], s))
			return true;
	}
}

bool mc_strset_add(struct mc_strset *set, const char *s)
{
	if (mc_strset_has(set, s))
		return false;
	if (2 * (set->n + 1) > set->cap) {
		struct mc_strset bigger = { mc_calloc(set->cap ? 2 * set->cap : 64, sizeof(char *)), 0,
					    set->cap ? 2 * set->cap : 64 };
		for (size_t i = 0; i < set->cap; i++) {
			if (!set->slot[i])
				continue;
			size_t j = fnv1a(set->slot[i]) & (bigger.cap - 1);
			while (bigger.slot[j])
				j = (j + 1) & (bigger.cap - 1);
			bigger.slot[j] = set->slot[i];
			bigger.n++;
		}
		free(set->slot);
		*set = bigger;
	}
	size_t i = fnv1a(s) & (set->cap - 1);
	while (set->slot[i])
		i = (i + 1) & (set->cap - 1);
	set->slot[i] = mc_strdup(s);
	set->n++;
	return true;
}

void mc_strset_free(struct mc_strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
	memset(set, 0, sizeof(*set));
}

void mc_squeeze(const char *s, char *out, size_t cap)
{
	size_t w = 0;

	for (; *s && w + 1 < cap; s++)
		if (isalnum((unsigned char)*s))
			out[w++] = (char)tolower((unsigned char)*s);
	out[w] = '\0';
}

void *mc_memdup(const void *p, size_t n)
{
	void *r = mc_malloc(n ? n : 1);
	memcpy(r, p, n);
	return r;
}
