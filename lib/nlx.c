/* SPDX-License-Identifier: MIT */
/*
 * Netlink edge. Dumps go through libnl-xfrm's caches and object getters. Writes are built as
 * raw libnl messages because libnl-xfrm sends one message and waits for one ack at a time
 * (10 000 policies would be 10 000 round trips), gives no extended-ack text, and leaves key
 * copies in objects it does not wipe. See xfrm-kernel.md §8 for the libnl-xfrm 3.7 traps this
 * avoids: unset addresses, zero lifetimes, zero template algorithm masks, implicit truncation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/socket.h>
#include <netlink/xfrm/sa.h>
#include <netlink/xfrm/selector.h>
#include <netlink/xfrm/sp.h>
#include <netlink/xfrm/template.h>

#include "algo.h"
#include "nlx.h"
#include "util.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define BATCH_BYTES (64u << 10)

struct mc_nl {
	struct nl_sock *xfrm;
	struct nl_sock *route;
	uint32_t seq;
};

/* libnl errors → errno, for messages in the kernel's own words. */
static int nlerr(int e)
{
	switch (-e) {
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_INVAL: return -EINVAL;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_DUMP_INTR: return -EINTR;
	case NLE_NOACCESS: return -EACCES;
	default: return -EIO;
	}
}

int mc_nl_open(struct mc_nl **ret)
{
	struct mc_nl *nl = mc_calloc(1, sizeof(*nl));
	int one = 1, r;

	nl->xfrm = nl_socket_alloc();
	nl->route = nl_socket_alloc();
	if (!nl->xfrm || !nl->route) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = nl_connect(nl->xfrm, NETLINK_XFRM)) < 0 || (r = nl_connect(nl->route, NETLINK_ROUTE)) < 0) {
		r = nlerr(r);
		goto fail;
	}
	(void)nl_socket_set_buffer_size(nl->xfrm, 4 << 20, 4 << 20);
	/* A route query is answered by one RTM_NEWROUTE; an extra ack would be read by the next query. */
	nl_socket_disable_auto_ack(nl->route);
	/* Extended acks carry the kernel's reason text; capped acks keep them small. */
	(void)setsockopt(nl_socket_get_fd(nl->xfrm), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(nl_socket_get_fd(nl->xfrm), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->seq = 1;
	*ret = nl;
	return 0;
fail:
	mc_nl_close(nl);
	return r;
}

void mc_nl_close(struct mc_nl *nl)
{
	if (!nl)
		return;
	if (nl->xfrm)
		nl_socket_free(nl->xfrm);
	if (nl->route)
		nl_socket_free(nl->route);
	free(nl);
}

/* ---- decoding (libnl-xfrm objects → our types) ---- */

static void addr_from_nl(struct nl_addr *a, int family, struct mc_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->family = (uint8_t)family;
	if (!a)
		return;
	size_t len = nl_addr_get_len(a);
	if (len > 16)
		len = 16;
	memcpy(ret->a, nl_addr_get_binary_addr(a), len);
}

static void sel_from_nl(struct xfrmnl_sel *s, struct mc_sel *ret)
{
	int family = xfrmnl_sel_get_family(s);

	memset(ret, 0, sizeof(*ret));
	ret->family = (uint8_t)family;
	addr_from_nl(xfrmnl_sel_get_saddr(s), family, &ret->saddr);
	addr_from_nl(xfrmnl_sel_get_daddr(s), family, &ret->daddr);
	ret->plen_s = (uint8_t)xfrmnl_sel_get_prefixlen_s(s);
	ret->plen_d = (uint8_t)xfrmnl_sel_get_prefixlen_d(s);
	ret->proto = (uint8_t)xfrmnl_sel_get_proto(s);
	ret->sport = (uint16_t)xfrmnl_sel_get_sport(s);
	ret->sport_mask = (uint16_t)xfrmnl_sel_get_sportmask(s);
	ret->dport = (uint16_t)xfrmnl_sel_get_dport(s);
	ret->dport_mask = (uint16_t)xfrmnl_sel_get_dportmask(s);
}

static void kpolicy_from_nl(struct xfrmnl_sp *sp, struct mc_kpolicy *k)
{
	unsigned long long bytes, packets, add, use;

	memset(k, 0, sizeof(*k));
	sel_from_nl(xfrmnl_sp_get_sel(sp), &k->x.sel);
	k->x.dir = (enum mc_dir)xfrmnl_sp_get_dir(sp);
	k->x.priority = (uint32_t)xfrmnl_sp_get_priority(sp);
	k->x.rule = SIZE_MAX;
	k->index = (uint32_t)xfrmnl_sp_get_index(sp);
	k->ntmpl = xfrmnl_sp_get_nusertemplates(sp);
	if (xfrmnl_sp_get_curlifetime(sp, &bytes, &packets, &add, &use) == 0) {
		k->add_time = add;
		k->use_time = use;
	}
	if (xfrmnl_sp_get_action(sp) == XFRM_POLICY_BLOCK) {
		k->x.action = MC_DISCARD;
	} else if (k->ntmpl > 0) {
		struct xfrmnl_user_tmpl *t = xfrmnl_sp_usertemplate_n(sp, 0);
		k->x.action = MC_PROTECT;
		k->x.tmpl_proto = (uint8_t)xfrmnl_user_tmpl_get_proto(t);
		k->x.tmpl_spi = (uint32_t)xfrmnl_user_tmpl_get_spi(t);
		k->x.tmpl_reqid = (uint32_t)xfrmnl_user_tmpl_get_reqid(t);
		k->tmpl_mode = (uint8_t)xfrmnl_user_tmpl_get_mode(t);
	} else {
		k->x.action = MC_BYPASS;
	}
}

static void ksa_from_nl(struct xfrmnl_sa *sa, struct mc_ksa *k)
{
	unsigned long long a, b, c, d;
	unsigned int keybits = 0, trunc = 0;
	char key[512];
	int family = xfrmnl_sa_get_family(sa);

	memset(k, 0, sizeof(*k));
	k->x.family = (uint8_t)family;
	addr_from_nl(xfrmnl_sa_get_saddr(sa), family, &k->x.saddr);
	addr_from_nl(xfrmnl_sa_get_daddr(sa), family, &k->x.daddr);
	k->x.spi = (uint32_t)xfrmnl_sa_get_spi(sa);
	k->x.proto = (uint8_t)xfrmnl_sa_get_proto(sa);
	k->x.reqid = (uint32_t)xfrmnl_sa_get_reqid(sa);
	k->x.rule = SIZE_MAX;
	k->mode = (uint8_t)xfrmnl_sa_get_mode(sa);
	k->replay_window = (uint32_t)xfrmnl_sa_get_replay_window(sa);
	if (xfrmnl_sa_get_curlifetime(sa, &a, &b, &c, &d) == 0) {
		k->bytes = a;
		k->packets = b;
		k->add_time = c;
		k->use_time = d;
	}
	if (xfrmnl_sa_get_stats(sa, &a, &b, &c) == 0) {
		k->replay_fail = b;
		k->integrity_fail = c;
	}
	if (xfrmnl_sa_get_auth_params(sa, NULL, &keybits, &trunc, NULL) == 0 && keybits / 8 <= sizeof(key) &&
	    keybits / 8 <= sizeof(k->x.ikey)) {
		char name[64] = "";
		xfrmnl_sa_get_auth_params(sa, name, &keybits, &trunc, key);
		snprintf(k->auth_name, sizeof(k->auth_name), "%s", name);
		k->auth_trunc = trunc;
		k->x.ikey_len = keybits / 8;
		memcpy(k->x.ikey, key, k->x.ikey_len);
		k->x.integrity = mc_alg_from_kernel(name, trunc, MC_ALG_INTEGRITY);
	}
	keybits = 0;
	if (xfrmnl_sa_get_crypto_params(sa, NULL, &keybits, NULL) == 0 && keybits / 8 <= sizeof(k->x.ekey)) {
		char name[64] = "";
		xfrmnl_sa_get_crypto_params(sa, name, &keybits, key);
		snprintf(k->enc_name, sizeof(k->enc_name), "%s", name);
		if (strcmp(name, MC_NULL_CIPHER) && strcmp(name, "cipher_null")) {
			k->x.ekey_len = keybits / 8;
			memcpy(k->x.ekey, key, k->x.ekey_len);
			k->x.confidentiality = mc_alg_from_kernel(name, 0, MC_ALG_CONFIDENTIALITY);
		}
	}
	mc_wipe(key, sizeof(key));
}

int mc_nl_dump(struct mc_nl *nl, struct mc_kstate *ret)
{
	struct nl_cache *sp_cache = NULL, *sa_cache = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	/* A dump interrupted by a concurrent change is retried: never diff a partial dump. */
	for (int tries = 0; tries < 5; tries++) {
		r = xfrmnl_sp_alloc_cache(nl->xfrm, &sp_cache);
		if (r != -NLE_DUMP_INTR)
			break;
	}
	if (r < 0)
		return nlerr(r);
	for (int tries = 0; tries < 5; tries++) {
		r = xfrmnl_sa_alloc_cache(nl->xfrm, &sa_cache);
		if (r != -NLE_DUMP_INTR)
			break;
	}
	if (r < 0) {
		nl_cache_free(sp_cache);
		return nlerr(r);
	}
	for (struct nl_object *o = nl_cache_get_first(sp_cache); o; o = nl_cache_get_next(o))
		kpolicy_from_nl((struct xfrmnl_sp *)o, MC_PUSH(&ret->pols, &ret->npols, &ret->cappols));
	for (struct nl_object *o = nl_cache_get_first(sa_cache); o; o = nl_cache_get_next(o)) {
		struct mc_ksa *k = MC_PUSH(&ret->sas, &ret->nsas, &ret->capsas);
		ksa_from_nl((struct xfrmnl_sa *)o, k);
		/* A larval state an ACQUIRE left behind (no algorithm at all) is no SA: it expires
		 * by itself (net.core.xfrm_acq_expires) and must not look like drift. */
		if (!k->auth_name[0] && !k->enc_name[0]) {
			mc_wipe(k, sizeof(*k));
			ret->nsas--;
		}
	}
	nl_cache_free(sp_cache);
	nl_cache_free(sa_cache);
	return 0;
}

void mc_kstate_free(struct mc_kstate *k)
{
	free(k->pols);
	mc_wipe(k->sas, k->capsas * sizeof(*k->sas));
	free(k->sas);
	memset(k, 0, sizeof(*k));
}

/* ---- encoding ---- */

static void sel_to_kernel(const struct mc_sel *s, struct xfrm_selector *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(&k->saddr, s->saddr.a, 16);
	memcpy(&k->daddr, s->daddr.a, 16);
	k->family = s->family;
	k->prefixlen_s = s->plen_s;
	k->prefixlen_d = s->plen_d;
	k->proto = s->proto;
	k->sport = htons(s->sport);
	k->sport_mask = htons(s->sport_mask);
	k->dport = htons(s->dport);
	k->dport_mask = htons(s->dport_mask);
}

/* Infinite lifetimes: libnl's zero default would expire a manual SA on its first packet. */
static void lft_infinite(struct xfrm_lifetime_cfg *l)
{
	memset(l, 0, sizeof(*l));
	l->soft_byte_limit = l->hard_byte_limit = XFRM_INF;
	l->soft_packet_limit = l->hard_packet_limit = XFRM_INF;
}

static struct nl_msg *build_policy(const struct mc_op *op)
{
	const struct mc_xpolicy *x = &op->pol;
	struct nl_msg *m;

	if (op->kind == MC_OP_POL_DEL) {
		struct xfrm_userpolicy_id id;
		memset(&id, 0, sizeof(id));
		sel_to_kernel(&x->sel, &id.sel);
		id.dir = (uint8_t)x->dir;
		if (!(m = nlmsg_alloc_simple(XFRM_MSG_DELPOLICY, NLM_F_REQUEST | NLM_F_ACK)))
			return NULL;
		if (nlmsg_append(m, &id, sizeof(id), NLMSG_ALIGNTO) < 0)
			goto fail;
		return m;
	}
	struct xfrm_userpolicy_info info;
	memset(&info, 0, sizeof(info));
	sel_to_kernel(&x->sel, &info.sel);
	lft_infinite(&info.lft);
	info.priority = x->priority;
	info.dir = (uint8_t)x->dir;
	info.action = x->action == MC_DISCARD ? XFRM_POLICY_BLOCK : XFRM_POLICY_ALLOW;
	info.share = XFRM_SHARE_ANY;
	int type = op->kind == MC_OP_POL_ADD ? XFRM_MSG_NEWPOLICY : XFRM_MSG_UPDPOLICY;
	int flags = NLM_F_REQUEST | NLM_F_ACK | (op->kind == MC_OP_POL_ADD ? NLM_F_CREATE | NLM_F_EXCL : 0);
	if (!(m = nlmsg_alloc_simple(type, flags)))
		return NULL;
	if (nlmsg_append(m, &info, sizeof(info), NLMSG_ALIGNTO) < 0)
		goto fail;
	if (x->action == MC_PROTECT) {
		struct xfrm_user_tmpl t;
		memset(&t, 0, sizeof(t));
		t.id.proto = x->tmpl_proto;
		t.id.spi = htonl(x->tmpl_spi);
		t.family = x->sel.family;
		t.reqid = x->tmpl_reqid;
		t.mode = XFRM_MODE_TRANSPORT;
		/* Masks must be ~0, or every inbound packet fails the template check. */
		t.aalgos = t.ealgos = t.calgos = ~0u;
		if (nla_put(m, XFRMA_TMPL, sizeof(t), &t) < 0)
			goto fail;
	}
	return m;
fail:
	nlmsg_free(m);
	return NULL;
}

static int put_algo(struct nl_msg *m, int attr, const char *name, const uint8_t *key, size_t len,
		    unsigned trunc)
{
	size_t hdr = attr == XFRMA_ALG_AUTH_TRUNC ? sizeof(struct xfrm_algo_auth) : sizeof(struct xfrm_algo);
	size_t total = hdr + len;
	uint8_t *buf = mc_calloc(1, total);
	int r;

	if (attr == XFRMA_ALG_AUTH_TRUNC) {
		struct xfrm_algo_auth *a = (struct xfrm_algo_auth *)buf;
		snprintf(a->alg_name, sizeof(a->alg_name), "%s", name);
		a->alg_key_len = (unsigned)(len * 8);
		a->alg_trunc_len = trunc;
	} else {
		struct xfrm_algo *a = (struct xfrm_algo *)buf;
		snprintf(a->alg_name, sizeof(a->alg_name), "%s", name);
		a->alg_key_len = (unsigned)(len * 8);
	}
	if (len)
		memcpy(buf + hdr, key, len);
	r = nla_put(m, attr, (int)total, buf);
	mc_wipe(buf, total);
	free(buf);
	return r;
}

static struct nl_msg *build_sa(const struct mc_op *op)
{
	const struct mc_xsa *x = &op->sa;
	struct nl_msg *m;

	if (op->kind == MC_OP_SA_DEL) {
		struct xfrm_usersa_id id;
		memset(&id, 0, sizeof(id));
		memcpy(&id.daddr, x->daddr.a, 16);
		id.spi = htonl(x->spi);
		id.family = x->family;
		id.proto = x->proto;
		if (!(m = nlmsg_alloc_simple(XFRM_MSG_DELSA, NLM_F_REQUEST | NLM_F_ACK)))
			return NULL;
		if (nlmsg_append(m, &id, sizeof(id), NLMSG_ALIGNTO) < 0)
			goto fail;
		return m;
	}
	struct xfrm_usersa_info info;
	memset(&info, 0, sizeof(info));
	info.sel.family = x->family; /* zero selector: the SA serves any flow of its policy */
	memcpy(&info.id.daddr, x->daddr.a, 16);
	info.id.spi = htonl(x->spi);
	info.id.proto = x->proto;
	memcpy(&info.saddr, x->saddr.a, 16);
	lft_infinite(&info.lft);
	info.reqid = x->reqid;
	info.family = x->family;
	info.mode = XFRM_MODE_TRANSPORT;
	info.replay_window = 0; /* manual keys: anti-replay needs automated keying (RFC 4301 §4.5) */
	if (!(m = nlmsg_alloc_simple(XFRM_MSG_NEWSA, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)))
		return NULL;
	if (nlmsg_append(m, &info, sizeof(info), NLMSG_ALIGNTO) < 0)
		goto fail;
	if (x->integrity && put_algo(m, XFRMA_ALG_AUTH_TRUNC, x->integrity->kernel, x->ikey, x->ikey_len,
				     x->integrity->trunc_bits) < 0)
		goto fail;
	if (x->confidentiality) {
		if (put_algo(m, XFRMA_ALG_CRYPT, x->confidentiality->kernel, x->ekey, x->ekey_len, 0) < 0)
			goto fail;
	} else if (x->proto == IPPROTO_ESP) {
		/* ESP integrity-only: the kernel wants an explicit null cipher. */
		if (put_algo(m, XFRMA_ALG_CRYPT, MC_NULL_CIPHER, NULL, 0, 0) < 0)
			goto fail;
	}
	return m;
fail:
	nlmsg_free(m);
	return NULL;
}

static struct nl_msg *build_op(const struct mc_op *op)
{
	return op->kind == MC_OP_SA_ADD || op->kind == MC_OP_SA_DEL ? build_sa(op) : build_policy(op);
}

static void free_msg_wiped(struct nl_msg *m)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	mc_wipe(h, h->nlmsg_len);
	nlmsg_free(m);
}

size_t mc_nl_encode(const struct mc_op *op, uint32_t seq, void *buf, size_t cap)
{
	struct nl_msg *m = build_op(op);
	size_t len;

	if (!m)
		return 0;
	nlmsg_hdr(m)->nlmsg_seq = seq;
	len = nlmsg_hdr(m)->nlmsg_len;
	if (len > cap) {
		free_msg_wiped(m);
		return 0;
	}
	memcpy(buf, nlmsg_hdr(m), len);
	free_msg_wiped(m);
	return NLMSG_ALIGN(len);
}

int mc_nl_decode_sa(const void *msg, struct mc_ksa *ret)
{
	struct xfrmnl_sa *sa = NULL;
	int r = xfrmnl_sa_parse((struct nlmsghdr *)msg, &sa);

	if (r < 0)
		return nlerr(r);
	ksa_from_nl(sa, ret);
	xfrmnl_sa_put(sa);
	return 0;
}

int mc_nl_decode_policy(const void *msg, struct mc_kpolicy *ret)
{
	struct xfrmnl_sp *sp = NULL;
	int r = xfrmnl_sp_parse((struct nlmsghdr *)msg, &sp);

	if (r < 0)
		return nlerr(r);
	kpolicy_from_nl(sp, ret);
	xfrmnl_sp_put(sp);
	return 0;
}

/* ---- batched execution ---- */

static void record_ack(struct mc_op *ops, size_t first, size_t n, uint32_t seq0, struct nlmsghdr *h)
{
	struct nlmsgerr *e = nlmsg_data(h);
	size_t i = h->nlmsg_seq - seq0;

	if (h->nlmsg_seq < seq0 || i >= n)
		return;
	ops[first + i].err = e->error;
	ops[first + i].errmsg[0] = '\0';
	if (e->error && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
		/* With NETLINK_CAP_ACK the original message is echoed as its header only. */
		size_t off = NLMSG_HDRLEN + sizeof(*e);
		if (!(h->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(e->msg);
		struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(off));
		int rem = (int)h->nlmsg_len - (int)NLMSG_ALIGN(off);
		for (; rem >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= rem;
		     rem -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))
			if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
				snprintf(ops[first + i].errmsg, sizeof(ops[first + i].errmsg), "%.*s",
					 (int)(a->nla_len - sizeof(*a)), (char *)(a + 1));
	}
}

static int send_batch(struct mc_nl *nl, struct mc_op *ops, size_t first, size_t n, uint8_t *buf, size_t len,
		      uint32_t seq0)
{
	size_t pending = n;
	int r = nl_sendto(nl->xfrm, buf, len);

	if (r < 0)
		return nlerr(r);
	while (pending) {
		struct sockaddr_nl who;
		unsigned char *rb = NULL;
		int got = nl_recv(nl->xfrm, &who, &rb, NULL);
		if (got <= 0) {
			free(rb);
			return got < 0 ? nlerr(got) : -EIO;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)rb; nlmsg_ok(h, got); h = nlmsg_next(h, &got)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_seq >= seq0 && h->nlmsg_seq < seq0 + n) {
				record_ack(ops, first, n, seq0, h);
				pending--;
			}
		}
		free(rb);
	}
	return 0;
}

static bool is_sa_op(const struct mc_op *op)
{
	return op->kind == MC_OP_SA_ADD || op->kind == MC_OP_SA_DEL;
}

static bool ops_failed(const struct mc_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].err)
			return true;
	return false;
}

int mc_nl_exec(struct mc_nl *nl, struct mc_op *ops, size_t n)
{
	uint8_t *buf = mc_malloc(BATCH_BYTES);
	size_t len = 0, first = 0;
	int r = 0, first_err = 0;

	for (size_t i = 0; i <= n; i++) {
		uint8_t one[4096];
		size_t l = 0;

		if (i < n) {
			ops[i].err = 0;
			l = mc_nl_encode(&ops[i], 0, one, sizeof(one));
			if (!l) {
				for (size_t k = first; k < n; k++)
					ops[k].err = k < i ? -ECANCELED : -ENOMEM;
				r = -ENOMEM;
				break;
			}
		}
		/* SAs go first and must all be in before any policy that needs them is sent: a
		 * phase change is a barrier, and an SA failure cancels the rest. */
		bool barrier = i < n && i > 0 && is_sa_op(&ops[i - 1]) && !is_sa_op(&ops[i]);
		/* Flush the batch when full, at a barrier or at the end. */
		if ((i == n || barrier || len + l > BATCH_BYTES) && len) {
			uint32_t seq0 = nl->seq;
			for (size_t off = 0, k = 0; off < len; k++) {
				struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
				h->nlmsg_seq = seq0 + (uint32_t)k;
				h->nlmsg_pid = 0;
				off += NLMSG_ALIGN(h->nlmsg_len);
			}
			nl->seq += (uint32_t)(i - first);
			r = send_batch(nl, ops, first, i - first, buf, len, seq0);
			mc_wipe(buf, len);
			len = 0;
			if (r < 0) {
				/* The socket failed: this batch's outcome is unknown and the rest was never
				 * sent. Mark them all, so that no rollback "undoes" them. */
				for (size_t k = first; k < n; k++)
					if (!ops[k].err)
						ops[k].err = k < i ? r : -ECANCELED;
				break;
			}
			first = i;
		}
		if (barrier && ops_failed(ops, i)) {
			for (size_t k = i; k < n; k++)
				ops[k].err = -ECANCELED;
			mc_wipe(one, l);
			break;
		}
		if (i < n) {
			memcpy(buf + len, one, l);
			len += l;
			mc_wipe(one, l);
		}
	}
	mc_wipe(buf, BATCH_BYTES);
	free(buf);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (ops[i].err && !first_err)
			first_err = ops[i].err;
	return first_err;
}

/* ---- routing ---- */

struct route_ctx {
	struct mc_addr *ret;
	int found;
};

static int route_cb(struct nl_msg *m, void *arg)
{
	struct route_ctx *c = arg;
	struct nlmsghdr *h = nlmsg_hdr(m);
	struct rtmsg *rtm = nlmsg_data(h);
	struct nlattr *tb[RTA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWROUTE || nlmsg_parse(h, sizeof(*rtm), tb, RTA_MAX, NULL) < 0)
		return NL_SKIP;
	if (tb[RTA_PREFSRC]) {
		memset(c->ret, 0, sizeof(*c->ret));
		c->ret->family = rtm->rtm_family;
		memcpy(c->ret->a, nla_data(tb[RTA_PREFSRC]),
		       nla_len(tb[RTA_PREFSRC]) > 16 ? 16 : (size_t)nla_len(tb[RTA_PREFSRC]));
		c->found = 1;
	}
	return NL_OK;
}

int mc_nl_route_src(struct mc_nl *nl, const struct mc_addr *dst, struct mc_addr *ret)
{
	struct rtmsg rtm = { .rtm_family = dst->family,
			     .rtm_dst_len = (unsigned char)(dst->family == AF_INET ? 32 : 128) };
	struct route_ctx c = { ret, 0 };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_REQUEST);
	int r;

	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
	    nla_put(m, RTA_DST, dst->family == AF_INET ? 4 : 16, dst->a) < 0) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	r = nl_send_auto(nl->route, m);
	nlmsg_free(m);
	if (r < 0)
		return nlerr(r);
	nl_socket_modify_cb(nl->route, NL_CB_VALID, NL_CB_CUSTOM, route_cb, &c);
	r = nl_recvmsgs_default(nl->route);
	/* libnl folds the kernel's ENETUNREACH/EHOSTUNREACH into generic codes: say what it means. */
	if (r < 0)
		return r == -NLE_NOMEM ? -ENOMEM : -ENETUNREACH;
	return c.found ? 0 : -EADDRNOTAVAIL;
}

int mc_nl_own_addrs6(struct mc_nl *nl, struct mc_addr **ret, size_t *nret)
{
	struct nl_cache *cache = NULL;
	size_t n = 0, cap = 0;
	struct mc_addr *v = NULL;
	int r = rtnl_addr_alloc_cache(nl->route, &cache);

	if (r < 0)
		return nlerr(r);
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);
		struct mc_addr x;

		if (rtnl_addr_get_family(a) != AF_INET6 || !local || nl_addr_get_len(local) != 16)
			continue;
		addr_from_nl(local, AF_INET6, &x);
		struct mc_addr lo;
		mc_addr_parse("::1", &lo);
		if (mc_addr_eq(&x, &lo))
			continue;
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			dup |= mc_addr_eq(&v[i], &x);
		if (!dup)
			*MC_PUSH(&v, &n, &cap) = x;
	}
	nl_cache_free(cache);
	*ret = v;
	*nret = n;
	return 0;
}

/* ---- events (the daemon's multicast socket) ---- */

struct mc_nlmon {
	int fd;
	struct nl_sock *sk;
	struct nl_sock *addr; /* rtnetlink IPv6 address events (the own-address bypass) */
};

uint32_t mc_nl_portid(const struct mc_nl *nl)
{
	return nl_socket_get_local_port(nl->xfrm);
}

int mc_nl_monitor_open(int rcvbuf, struct mc_nlmon **ret)
{
	struct mc_nlmon *m = mc_calloc(1, sizeof(*m));
	int r;

	if (!(m->sk = nl_socket_alloc())) {
		free(m);
		return -ENOMEM;
	}
	nl_socket_disable_seq_check(m->sk);
	if ((r = nl_connect(m->sk, NETLINK_XFRM)) < 0 ||
	    (r = nl_socket_add_memberships(m->sk, XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE, XFRMNLGRP_SA,
					   XFRMNLGRP_POLICY, 0)) < 0 ||
	    (r = nl_socket_set_nonblocking(m->sk)) < 0) {
		nl_socket_free(m->sk);
		free(m);
		return nlerr(r);
	}
	m->fd = nl_socket_get_fd(m->sk);
	if ((m->addr = nl_socket_alloc())) {
		nl_socket_disable_seq_check(m->addr);
		if (nl_connect(m->addr, NETLINK_ROUTE) < 0 || nl_socket_add_memberships(m->addr, RTNLGRP_IPV6_IFADDR, 0) < 0 ||
		    nl_socket_set_nonblocking(m->addr) < 0) {
			nl_socket_free(m->addr);
			m->addr = NULL; /* not fatal: addresses are then seen at start and on SIGHUP */
		}
	}
	/* FORCE: root may exceed net.core.rmem_max; a burst of events must fit or we resync. */
	if (setsockopt(m->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	*ret = m;
	return 0;
}

int mc_nl_monitor_fd(const struct mc_nlmon *m)
{
	return m->fd;
}

void mc_nl_monitor_close(struct mc_nlmon *m)
{
	if (!m)
		return;
	nl_socket_free(m->sk);
	if (m->addr)
		nl_socket_free(m->addr);
	free(m);
}

int mc_nl_monitor_addr_fd(const struct mc_nlmon *m)
{
	return m->addr ? nl_socket_get_fd(m->addr) : -1;
}

bool mc_nl_monitor_addr_changed(struct mc_nlmon *m)
{
	char buf[8192];
	bool changed = false;
	ssize_t n;

	if (!m->addr)
		return false;
	/* The content does not matter: any IPv6 address added or removed means "look again";
	 * an overrun (ENOBUFS) means the same. */
	while ((n = recv(nl_socket_get_fd(m->addr), buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			changed |= errno == ENOBUFS;
			break;
		}
		int left = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; nlmsg_ok(h, left); h = nlmsg_next(h, &left))
			changed |= h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR;
	}
	return changed;
}

static void addr_from_uapi(const xfrm_address_t *a, int family, struct mc_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->family = (uint8_t)family;
	memcpy(ret->a, a, family == AF_INET ? 4 : 16);
}

static void sel_from_uapi(const struct xfrm_selector *k, struct mc_sel *s)
{
	memset(s, 0, sizeof(*s));
	s->family = (uint8_t)k->family;
	addr_from_uapi(&k->saddr, k->family, &s->saddr);
	addr_from_uapi(&k->daddr, k->family, &s->daddr);
	s->plen_s = k->prefixlen_s;
	s->plen_d = k->prefixlen_d;
	s->proto = k->proto;
	s->sport = ntohs(k->sport);
	s->sport_mask = ntohs(k->sport_mask);
	s->dport = ntohs(k->dport);
	s->dport_mask = ntohs(k->dport_mask);
}

static void ev_policy(const struct xfrm_userpolicy_info *p, struct mc_event *ev)
{
	sel_from_uapi(&p->sel, &ev->sel);
	ev->priority = p->priority;
	ev->index = p->index;
	ev->dir = p->dir == XFRM_POLICY_IN ? MC_DIR_IN : MC_DIR_OUT;
	ev->family = p->sel.family;
}

static void ev_sa(const struct xfrm_usersa_info *s, struct mc_event *ev)
{
	ev->family = s->family;
	addr_from_uapi(&s->saddr, s->family, &ev->saddr);
	addr_from_uapi(&s->id.daddr, s->family, &ev->daddr);
	ev->spi = ntohl(s->id.spi);
	ev->proto = s->id.proto;
	ev->reqid = s->reqid;
}

/* One message → one event; false when it is not one we decode (too short, unknown type). */
static bool decode_event(struct nlmsghdr *h, struct mc_event *ev)
{
	struct nlattr *tb[XFRMA_MAX + 1];
	size_t len = (size_t)nlmsg_datalen(h);
	void *d = nlmsg_data(h);

	memset(ev, 0, sizeof(*ev));
	ev->portid = h->nlmsg_pid;
	switch (h->nlmsg_type) {
	case XFRM_MSG_ACQUIRE: {
		const struct xfrm_user_acquire *a = d;
		if (len < sizeof(*a))
			return false;
		ev->kind = MC_EV_ACQUIRE;
		ev_policy(&a->policy, ev);
		sel_from_uapi(&a->sel, &ev->flow);
		ev->family = a->sel.family;
		addr_from_uapi(&a->saddr, a->sel.family, &ev->saddr);
		addr_from_uapi(&a->id.daddr, a->sel.family, &ev->daddr);
		ev->proto = a->id.proto;
		if (nlmsg_parse(h, sizeof(*a), tb, XFRMA_MAX, NULL) == 0 && tb[XFRMA_TMPL] &&
		    nla_len(tb[XFRMA_TMPL]) >= (int)sizeof(struct xfrm_user_tmpl)) {
			struct xfrm_user_tmpl t;
			memcpy(&t, nla_data(tb[XFRMA_TMPL]), sizeof(t));
			ev->spi = ntohl(t.id.spi);
			ev->reqid = t.reqid;
			ev->proto = t.id.proto;
		}
		return true;
	}
	case XFRM_MSG_EXPIRE: {
		const struct xfrm_user_expire *e = d;
		if (len < sizeof(*e))
			return false;
		ev->kind = MC_EV_SA_EXPIRE;
		ev_sa(&e->state, ev);
		ev->hard = e->hard;
		return true;
	}
	case XFRM_MSG_NEWSA:
	case XFRM_MSG_UPDSA:
		if (len < sizeof(struct xfrm_usersa_info))
			return false;
		ev->kind = h->nlmsg_type == XFRM_MSG_NEWSA ? MC_EV_SA_NEW : MC_EV_SA_UPD;
		ev_sa(d, ev);
		return true;
	case XFRM_MSG_DELSA: {
		const struct xfrm_usersa_id *id = d;
		if (len < sizeof(*id))
			return false;
		ev->kind = MC_EV_SA_DEL;
		ev->family = (uint8_t)id->family;
		addr_from_uapi(&id->daddr, id->family, &ev->daddr);
		ev->spi = ntohl(id->spi);
		ev->proto = id->proto;
		if (nlmsg_parse(h, sizeof(*id), tb, XFRMA_MAX, NULL) == 0 && tb[XFRMA_SA] &&
		    nla_len(tb[XFRMA_SA]) >= (int)sizeof(struct xfrm_usersa_info)) {
			struct xfrm_usersa_info info; /* attributes are only 4-byte aligned */
			memcpy(&info, nla_data(tb[XFRMA_SA]), sizeof(info));
			ev_sa(&info, ev);
		}
		return true;
	}
	case XFRM_MSG_FLUSHSA:
		ev->kind = MC_EV_SA_FLUSH;
		if (len >= sizeof(struct xfrm_usersa_flush))
			ev->proto = ((const struct xfrm_usersa_flush *)d)->proto;
		return true;
	case XFRM_MSG_NEWPOLICY:
	case XFRM_MSG_UPDPOLICY:
		if (len < sizeof(struct xfrm_userpolicy_info))
			return false;
		ev->kind = h->nlmsg_type == XFRM_MSG_NEWPOLICY ? MC_EV_POL_NEW : MC_EV_POL_UPD;
		ev_policy(d, ev);
		return true;
	case XFRM_MSG_DELPOLICY: {
		const struct xfrm_userpolicy_id *id = d;
		if (len < sizeof(*id))
			return false;
		ev->kind = MC_EV_POL_DEL;
		sel_from_uapi(&id->sel, &ev->sel);
		ev->dir = id->dir == XFRM_POLICY_IN ? MC_DIR_IN : MC_DIR_OUT;
		ev->index = id->index;
		if (nlmsg_parse(h, sizeof(*id), tb, XFRMA_MAX, NULL) == 0 && tb[XFRMA_POLICY] &&
		    nla_len(tb[XFRMA_POLICY]) >= (int)sizeof(struct xfrm_userpolicy_info)) {
			struct xfrm_userpolicy_info info;
			memcpy(&info, nla_data(tb[XFRMA_POLICY]), sizeof(info));
			ev_policy(&info, ev);
		}
		return true;
	}
	case XFRM_MSG_FLUSHPOLICY:
		ev->kind = MC_EV_POL_FLUSH;
		return true;
	case XFRM_MSG_POLEXPIRE: {
		const struct xfrm_user_polexpire *e = d;
		if (len < sizeof(*e))
			return false;
		ev->kind = MC_EV_POL_EXPIRE;
		ev_policy(&e->pol, ev);
		ev->hard = e->hard;
		return true;
	}
	default:
		ev->kind = MC_EV_OTHER;
		return true;
	}
}

int mc_nl_decode_event(const void *msg, struct mc_event *ret)
{
	return decode_event((struct nlmsghdr *)msg, ret) ? 0 : -EINVAL;
}

int mc_nl_monitor_read(struct mc_nlmon *m, void (*cb)(void *ctx, const struct mc_event *ev), void *ctx)
{
	static char buf[64 << 10] __attribute__((aligned(8)));
	int total = 0;

	for (;;) {
		ssize_t n = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			return -errno; /* ENOBUFS: the kernel dropped events; the caller resyncs */
		}
		if (n == 0)
			return total;
		int left = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; nlmsg_ok(h, left); h = nlmsg_next(h, &left)) {
			struct mc_event ev;
			if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE || !decode_event(h, &ev))
				continue;
			cb(ctx, &ev);
			total++;
		}
	}
}
