/* SPDX-License-Identifier: MIT */
/*
 * Netlink edge, on plain libnl-3 sockets and messages. Writes are built by hand because
 * libnl-xfrm sends one message and waits for one ack at a time (10 000 policies would be 10 000
 * round trips), gives no extended-ack text, and leaves key copies in objects it does not wipe;
 * dumps and events are decoded by the checked decoder below because its parsers leak and trust
 * attribute lengths. doc/kernel-notes.md §7-8 lists the traps this avoids: unset addresses, zero
 * lifetimes, zero template algorithm masks, implicit truncation.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/socket.h>

#include "algo.h"
#include "drops.h"
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
	bool (*stop)(void *ctx); /* mc_nl_set_stop */
	void *stop_ctx;
	struct mc_kernel kernel; /* this socket as the engine's kernel (mc_nl_kernel) */
};

/* The real kernel's operations table (lib/kernel.h): each the mc_nl_ function of its name. */
static int k_dump(void *nl, struct mc_kstate *ret) { return mc_nl_dump(nl, ret); }
static int k_exec(void *nl, struct mc_op *ops, size_t n) { return mc_nl_exec(nl, ops, n); }
static void k_set_stop(void *nl, bool (*stop)(void *), void *ctx) { mc_nl_set_stop(nl, stop, ctx); }
static int k_route_src(void *nl, const struct mc_addr *dst, struct mc_addr *ret) { return mc_nl_route_src(nl, dst, ret); }
static int k_own_addrs(void *nl, int family, struct mc_addr **ret, size_t *n) { return mc_nl_own_addrs(nl, family, ret, n); }
static int k_get_default(void *nl, bool *in, bool *out) { return mc_nl_get_default(nl, in, out); }
static int k_set_default(void *nl, bool in, bool out) { return mc_nl_set_default(nl, in, out); }
static const struct mc_kernel_ops real_kernel = { k_dump, k_exec, k_set_stop, k_route_src, k_own_addrs,
						   k_get_default, k_set_default };

struct mc_kernel *mc_nl_kernel(struct mc_nl *nl)
{
	return &nl->kernel;
}

void mc_nl_set_stop(struct mc_nl *nl, bool (*stop)(void *ctx), void *ctx)
{
	nl->stop = stop;
	nl->stop_ctx = ctx;
}

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
	nl->kernel = (struct mc_kernel){ &real_kernel, nl };
	if (mc_kernel_decorate)
		mc_kernel_decorate(&nl->kernel);
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

/* ---- decoding: one checked decoder for dumps and events ----
 *
 * Every kernel message is decoded here from its uapi layout, never by libnl-xfrm's object
 * parsers: those leak two address objects per policy in libnl 3.7 (a daemon that dumps every
 * second grew without bound) and read attribute payloads without checking their lengths.
 * Each function takes the buffer's length and refuses a message that does not fit in it, an
 * attribute that runs past its message, or a payload shorter than the structure it holds.
 * Payloads are copied out before use: netlink only aligns attributes to 4 bytes.
 */

/* The attributes of a message body, at most one per type (the last wins, as in the kernel's
 * nla_parse). Returns false when an attribute header or length is malformed. */
struct attrs {
	const struct nlattr *tb[64]; /* above XFRMA_MAX and NFTA_*_MAX */
};

static bool attrs_parse(const uint8_t *p, size_t len, struct attrs *ret)
{
	memset(ret, 0, sizeof(*ret));
	while (len >= sizeof(struct nlattr)) {
		struct nlattr a;
		memcpy(&a, p, sizeof(a));
		if (a.nla_len < sizeof(a) || a.nla_len > len)
			return false;
		uint16_t type = a.nla_type & NLA_TYPE_MASK;
		if (type < MC_ARRAY_SIZE(ret->tb))
			ret->tb[type] = (const struct nlattr *)p;
		size_t step = NLA_ALIGN(a.nla_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return true;
}

/* The payload of attribute type, copied into out when it holds at least min bytes; returns its
 * length (0 when absent or too short). */
static size_t attr_get(const struct attrs *at, int type, void *out, size_t min, size_t cap)
{
	const struct nlattr *a = at->tb[type];
	struct nlattr h;

	if (!a)
		return 0;
	memcpy(&h, a, sizeof(h));
	size_t len = h.nla_len - sizeof(h);
	if (len < min)
		return 0;
	memcpy(out, (const uint8_t *)a + sizeof(h), len < cap ? len : cap);
	return len;
}

/* The message's body (after the fixed header of size fixed) and its attributes; false when the
 * message does not fit in buflen or its body is shorter than fixed. */
static bool msg_open(const void *msg, size_t buflen, size_t fixed, void *body, struct attrs *at)
{
	struct nlmsghdr h;

	if (buflen < sizeof(h))
		return false;
	memcpy(&h, msg, sizeof(h));
	if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > buflen || h.nlmsg_len - NLMSG_HDRLEN < fixed)
		return false;
	const uint8_t *d = (const uint8_t *)msg + NLMSG_HDRLEN;
	size_t dlen = h.nlmsg_len - NLMSG_HDRLEN;
	memcpy(body, d, fixed);
	size_t off = NLMSG_ALIGN(fixed);
	return attrs_parse(d + off, dlen > off ? dlen - off : 0, at);
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

static int decode_policy(const void *msg, size_t buflen, struct mc_kpolicy *k)
{
	struct xfrm_userpolicy_info info;
	struct attrs at;

	memset(k, 0, sizeof(*k));
	if (!msg_open(msg, buflen, sizeof(info), &info, &at))
		return -EINVAL;
	sel_from_uapi(&info.sel, &k->x.sel);
	k->x.dir = (enum mc_dir)info.dir; /* 2 (forward) stays 2: never one of ours */
	k->x.priority = info.priority;
	k->x.rule = SIZE_MAX;
	k->index = info.index;
	k->add_time = info.curlft.add_time;
	k->use_time = info.curlft.use_time;
	struct xfrm_user_tmpl t;
	size_t tlen = attr_get(&at, XFRMA_TMPL, &t, sizeof(t), sizeof(t));
	k->ntmpl = (int)(tlen / sizeof(t));
	if (info.action == XFRM_POLICY_BLOCK) {
		k->x.action = MC_DISCARD;
	} else if (k->ntmpl > 0) {
		k->x.action = MC_PROTECT;
		k->x.tmpl_proto = t.id.proto;
		k->x.tmpl_spi = ntohl(t.id.spi);
		k->x.tmpl_reqid = t.reqid;
		k->x.tmpl_optional = t.optional != 0;
		k->tmpl_mode = t.mode;
	} else {
		k->x.action = MC_BYPASS;
	}
	return 0;
}

/* An algorithm attribute: name, key (bits → bytes, must fit the payload and cap) and, for
 * XFRMA_ALG_AUTH_TRUNC, the truncation. Returns false when absent or malformed. */
static bool algo_get(const struct attrs *at, int type, char name[64], uint8_t *key, size_t cap, size_t *keylen,
		     unsigned *trunc)
{
	uint8_t buf[sizeof(struct xfrm_algo_auth) + 512];
	size_t hdr = type == XFRMA_ALG_AUTH_TRUNC ? sizeof(struct xfrm_algo_auth) : sizeof(struct xfrm_algo);
	size_t len = attr_get(at, type, buf, hdr, sizeof(buf));
	unsigned bits;
	bool ok = false;

	if (!len)
		return false;
	if (type == XFRMA_ALG_AUTH_TRUNC) {
		struct xfrm_algo_auth a;
		memcpy(&a, buf, sizeof(a));
		bits = a.alg_key_len;
		*trunc = a.alg_trunc_len;
		memcpy(name, a.alg_name, 64);
	} else {
		struct xfrm_algo a;
		memcpy(&a, buf, sizeof(a));
		bits = a.alg_key_len;
		*trunc = 0;
		memcpy(name, a.alg_name, 64);
	}
	name[63] = '\0';
	size_t bytes = (bits + 7u) / 8u;
	if (bytes <= cap && hdr + bytes <= len && hdr + bytes <= sizeof(buf)) {
		memcpy(key, buf + hdr, bytes);
		*keylen = bytes;
		ok = true;
	}
	mc_wipe(buf, sizeof(buf));
	return ok;
}

/* XFRM_INF (bytes, packets) and 0 (seconds) are no limit: 0 in mcpsec's terms. */
static uint64_t limit_from_kernel(uint64_t v)
{
	return v == XFRM_INF ? 0 : v;
}

static void lft_from_kernel(const struct xfrm_lifetime_cfg *k, struct mc_lifetime *l)
{
	l->soft_bytes = limit_from_kernel(k->soft_byte_limit);
	l->hard_bytes = limit_from_kernel(k->hard_byte_limit);
	l->soft_packets = limit_from_kernel(k->soft_packet_limit);
	l->hard_packets = limit_from_kernel(k->hard_packet_limit);
	l->soft_secs = k->soft_add_expires_seconds;
	l->hard_secs = k->hard_add_expires_seconds;
}

static int decode_sa(const void *msg, size_t buflen, struct mc_ksa *k)
{
	struct xfrm_usersa_info info;
	struct attrs at;
	char name[64];
	unsigned trunc;

	memset(k, 0, sizeof(*k));
	if (!msg_open(msg, buflen, sizeof(info), &info, &at))
		return -EINVAL;
	k->x.family = info.family;
	addr_from_uapi(&info.saddr, info.family, &k->x.saddr);
	addr_from_uapi(&info.id.daddr, info.family, &k->x.daddr);
	k->x.spi = ntohl(info.id.spi);
	k->x.proto = info.id.proto;
	k->x.reqid = info.reqid;
	k->x.rule = SIZE_MAX;
	k->mode = info.mode;
	k->replay_window = info.replay_window;
	k->bytes = info.curlft.bytes;
	k->packets = info.curlft.packets;
	k->add_time = info.curlft.add_time;
	k->use_time = info.curlft.use_time;
	k->replay_fail = info.stats.replay;
	k->integrity_fail = info.stats.integrity_failed;
	lft_from_kernel(&info.lft, &k->x.lft);
	uint32_t xflags = 0;
	struct xfrm_replay_state rs;
	if (attr_get(&at, XFRMA_SA_EXTRA_FLAGS, &xflags, sizeof(xflags), sizeof(xflags)))
		k->x.oseq_may_wrap = (xflags & XFRM_SA_XFLAG_OSEQ_MAY_WRAP) != 0;
	if (attr_get(&at, XFRMA_REPLAY_VAL, &rs, sizeof(rs), sizeof(rs)))
		k->x.oseq = rs.oseq;
	/* The kernel sends an HMAC both ways; the truncating form says how many bits go on the wire. */
	if (algo_get(&at, XFRMA_ALG_AUTH_TRUNC, name, k->x.ikey, sizeof(k->x.ikey), &k->x.ikey_len, &trunc) ||
	    algo_get(&at, XFRMA_ALG_AUTH, name, k->x.ikey, sizeof(k->x.ikey), &k->x.ikey_len, &trunc)) {
		snprintf(k->auth_name, sizeof(k->auth_name), "%s", name);
		k->auth_trunc = trunc;
		k->x.integrity = mc_alg_from_kernel(name, trunc, MC_ALG_INTEGRITY);
	}
	uint8_t ekey[sizeof(k->x.ekey)];
	size_t elen = 0;
	if (algo_get(&at, XFRMA_ALG_CRYPT, name, ekey, sizeof(ekey), &elen, &trunc)) {
		snprintf(k->enc_name, sizeof(k->enc_name), "%s", name);
		if (strcmp(name, MC_NULL_CIPHER) && strcmp(name, "cipher_null")) {
			memcpy(k->x.ekey, ekey, elen);
			k->x.ekey_len = elen;
			k->x.confidentiality = mc_alg_from_kernel(name, 0, MC_ALG_CONFIDENTIALITY);
		}
	}
	mc_wipe(ekey, sizeof(ekey));
	return 0;
}

struct dump_ctx {
	struct mc_kstate *k;
	bool sas;
	int err;
};

static int dump_cb(struct nl_msg *m, void *arg)
{
	struct dump_ctx *c = arg;
	struct nlmsghdr *h = nlmsg_hdr(m);

	if (c->sas && h->nlmsg_type == XFRM_MSG_NEWSA) {
		struct mc_ksa *k = MC_PUSH(&c->k->sas, &c->k->nsas, &c->k->capsas);
		if (decode_sa(h, h->nlmsg_len, k) < 0) {
			c->err = -EBADMSG;
			c->k->nsas--;
		} else if (!k->auth_name[0] && !k->enc_name[0]) {
			/* A larval state an ACQUIRE left behind (no algorithm at all) is no SA: it
			 * expires by itself (net.core.xfrm_acq_expires) and must not look like drift. */
			mc_wipe(k, sizeof(*k));
			c->k->nsas--;
		}
	} else if (!c->sas && h->nlmsg_type == XFRM_MSG_NEWPOLICY) {
		struct mc_kpolicy *k = MC_PUSH(&c->k->pols, &c->k->npols, &c->k->cappols);
		if (decode_policy(h, h->nlmsg_len, k) < 0) {
			c->err = -EBADMSG;
			c->k->npols--;
		}
	}
	return NL_OK;
}

/* One dump (policies or SAs) into k; a dump interrupted by a concurrent change starts again:
 * never diff a partial dump. */
static int dump_one(struct mc_nl *nl, bool sas, struct mc_kstate *k)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r = -NLE_DUMP_INTR;

	if (!cb)
		return -ENOMEM;
	for (int tries = 0; tries < 5 && r == -NLE_DUMP_INTR; tries++) {
		struct dump_ctx c = { k, sas, 0 };
		if (sas) {
			mc_wipe(k->sas, k->capsas * sizeof(*k->sas));
			k->nsas = 0;
		} else {
			k->npols = 0;
		}
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, dump_cb, &c);
		r = nl_send_simple(nl->xfrm, sas ? XFRM_MSG_GETSA : XFRM_MSG_GETPOLICY, NLM_F_DUMP, NULL, 0);
		if (r >= 0)
			r = nl_recvmsgs(nl->xfrm, cb);
		if (r >= 0 && c.err) {
			nl_cb_put(cb);
			return c.err;
		}
	}
	nl_cb_put(cb);
	return r < 0 ? nlerr(r) : 0;
}

int mc_nl_dump(struct mc_nl *nl, struct mc_kstate *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = dump_one(nl, false, ret)) < 0 || (r = dump_one(nl, true, ret)) < 0) {
		mc_kstate_free(ret);
		return r;
	}
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

/* An SA's limits; those not set stay infinite. */
static void lft_to_kernel(const struct mc_lifetime *l, struct xfrm_lifetime_cfg *k)
{
	lft_infinite(k);
	if (l->soft_bytes)
		k->soft_byte_limit = l->soft_bytes;
	if (l->hard_bytes)
		k->hard_byte_limit = l->hard_bytes;
	if (l->soft_packets)
		k->soft_packet_limit = l->soft_packets;
	if (l->hard_packets)
		k->hard_packet_limit = l->hard_packets;
	k->soft_add_expires_seconds = l->soft_secs;
	k->hard_add_expires_seconds = l->hard_secs;
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
		t.optional = x->tmpl_optional; /* "level use": inbound accepts clear too */
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
	lft_to_kernel(&x->lft, &info.lft);
	info.reqid = x->reqid;
	info.family = x->family;
	info.mode = XFRM_MODE_TRANSPORT;
	info.replay_window = 0; /* manual keys: anti-replay needs automated keying (RFC 4301 §4.5) */
	/* UPDSA changes what the kernel updates in place (the lifetimes): counters run on. */
	bool upd = op->kind == MC_OP_SA_UPD;
	if (!(m = nlmsg_alloc_simple(upd ? XFRM_MSG_UPDSA : XFRM_MSG_NEWSA,
				     NLM_F_REQUEST | NLM_F_ACK | (upd ? 0 : NLM_F_CREATE | NLM_F_EXCL))))
		return NULL;
	if (nlmsg_append(m, &info, sizeof(info), NLMSG_ALIGNTO) < 0)
		goto fail;
	if (x->oseq_may_wrap && nla_put_u32(m, XFRMA_SA_EXTRA_FLAGS, XFRM_SA_XFLAG_OSEQ_MAY_WRAP) < 0)
		goto fail;
	if (x->oseq && !upd) {
		/* A replacement continues the counter of the SA it replaces (read at the dump). */
		struct xfrm_replay_state rs = { .oseq = x->oseq };
		if (nla_put(m, XFRMA_REPLAY_VAL, sizeof(rs), &rs) < 0)
			goto fail;
	}
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
	return mc_op_is_sa(op->kind) ? build_sa(op) : build_policy(op);
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

int mc_nl_decode_sa(const void *msg, size_t len, struct mc_ksa *ret)
{
	return decode_sa(msg, len, ret);
}

int mc_nl_decode_policy(const void *msg, size_t len, struct mc_kpolicy *ret)
{
	return decode_policy(msg, len, ret);
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
		bool barrier = i < n && i > 0 && mc_op_is_sa(ops[i - 1].kind) && !mc_op_is_sa(ops[i].kind);
		/* Flush the batch when full, at a barrier or at the end; or stop before it, when asked
		 * to (what was sent stays: nothing of it is undone). */
		if ((i == n || barrier || len + l > BATCH_BYTES) && len && nl->stop && nl->stop(nl->stop_ctx)) {
			for (size_t k = first; k < n; k++)
				ops[k].err = -ECANCELED;
			mc_wipe(one, l);
			r = -EINTR;
			break;
		}
		if ((i == n || barrier || len + l > BATCH_BYTES) && len) {
			uint32_t seq0 = nl->seq, port = nl_socket_get_local_port(nl->xfrm);
			for (size_t off = 0, k = 0; off < len; k++) {
				struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
				h->nlmsg_seq = seq0 + (uint32_t)k;
				/* The kernel's XFRM events carry the sender's nlmsg_pid: with our port in it,
				 * mcpsecd tells its own changes from someone else's (monitor.c). */
				h->nlmsg_pid = port;
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

int mc_nl_own_addrs(struct mc_nl *nl, int family, struct mc_addr **ret, size_t *nret)
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

		size_t len = family == AF_INET6 ? 16 : 4;
		if (rtnl_addr_get_family(a) != family || !local || nl_addr_get_len(local) != len)
			continue;
		memset(&x, 0, sizeof(x));
		x.family = (uint8_t)family;
		memcpy(x.a, nl_addr_get_binary_addr(local), len);
		struct mc_addr lo;
		mc_addr_parse(family == AF_INET6 ? "::1" : "127.0.0.1", &lo);
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

/* ---- tc (rtnetlink): the observer's clsact qdiscs and filters ---- */

static int count_cb(struct nl_msg *m, void *arg)
{
	if (nlmsg_hdr(m)->nlmsg_type == RTM_NEWTFILTER)
		(*(size_t *)arg)++;
	return NL_OK;
}

/* One rtnetlink dump (type, with the request body hdr), each message to cb. 0 or -errno. */
static int rtnl_dump(int type, void *hdr, size_t len, nl_recvmsg_msg_cb_t cb_fn, void *arg)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r = -NLE_NOMEM;

	if (sk && cb && (r = nl_connect(sk, NETLINK_ROUTE)) >= 0) {
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_fn, arg);
		r = nl_send_simple(sk, type, NLM_F_DUMP, hdr, len);
		if (r >= 0)
			r = nl_recvmsgs(sk, cb);
	}
	if (cb)
		nl_cb_put(cb);
	if (sk)
		nl_socket_free(sk);
	return r < 0 ? nlerr(r) : 0;
}

int mc_nl_tc_filters(int ifindex, uint32_t parent, size_t *n)
{
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = parent };

	*n = 0;
	return rtnl_dump(RTM_GETTFILTER, &t, sizeof(t), count_cb, n);
}

/* A legacy ingress qdisc (not clsact) at ifindex: the observer's clsact filters would land on it. */
struct legacy_q {
	int ifindex;
	bool found;
};

static int legacy_cb(struct nl_msg *m, void *arg)
{
	struct legacy_q *q = arg;
	const struct nlmsghdr *h = nlmsg_hdr(m);
	struct tcmsg t;
	struct attrs at;
	char kind[16] = "";

	if (h->nlmsg_type != RTM_NEWQDISC || !msg_open(h, h->nlmsg_len, sizeof(t), &t, &at))
		return NL_OK;
	if (t.tcm_ifindex == q->ifindex && t.tcm_parent == TC_H_INGRESS &&
	    attr_get(&at, TCA_KIND, kind, 1, sizeof(kind) - 1) && !strcmp(kind, "ingress"))
		q->found = true;
	return NL_OK;
}

int mc_nl_tc_ingress_legacy(int ifindex, bool *legacy)
{
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex };
	struct legacy_q q = { ifindex, false };
	int r = rtnl_dump(RTM_GETQDISC, &t, sizeof(t), legacy_cb, &q);

	*legacy = q.found;
	return r;
}

/* ---- nftables (nfnetlink): the staging observer's counting sets ---- */

/* The attributes nested in attribute type of at; false when absent or malformed. */
static bool nested(const struct attrs *at, int type, struct attrs *ret)
{
	const struct nlattr *a = at->tb[type];
	struct nlattr h;

	if (!a)
		return false;
	memcpy(&h, a, sizeof(h));
	return attrs_parse((const uint8_t *)a + sizeof(h), h.nla_len - sizeof(h), ret);
}

/* A walk over the attributes nested in one (a list, whose entries share a type). */
struct nla_walk {
	const uint8_t *p;
	size_t len;
	bool bad; /* an entry's length was malformed: the walk stopped there */
};

static void walk_start(const struct nlattr *a, struct nla_walk *w)
{
	struct nlattr h;

	memcpy(&h, a, sizeof(h));
	w->p = (const uint8_t *)a + sizeof(h);
	w->len = h.nla_len - sizeof(h);
	w->bad = false;
}

/* The next entry: its type and payload; false at the end, or (w->bad) at a malformed entry. */
static bool walk_next(struct nla_walk *w, uint16_t *type, const uint8_t **payload, size_t *plen)
{
	struct nlattr h;

	if (w->len < sizeof(h))
		return false;
	memcpy(&h, w->p, sizeof(h));
	if (h.nla_len < sizeof(h) || h.nla_len > w->len) {
		w->bad = true;
		return false;
	}
	*type = h.nla_type & NLA_TYPE_MASK;
	*payload = w->p + sizeof(h);
	*plen = h.nla_len - sizeof(h);
	size_t step = NLA_ALIGN(h.nla_len);
	w->p += step < w->len ? step : w->len;
	w->len -= step < w->len ? step : w->len;
	return true;
}

/* A counter expression's packets and bytes (ex: an expression's attributes); false when ex is
 * another expression. */
static bool expr_counter(const struct attrs *ex, uint64_t *packets, uint64_t *bytes)
{
	char name[16] = { 0 };
	struct attrs d;
	uint64_t v;

	if (!attr_get(ex, NFTA_EXPR_NAME, name, 1, sizeof(name) - 1) || strcmp(name, "counter") ||
	    !nested(ex, NFTA_EXPR_DATA, &d))
		return false;
	*packets = attr_get(&d, NFTA_COUNTER_PACKETS, &v, 8, 8) ? be64toh(v) : 0;
	*bytes = attr_get(&d, NFTA_COUNTER_BYTES, &v, 8, 8) ? be64toh(v) : 0;
	return true;
}

/*
 * One element of a counting set: its key, a concatenation of source, destination, protocol and
 * two 16-bit words, each field in a 4-byte register (20 bytes for IPv4, 44 for IPv6), and its
 * counter (one expression: NFTA_SET_ELEM_EXPR; more: a list). False for any other key.
 */
static bool setelem(const uint8_t *p, size_t len, struct mc_setflow *ret)
{
	struct attrs el, key, ex;
	uint8_t k[44];
	uint16_t w;

	memset(ret, 0, sizeof(*ret));
	if (!attrs_parse(p, len, &el) || !nested(&el, NFTA_SET_ELEM_KEY, &key))
		return false;
	size_t klen = attr_get(&key, NFTA_DATA_VALUE, k, 1, sizeof(k));
	if (klen != 20 && klen != 44)
		return false;
	struct mc_sel *s = &ret->flow;
	size_t alen = klen == 20 ? 4 : 16;
	s->family = s->saddr.family = s->daddr.family = alen == 4 ? AF_INET : AF_INET6;
	memcpy(s->saddr.a, k, alen);
	memcpy(s->daddr.a, k + alen, alen);
	s->plen_s = s->plen_d = (uint8_t)(alen * 8);
	s->proto = k[2 * alen];
	if (MC_WIRE_HAS_PORTS(s->proto)) {
		memcpy(&w, k + 2 * alen + 4, 2);
		s->sport = ntohs(w);
		memcpy(&w, k + 2 * alen + 8, 2);
		s->dport = ntohs(w);
	} else if (MC_WIRE_IS_ICMP(s->proto)) { /* type and code where the ports would be */
		s->sport = k[2 * alen + 4];
		s->dport = k[2 * alen + 5];
	}
	s->sport_mask = s->dport_mask = 0xffff;
	if (nested(&el, NFTA_SET_ELEM_EXPR, &ex)) {
		(void)expr_counter(&ex, &ret->packets, &ret->bytes);
	} else if (el.tb[NFTA_SET_ELEM_EXPRESSIONS]) {
		struct nla_walk w2;
		uint16_t type;
		const uint8_t *q;
		size_t qlen;
		walk_start(el.tb[NFTA_SET_ELEM_EXPRESSIONS], &w2);
		while (walk_next(&w2, &type, &q, &qlen))
			if (type == NFTA_LIST_ELEM && attrs_parse(q, qlen, &ex) &&
			    expr_counter(&ex, &ret->packets, &ret->bytes))
				break;
	}
	return true;
}

int mc_nl_decode_setelems(const void *msg, size_t len, struct mc_setflow **v, size_t *n, size_t *cap)
{
	struct nfgenmsg g;
	struct attrs at;
	struct nla_walk w;
	uint16_t type;
	const uint8_t *p;
	size_t plen;

	if (!msg_open(msg, len, sizeof(g), &g, &at))
		return -EBADMSG;
	if (!at.tb[NFTA_SET_ELEM_LIST_ELEMENTS])
		return 0;
	walk_start(at.tb[NFTA_SET_ELEM_LIST_ELEMENTS], &w);
	while (walk_next(&w, &type, &p, &plen))
		if (type == NFTA_LIST_ELEM && !setelem(p, plen, MC_PUSH(v, n, cap)))
			(*n)--; /* a key of another shape: not a flow */
	return w.bad ? -EBADMSG : 0;
}

int mc_nl_decode_counter(const void *msg, size_t len, struct mc_nftcounter *ret)
{
	struct nfgenmsg g;
	struct attrs at, d;
	uint32_t type = 0;
	uint64_t v;

	memset(ret, 0, sizeof(*ret));
	if (!msg_open(msg, len, sizeof(g), &g, &at) || !attr_get(&at, NFTA_OBJ_TYPE, &type, 4, 4) ||
	    ntohl(type) != NFT_OBJECT_COUNTER || !attr_get(&at, NFTA_OBJ_NAME, ret->name, 1, sizeof(ret->name) - 1) ||
	    !nested(&at, NFTA_OBJ_DATA, &d))
		return -EBADMSG;
	ret->packets = attr_get(&d, NFTA_COUNTER_PACKETS, &v, 8, 8) ? be64toh(v) : 0;
	ret->bytes = attr_get(&d, NFTA_COUNTER_BYTES, &v, 8, 8) ? be64toh(v) : 0;
	return 0;
}

struct nft_ctx {
	uint16_t type; /* of the answers */
	struct mc_setflow *elems;
	struct mc_nftcounter *counters;
	size_t n, cap;
	bool bad;
};

static int nft_cb(struct nl_msg *m, void *arg)
{
	struct nft_ctx *c = arg;
	struct nlmsghdr *h = nlmsg_hdr(m);

	if (h->nlmsg_type != (NFNL_SUBSYS_NFTABLES << 8 | c->type))
		return NL_OK;
	if (c->type == NFT_MSG_NEWSETELEM) {
		if (mc_nl_decode_setelems(h, h->nlmsg_len, &c->elems, &c->n, &c->cap) < 0)
			c->bad = true;
	} else if (mc_nl_decode_counter(h, h->nlmsg_len, MC_PUSH(&c->counters, &c->n, &c->cap)) < 0) {
		c->n--; /* another kind of object */
	}
	return NL_OK;
}

/* Dumps the elements of inet table's set (set non-NULL, GETSETELEM) or its counters (GETOBJ). */
static int nft_dump(const char *table, const char *set, struct nft_ctx *c)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r = -NLE_NOMEM;

	c->type = set ? NFT_MSG_NEWSETELEM : NFT_MSG_NEWOBJ;
	if (!sk || !cb)
		goto out;
	if ((r = nl_connect(sk, NETLINK_NETFILTER)) < 0)
		goto out;
	(void)nl_socket_set_buffer_size(sk, 1 << 20, 0);
	r = -NLE_DUMP_INTR;
	for (int tries = 0; tries < 5 && r == -NLE_DUMP_INTR; tries++) {
		struct nfgenmsg g = { .nfgen_family = NFPROTO_INET, .version = NFNETLINK_V0 };
		struct nl_msg *m = nlmsg_alloc_simple(NFNL_SUBSYS_NFTABLES << 8 | (set ? NFT_MSG_GETSETELEM : NFT_MSG_GETOBJ),
						      NLM_F_DUMP);
		c->n = 0;
		c->bad = false;
		if (!m || nlmsg_append(m, &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
		    nla_put_string(m, set ? NFTA_SET_ELEM_LIST_TABLE : NFTA_OBJ_TABLE, table) < 0 ||
		    (set && nla_put_string(m, NFTA_SET_ELEM_LIST_SET, set) < 0)) {
			nlmsg_free(m);
			r = -NLE_NOMEM;
			break;
		}
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, nft_cb, c);
		r = nl_send_auto(sk, m);
		nlmsg_free(m);
		if (r >= 0)
			r = nl_recvmsgs(sk, cb);
	}
out:
	if (cb)
		nl_cb_put(cb);
	if (sk)
		nl_socket_free(sk);
	if (r >= 0 && c->bad)
		r = -NLE_MSG_TRUNC; /* a malformed answer */
	return r < 0 ? nlerr(r) : 0;
}

int mc_nl_nft_elems(const char *table, const char *set, struct mc_setflow **ret, size_t *nret)
{
	struct nft_ctx c = { 0 };
	int r = nft_dump(table, set, &c);

	if (r < 0) {
		free(c.elems);
		return r;
	}
	*ret = c.elems;
	*nret = c.n;
	return 0;
}

int mc_nl_nft_counters(const char *table, struct mc_nftcounter **ret, size_t *nret)
{
	struct nft_ctx c = { 0 };
	int r = nft_dump(table, NULL, &c);

	if (r < 0) {
		free(c.counters);
		return r;
	}
	*ret = c.counters;
	*nret = c.n;
	return 0;
}

/* ---- events (the daemon's multicast socket) ---- */

struct mc_nlmon {
	int fd;
	struct nl_sock *sk;
	struct nl_sock *addr; /* rtnetlink IPv6 address events (the own-address bypass) */
};

/* ---- the kernel's default policy (XFRM_MSG_GETDEFAULT / SETDEFAULT, Linux >= 5.15) ---- */

static int default_cb(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct xfrm_userpolicy_default *ret = arg;

	if (h->nlmsg_type == XFRM_MSG_GETDEFAULT && h->nlmsg_len >= NLMSG_LENGTH(sizeof(*ret)))
		memcpy(ret, NLMSG_DATA(h), sizeof(*ret));
	return NL_OK;
}

int mc_nl_get_default(struct mc_nl *nl, bool *in_block, bool *out_block)
{
	struct xfrm_userpolicy_default d = { 0 }, got = { 0 };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r;

	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, default_cb, &got);
	/* The reply, then libnl's ACK (which also moves its expected sequence number on). */
	r = nl_send_simple(nl->xfrm, XFRM_MSG_GETDEFAULT, 0, &d, sizeof(d));
	if (r >= 0)
		r = nl_recvmsgs(nl->xfrm, cb);
	if (r >= 0)
		r = nl_wait_for_ack(nl->xfrm);
	nl_cb_put(cb);
	if (r < 0)
		return nlerr(r);
	if (!got.in || !got.out)
		return -EOPNOTSUPP; /* no reply of that type: a kernel without the message */
	*in_block = got.in == XFRM_USERPOLICY_BLOCK;
	*out_block = got.out == XFRM_USERPOLICY_BLOCK;
	return 0;
}

int mc_nl_set_default(struct mc_nl *nl, bool in_block, bool out_block)
{
	/* fwd stays UNSPEC (0): the kernel leaves it as it is; mcpsec owns no forwarding. */
	struct xfrm_userpolicy_default d = {
		.in = in_block ? XFRM_USERPOLICY_BLOCK : XFRM_USERPOLICY_ACCEPT,
		.fwd = XFRM_USERPOLICY_UNSPEC,
		.out = out_block ? XFRM_USERPOLICY_BLOCK : XFRM_USERPOLICY_ACCEPT,
	};
	struct nl_msg *m = nlmsg_alloc_simple(XFRM_MSG_SETDEFAULT, NLM_F_REQUEST | NLM_F_ACK);
	int r;

	if (!m)
		return -ENOMEM;
	if ((r = nlmsg_append(m, &d, sizeof(d), NLMSG_ALIGNTO)) >= 0 && (r = nl_send_auto(nl->xfrm, m)) >= 0)
		r = nl_wait_for_ack(nl->xfrm);
	nlmsg_free(m);
	return r < 0 ? nlerr(r) : 0;
}

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

/* One message → one event; false when it is not one we decode (malformed, or too short for its
 * type). Unknown types are MC_EV_OTHER. */
static bool decode_event(const void *msg, size_t buflen, struct mc_event *ev)
{
	struct nlmsghdr h;
	struct attrs at;

	memset(ev, 0, sizeof(*ev));
	if (buflen < sizeof(h))
		return false;
	memcpy(&h, msg, sizeof(h));
	ev->portid = h.nlmsg_pid;
	switch (h.nlmsg_type) {
	case XFRM_MSG_ACQUIRE: {
		struct xfrm_user_acquire a;
		if (!msg_open(msg, buflen, sizeof(a), &a, &at))
			return false;
		ev->kind = MC_EV_ACQUIRE;
		ev_policy(&a.policy, ev);
		sel_from_uapi(&a.sel, &ev->flow);
		ev->family = a.sel.family;
		addr_from_uapi(&a.saddr, a.sel.family, &ev->saddr);
		addr_from_uapi(&a.id.daddr, a.sel.family, &ev->daddr);
		ev->proto = a.id.proto;
		struct xfrm_user_tmpl t;
		if (attr_get(&at, XFRMA_TMPL, &t, sizeof(t), sizeof(t))) {
			ev->spi = ntohl(t.id.spi);
			ev->reqid = t.reqid;
			ev->proto = t.id.proto;
		}
		return true;
	}
	case XFRM_MSG_EXPIRE: {
		struct xfrm_user_expire e;
		if (!msg_open(msg, buflen, sizeof(e), &e, &at))
			return false;
		ev->kind = MC_EV_SA_EXPIRE;
		ev_sa(&e.state, ev);
		ev->hard = e.hard;
		return true;
	}
	case XFRM_MSG_NEWSA:
	case XFRM_MSG_UPDSA: {
		struct xfrm_usersa_info info;
		if (!msg_open(msg, buflen, sizeof(info), &info, &at))
			return false;
		ev->kind = h.nlmsg_type == XFRM_MSG_NEWSA ? MC_EV_SA_NEW : MC_EV_SA_UPD;
		ev_sa(&info, ev);
		return true;
	}
	case XFRM_MSG_DELSA: {
		struct xfrm_usersa_id id;
		if (!msg_open(msg, buflen, sizeof(id), &id, &at))
			return false;
		ev->kind = MC_EV_SA_DEL;
		ev->family = (uint8_t)id.family;
		addr_from_uapi(&id.daddr, id.family, &ev->daddr);
		ev->spi = ntohl(id.spi);
		ev->proto = id.proto;
		struct xfrm_usersa_info info;
		if (attr_get(&at, XFRMA_SA, &info, sizeof(info), sizeof(info)))
			ev_sa(&info, ev);
		return true;
	}
	case XFRM_MSG_FLUSHSA: {
		struct xfrm_usersa_flush fl;
		ev->kind = MC_EV_SA_FLUSH;
		if (msg_open(msg, buflen, sizeof(fl), &fl, &at))
			ev->proto = fl.proto;
		return true;
	}
	case XFRM_MSG_NEWPOLICY:
	case XFRM_MSG_UPDPOLICY: {
		struct xfrm_userpolicy_info info;
		if (!msg_open(msg, buflen, sizeof(info), &info, &at))
			return false;
		ev->kind = h.nlmsg_type == XFRM_MSG_NEWPOLICY ? MC_EV_POL_NEW : MC_EV_POL_UPD;
		ev_policy(&info, ev);
		return true;
	}
	case XFRM_MSG_DELPOLICY: {
		struct xfrm_userpolicy_id id;
		if (!msg_open(msg, buflen, sizeof(id), &id, &at))
			return false;
		ev->kind = MC_EV_POL_DEL;
		sel_from_uapi(&id.sel, &ev->sel);
		ev->dir = id.dir == XFRM_POLICY_IN ? MC_DIR_IN : MC_DIR_OUT;
		ev->index = id.index;
		struct xfrm_userpolicy_info info;
		if (attr_get(&at, XFRMA_POLICY, &info, sizeof(info), sizeof(info)))
			ev_policy(&info, ev);
		return true;
	}
	case XFRM_MSG_FLUSHPOLICY:
		ev->kind = MC_EV_POL_FLUSH;
		return true;
	case XFRM_MSG_POLEXPIRE: {
		struct xfrm_user_polexpire e;
		if (!msg_open(msg, buflen, sizeof(e), &e, &at))
			return false;
		ev->kind = MC_EV_POL_EXPIRE;
		ev_policy(&e.pol, ev);
		ev->hard = e.hard;
		return true;
	}
	default:
		ev->kind = MC_EV_OTHER;
		return true;
	}
}

int mc_nl_decode_event(const void *msg, size_t len, struct mc_event *ret)
{
	return decode_event(msg, len, ret) ? 0 : -EINVAL;
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
			if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE ||
			    !decode_event(h, (size_t)left, &ev))
				continue;
			cb(ctx, &ev);
			total++;
		}
	}
}
