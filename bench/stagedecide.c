/* SPDX-License-Identifier: MIT */
/*
 * What mcpsecd spends deciding one new flow of a staged list (lib/stage.c): both plans, the
 * enforced and the staged one, over N distinct flows that reach the list's last policy (the
 * worst case: every policy before it is tried). usage: stagedecide SITE.yaml [FLOWS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/compile.h"
#include "../lib/diag.h"
#include "../lib/engine.h"
#include "../lib/plan.h"
#include "../lib/stage.h"
#include "../lib/util.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct mc_diags ds = { 0 };
	struct mc_plan plan;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: stagedecide SITE.yaml [FLOWS]\n");
		return 2;
	}
	long n = argc == 3 ? atol(argv[2]) : 20000;
	struct mc_site *s = mc_engine_load_site(argv[1], NULL, false, &ds);
	if (!s || mc_compile(s, NULL, &ds, &plan) < 0) {
		fprintf(stderr, "stagedecide: %s does not compile\n", argv[1]);
		return 1;
	}
	double t0 = now();
	unsigned long discard = 0;
	for (long i = 0; i < n; i++) {
		struct mc_sel f = { .family = 10, .plen_s = 128, .plen_d = 128, .proto = 6 };
		mc_addr_parse("fec0::1", &f.saddr);
		mc_addr_parse("fed0::1", &f.daddr); /* past every discarded host: the last policy decides */
		f.daddr.a[14] = (uint8_t)(i >> 8);
		f.daddr.a[15] = (uint8_t)i;
		f.sport = (uint16_t)(1024 + i % 60000);
		f.dport = 443;
		f.sport_mask = f.dport_mask = 0xffff;
		struct mc_decision e, st;
		mc_stage_decide_both(&plan, &plan, MC_DIR_OUT, &f, &e, &st);
		discard += e.action == MC_DISCARD;
	}
	double t = now() - t0;
	printf("%zu kernel policies: %.1f us a new flow (both plans), %.0f new flows a second; %lu discarded\n",
	       plan.npols, t / (double)n * 1e6, (double)n / t, discard);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
	return 0;
}
