/* SPDX-License-Identifier: MIT */
/* Kernel objects as plain values: what a dump returns and what an operation sends. Types only,
 * so that the pure stages (reconcile, monitor, engine's callers) need not see the netlink module. */
#ifndef MCPSEC_KOBJ_H
#define MCPSEC_KOBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

/* A policy as the kernel holds it. */
struct mc_kpolicy {
	struct mc_xpolicy x; /* x.rule is SIZE_MAX */
	uint32_t index;
	int ntmpl;
	uint8_t tmpl_mode;
	uint64_t add_time, use_time; /* seconds since the epoch; use_time 0 = never */
};

/* An SA as the kernel holds it (keys included: needed to diff and to roll back). */
struct mc_ksa {
	struct mc_xsa x; /* x.integrity / x.confidentiality NULL when not one of ours */
	char auth_name[64], enc_name[64];
	unsigned auth_trunc;
	uint8_t mode;
	uint32_t replay_window;
	uint64_t bytes, packets, add_time, use_time;
	uint64_t replay_fail, integrity_fail;
};

struct mc_kstate {
	struct mc_kpolicy *pols;
	size_t npols, cappols;
	struct mc_ksa *sas;
	size_t nsas, capsas;
};

/* SA_UPD changes an SA's lifetimes in place (UPDSA): its counters run on. */
enum mc_op_kind { MC_OP_SA_ADD, MC_OP_SA_DEL, MC_OP_SA_UPD, MC_OP_POL_ADD, MC_OP_POL_UPD, MC_OP_POL_DEL };

static inline bool mc_op_is_sa(enum mc_op_kind k)
{
	return k == MC_OP_SA_ADD || k == MC_OP_SA_DEL || k == MC_OP_SA_UPD;
}

/* One kernel operation. Objects are copies so that an op list outlives plan and dump. */
struct mc_op {
	enum mc_op_kind kind;
	struct mc_xpolicy pol;
	struct mc_xpolicy old_pol; /* POL_UPD: what it replaces (for rollback) */
	struct mc_xsa sa;
	struct mc_xsa old_sa; /* SA_UPD: what it replaces (for rollback) */
	const char *name; /* rule name for messages (borrowed) */
	int err;          /* after mc_nl_exec: 0 or -errno */
	char errmsg[128]; /* the kernel's extended ack text, when it gave one */
};
/* Frees a dump (key bytes wiped). */
void mc_kstate_free(struct mc_kstate *k);

#endif
