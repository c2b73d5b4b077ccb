/* SPDX-License-Identifier: MIT */
/*
 * The kernel as mcpsec's rules, pure and built once: its policies grouped into named rules
 * (direction, priority, name, kind, fragments, last use), each PROTECT rule with its SAs by
 * template and reqid, and every SA with the rule that owns it. status (text and JSON),
 * metrics, `test --kernel`, the lockout guard and mcpsecd all read the kernel through it, so
 * they name every object the same way. Built-in names come from the compiler (names.h).
 */
#ifndef MCPSEC_KVIEW_H
#define MCPSEC_KVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kobj.h"
#include "plan.h"

struct mc_names;

#define MC_KVIEW_NONE ((size_t)-1)

/* One named rule as the kernel holds it: its kernel policies share (direction, priority, name). */
struct mc_kview_rule {
	const char *name;        /* the committed name, a built-in's, or UNKNOWN-PRIORITY-N */
	char *unknown;           /* owned: the UNKNOWN-PRIORITY-N text when name is one */
	enum mc_rule_kind kind;
	enum mc_dir dir;
	uint32_t priority;
	enum mc_action action;
	size_t *pols;            /* indexes into k->pols: IPv6 first, then by ports and addresses */
	size_t npols, cappols;
	uint64_t last_use;       /* the latest of its policies' */
	/* PROTECT: its template (the first policy's) and its SAs, those the template accepts
	 * (reqid, protocol, and the SPI when it names one), the one it sends with first */
	uint8_t tmpl_proto;
	uint32_t tmpl_spi, tmpl_reqid;
	/* A phase-in (enforce accept or protect): inbound, its template is optional; outbound, it is
	 * the committed PROTECT rule's policy that allows without a template (phase accept), and its
	 * SAs are found by the committed reqid. */
	bool clear_passes;
	const struct mc_ksa *sa; /* the SA it sends with (out), or its first (in); NULL: missing */
	const struct mc_ksa *sas[4];
	size_t nsas;
};

/* Who an SA of the kernel belongs to. */
struct mc_kview_sa {
	size_t rule;      /* the rule whose template takes it, or MC_KVIEW_NONE */
	const char *name; /* that rule's name, else the committed owner of its reqid; NULL: none */
	enum mc_dir dir;  /* the owner's direction (when name) */
	const char *role; /* "sending", "installed, not sending", "accepted"; NULL without a rule */
};

struct mc_kview {
	const struct mc_kstate *k;     /* borrowed */
	struct mc_kview_rule *rules;   /* mcpsec's, outbound first, then by priority */
	size_t nrules, caprules;
	struct mc_kview_sa *sas;       /* one per k->sas[i] (foreign ones: rule NONE, name NULL) */
	size_t nforeign_pols, nforeign_sas;
};

/* Builds the view of k with the committed names nm (may be NULL: built-ins and
 * UNKNOWN-PRIORITY-N only). k must outlive it. */
void mc_kview_build(const struct mc_kstate *k, const struct mc_names *nm, struct mc_kview *ret);
void mc_kview_free(struct mc_kview *v);

/* The plan the kernel holds: the rules and their policies, with the SAs the rules own (no key
 * bytes), so that it can be evaluated (test --kernel, mcpsecd's drop records) and compared
 * (the lockout guard). Foreign policies take no part. */
void mc_kview_plan(const struct mc_kview *v, enum mc_default def, bool enabled, struct mc_plan *plan);

/* "user", "builtin", "default". */
const char *mc_rule_kind_str(enum mc_rule_kind kind);

#endif
