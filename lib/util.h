/* SPDX-License-Identifier: MIT */
/* Small helpers every module uses: growable byte strings and arrays. No I/O. */
#ifndef MCPSEC_UTIL_H
#define MCPSEC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A growable NUL-terminated string. A zeroed struct is a valid empty buffer. */
struct mc_buf {
	char *s;
	size_t len, cap;
};

void mc_buf_printf(struct mc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_buf_vprintf(struct mc_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void mc_buf_puts(struct mc_buf *b, const char *s);
/* JSON string literal, quotes included. */
void mc_buf_json_str(struct mc_buf *b, const char *s);
void mc_buf_free(struct mc_buf *b);
/* Wipes then frees: for buffers that held key material. */
void mc_buf_wipe(struct mc_buf *b);
const char *mc_buf_str(const struct mc_buf *b);

/*
 * Allocation: mcpsec is a short-lived CLI over bounded input; on allocation failure the
 * library calls the process-wide handler (cmd/ sets one that reports and exits 2). This keeps
 * every pure stage free of ENOMEM plumbing without the library printing or exiting itself.
 */
void mc_set_oom_handler(void (*fn)(void));
void *mc_malloc(size_t n);
void *mc_calloc(size_t n, size_t size);
void *mc_realloc(void *p, size_t n);
char *mc_strdup(const char *s);
char *mc_strndup(const char *s, size_t n);
void *mc_memdup(const void *p, size_t n);
char *mc_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grow an array of *n elements (capacity *cap) so that one more fits; returns the new slot. */
#define MC_PUSH(arr, n, cap)                                                          \
	((*(n) == *(cap) ? (void)((*(cap) = *(cap) ? *(cap) * 2 : 8),                  \
				  (*(arr) = mc_realloc(*(arr), *(cap) * sizeof(**(arr)))))  \
			 : (void)0),                                                     \
	 &(*(arr))[(*(n))++])

void mc_wipe(void *p, size_t n);
/* Wipes n bytes at p, then frees p (NULL is fine): for buffers that held secrets. */
void mc_wipe_free(void *p, size_t n);

/* Strict unsigned parse: decimal or 0x-hex, the whole string, <= max. */
bool mc_parse_u64(const char *s, uint64_t max, uint64_t *ret);
bool mc_parse_u32(const char *s, uint32_t max, uint32_t *ret);

enum mc_unit { MC_UNIT_SECONDS, MC_UNIT_BYTES, MC_UNIT_COUNT };
/* A quantity: seconds ("90", "90s", "15m", "24h", "30d"), bytes ("4096", "512K", "32GiB": K, M,
 * G, T with or without "iB" are powers of 1024) or a plain count. The whole string, > 0, no
 * overflow. */
bool mc_parse_quantity(const char *s, enum mc_unit unit, uint64_t *ret);

/* "N" or "N-M" (spaces around '-' allowed), each <= max, N <= M. */
bool mc_parse_range(const char *s, unsigned max, unsigned *lo, unsigned *hi);
/* Letters and digits only, lower case, into out: "HMAC_SHA1_96", "hmac-sha1-96" and "IPv6Only"
 * compare as MCP's documentation means them, whichever way it spells them. */
void mc_squeeze(const char *s, char *out, size_t cap);

/* A set of strings (open addressing, FNV-1a): membership in O(1) where names are counted in
 * thousands. The set keeps its own copies. */
struct mc_strset {
	char **slot;
	size_t n, cap;
};
/* Adds s; false when it was already there. */
bool mc_strset_add(struct mc_strset *set, const char *s);
bool mc_strset_has(const struct mc_strset *set, const char *s);
void mc_strset_free(struct mc_strset *set);

#endif
