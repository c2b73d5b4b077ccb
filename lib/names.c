/* SPDX-License-Identifier: MIT */
/* The committed rule names (see names.h). */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "names.h"
#include "util.h"

static int cmp_prio(const void *a, const void *b)
{
	const struct mc_state_name *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return (int)x->dir - (int)y->dir;
}

static int cmp_reqid(const void *a, const void *b)
{
	const struct mc_state_name *x = a, *y = b;

	return x->reqid < y->reqid ? -1 : x->reqid > y->reqid;
}

static int cmp_name(const void *a, const void *b)
{
	const struct mc_state_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (int)x->dir - (int)y->dir;
}

void mc_names_add(struct mc_names *nm, uint32_t priority, enum mc_dir dir, uint32_t reqid, const char *name)
{
	struct mc_state_name *n = MC_PUSH(&nm->v, &nm->n, &nm->cap);

	*n = (struct mc_state_name){ priority, reqid, dir, mc_strdup(name) };
	nm->sorted = false;
}

void mc_names_index(struct mc_names *nm)
{
	free(nm->by_prio);
	free(nm->by_reqid);
	nm->by_prio = mc_calloc(nm->n + 1, sizeof(*nm->by_prio));
	nm->by_reqid = mc_calloc(nm->n + 1, sizeof(*nm->by_reqid));
	nm->nreqid = 0;
	if (nm->n)
		memcpy(nm->by_prio, nm->v, nm->n * sizeof(*nm->v));
	qsort(nm->by_prio, nm->n, sizeof(*nm->by_prio), cmp_prio);
	for (size_t i = 0; i < nm->n; i++)
		if (mc_reqid_owned(nm->v[i].reqid))
			nm->by_reqid[nm->nreqid++] = nm->v[i];
	/* Stable for equal reqids is not needed: a reqid belongs to one policy and direction. */
	qsort(nm->by_reqid, nm->nreqid, sizeof(*nm->by_reqid), cmp_reqid);
}

void mc_names_free(struct mc_names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i].name);
	free(nm->v);
	free(nm->by_prio);
	free(nm->by_reqid);
	memset(nm, 0, sizeof(*nm));
}

const char *mc_names_rule(const struct mc_names *nm, uint32_t priority, enum mc_dir dir, int family)
{
	const char *reserved = mc_reserved_rule_name(priority, dir, family);

	if (reserved)
		return reserved;
	if (!nm || !nm->n || !nm->by_prio)
		return NULL;
	struct mc_state_name key = { .priority = priority, .dir = dir };
	const struct mc_state_name *hit = bsearch(&key, nm->by_prio, nm->n, sizeof(*nm->by_prio), cmp_prio);
	return hit ? hit->name : NULL;
}

const char *mc_names_kernel(const struct mc_names *nm, uint32_t priority, enum mc_dir dir, int family, char *buf,
			    size_t len)
{
	const char *name = mc_names_rule(nm, priority, dir, family);

	return name ? name : mc_unknown_rule_name(priority, buf, len);
}

const struct mc_state_name *mc_names_reqid_owner(const struct mc_names *nm, uint32_t reqid)
{
	struct mc_state_name key = { .reqid = reqid };

	if (!nm || !nm->nreqid || !mc_reqid_owned(reqid))
		return NULL;
	return bsearch(&key, nm->by_reqid, nm->nreqid, sizeof(*nm->by_reqid), cmp_reqid);
}

static const struct mc_state_name *name_find(struct mc_names *nm, const char *name, enum mc_dir dir)
{
	if (!name || !nm || !nm->n)
		return NULL;
	/* Sorted once on first use: apply asks once per policy, 10 000 times. */
	if (!nm->sorted) {
		qsort(nm->v, nm->n, sizeof(*nm->v), cmp_name);
		nm->sorted = true;
	}
	struct mc_state_name key = { .name = (char *)name, .dir = dir };
	return bsearch(&key, nm->v, nm->n, sizeof(*nm->v), cmp_name);
}

uint32_t mc_names_prev_priority(void *nm, const char *name, enum mc_dir dir)
{
	const struct mc_state_name *hit = name_find(nm, name, dir);
	return hit ? hit->priority : 0;
}

uint32_t mc_names_prev_reqid(void *nm, const char *name, enum mc_dir dir)
{
	const struct mc_state_name *hit = name_find(nm, name, dir);
	return hit ? hit->reqid : 0;
}
