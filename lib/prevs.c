/* SPDX-License-Identifier: MIT */
#include "prevs.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t key_hash(const void *k, size_t len, size_t nslots)
{
	uint64_t h = 1469598103934665603ull;
	const unsigned char *p = k;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (size_t)h & (nslots - 1);
}

static unsigned char *key_at(const struct mc_prevs *t, size_t i)
{
	return t->keys + i * t->keylen;
}

/* k's slot, or NULL when every slot holds another entry (never, within the bounds above). */
static size_t slot(const struct mc_prevs *t, const void *k)
{
	size_t h = key_hash(k, t->keylen, t->nslots);
	for (size_t n = 0; n < t->nslots; n++, h = (h + 1) & (t->nslots - 1))
		if (!t->v[h].used || !memcmp(key_at(t, h), k, t->keylen))
			return h;
	return t->nslots;
}

void mc_prevs_init(struct mc_prevs *t, size_t kernel_entries, size_t keylen)
{
	t->nslots = 4 * kernel_entries;
	t->keylen = keylen;
	t->v = mc_calloc(t->nslots, sizeof(*t->v));
	t->keys = mc_calloc(t->nslots, keylen);
}

void mc_prevs_free(struct mc_prevs *t)
{
	free(t->v);
	free(t->keys);
	memset(t, 0, sizeof(*t));
}

void mc_prevs_begin(struct mc_prevs *t)
{
	for (size_t i = 0; i < t->nslots; i++)
		t->v[i].live = false;
}

void mc_prevs_step(struct mc_prevs *t, const void *key, uint64_t *a, uint64_t *b)
{
	size_t i = slot(t, key);
	if (i == t->nslots)
		return; /* no room to remember it: its counts are taken whole */
	struct mc_prev *s = &t->v[i];
	bool again = s->used && *a >= s->a && *b >= s->b; /* else: evicted and made again */
	uint64_t a0 = again ? s->a : 0, b0 = again ? s->b : 0;

	if (!s->used) {
		s->used = true;
		memcpy(key_at(t, i), key, t->keylen);
	}
	s->a = *a;
	s->b = *b;
	s->live = true;
	*a -= a0;
	*b -= b0;
}

/* Rebuilt only when something is forgotten: the common second costs no copy. */
void mc_prevs_end(struct mc_prevs *t, bool (*present)(void *ctx, const void *key), void *ctx)
{
	bool stale = false;
	for (size_t i = 0; i < t->nslots; i++)
		if (t->v[i].used && !t->v[i].live) {
			if (present(ctx, key_at(t, i)))
				t->v[i].live = true; /* not reached, still there */
			else
				stale = true;
		}
	if (!stale)
		return;
	struct mc_prevs old = *t;
	t->v = mc_calloc(t->nslots, sizeof(*t->v));
	t->keys = mc_calloc(t->nslots, t->keylen);
	for (size_t i = 0; i < old.nslots; i++)
		if (old.v[i].live) {
			size_t j = slot(t, key_at(&old, i));
			t->v[j] = old.v[i];
			memcpy(key_at(t, j), key_at(&old, i), t->keylen);
		}
	free(old.v);
	free(old.keys);
}
