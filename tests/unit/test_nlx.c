/* SPDX-License-Identifier: MIT */
/* SA and policy message encoding, checked without a kernel: read back through the kernel uapi
 * structs directly and through mcpsec's own decoder (libnl-xfrm is not used: lib/nlx.c). */
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <sys/socket.h>

#include "../../lib/algo.h"
#include "../../lib/compile.h"
#include "../../lib/drops.h"
#include "../../lib/nlx.h"
#include "../../lib/util.h"
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

/* ---- ctnetlink: a message built the way the kernel lays it out (ctnetlink_fill_info) ---- */

struct ctbuf {
	uint8_t b[1024];
	size_t len;
	size_t open[8];
	int depth;
};

static void ct_put(struct ctbuf *m, int type, const void *v, size_t len)
{
	struct nlattr a = { (uint16_t)(sizeof(a) + len), (uint16_t)type };
	memcpy(m->b + m->len, &a, sizeof(a));
	memcpy(m->b + m->len + sizeof(a), v, len);
	m->len += NLA_ALIGN(sizeof(a) + len);
}

static void ct_nest(struct ctbuf *m, int type)
{
	struct nlattr a = { 0, (uint16_t)(type | NLA_F_NESTED) };
	m->open[m->depth++] = m->len;
	memcpy(m->b + m->len, &a, sizeof(a));
	m->len += sizeof(a);
}

static void ct_end(struct ctbuf *m)
{
	size_t at = m->open[--m->depth];
	uint16_t len = (uint16_t)(m->len - at);
	memcpy(m->b + at, &len, sizeof(len));
}

static void ct_tuple(struct ctbuf *m, int type, int family, const char *src, const char *dst, uint8_t proto,
		     uint16_t a, uint16_t b)
{
	uint8_t s[16], d[16];
	bool v6 = family == AF_INET6;
	inet_pton(family, src, s);
	inet_pton(family, dst, d);
	ct_nest(m, type);
	ct_nest(m, CTA_TUPLE_IP);
	ct_put(m, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, s, v6 ? 16 : 4);
	ct_put(m, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, d, v6 ? 16 : 4);
	ct_end(m);
	ct_nest(m, CTA_TUPLE_PROTO);
	ct_put(m, CTA_PROTO_NUM, &proto, 1);
	if (proto == 58) {
		uint16_t id = htons(77);
		uint8_t t = (uint8_t)a, c = (uint8_t)b;
		ct_put(m, CTA_PROTO_ICMPV6_ID, &id, 2);
		ct_put(m, CTA_PROTO_ICMPV6_TYPE, &t, 1);
		ct_put(m, CTA_PROTO_ICMPV6_CODE, &c, 1);
	} else {
		uint16_t sp = htons(a), dp = htons(b);
		ct_put(m, CTA_PROTO_SRC_PORT, &sp, 2);
		ct_put(m, CTA_PROTO_DST_PORT, &dp, 2);
	}
	ct_end(m);
	ct_end(m);
}

static void ct_counters(struct ctbuf *m, int type, uint64_t packets, uint64_t bytes)
{
	uint64_t p = htobe64(packets), b = htobe64(bytes);
	ct_nest(m, type);
	ct_put(m, CTA_COUNTERS_PACKETS, &p, 8);
	ct_put(m, CTA_COUNTERS_BYTES, &b, 8);
	ct_end(m);
}

static void ct_begin(struct ctbuf *m)
{
	struct nlmsghdr h = { 0 };
	struct nfgenmsg g = { .nfgen_family = AF_INET, .version = NFNETLINK_V0 };
	memset(m, 0, sizeof(*m));
	h.nlmsg_type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW;
	memcpy(m->b, &h, sizeof(h));
	memcpy(m->b + NLMSG_HDRLEN, &g, sizeof(g));
	m->len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));
}

static void ct_finish(struct ctbuf *m)
{
	uint32_t len = (uint32_t)m->len;
	memcpy(m->b, &len, sizeof(len));
}

static void test_ct(void)
{
	struct ctbuf m;
	struct mc_ctflow c;
	uint32_t id = htonl(0xabcdef01);
	char a[64];

	ct_begin(&m);
	ct_tuple(&m, CTA_TUPLE_ORIG, AF_INET, "192.0.2.1", "192.0.2.2", 17, 40000, 514);
	ct_tuple(&m, CTA_TUPLE_REPLY, AF_INET, "192.0.2.2", "192.0.2.1", 17, 514, 40000);
	ct_put(&m, CTA_ID, &id, 4);
	ct_counters(&m, CTA_COUNTERS_ORIG, 20, 5600);
	ct_counters(&m, CTA_COUNTERS_REPLY, 3, 300);
	ct_finish(&m);
	T_EQ_INT(mc_nl_decode_ct(m.b, m.len, &c), 0, "ct: a UDP entry decodes");
	T_OK(c.id == 0xabcdef01u, "ct: its id");
	T_EQ_INT(c.flow[0].family, AF_INET, "ct: IPv4");
	T_EQ_INT(c.flow[0].proto, 17, "ct: UDP");
	mc_addr_str(&c.flow[0].saddr, a, sizeof(a));
	T_EQ_STR(a, "192.0.2.1", "ct: the original source");
	mc_addr_str(&c.flow[0].daddr, a, sizeof(a));
	T_EQ_STR(a, "192.0.2.2", "ct: the original destination");
	T_EQ_INT(c.flow[0].plen_s, 32, "ct: one-address prefixes");
	T_OK(c.flow[0].sport == 40000 && c.flow[0].dport == 514, "ct: the original ports, in host order");
	T_OK(c.flow[1].sport == 514 && c.flow[1].dport == 40000, "ct: the reply's ports");
	T_OK(c.packets[0] == 20 && c.bytes[0] == 5600 && c.packets[1] == 3 && c.bytes[1] == 300,
	     "ct: the counters of both directions");
	T_OK(mc_nl_decode_ct(m.b, m.len - 4, &c) < 0, "ct: a message longer than its buffer is refused");

	ct_begin(&m);
	ct_tuple(&m, CTA_TUPLE_ORIG, AF_INET6, "fec0::1", "fec0::2", 58, 128, 0);
	ct_tuple(&m, CTA_TUPLE_REPLY, AF_INET6, "fec0::2", "fec0::1", 58, 129, 0);
	ct_finish(&m);
	T_EQ_INT(mc_nl_decode_ct(m.b, m.len, &c), 0, "ct: an ICMPv6 entry without counters decodes");
	T_OK(c.flow[0].family == AF_INET6 && c.flow[0].plen_d == 128, "ct: IPv6, one-address prefixes");
	T_OK(c.flow[0].sport == 128 && c.flow[0].dport == 0 && c.flow[1].sport == 129,
	     "ct: ICMPv6 type and code where the ports would be (request, then the reply's type)");
	T_OK(c.packets[0] == 0 && c.packets[1] == 0, "ct: no counters when accounting is off");

	/* a nested attribute that claims more than its parent holds */
	ct_begin(&m);
	ct_tuple(&m, CTA_TUPLE_ORIG, AF_INET, "192.0.2.1", "192.0.2.2", 6, 1, 2);
	ct_tuple(&m, CTA_TUPLE_REPLY, AF_INET, "192.0.2.2", "192.0.2.1", 6, 2, 1);
	ct_finish(&m);
	size_t ip = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + sizeof(struct nlattr);
	uint16_t big = 200;
	memcpy(m.b + ip, &big, sizeof(big));
	T_OK(mc_nl_decode_ct(m.b, m.len, &c) < 0, "ct: a nested attribute running past its parent is refused");
	/* no reply tuple */
	ct_begin(&m);
	ct_tuple(&m, CTA_TUPLE_ORIG, AF_INET, "192.0.2.1", "192.0.2.2", 6, 1, 2);
	ct_finish(&m);
	T_OK(mc_nl_decode_ct(m.b, m.len, &c) < 0, "ct: an entry without its reply tuple is refused");
}

int main(void)
{
	test_events();
	test_sa_wrap();
	test_sa_lifetime();
	test_ct();
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
