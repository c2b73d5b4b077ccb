/* SPDX-License-Identifier: MIT */
/* Test-only fault injection (see fault.h): a decorator of the real kernel, an observer of the
 * state commit's steps. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/kernel.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "fault.h"

static char spec[64];

void mc_fault_set(const char *s)
{
	snprintf(spec, sizeof(spec), "%s", s ? s : "");
}

/* Taken once, before main, and removed: the faults are this process's, never its children's. */
__attribute__((constructor)) static void fault_from_env(void)
{
	mc_fault_set(getenv("MCPSEC_FAULT"));
	unsetenv("MCPSEC_FAULT");
}

static const struct { const char *name; int sig; } sigs[] = {
	{ "kill", SIGKILL }, { "term", SIGTERM }, { "int", SIGINT }, { "hup", SIGHUP },
};

/* The signal a word names, or 0. */
static int sig_of(const char *word)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(sigs); i++)
		if (!strcmp(word, sigs[i].name))
			return sigs[i].sig;
	return 0;
}

/* ---- the kernel: fail or signal at the Nth operation ---- */

enum fault { FAULT_NONE, FAULT_FAIL, FAULT_SIGNAL };

/* fail:N, kill:N, term:N, int:N or hup:N: the kernel's fault, its N and signal. */
static enum fault kernel_fault(unsigned long *n, int *sig)
{
	char what[8];

	if (sscanf(spec, "%7[a-z]:%lu", what, n) != 2)
		return FAULT_NONE;
	if (!strcmp(what, "fail"))
		return FAULT_FAIL;
	return (*sig = sig_of(what)) ? FAULT_SIGNAL : FAULT_NONE;
}

struct faulty {
	struct mc_kernel real;
	bool used;
};

/* One per kernel a process opens (mcpsec and mcpsecd open one): no allocation to leak. */
static struct faulty slots[4];

static int f_dump(void *impl, struct mc_kstate *ret)
{
	struct faulty *f = impl;
	return mc_k_dump(&f->real, ret);
}

/*
 * Every operation alone, counted across the process's life: before the Nth, the fault. As the
 * real exec does, SAs go first as a barrier: when one failed, no policy follows (-ECANCELED).
 */
static int f_exec(void *impl, struct mc_op *ops, size_t n)
{
	static unsigned long count;
	struct faulty *f = impl;
	unsigned long at;
	int sig = 0, first_err = 0;
	enum fault kind = kernel_fault(&at, &sig);

	if (kind == FAULT_NONE)
		return mc_k_exec(&f->real, ops, n);
	for (size_t i = 0; i < n; i++) {
		if (i && first_err && mc_op_is_sa(ops[i - 1].kind) && !mc_op_is_sa(ops[i].kind)) {
			for (size_t k = i; k < n; k++)
				ops[k].err = -ECANCELED; /* an SA failed: no policy may need it */
			break;
		}
		ops[i].err = 0;
		if (++count == at && kind == FAULT_SIGNAL)
			raise(sig); /* SIGKILL ends us here; the others wait until the change is done */
		if (count == at && kind == FAULT_FAIL) {
			ops[i].err = -EPERM;
			snprintf(ops[i].errmsg, sizeof(ops[i].errmsg), "injected fault (MCPSEC_FAULT)");
		} else {
			int r = mc_k_exec(&f->real, &ops[i], 1);
			if (r < 0 && !ops[i].err)
				return r; /* the socket failed */
		}
		if (ops[i].err && !first_err)
			first_err = ops[i].err;
	}
	return first_err;
}

static void f_set_stop(void *impl, bool (*stop)(void *ctx), void *ctx)
{
	struct faulty *f = impl;
	mc_k_set_stop(&f->real, stop, ctx);
}

static int f_route_src(void *impl, const struct mc_addr *dst, struct mc_addr *ret)
{
	struct faulty *f = impl;
	return mc_k_route_src(&f->real, dst, ret);
}

static int f_own_addrs(void *impl, int family, struct mc_addr **ret, size_t *nret)
{
	struct faulty *f = impl;
	return mc_k_own_addrs(&f->real, family, ret, nret);
}

static int f_get_default(void *impl, bool *in_block, bool *out_block)
{
	struct faulty *f = impl;
	return mc_k_get_default(&f->real, in_block, out_block);
}

static int f_set_default(void *impl, bool in_block, bool out_block)
{
	struct faulty *f = impl;
	return mc_k_set_default(&f->real, in_block, out_block);
}

static const struct mc_kernel_ops faulty_ops = { f_dump, f_exec, f_set_stop, f_route_src, f_own_addrs,
						  f_get_default, f_set_default };

void mc_kernel_decorate(struct mc_kernel *k)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(slots); i++)
		if (!slots[i].used) {
			slots[i] = (struct faulty){ *k, true };
			*k = (struct mc_kernel){ &faulty_ops, &slots[i] };
			return;
		}
}

/* ---- the state directory: fail or signal at a commit's step ---- */

int mc_state_step(const char *step)
{
	static int commit_steps;
	char what[8];
	int k;

	if (!strcmp(step, "prepare") || !strcmp(step, "switch")) {
		char fail[16];
		snprintf(fail, sizeof(fail), "%s-fail", step);
		return !strcmp(spec, fail) ? -ENOSPC : 0;
	}
	if (sscanf(spec, "commit-%7[a-z]:%d", what, &k) == 2 && ++commit_steps == k && sig_of(what))
		raise(sig_of(what));
	return 0;
}
