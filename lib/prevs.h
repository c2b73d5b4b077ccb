/* SPDX-License-Identifier: MIT */
/*
 * A kernel table's counts at the previous drain, pure: mcpsecd's BPF maps (drops and the
 * staging observer) hold one entry per flow whose counts only grow, and each drain takes the
 * change. The map is an LRU: an entry evicted and made again starts from zero, and a walk of
 * it under a flood is bounded and may start again, so it can miss entries still there.
 *
 * Open addressing, four times the kernel's entries: a drain carries at most twice them (the
 * ones it reached, and the ones still in the kernel it did not), and adds at most once them.
 */
#ifndef MCPSEC_PREVS_H
#define MCPSEC_PREVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_prev {
	uint64_t a, b;
	bool used, live;
};

struct mc_prevs {
	struct mc_prev *v;
	unsigned char *keys; /* nslots keys of keylen bytes, slot by slot */
	size_t nslots, keylen;
};

/* kernel_entries: the map's size (a power of two); keylen: its key's size. */
void mc_prevs_init(struct mc_prevs *t, size_t kernel_entries, size_t keylen);
void mc_prevs_free(struct mc_prevs *t);

/* A drain begins: no entry reached yet. */
void mc_prevs_begin(struct mc_prevs *t);
/* The entry key reached with counts *a and *b: they become the changes since the previous
 * drain (whole for an entry new since, or whose counts went back: evicted and made again). */
void mc_prevs_step(struct mc_prevs *t, const void *key, uint64_t *a, uint64_t *b);
/* The drain ends: an entry not reached is kept while present(ctx, key) says the kernel still
 * holds it (forgotten, its next visit would count it whole again), else forgotten. */
void mc_prevs_end(struct mc_prevs *t, bool (*present)(void *ctx, const void *key), void *ctx);

#endif
