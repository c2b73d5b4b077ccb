/* SPDX-License-Identifier: MIT */
/*
 * The committed rule names, pure: which rule owns a kernel policy (by priority and direction)
 * and an SA (by reqid), and what a policy was called when last committed. The state directory
 * (state.c) reads and writes them; everything that names a kernel object asks here.
 */
#ifndef MCPSEC_NAMES_H
#define MCPSEC_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct mc_state_name {
	uint32_t priority;
	uint32_t reqid; /* PROTECT policies; 0 for others and for states written before reqids */
	enum mc_dir dir;
	char *name;
};

struct mc_names {
	struct mc_state_name *v;
	size_t n, cap;
	bool sorted; /* v sorted by (name, dir) for lookups */
	struct mc_state_name *by_prio;  /* shallow copy of v sorted by (priority, dir) */
	struct mc_state_name *by_reqid; /* shallow copy of the PROTECT names, sorted by reqid */
	size_t nreqid;
};

/* Adds a name (copied); mc_names_index makes it findable. */
void mc_names_add(struct mc_names *nm, uint32_t priority, enum mc_dir dir, uint32_t reqid, const char *name);
/* Indexes the names by priority and by reqid: thousands of kernel objects are named at once. */
void mc_names_index(struct mc_names *nm);
void mc_names_free(struct mc_names *nm);

/* The rule that owns a kernel policy of this priority, direction and family: a built-in's
 * name from the compiler, else the committed name; NULL when none. nm may be NULL. */
const char *mc_names_rule(const struct mc_names *nm, uint32_t priority, enum mc_dir dir, int family);
/* The one namer of mcpsec's kernel policies: mc_names_rule, or UNKNOWN-PRIORITY-N in buf. */
const char *mc_names_kernel(const struct mc_names *nm, uint32_t priority, enum mc_dir dir, int family, char *buf,
			    size_t len);
/* The PROTECT rule whose SAs carry reqid, or NULL. */
const struct mc_state_name *mc_names_reqid_owner(const struct mc_names *nm, uint32_t reqid);
/* The priority and reqid a user policy had when last committed, 0 if none (nm: struct
 * mc_names *, as compile's host callbacks take it). */
uint32_t mc_names_prev_priority(void *nm, const char *name, enum mc_dir dir);
uint32_t mc_names_prev_reqid(void *nm, const char *name, enum mc_dir dir);

#endif
