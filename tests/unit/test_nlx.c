/* SPDX-License-Identifier: MIT */
/* SA and policy message encoding, checked without a kernel: read back through the kernel uapi
 * structs directly and through mcpsec's own decoder (libnl-xfrm is not used: lib/nlx.c). */
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <sys/socket.h>

#include "../../lib/algo.h"
#include "../../lib/compile.h"
#include "../../lib/drops.h"
#include "../../lib/nlx.h"
#include "../../lib/util.h"
#include "../../lib/wire.h"
#include "t.h"

/* The first attribute of a given type after the fixed header. */
static const struct nlattr *find_attr(const void *msg, size_t hdrlen, int type)
{
	const struct nlmsghdr *h = msg;
	const char *p = (const char *)msg + NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);
	const char *end = (const char *)msg + h->nlmsg_len;

	while (p + sizeof(struct nlattr) <= end) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < sizeof(*a))
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		p += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

static struct mc_op sa_op(const char *integ, const char *conf, size_t ilen, size_t elen, uint8_t proto)
{
	struct mc_op op;

	memset(&op, 0, sizeof(op));
	op.kind = MC_OP_SA_ADD;
	op.sa.family = AF_INET6;
	mc_addr_parse("fec0::2222:a00:bff:fe3a:100", &op.sa.saddr);
	mc_addr_parse("fec0::2222:a00:bff:fe3a:127", &op.sa.daddr);
	op.sa.spi = 24577;
	op.sa.proto = proto;
	op.sa.reqid = MC_REQID_LEGACY;
	op.sa.integrity = integ ? mc_alg_find(integ, MC_ALG_INTEGRITY) : NULL;
	op.sa.confidentiality = conf ? mc_alg_find(conf, MC_ALG_CONFIDENTIALITY) : NULL;
	op.sa.ikey_len = ilen;
	op.sa.ekey_len = elen;
	for (size_t i = 0; i < ilen; i++)
		op.sa.ikey[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < elen; i++)
		op.sa.ekey[i] = (uint8_t)(0x10 + i);
	return op;
}

/* want_kernel/want_trunc are written out here, not read from the algorithm table, so that a
 * wrong table entry fails this test (RFC 4868: sha256 is 128 bits, not the kernel's 96). */
static void test_sa(const char *integ, const char *conf, size_t ilen, size_t elen, uint8_t proto,
		    const char *want_kernel, unsigned want_trunc, const char *label)
{
	uint8_t buf[4096];
	struct mc_op op = sa_op(integ, conf, ilen, elen, proto);
	size_t len = mc_nl_encode(&op, 7, buf, sizeof(buf));
	struct mc_ksa k;

	T_OK(len > 0, "%s: encodes", label);
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	T_OK(h->nlmsg_type == XFRM_MSG_NEWSA && (h->nlmsg_flags & NLM_F_ACK) && (h->nlmsg_flags & NLM_F_EXCL) &&
	     h->nlmsg_seq == 7, "%s: NEWSA, acked, exclusive", label);
	const struct xfrm_usersa_info *info = (const struct xfrm_usersa_info *)(buf + NLMSG_HDRLEN);
	T_OK(info->lft.hard_byte_limit == XFRM_INF && info->lft.hard_packet_limit == XFRM_INF &&
	     info->lft.soft_byte_limit == XFRM_INF && info->lft.hard_add_expires_seconds == 0,
	     "%s: infinite lifetimes (a zero lifetime would expire the SA at once)", label);
	T_OK(info->mode == XFRM_MODE_TRANSPORT && info->replay_window == 0 && info->id.spi == htonl(24577) &&
	     info->reqid == MC_REQID_LEGACY, "%s: transport mode, no replay window, SPI in network order, reqid", label);

	T_EQ_INT(mc_nl_decode_sa(buf, len, &k), 0, "%s: the checked decoder reads it back", label);
	struct mc_ksa scratch;
	T_OK(mc_nl_decode_sa(buf, len - 4, &scratch) < 0, "%s: a message longer than its buffer is refused", label);
	char a[64], b[64];
	T_OK(k.x.spi == 24577 && k.x.proto == proto && k.x.reqid == MC_REQID_LEGACY && k.x.family == AF_INET6 &&
	     !strcmp(mc_addr_str(&k.x.saddr, a, sizeof(a)), "fec0::2222:a00:bff:fe3a:100") &&
	     !strcmp(mc_addr_str(&k.x.daddr, b, sizeof(b)), "fec0::2222:a00:bff:fe3a:127"),
	     "%s: decoded SPI, protocol, reqid and addresses match", label);
	if (integ) {
		const struct mc_alg *alg = mc_alg_find(integ, MC_ALG_INTEGRITY);
		const struct nlattr *at = find_attr(buf, sizeof(struct xfrm_usersa_info), XFRMA_ALG_AUTH_TRUNC);
		const struct xfrm_algo_auth *aa = at ? (const struct xfrm_algo_auth *)(at + 1) : NULL;
		T_OK(aa && aa->alg_trunc_len == want_trunc && !strcmp(aa->alg_name, want_kernel) &&
		     aa->alg_key_len == ilen * 8, "%s: explicit truncation %u bits for %s", label, want_trunc,
		     want_kernel);
		T_OK(!find_attr(buf, sizeof(struct xfrm_usersa_info), XFRMA_ALG_AUTH),
		     "%s: no untruncated XFRMA_ALG_AUTH (the kernel default for sha256 is 96)", label);
		T_OK(k.x.integrity == alg && k.x.ikey_len == ilen && !memcmp(k.x.ikey, op.sa.ikey, ilen),
		     "%s: integrity key round-trips", label);
	}
	if (conf) {
		T_OK(k.x.confidentiality && k.x.ekey_len == elen && !memcmp(k.x.ekey, op.sa.ekey, elen),
		     "%s: cipher and key round-trip", label);
	} else if (proto == MC_PROTO_ESP) {
		T_OK(!strcmp(k.enc_name, MC_NULL_CIPHER) && !k.x.confidentiality,
		     "%s: integrity-only ESP carries an explicit null cipher", label);
	} else {
		T_OK(!find_attr(buf, sizeof(struct xfrm_usersa_info), XFRMA_ALG_CRYPT), "%s: AH carries no cipher", label);
	}
	mc_wipe(buf, sizeof(buf));
}

static void test_policy(void)
{
	uint8_t buf[4096];
	struct mc_op op;
	struct mc_kpolicy k;

	memset(&op, 0, sizeof(op));
	op.kind = MC_OP_POL_ADD;
	op.pol.dir = MC_DIR_IN;
	op.pol.sel.family = AF_INET6;
	mc_addr_parse("fec0::2222:a00:bff:fe3a:127", &op.pol.sel.saddr);
	op.pol.sel.daddr.family = AF_INET6;
	op.pol.sel.plen_s = 128;
	op.pol.sel.proto = 6;
	op.pol.sel.sport = 20;
	op.pol.sel.sport_mask = 0xfffe;
	op.pol.priority = MC_PRIO_USER_LO + 0x300;
	op.pol.action = MC_PROTECT;
	op.pol.tmpl_proto = MC_PROTO_ESP;
	op.pol.tmpl_spi = 24578;
	op.pol.tmpl_reqid = MC_REQID_LEGACY;

	size_t len = mc_nl_encode(&op, 1, buf, sizeof(buf));
	T_OK(len > 0 && ((struct nlmsghdr *)buf)->nlmsg_type == XFRM_MSG_NEWPOLICY, "policy: NEWPOLICY encodes");
	const struct xfrm_userpolicy_info *info = (const struct xfrm_userpolicy_info *)(buf + NLMSG_HDRLEN);
	T_OK(info->sel.sport == htons(20) && info->sel.sport_mask == htons(0xfffe) && info->sel.prefixlen_s == 128 &&
	     info->sel.prefixlen_d == 0 && info->action == XFRM_POLICY_ALLOW && info->dir == XFRM_POLICY_IN,
	     "policy: selector in network order, allow, dir in");
	const struct nlattr *at = find_attr(buf, sizeof(*info), XFRMA_TMPL);
	const struct xfrm_user_tmpl *t = at ? (const struct xfrm_user_tmpl *)(at + 1) : NULL;
	T_OK(t && t->aalgos == ~0u && t->ealgos == ~0u && t->calgos == ~0u && t->optional == 0 &&
	     t->mode == XFRM_MODE_TRANSPORT && t->id.spi == htonl(24578) && t->reqid == MC_REQID_LEGACY,
	     "policy: template required, transport, SPI pinned, algorithm masks ~0");
	T_EQ_INT(mc_nl_decode_policy(buf, len, &k), 0, "policy: the checked decoder reads it back");
	((struct nlattr *)at)->nla_len = (uint16_t)(len + 8); /* runs past the message */
	struct mc_kpolicy scratch;
	T_OK(mc_nl_decode_policy(buf, len, &scratch) < 0, "policy: an attribute running past the message is refused");
	((struct nlattr *)at)->nla_len = (uint16_t)(NLA_HDRLEN + sizeof(struct xfrm_user_tmpl));
	T_OK(k.x.priority == op.pol.priority && k.x.action == MC_PROTECT && k.x.tmpl_spi == 24578 &&
	     mc_sel_eq(&k.x.sel, &op.pol.sel), "policy: decoded selector, priority and template match");

	/* A phase-in's inbound template is optional ("level use"), and reads back as such. */
	op.pol.tmpl_optional = true;
	len = mc_nl_encode(&op, 1, buf, sizeof(buf));
	at = find_attr(buf, sizeof(*info), XFRMA_TMPL);
	t = at ? (const struct xfrm_user_tmpl *)(at + 1) : NULL;
	T_OK(t && t->optional == 1, "policy: an optional template is sent optional");
	T_OK(mc_nl_decode_policy(buf, len, &k) == 0 && k.x.tmpl_optional, "policy: and decoded optional");
	op.pol.tmpl_optional = false;

	op.kind = MC_OP_POL_DEL;
	len = mc_nl_encode(&op, 2, buf, sizeof(buf));
	const struct xfrm_userpolicy_id *id = (const struct xfrm_userpolicy_id *)(buf + NLMSG_HDRLEN);
	T_OK(len && ((struct nlmsghdr *)buf)->nlmsg_type == XFRM_MSG_DELPOLICY && id->index == 0 &&
	     id->sel.sport == htons(20) && id->dir == XFRM_POLICY_IN, "policy: DELPOLICY by selector");

	op.kind = MC_OP_POL_ADD;
	op.pol.action = MC_DISCARD;
	len = mc_nl_encode(&op, 3, buf, sizeof(buf));
	T_OK(len && info->action == XFRM_POLICY_BLOCK && !find_attr(buf, sizeof(*info), XFRMA_TMPL),
	     "policy: discard is block, without template");
}

/* Event messages as the kernel multicasts them (uapi layout), decoded for the daemon. */
static void test_events(void)
{
	uint8_t buf[512] __attribute__((aligned(8)));
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct mc_event ev;

	/* ACQUIRE: the packet's flow, the policy's priority, the template's SPI and reqid. */
	memset(buf, 0, sizeof(buf));
	struct xfrm_user_acquire *a = (struct xfrm_user_acquire *)(buf + NLMSG_HDRLEN);
	a->sel.family = AF_INET6;
	inet_pton(AF_INET6, "fec0::100", &a->sel.saddr);
	inet_pton(AF_INET6, "fec0::127", &a->sel.daddr);
	a->sel.prefixlen_s = a->sel.prefixlen_d = 128;
	a->sel.proto = MC_PROTO_TCP;
	a->sel.sport = htons(40000);
	a->sel.dport = htons(21);
	a->policy.priority = MC_PRIO_USER_LO + 0x500;
	a->policy.dir = XFRM_POLICY_OUT;
	a->id.proto = MC_PROTO_ESP;
	struct nlattr *at = (struct nlattr *)(buf + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*a)));
	at->nla_type = XFRMA_TMPL;
	at->nla_len = (uint16_t)(NLA_HDRLEN + sizeof(struct xfrm_user_tmpl));
	struct xfrm_user_tmpl t;
	memset(&t, 0, sizeof(t));
	t.id.spi = htonl(24577);
	t.id.proto = MC_PROTO_ESP;
	t.reqid = MC_REQID_LEGACY;
	memcpy((uint8_t *)at + NLA_HDRLEN, &t, sizeof(t)); /* attribute payloads are 4-byte aligned */
	h->nlmsg_type = XFRM_MSG_ACQUIRE;
	h->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*a)) + NLA_ALIGN(at->nla_len));
	h->nlmsg_pid = 0;
	T_OK(mc_nl_decode_event(buf, sizeof(buf), &ev) == 0 && ev.kind == MC_EV_ACQUIRE, "ACQUIRE decodes");
	char s1[64], s2[64];
	T_OK(ev.flow.sport == 40000 && ev.flow.dport == 21 && ev.flow.proto == MC_PROTO_TCP &&
	     !strcmp(mc_addr_str(&ev.flow.saddr, s1, sizeof(s1)), "fec0::100") &&
	     !strcmp(mc_addr_str(&ev.flow.daddr, s2, sizeof(s2)), "fec0::127"), "ACQUIRE: the flow, ports in host order");
	T_OK(ev.priority == MC_PRIO_USER_LO + 0x500 && ev.dir == MC_DIR_OUT && ev.spi == 24577 &&
	     ev.reqid == MC_REQID_LEGACY && ev.proto == MC_PROTO_ESP, "ACQUIRE: priority, and the template's spi and reqid");

	/* DELPOLICY: the id, then the whole policy (with its priority) as XFRMA_POLICY. */
	memset(buf, 0, sizeof(buf));
	struct xfrm_userpolicy_id *id = (struct xfrm_userpolicy_id *)(buf + NLMSG_HDRLEN);
	id->dir = XFRM_POLICY_IN;
	id->sel.family = AF_INET6;
	at = (struct nlattr *)(buf + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*id)));
	at->nla_type = XFRMA_POLICY;
	at->nla_len = (uint16_t)(NLA_HDRLEN + sizeof(struct xfrm_userpolicy_info));
	struct xfrm_userpolicy_info pi;
	memset(&pi, 0, sizeof(pi));
	pi.priority = MC_PRIO_DEFAULT;
	pi.dir = XFRM_POLICY_IN;
	pi.sel.family = AF_INET6;
	memcpy((uint8_t *)at + NLA_HDRLEN, &pi, sizeof(pi));
	h->nlmsg_type = XFRM_MSG_DELPOLICY;
	h->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*id)) + NLA_ALIGN(at->nla_len));
	h->nlmsg_pid = 4242;
	T_OK(mc_nl_decode_event(buf, sizeof(buf), &ev) == 0 && ev.kind == MC_EV_POL_DEL && ev.priority == MC_PRIO_DEFAULT &&
	     ev.dir == MC_DIR_IN && ev.portid == 4242, "DELPOLICY: priority from XFRMA_POLICY, the sender's port");

	/* A truncated message is refused, not read past its end. */
	h->nlmsg_type = XFRM_MSG_ACQUIRE;
	h->nlmsg_len = NLMSG_HDRLEN + 8;
	T_OK(mc_nl_decode_event(buf, sizeof(buf), &ev) < 0, "a truncated ACQUIRE is refused");
}

/* Outbound SAs carry OSEQ_MAY_WRAP and, when they replace a running SA, its counter; inbound
 * SAs carry neither. Read back by the decoder the dump uses. */
static void test_sa_wrap(void)
{
	for (int out = 0; out < 2; out++) {
		uint8_t buf[4096];
		struct mc_op op = sa_op("hmac-sha256-128", NULL, 32, 0, MC_PROTO_ESP);
		struct mc_ksa k;
		op.sa.oseq_may_wrap = out;
		op.sa.oseq = out ? 0xfffff000u : 0;
		size_t len = mc_nl_encode(&op, 1, buf, sizeof(buf));
		const struct nlattr *xf = find_attr(buf, sizeof(struct xfrm_usersa_info), XFRMA_SA_EXTRA_FLAGS);
		const struct nlattr *rv = find_attr(buf, sizeof(struct xfrm_usersa_info), XFRMA_REPLAY_VAL);
		uint32_t flags = 0;
		struct xfrm_replay_state rs = { 0 };
		if (xf)
			memcpy(&flags, xf + 1, sizeof(flags));
		if (rv)
			memcpy(&rs, rv + 1, sizeof(rs));
		if (out) {
			T_OK(xf && flags == XFRM_SA_XFLAG_OSEQ_MAY_WRAP, "outbound SA: XFRMA_SA_EXTRA_FLAGS = OSEQ_MAY_WRAP");
			T_OK(rv && rs.oseq == 0xfffff000u && rs.seq == 0, "a replacement carries the send counter in XFRMA_REPLAY_VAL");
		} else {
			T_OK(!xf && !rv, "inbound SA: no extra flags (kernel >= 6.10 refuses OSEQ_MAY_WRAP there), no counter");
		}
		T_OK(mc_nl_decode_sa(buf, len, &k) == 0 && k.x.oseq_may_wrap == (bool)out && k.x.oseq == op.sa.oseq,
		     "%s: flag and counter decode back", out ? "outbound" : "inbound");
	}
}

/* Lifetimes: the limits set, the others infinite; an update is UPDSA without the counter. */
static void test_sa_lifetime(void)
{
	uint8_t buf[4096];
	struct mc_op op = sa_op("hmac-sha256-128", NULL, 32, 0, MC_PROTO_ESP);
	struct mc_ksa k;

	op.kind = MC_OP_SA_UPD;
	op.sa.oseq = 77;
	op.sa.lft = (struct mc_lifetime){ .soft_packets = 900, .hard_packets = 1000, .soft_secs = 3600 };
	size_t len = mc_nl_encode(&op, 1, buf, sizeof(buf));
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	const struct xfrm_usersa_info *info = (const struct xfrm_usersa_info *)(buf + NLMSG_HDRLEN);
	T_OK(h->nlmsg_type == XFRM_MSG_UPDSA && !(h->nlmsg_flags & NLM_F_EXCL), "SA_UPD is UPDSA");
	T_OK(info->lft.soft_packet_limit == 900 && info->lft.hard_packet_limit == 1000 &&
	     info->lft.soft_add_expires_seconds == 3600 && info->lft.hard_add_expires_seconds == 0 &&
	     info->lft.soft_byte_limit == XFRM_INF && info->lft.hard_byte_limit == XFRM_INF,
	     "the limits given, every other one infinite");
	T_OK(!find_attr(buf, sizeof(struct xfrm_usersa_info), XFRMA_REPLAY_VAL), "an update never sends a counter");
	T_OK(mc_nl_decode_sa(buf, len, &k) == 0 && k.x.lft.hard_packets == 1000 && k.x.lft.soft_secs == 3600 &&
	     k.x.lft.hard_bytes == 0, "decoded back, infinite as 0");
}

/* ---- nftables: messages built the way the kernel lays them out (nf_tables_fill_setelem,
 * nf_tables_fill_obj_info) ---- */

struct nbuf {
	uint8_t b[2048];
	size_t len;
	size_t open[8];
	int depth;
};

static void n_put(struct nbuf *m, int type, const void *v, size_t len)
{
	struct nlattr a = { (uint16_t)(sizeof(a) + len), (uint16_t)type };
	memcpy(m->b + m->len, &a, sizeof(a));
	memcpy(m->b + m->len + sizeof(a), v, len);
	m->len += NLA_ALIGN(sizeof(a) + len);
}

static void n_nest(struct nbuf *m, int type)
{
	struct nlattr a = { 0, (uint16_t)(type | NLA_F_NESTED) };
	m->open[m->depth++] = m->len;
	memcpy(m->b + m->len, &a, sizeof(a));
	m->len += sizeof(a);
}

static void n_end(struct nbuf *m)
{
	size_t at = m->open[--m->depth];
	uint16_t len = (uint16_t)(m->len - at);
	memcpy(m->b + at, &len, sizeof(len));
}

static void n_begin(struct nbuf *m, int type)
{
	struct nlmsghdr h = { 0 };
	struct nfgenmsg g = { .nfgen_family = NFPROTO_INET, .version = NFNETLINK_V0 };
	memset(m, 0, sizeof(*m));
	h.nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
	memcpy(m->b, &h, sizeof(h));
	memcpy(m->b + NLMSG_HDRLEN, &g, sizeof(g));
	m->len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));
}

static void n_finish(struct nbuf *m)
{
	uint32_t len = (uint32_t)m->len;
	memcpy(m->b, &len, sizeof(len));
}

static void n_counter(struct nbuf *m, uint64_t packets, uint64_t bytes)
{
	uint64_t p = htobe64(packets), b = htobe64(bytes);
	n_put(m, NFTA_EXPR_NAME, "counter", 8);
	n_nest(m, NFTA_EXPR_DATA);
	n_put(m, NFTA_COUNTER_BYTES, &b, 8);
	n_put(m, NFTA_COUNTER_PACKETS, &p, 8);
	n_end(m);
}

/* One element: the key as nft concatenates it (each field in a 4-byte register, network
 * order), then its counter as one expression or (list) in a list of two. */
static void n_elem(struct nbuf *m, int family, const char *src, const char *dst, uint8_t proto, const uint8_t w1[2],
		   const uint8_t w2[2], uint64_t packets, bool list)
{
	uint8_t k[44] = { 0 };
	size_t al = family == AF_INET ? 4 : 16;
	inet_pton(family, src, k);
	inet_pton(family, dst, k + al);
	k[2 * al] = proto;
	memcpy(k + 2 * al + 4, w1, 2);
	memcpy(k + 2 * al + 8, w2, 2);
	n_nest(m, NFTA_LIST_ELEM);
	n_nest(m, NFTA_SET_ELEM_KEY);
	n_put(m, NFTA_DATA_VALUE, k, 2 * al + 12);
	n_end(m);
	uint64_t ms = htobe64(300000);
	n_put(m, NFTA_SET_ELEM_TIMEOUT, &ms, 8);
	if (list) {
		n_nest(m, NFTA_SET_ELEM_EXPRESSIONS);
		n_nest(m, NFTA_LIST_ELEM);
		n_put(m, NFTA_EXPR_NAME, "limit", 6);
		n_end(m);
		n_nest(m, NFTA_LIST_ELEM);
		n_counter(m, packets, packets * 60);
		n_end(m);
		n_end(m);
	} else {
		n_nest(m, NFTA_SET_ELEM_EXPR);
		n_counter(m, packets, packets * 60);
		n_end(m);
	}
	n_end(m);
}

/* The ports' protocols as nftables rules list them are the ones the selectors match. */
static void test_port_protos(void)
{
	bool listed[256] = { false };
	const char *p = MC_WIRE_PORT_PROTOS;
	int bad = 0;
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 0 || v > 255)
			break;
		listed[v] = true;
		p = end + strspn(end, ", ");
	}
	T_OK(!*p, "MC_WIRE_PORT_PROTOS is a list of protocol numbers");
	for (int i = 0; i < 256; i++)
		bad += listed[i] != MC_WIRE_HAS_PORTS(i);
	T_EQ_INT(bad, 0, "MC_WIRE_PORT_PROTOS lists exactly the protocols MC_WIRE_HAS_PORTS names");
}

static void test_nft(void)
{
	struct nbuf m;
	struct mc_setflow *v = NULL;
	size_t n = 0, cap = 0;
	char a[64];
	static const uint8_t p40000[2] = { 0x9c, 0x40 }, p514[2] = { 0x02, 0x02 }, icmp[2] = { 128, 3 },
			     zero[2] = { 0 };

	n_begin(&m, NFT_MSG_NEWSETELEM);
	n_put(&m, NFTA_SET_ELEM_LIST_TABLE, "mcpsecd_staging", 16);
	n_put(&m, NFTA_SET_ELEM_LIST_SET, "in4", 4);
	n_nest(&m, NFTA_SET_ELEM_LIST_ELEMENTS);
	n_elem(&m, AF_INET, "192.0.2.1", "192.0.2.2", 17, p40000, p514, 20, false);
	n_elem(&m, AF_INET6, "fec0::1", "fec0::2", 58, icmp, zero, 3, true);
	n_elem(&m, AF_INET, "192.0.2.1", "192.0.2.2", 47, zero, zero, 1, false);
	/* a key of another shape (an address alone): not a flow */
	n_nest(&m, NFTA_LIST_ELEM);
	n_nest(&m, NFTA_SET_ELEM_KEY);
	n_put(&m, NFTA_DATA_VALUE, "\xc0\x00\x02\x01", 4);
	n_end(&m);
	n_end(&m);
	n_end(&m);
	n_finish(&m);
	T_EQ_INT(mc_nl_decode_setelems(m.b, m.len, &v, &n, &cap), 0, "setelem: a message of four elements decodes");
	T_EQ_INT(n, 3, "setelem: three flows, the address-only key left out");
	if (n == 3) {
		T_OK(v[0].flow.family == AF_INET && v[0].flow.proto == 17 && v[0].flow.plen_s == 32 && v[0].flow.plen_d == 32,
		     "setelem: IPv4 UDP, one-address prefixes");
		mc_addr_str(&v[0].flow.saddr, a, sizeof(a));
		T_EQ_STR(a, "192.0.2.1", "setelem: the source");
		mc_addr_str(&v[0].flow.daddr, a, sizeof(a));
		T_EQ_STR(a, "192.0.2.2", "setelem: the destination");
		T_OK(v[0].flow.sport == 40000 && v[0].flow.dport == 514, "setelem: the ports, in host order");
		T_OK(v[0].packets == 20 && v[0].bytes == 1200, "setelem: its counter");
		T_OK(v[1].flow.family == AF_INET6 && v[1].flow.plen_d == 128 && v[1].flow.proto == 58,
		     "setelem: IPv6 ICMPv6");
		T_OK(v[1].flow.sport == 128 && v[1].flow.dport == 3,
		     "setelem: ICMPv6 type and code where the ports would be");
		T_OK(v[1].packets == 3 && v[1].bytes == 180, "setelem: the counter found in a list of expressions");
		T_OK(v[2].flow.proto == 47 && v[2].flow.sport == 0 && v[2].flow.dport == 0 && v[2].packets == 1,
		     "setelem: a protocol without ports");
	}
	n = 0;
	T_OK(mc_nl_decode_setelems(m.b, m.len - 4, &v, &n, &cap) < 0 && n == 0,
	     "setelem: a message longer than its buffer is refused");
	/* the first element's key claims more than its element holds */
	size_t at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + 20 + 8 + 4 + 4;
	uint16_t big = 900;
	memcpy(m.b + at, &big, sizeof(big));
	n = 0;
	T_OK(mc_nl_decode_setelems(m.b, m.len, &v, &n, &cap) == 0 && n == 2,
	     "setelem: an element whose key runs past it is left out, the rest kept (%zu)", n);
	big = 2000; /* the first element itself runs past the list */
	memcpy(m.b + at - 4, &big, sizeof(big));
	n = 0;
	T_OK(mc_nl_decode_setelems(m.b, m.len, &v, &n, &cap) < 0 && n == 0, "setelem: a list entry running past its list is refused");
	free(v);

	struct mc_nftcounter c;
	uint32_t type = htonl(NFT_OBJECT_COUNTER), quota = htonl(NFT_OBJECT_QUOTA);
	n_begin(&m, NFT_MSG_NEWOBJ);
	n_put(&m, NFTA_OBJ_TABLE, "mcpsecd_staging", 16);
	n_put(&m, NFTA_OBJ_NAME, "out_all", 8);
	n_put(&m, NFTA_OBJ_TYPE, &type, 4);
	n_nest(&m, NFTA_OBJ_DATA);
	uint64_t p = htobe64(7), b = htobe64(700);
	n_put(&m, NFTA_COUNTER_BYTES, &b, 8);
	n_put(&m, NFTA_COUNTER_PACKETS, &p, 8);
	n_end(&m);
	n_finish(&m);
	T_OK(mc_nl_decode_counter(m.b, m.len, &c) == 0 && !strcmp(c.name, "out_all") && c.packets == 7 && c.bytes == 700,
	     "counter: its name and values");
	memcpy(m.b + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + 20 + 12 + 4, &quota, 4);
	T_OK(mc_nl_decode_counter(m.b, m.len, &c) < 0, "counter: another kind of object is refused");
}

int main(void)
{
	test_events();
	test_sa_wrap();
	test_sa_lifetime();
	test_nft();
	test_port_protos();
	test_sa("hmac-sha1-96", NULL, 20, 0, MC_PROTO_AH, "hmac(sha1)", 96, "AH hmac-sha1-96");
	test_sa("hmac-sha512-256", NULL, 64, 0, MC_PROTO_AH, "hmac(sha512)", 256, "AH hmac-sha512-256");
	test_sa("hmac-sha256-128", "aes-cbc", 32, 16, MC_PROTO_ESP, "hmac(sha256)", 128,
		"ESP aes-cbc-128 + hmac-sha256-128");
	test_sa(NULL, "aes-cbc", 0, 32, MC_PROTO_ESP, NULL, 0, "ESP aes-cbc-256 only");
	test_sa("hmac-sha256-128", NULL, 32, 0, MC_PROTO_ESP, "hmac(sha256)", 128, "ESP integrity only");
	test_sa("hmac-sha1-96", "tdes-cbc", 20, 24, MC_PROTO_ESP, "hmac(sha1)", 96, "ESP tdes-cbc + hmac-sha1-96");

	struct mc_op del = sa_op(NULL, NULL, 0, 0, MC_PROTO_ESP);
	uint8_t buf[256];
	del.kind = MC_OP_SA_DEL;
	size_t len = mc_nl_encode(&del, 9, buf, sizeof(buf));
	const struct xfrm_usersa_id *id = (const struct xfrm_usersa_id *)(buf + NLMSG_HDRLEN);
	T_OK(len && ((struct nlmsghdr *)buf)->nlmsg_type == XFRM_MSG_DELSA && id->spi == htonl(24577) &&
	     id->proto == MC_PROTO_ESP && id->family == AF_INET6, "DELSA by (daddr, spi, proto)");
	test_policy();
	return t_done();
}
