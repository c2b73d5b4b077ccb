/* SPDX-License-Identifier: MIT */
/* Random ordered policy lists and a first-match oracle straight from the model, shared by the
 * evaluator and flow-space tests. Header-only: each test is one translation unit. */
#ifndef MCPSEC_TEST_RANDSITE_H
#define MCPSEC_TEST_RANDSITE_H

#include <stdio.h>
#include <string.h>

#include "../../lib/addr.h"
#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/eval.h"
#include "../../lib/model.h"
#include "../../lib/plan.h"
#include "../../lib/validate.h"

static unsigned seed = 7;
static unsigned rnd(unsigned n)
{
	seed = seed * 1103515245u + 12345u;
	return ((seed >> 8) & 0xffffff) % n;
}

static const char *remotes[] = { "fec0::2", "fec0::3", "fec0::/126", "fec0::2-fec0::5", "any" };

static bool in_set(const struct mc_addrset *a, const struct mc_addr *x)
{
	if (a->any)
		return true;
	mc_u128 v = mc_addr_to_u128(x);
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].family == x->family && a->r[i].lo <= v && v <= a->r[i].hi)
			return true;
	return false;
}

static bool in_ports(const struct mc_portset *p, unsigned v)
{
	if (p->any)
		return true;
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].lo <= v && v <= p->r[i].hi)
			return true;
	return false;
}

/* MCP semantics straight from the model: the first policy in file order that matches. */
static const char *oracle(const struct mc_site *s, const struct mc_query *q, unsigned lp, unsigned rp)
{
	for (size_t i = 0; i < s->npol; i++) {
		const struct mc_policy *p = &s->pol[i];
		if (p->dir == q->dir && (p->proto == 0 || p->proto == q->proto) && in_set(&p->local, &q->local) &&
		    in_set(&p->remote, &q->remote) && in_ports(&p->local_ports, lp) && in_ports(&p->remote_ports, rp))
			return p->name;
	}
	return q->dir == MC_DIR_IN ? "DEFAULT-DISCARD-IN6" : "DEFAULT-DISCARD-OUT6";
}

static void write_site(const char *path, int npol)
{
	FILE *f = fopen(path, "w");
	fprintf(f, "policies:\n");
	for (int i = 0; i < npol; i++) {
		fprintf(f, "  - name: P%d\n    direction: %s\n", i, rnd(2) ? "in" : "out");
		unsigned proto = rnd(3);
		fprintf(f, "    protocol: %s\n", proto == 0 ? "tcp" : proto == 1 ? "udp" : "any");
		fprintf(f, "    remote: %s\n", remotes[rnd(5)]);
		if (proto < 2 && rnd(2)) {
			unsigned a = 1 + rnd(60), b = a + rnd(30);
			fprintf(f, "    remote-ports: %u-%u\n", a, b);
		}
		if (proto < 2 && rnd(3) == 0) {
			unsigned a = 1 + rnd(60);
			fprintf(f, "    local-ports: [%u, %u]\n", a, a + 3 + rnd(10));
		}
		fprintf(f, "    action: %s\n", rnd(2) ? "bypass" : "discard");
	}
	fclose(f);
}

/* Writes a random site of npol policies to path, then loads, validates and compiles it. False
 * when it does not compile (some random lists repeat an SPI...); nothing is left to free then. */
static bool random_site(const char *path, int npol, struct mc_diags *ds, struct mc_site **s, struct mc_plan *plan)
{
	struct mc_conf_opts o = { 0 };

	write_site(path, npol);
	*s = NULL;
	memset(ds, 0, sizeof(*ds));
	if (mc_conf_load(path, &o, ds, s) < 0 || mc_site_validate(*s, ds) < 0 || mc_compile(*s, NULL, ds, plan) < 0) {
		mc_diags_free(ds);
		mc_site_free(*s);
		return false;
	}
	return true;
}

#endif
