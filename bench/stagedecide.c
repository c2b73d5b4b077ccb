/* SPDX-License-Identifier: MIT */
/*
 * What mcpsecd spends deciding one new flow of a staged list (lib/stage.c): both plans, the
 * enforced and the staged one, over N distinct flows that reach the list's last policy (the
 * worst case: every policy before it is tried). Then what keeping a full table for a restart
 * costs (mc_stage_save and mc_stage_load of 65,536 flows). usage: stagedecide SITE.yaml [FLOWS]
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
	/* A full table, kept and read back. */
	struct mc_stage st, back;
	struct mc_seen_flows sf = { 0 };
	mc_stage_init(&st, 0, 1000);
	for (uint32_t i = 0; i < MC_STAGE_FLOWS; i++) {
		struct mc_seen_flow *f = MC_PUSH(&sf.f, &sf.n, &sf.cap);
		*f = (struct mc_seen_flow){ .dir = MC_DIR_OUT, .packets = 1 + i % 1000, .bytes = 100 + i, .first = 1000,
					    .last = 2000 };
		f->flow = (struct mc_sel){ .family = 10, .plen_s = 128, .plen_d = 128, .proto = 17, .sport = (uint16_t)(1024 + i),
					   .dport = 53, .sport_mask = 0xffff, .dport_mask = 0xffff };
		mc_addr_parse("fec0::2222:a00:bff:fe3a:100", &f->flow.saddr);
		mc_addr_parse("fec0::2222:a00:bff:fe3a:127", &f->flow.daddr);
		f->flow.daddr.a[13] = (uint8_t)(i >> 16);
	}
	mc_stage_add(&st, &sf, &plan, &plan, 2000, NULL);
	struct mc_buf b = { 0 };
	char why[200];
	t0 = now();
	mc_stage_save(&st, "staged-1", "gen-1", 16u << 20, &b);
	double t_save = now() - t0;
	mc_stage_init(&back, 0, 3000);
	t0 = now();
	int r = mc_stage_load(&back, b.s, b.len, "staged-1", "gen-1", why, sizeof(why));
	double t_load = now() - t0;
	printf("a full table (%zu flows): %.1f MB kept, made in %.0f ms, read back in %.0f ms (%s)\n", st.n,
	       (double)b.len / 1e6, t_save * 1e3, t_load * 1e3, r == 0 ? "whole" : why);
	mc_buf_free(&b);
	free(sf.f);
	mc_stage_free(&st);
	mc_stage_free(&back);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
	return 0;
}
