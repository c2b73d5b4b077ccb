/* SPDX-License-Identifier: MIT */
/* Addresses, prefixes, ranges and their minimal covers (pure arithmetic). */
#ifndef MCPSEC_ADDR_H
#define MCPSEC_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

__extension__ typedef unsigned __int128 mc_u128;

/* An IPv4 or IPv6 address; IPv4 uses a[0..3] and the rest stays zero (kernel identity). */
struct mc_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t a[16];
};

struct mc_prefix {
	struct mc_addr addr; /* host bits are always zero */
	uint8_t plen;
};

/* An inclusive range of addresses of one family. */
struct mc_range {
	uint8_t family;
	mc_u128 lo, hi;
};

/* A value/prefix block of a bit field: the values v with (v >> (width - plen)) equal. */
struct mc_block {
	mc_u128 value;
	unsigned plen;
};

unsigned mc_family_bits(int family);
mc_u128 mc_addr_to_u128(const struct mc_addr *a);
void mc_addr_from_u128(int family, mc_u128 v, struct mc_addr *ret);
bool mc_addr_parse(const char *s, struct mc_addr *ret);
/* Canonical text (inet_ntop); buf of at least 46 bytes. */
const char *mc_addr_str(const struct mc_addr *a, char *buf, size_t len);
void mc_prefix_str(const struct mc_prefix *p, char *buf, size_t len);
bool mc_addr_eq(const struct mc_addr *a, const struct mc_addr *b);
bool mc_addr_is_any(const struct mc_addr *a);
/* ::ffff:a.b.c.d → a.b.c.d: a dual-stack socket sends to an IPv4-mapped address as IPv4, and the
 * kernel decides the flow by IPv4 policies. False (a untouched) for any other address. */
bool mc_addr_unmap(struct mc_addr *a);

/*
 * Parses "ADDR", "ADDR/LEN" or "ADDR-ADDR" into a range. A prefix with host bits set is an
 * error (the kernel would treat 10.0.0.1/24 and 10.0.0.0/24 as two policies). On failure returns
 * false and a static message in *ret_err.
 */
bool mc_range_parse(const char *s, struct mc_range *ret, const char **ret_err);
/* "fec0::1", "10.0.0.0/24" or "10.0.1.1-10.0.1.9"; buf of at least 96 bytes. */
void mc_range_str(const struct mc_range *r, char *buf, size_t len);
/* The whole address space of a family. */
struct mc_range mc_range_all(int family);
bool mc_range_is_host(const struct mc_range *r);

/*
 * Minimal cover of [lo, hi] in a width-bit field by aligned power-of-two blocks, in ascending
 * order. Calls emit(ctx, block) for each; returns the number of blocks.
 */
size_t mc_blocks(mc_u128 lo, mc_u128 hi, unsigned width,
		 void (*emit)(void *ctx, const struct mc_block *b), void *ctx);

/* Sorts ranges by (family, lo) and merges overlapping or adjacent ones; returns the new count. */
size_t mc_ranges_merge(struct mc_range *r, size_t n);

/* Appends the minimal prefix cover of the merged ranges of one family to *ret (grown). */
void mc_ranges_to_prefixes(const struct mc_range *r, size_t n, int family, struct mc_prefix **ret,
			   size_t *nret, size_t *cap);

/* A 16-bit field (port, ICMP type or code) as a value/mask pair, as the kernel selector has it. */
struct mc_portmask {
	uint16_t value, mask;
};

/* Minimal value/mask cover of [lo, hi] (at most 30 pairs for 16 bits); returns the count. */
size_t mc_port_blocks(unsigned lo, unsigned hi, struct mc_portmask *ret, size_t max);

#endif
