/* SPDX-License-Identifier: MIT */
/* A kernel table's counts at the previous drain (lib/prevs.c), against a fake LRU map: the
 * changes per drain, an entry evicted and made again, and a walk that misses entries. */
#include <stdint.h>

#include "../../lib/prevs.h"
#include "t.h"

/* The fake map: keys 0..N-1 (a uint32_t key), present or not. */
#define N 8
static bool in_map[N];

static bool present(void *ctx, const void *key)
{
	(void)ctx;
	uint32_t k;
	memcpy(&k, key, sizeof(k));
	return k < N && in_map[k];
}

/* One step: the change of key k with counts a (b = 10 a). */
static uint64_t step(struct mc_prevs *t, uint32_t k, uint64_t a)
{
	uint64_t b = 10 * a;
	mc_prevs_step(t, &k, &a, &b);
	return a;
}

int main(void)
{
	struct mc_prevs t;
	mc_prevs_init(&t, N, sizeof(uint32_t));
	T_EQ_INT(t.nslots, 4 * N, "four slots per kernel entry");

	/* drain 1: two new entries count whole */
	in_map[1] = in_map[2] = true;
	mc_prevs_begin(&t);
	T_EQ_INT(step(&t, 1, 5), 5, "a new entry counts whole");
	T_EQ_INT(step(&t, 2, 3), 3, "another");
	mc_prevs_end(&t, present, NULL);

	/* drain 2: the changes; b follows a */
	mc_prevs_begin(&t);
	uint32_t k = 1;
	uint64_t a = 7, b = 70;
	mc_prevs_step(&t, &k, &a, &b);
	T_OK(a == 2 && b == 20, "the change since the previous drain, both counts (%llu, %llu)", (unsigned long long)a,
	     (unsigned long long)b);
	/* the walk does not reach 2 (a walk under a flood starts again), but the map still holds it */
	mc_prevs_end(&t, present, NULL);

	/* drain 3: 2 reached, unchanged: nothing new, not its 3 packets a second time */
	mc_prevs_begin(&t);
	T_EQ_INT(step(&t, 2, 3), 0, "an entry a walk missed while the map held it is not counted again");
	T_EQ_INT(step(&t, 1, 7), 0, "an unchanged entry: nothing");
	mc_prevs_end(&t, present, NULL);

	/* drain 4: 1 evicted and made again with fewer packets: whole */
	mc_prevs_begin(&t);
	T_EQ_INT(step(&t, 1, 4), 4, "made again with fewer: counted whole");
	T_EQ_INT(step(&t, 2, 3), 0, "the other unchanged");
	mc_prevs_end(&t, present, NULL);

	/* drain 5: 2 gone from the map and not reached: forgotten, so that when the map makes it
	 * again (even with more packets than before) it counts whole */
	in_map[2] = false;
	mc_prevs_begin(&t);
	T_EQ_INT(step(&t, 1, 4), 0, "1 unchanged");
	mc_prevs_end(&t, present, NULL);
	in_map[2] = true;
	mc_prevs_begin(&t);
	T_EQ_INT(step(&t, 2, 9), 9, "an entry the map dropped is forgotten: made again, it counts whole");
	mc_prevs_end(&t, present, NULL);

	/* bounds: a full map missed by the walk, then a full map of new keys: every one has room */
	struct mc_prevs big;
	mc_prevs_init(&big, N, sizeof(uint32_t));
	uint64_t total = 0;
	for (uint32_t round = 0; round < 3; round++) {
		mc_prevs_begin(&big);
		for (uint32_t i = 0; i < N; i++) {
			uint32_t key = 100 * round + i;
			uint64_t x = 1, y = 1;
			mc_prevs_step(&big, &key, &x, &y);
			total += x;
		}
		mc_prevs_end(&big, present, NULL); /* the fake map holds none of these: all forgotten */
	}
	T_EQ_INT(total, 3 * N, "three rounds of new keys, each counted once");
	mc_prevs_free(&big);

	mc_prevs_free(&t);
	T_OK(t.v == NULL && t.nslots == 0, "freed");
	return t_done();
}
