/* SPDX-License-Identifier: MIT */
/*
 * An in-memory kernel for the engine's unit tests (lib/kernel.h): it holds policies and SAs as
 * the kernel identifies them (a policy by direction and selector, an SA by destination, SPI and
 * protocol), answers dumps, and applies operations with the kernel's errors (EEXIST, ENOENT),
 * SA operations first as a barrier, as lib/nlx.c mc_nl_exec does. It can refuse the Nth
 * operation it is sent, and stand in for a kernel without ESP/AH.
 */
#ifndef MCPSEC_FAKE_KERNEL_H
#define MCPSEC_FAKE_KERNEL_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../lib/kernel.h"
#include "../../lib/util.h"

struct fake_kernel {
	struct mc_kernel k;
	struct mc_kstate held;
	long ops_seen;	    /* operations sent so far */
	long refuse_at;	    /* the operation (1-based, counted over ops_seen) refused; 0: none */
	int refuse_err;	    /* its error (default -EINVAL) */
	bool no_sas;	    /* every SA add refused: a kernel without ESP/AH */
	bool in_block, out_block;
	struct mc_addr own6, own4;
	void (*on_exec)(void *ctx); /* called as each exec starts (what the state holds then) */
	void *on_exec_ctx;
};

static long fk_find_pol(const struct fake_kernel *f, enum mc_dir dir, const struct mc_sel *sel)
{
	for (size_t i = 0; i < f->held.npols; i++)
		if (f->held.pols[i].x.dir == dir && mc_sel_eq(&f->held.pols[i].x.sel, sel))
			return (long)i;
	return -1;
}

static long fk_find_sa(const struct fake_kernel *f, const struct mc_xsa *sa)
{
	for (size_t i = 0; i < f->held.nsas; i++) {
		const struct mc_xsa *x = &f->held.sas[i].x;
		if (x->family == sa->family && x->spi == sa->spi && x->proto == sa->proto && mc_addr_eq(&x->daddr, &sa->daddr))
			return (long)i;
	}
	return -1;
}

static int fk_apply(struct fake_kernel *f, const struct mc_op *op)
{
	long i;

	switch (op->kind) {
	case MC_OP_SA_ADD:
		if (f->no_sas)
			return -EPROTONOSUPPORT;
		if (fk_find_sa(f, &op->sa) >= 0)
			return -EEXIST;
		struct mc_ksa *s = MC_PUSH(&f->held.sas, &f->held.nsas, &f->held.capsas);
		memset(s, 0, sizeof(*s));
		s->x = op->sa;
		return 0;
	case MC_OP_SA_UPD:
		if ((i = fk_find_sa(f, &op->sa)) < 0)
			return -ESRCH;
		f->held.sas[i].x.lft = op->sa.lft;
		return 0;
	case MC_OP_SA_DEL:
		if ((i = fk_find_sa(f, &op->sa)) < 0)
			return -ESRCH;
		f->held.sas[i] = f->held.sas[--f->held.nsas];
		return 0;
	case MC_OP_POL_ADD:
		if (fk_find_pol(f, op->pol.dir, &op->pol.sel) >= 0)
			return -EEXIST;
		struct mc_kpolicy *p = MC_PUSH(&f->held.pols, &f->held.npols, &f->held.cappols);
		memset(p, 0, sizeof(*p));
		p->x = op->pol;
		p->x.rule = SIZE_MAX;
		return 0;
	case MC_OP_POL_UPD:
		if ((i = fk_find_pol(f, op->pol.dir, &op->pol.sel)) < 0) {
			p = MC_PUSH(&f->held.pols, &f->held.npols, &f->held.cappols);
			memset(p, 0, sizeof(*p));
			i = (long)f->held.npols - 1;
		}
		f->held.pols[i].x = op->pol;
		f->held.pols[i].x.rule = SIZE_MAX;
		return 0;
	case MC_OP_POL_DEL:
		if ((i = fk_find_pol(f, op->pol.dir, &op->pol.sel)) < 0)
			return -ENOENT;
		f->held.pols[i] = f->held.pols[--f->held.npols];
		return 0;
	}
	return -EINVAL;
}

static int fk_exec(void *impl, struct mc_op *ops, size_t n)
{
	struct fake_kernel *f = impl;
	int first = 0;

	if (f->on_exec)
		f->on_exec(f->on_exec_ctx);
	for (int phase = 0; phase < 2; phase++)
		for (size_t i = 0; i < n; i++) {
			if (mc_op_is_sa(ops[i].kind) != (phase == 0))
				continue;
			if (phase == 1 && first) {
				ops[i].err = -ECANCELED; /* the SA barrier */
				continue;
			}
			ops[i].err = ++f->ops_seen == f->refuse_at ? (f->refuse_err ? f->refuse_err : -EINVAL)
								 : fk_apply(f, &ops[i]);
			if (ops[i].err && !first)
				first = ops[i].err;
		}
	return first;
}

static int fk_dump(void *impl, struct mc_kstate *ret)
{
	struct fake_kernel *f = impl;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < f->held.npols; i++)
		*MC_PUSH(&ret->pols, &ret->npols, &ret->cappols) = f->held.pols[i];
	for (size_t i = 0; i < f->held.nsas; i++)
		*MC_PUSH(&ret->sas, &ret->nsas, &ret->capsas) = f->held.sas[i];
	return 0;
}

static void fk_set_stop(void *impl, bool (*stop)(void *), void *ctx)
{
	(void)impl;
	(void)stop;
	(void)ctx;
}

static int fk_route_src(void *impl, const struct mc_addr *dst, struct mc_addr *ret)
{
	struct fake_kernel *f = impl;
	*ret = dst->family == AF_INET ? f->own4 : f->own6;
	return 0;
}

static int fk_own_addrs(void *impl, int family, struct mc_addr **ret, size_t *nret)
{
	struct fake_kernel *f = impl;
	*ret = mc_memdup(family == AF_INET ? &f->own4 : &f->own6, sizeof(**ret));
	*nret = 1;
	return 0;
}

static int fk_get_default(void *impl, bool *in_block, bool *out_block)
{
	struct fake_kernel *f = impl;
	*in_block = f->in_block;
	*out_block = f->out_block;
	return 0;
}

static int fk_set_default(void *impl, bool in_block, bool out_block)
{
	struct fake_kernel *f = impl;
	f->in_block = in_block;
	f->out_block = out_block;
	return 0;
}

static const struct mc_kernel_ops fake_kernel_ops = { fk_dump, fk_exec, fk_set_stop, fk_route_src, fk_own_addrs,
						       fk_get_default, fk_set_default };

static void fake_kernel_init(struct fake_kernel *f)
{
	memset(f, 0, sizeof(*f));
	f->k = (struct mc_kernel){ &fake_kernel_ops, f };
	mc_addr_parse("fec0::2222:a00:bff:fe3a:100", &f->own6);
	mc_addr_parse("192.0.2.100", &f->own4);
}

static void fake_kernel_free(struct fake_kernel *f)
{
	mc_kstate_free(&f->held);
}

/* What the fake holds, as one comparable text: every policy (direction, priority, action,
 * selector) and SA (destination, SPI, protocol), sorted. */
static int fk_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *fake_kernel_text(const struct fake_kernel *f)
{
	size_t n = f->held.npols + f->held.nsas, k = 0;
	char **lines = mc_calloc(n + 1, sizeof(char *));
	struct mc_buf out = { 0 };

	for (size_t i = 0; i < f->held.npols; i++) {
		const struct mc_xpolicy *x = &f->held.pols[i].x;
		struct mc_buf b = { 0 };
		mc_buf_printf(&b, "pol %s %u %s ", mc_dir_str(x->dir), x->priority, mc_action_str(x->action));
		mc_sel_str(&x->sel, x->dir, &b);
		lines[k++] = b.s;
	}
	for (size_t i = 0; i < f->held.nsas; i++) {
		const struct mc_xsa *x = &f->held.sas[i].x;
		char a[64];
		lines[k++] = mc_asprintf("sa %s spi %u proto %u", mc_addr_str(&x->daddr, a, sizeof(a)), x->spi, x->proto);
	}
	qsort(lines, k, sizeof(*lines), fk_cmp_str);
	for (size_t i = 0; i < k; i++) {
		mc_buf_printf(&out, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	return out.s ? out.s : mc_strdup("");
}

#endif
