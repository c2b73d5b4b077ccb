/* SPDX-License-Identifier: MIT */
/*
 * The kernel as the engine sees it: a small table of operations. lib/nlx.c is the real one
 * (mc_nl_kernel); tests/unit/fake_kernel.c is an in-memory one that can refuse or fail the Nth
 * operation, so that the transaction is tested without root.
 */
#ifndef MCPSEC_KERNEL_H
#define MCPSEC_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "kobj.h"

struct mc_kernel_ops {
	/* Every policy and SA (not only mcpsec's). 0 or -errno. */
	int (*dump)(void *impl, struct mc_kstate *ret);
	/* Sends ops, each op->err set: SA operations first, as a barrier (see mc_nl_exec). */
	int (*exec)(void *impl, struct mc_op *ops, size_t n);
	/* A check exec makes between batches (NULL: none): stop leaves the rest unsent. */
	void (*set_stop)(void *impl, bool (*stop)(void *ctx), void *ctx);
	/* The source address routing picks to reach dst. */
	int (*route_src)(void *impl, const struct mc_addr *dst, struct mc_addr *ret);
	/* The host's addresses of one family, other than loopback. Caller frees *ret. */
	int (*own_addrs)(void *impl, int family, struct mc_addr **ret, size_t *nret);
	/* The default policy for packets no policy matches, in and out. */
	int (*get_default)(void *impl, bool *in_block, bool *out_block);
	int (*set_default)(void *impl, bool in_block, bool out_block);
};

struct mc_kernel {
	const struct mc_kernel_ops *ops;
	void *impl;
};

/* A test build's decorator of the real kernel (tests/fault/fault.c: MCPSEC_FAULT), applied as
 * it is opened. A weak reference: nothing defines it in the release binaries, where it is NULL. */
void mc_kernel_decorate(struct mc_kernel *k) __attribute__((weak));

static inline int mc_k_dump(struct mc_kernel *k, struct mc_kstate *ret) { return k->ops->dump(k->impl, ret); }
static inline int mc_k_exec(struct mc_kernel *k, struct mc_op *ops, size_t n) { return k->ops->exec(k->impl, ops, n); }
static inline void mc_k_set_stop(struct mc_kernel *k, bool (*stop)(void *ctx), void *ctx)
{
	k->ops->set_stop(k->impl, stop, ctx);
}
static inline int mc_k_route_src(struct mc_kernel *k, const struct mc_addr *dst, struct mc_addr *ret)
{
	return k->ops->route_src(k->impl, dst, ret);
}
static inline int mc_k_own_addrs(struct mc_kernel *k, int family, struct mc_addr **ret, size_t *nret)
{
	return k->ops->own_addrs(k->impl, family, ret, nret);
}
static inline int mc_k_get_default(struct mc_kernel *k, bool *in_block, bool *out_block)
{
	return k->ops->get_default(k->impl, in_block, out_block);
}
static inline int mc_k_set_default(struct mc_kernel *k, bool in_block, bool out_block)
{
	return k->ops->set_default(k->impl, in_block, out_block);
}

#endif
