/* SPDX-License-Identifier: MIT */
/* mirror: one host's policies seen from its peer. check-peer: both hosts' first matches for the
 * same packets, compared (flowspace.c partitions the traffic). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "algo.h"
#include "diag.h"
#include "emit.h"
#include "flowspace.h"
#include "model.h"
#include "peer.h"
#include "plan.h"
#include "util.h"

/* ---- mirror ---- */

char *mc_mirror_name(const char *name)
{
	size_t n = strlen(name);

	if (n > 3 && !strcasecmp(name + n - 3, "OUT")) {
		bool lower = islower((unsigned char)name[n - 3]);
		return mc_asprintf("%.*s%s", (int)(n - 3), name, lower ? "in" : "IN");
	}
	if (n > 2 && !strcasecmp(name + n - 2, "IN")) {
		bool lower = islower((unsigned char)name[n - 2]);
		return mc_asprintf("%.*s%s", (int)(n - 2), name, lower ? "out" : "OUT");
	}
	return mc_strdup(name);
}

static struct mc_addrset host_set(const struct mc_addr *a, struct mc_range *storage)
{
	storage->family = a->family;
	storage->lo = storage->hi = mc_addr_to_u128(a);
	return (struct mc_addrset){ .r = storage, .n = 1, .cap = 1 };
}

int mc_mirror(const struct mc_site *s, const struct mc_mirror_opts *o, struct mc_buf *out,
	      struct mc_diags *ds)
{
	size_t errors = ds->errors, written = 0, skipped = 0;
	struct mc_buf body = { 0 };
	char peer[64], self[64];

	mc_addr_str(&o->peer, peer, sizeof(peer));
	if (o->have_self)
		mc_addr_str(&o->self, self, sizeof(self));
	for (size_t i = 0; i < s->npol; i++) {
		const struct mc_policy *p = &s->pol[i];
		struct mc_range peer_r, self_r;
		struct mc_policy q = *p; /* shallow: only the fields below are replaced */

		if (!mc_addrset_has(&p->remote, &o->peer)) {
			skipped++;
			continue;
		}
		q.dir = p->dir == MC_DIR_IN ? MC_DIR_OUT : MC_DIR_IN;
		q.local = p->remote.any ? p->remote : host_set(&o->peer, &peer_r);
		q.remote = p->local;
		if (p->action == MC_PROTECT && p->local.any) {
			if (!o->have_self) {
				mc_err(ds, p->loc, "policy '%s' has local 'any': the peer's SA needs this host's "
				       "address; give --self ADDR", p->name);
				continue;
			}
			q.remote = host_set(&o->self, &self_r);
		}
		q.local_ports = p->remote_ports;
		q.remote_ports = p->local_ports;
		q.name = mc_mirror_name(p->name);
		char *note = mc_asprintf("mirrors %s", p->name);
		mc_emit_policy(&q, note, &body);
		free(note);
		free(q.name);
		written++;
	}
	if (ds->errors > errors) {
		mc_buf_free(&body);
		return -EINVAL;
	}
	mc_buf_printf(out, "# The peer %s's site.yaml, written by `mcpsec mirror%s%s --peer %s%s%s`.\n"
			   "# Our policies towards the peer as the peer sees them: local and remote swapped,\n"
			   "# directions swapped, each SPI, algorithm and key name kept (our outbound SA is the\n"
			   "# peer's inbound SA). The peer's key file must hold the same names and values.\n",
		      peer, o->source ? " " : "", o->source ? o->source : "", peer, o->have_self ? " --self " : "",
		      o->have_self ? self : "");
	if (skipped)
		mc_buf_printf(out, "# %zu polic%s not towards %s left out.\n", skipped, skipped == 1 ? "y" : "ies",
			      peer);
	mc_emit_header(s, s->keys_text, out);
	mc_buf_puts(out, mc_buf_str(&body));
	mc_buf_free(&body);
	return (int)written;
}

/* ---- check-peer ---- */

#define PEER_MAX_PIECES 65536

struct side {
	const struct mc_peer_side *p;
	struct mc_porder order;
	const char *label; /* the file name */
};

static const struct mc_policy *rule_policy(const struct side *s, size_t rule)
{
	return rule == SIZE_MAX ? NULL : s->p->plan->rules[rule].src;
}

static enum mc_action rule_action(const struct side *s, size_t rule)
{
	return rule == SIZE_MAX ? MC_BYPASS : s->p->plan->rules[rule].action; /* no policy: clear */
}

/* Whether x's rule sends in clear although it protects (phase accept), or y's accepts clear
 * (phase accept or protect). */
static bool rule_clear_passes(const struct side *s, size_t rule)
{
	return rule != SIZE_MAX && s->p->plan->rules[rule].clear_passes;
}

static const char *rule_phase(const struct side *s, size_t rule)
{
	const struct mc_policy *p = rule_policy(s, rule);
	return p && p->action == MC_PROTECT ? mc_enforce_str(p->enforce) : "none";
}

static struct mc_loc rule_loc(const struct side *s, size_t rule)
{
	const struct mc_policy *p = rule_policy(s, rule);
	return p ? p->loc : mc_loc_file(s->p->site->file);
}

static void rule_name(const struct side *s, size_t rule, struct mc_buf *out)
{
	if (rule == SIZE_MAX)
		mc_buf_printf(out, "no policy of %s", s->label);
	else
		mc_buf_printf(out, "%s '%s'", s->label, s->p->plan->rules[rule].name);
}

static bool same_key(const struct mc_site *a, const char *ka, const struct mc_site *b, const char *kb)
{
	const struct mc_key *x = ka ? mc_site_key(a, ka) : NULL, *y = kb ? mc_site_key(b, kb) : NULL;

	if (!x || !y)
		return true; /* a missing key is validation's error, not a mismatch */
	return x->len == y->len && !memcmp(x->bytes, y->bytes, x->len);
}

static const char *alg_name(const struct mc_alg *a)
{
	return a ? a->name : "none";
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* One SA of a PROTECT policy as its file names it: the current one or a rollover's next one. */
struct sa_view {
	uint32_t spi;
	const char *integrity_key, *confidentiality_key;
	bool next;
};

static struct sa_view sa_view(const struct mc_policy *p, bool next)
{
	if (next)
		return (struct sa_view){ p->next.spi, p->next.integrity_key, p->next.confidentiality_key, true };
	return (struct sa_view){ p->spi, p->integrity_key, p->confidentiality_key, false };
}

/* What differs between the SA the sender uses and one the receiver accepts, as text (empty:
 * nothing). */
static void protect_diff(const struct mc_policy *x, const struct sa_view *vx, const struct side *sx,
			 const struct mc_policy *y, const struct sa_view *vy, const struct side *sy, struct mc_buf *out)
{
#define DIFF(...) mc_buf_printf(out, "%s", out->len ? "; " : ""), mc_buf_printf(out, __VA_ARGS__)
	if (vx->spi != vy->spi)
		DIFF("spi %u vs %u", vx->spi, vy->spi);
	if (x->ipsec_proto != y->ipsec_proto)
		DIFF("%s vs %s", mc_ipsec_proto_str(x->ipsec_proto), mc_ipsec_proto_str(y->ipsec_proto));
	if (x->integrity != y->integrity)
		DIFF("integrity %s vs %s", alg_name(x->integrity), alg_name(y->integrity));
	if (x->confidentiality != y->confidentiality)
		DIFF("confidentiality %s vs %s", alg_name(x->confidentiality), alg_name(y->confidentiality));
	if (!str_eq(vx->integrity_key, vy->integrity_key))
		DIFF("integrity key '%s' vs '%s'", vx->integrity_key ? vx->integrity_key : "none",
		     vy->integrity_key ? vy->integrity_key : "none");
	else if (!same_key(sx->p->site, vx->integrity_key, sy->p->site, vy->integrity_key))
		DIFF("key '%s' has different values in the two key files", vx->integrity_key);
	if (!str_eq(vx->confidentiality_key, vy->confidentiality_key))
		DIFF("confidentiality key '%s' vs '%s'", vx->confidentiality_key ? vx->confidentiality_key : "none",
		     vy->confidentiality_key ? vy->confidentiality_key : "none");
	else if (!same_key(sx->p->site, vx->confidentiality_key, sy->p->site, vy->confidentiality_key))
		DIFF("key '%s' has different values in the two key files", vx->confidentiality_key);
#undef DIFF
}

/*
 * Key rollover phases: the sender uses its current SA, or its next one once it switched; the
 * receiver accepts its current SA and, from accept on, its next one. Traffic passes when one SA
 * the receiver accepts is the one sent; otherwise the difference from the closest one goes to
 * out, with the phases that explain it (A switching before B accepts, A retiring before B
 * switches).
 */
static void rollover_diff(const struct mc_policy *x, const struct side *sx, const struct mc_policy *y,
			  const struct side *sy, struct mc_buf *out)
{
	struct sa_view sent = sa_view(x, x->next.given && x->next.phase == MC_PHASE_SWITCH);
	struct sa_view acc[2] = { sa_view(y, false), sa_view(y, true) };
	size_t nacc = y->next.given ? 2 : 1, closest = 0;
	struct mc_buf d[2] = { { 0 }, { 0 } };

	for (size_t i = 0; i < nacc; i++) {
		protect_diff(x, &sent, sx, y, &acc[i], sy, &d[i]);
		if (acc[i].spi == sent.spi)
			closest = i;
	}
	bool passes = d[0].len == 0 || (nacc == 2 && d[1].len == 0);
	if (!passes)
		mc_buf_puts(out, mc_buf_str(&d[closest]));
	mc_buf_free(&d[0]);
	mc_buf_free(&d[1]);
	if (passes || (!x->next.given && !y->next.given))
		return;
	mc_buf_printf(out, " (key rollover: the sender uses its %s SA, spi %u%s; the receiver accepts spi %u",
		      sent.next ? "next" : "current", sent.spi,
		      x->next.given ? (x->next.phase == MC_PHASE_SWITCH ? ", phase switch" : ", phase accept") : ", no next",
		      acc[0].spi);
	if (nacc == 2)
		mc_buf_printf(out, " and %u (phase %s)", acc[1].spi, mc_phase_str(y->next.phase));
	else
		mc_buf_puts(out, " only (no next)");
	if (sent.next && !y->next.given && y->spi != sent.spi)
		mc_buf_puts(out, ": the sender switched before the receiver accepted; apply accept on the receiver first");
	else if (!sent.next && x->next.given && !y->next.given && y->spi == x->next.spi)
		mc_buf_puts(out, ": the receiver retired the old SA while the sender still sends with it; the sender "
			    "must switch first");
	else if (!x->next.given && y->next.given && acc[0].spi != sent.spi && acc[1].spi != sent.spi)
		mc_buf_puts(out, ": neither SA the receiver accepts is the one sent; are both files from one rollover?");
	mc_buf_puts(out, ")");
}

struct pair {
	size_t rx, ry;
};

static bool seen_pair(struct pair **v, size_t *n, size_t *cap, size_t rx, size_t ry)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].rx == rx && (*v)[i].ry == ry)
			return true;
	*MC_PUSH(v, n, cap) = (struct pair){ rx, ry };
	return false;
}

/* One direction of travel: x sends, y receives. */
static size_t travel(const struct side *x, const struct side *y, struct mc_diags *ds)
{
	struct mc_box all = mc_box_all(x->p->addr.family);
	struct mc_boxes u = { 0 };
	struct mc_pieces out = { 0 };
	struct pair *seen = NULL;
	size_t nseen = 0, capseen = 0, found = 0;

	all.lo[MC_D_SRC] = all.hi[MC_D_SRC] = mc_addr_to_u128(&x->p->addr);
	all.lo[MC_D_DST] = all.hi[MC_D_DST] = mc_addr_to_u128(&y->p->addr);
	mc_box_realizable(&all, &u);
	if (mc_partition(x->p->plan, &x->order, MC_DIR_OUT, u.b, u.n, UINT32_MAX, PEER_MAX_PIECES, &out) < 0)
		mc_err(ds, mc_loc_file(x->p->site->file), "check-peer: %s's outbound policies are too fragmented "
		       "to follow (more than %d flow boxes)", x->label, PEER_MAX_PIECES);
	for (size_t i = 0; i < out.n; i++) {
		struct mc_pieces in = { 0 };
		size_t rx = out.p[i].rule;

		if (rule_action(x, rx) == MC_DISCARD)
			continue; /* never sent */
		mc_partition(y->p->plan, &y->order, MC_DIR_IN, &out.p[i].box, 1, UINT32_MAX, PEER_MAX_PIECES, &in);
		for (size_t j = 0; j < in.n; j++) {
			size_t ry = in.p[j].rule;
			enum mc_action ax = rule_action(x, rx), ay = rule_action(y, ry);
			struct mc_buf why = { 0 }, nx = { 0 }, ny = { 0 }, eg = { 0 };
			const char *code = NULL;

			/* A phase-in: the sender sends in clear in phase accept, the receiver accepts
			 * clear until phase require. SAs must agree from accept on. */
			bool x_clear = ax != MC_PROTECT || rule_clear_passes(x, rx);
			if (ax == MC_PROTECT && ay == MC_PROTECT) {
				rollover_diff(rule_policy(x, rx), x, rule_policy(y, ry), y, &why);
				code = "peer-sa";
			} else if (ax == MC_PROTECT && !x_clear) {
				mc_buf_printf(&why, "sent with IPsec, first matched by a %s, not a PROTECT",
					      mc_action_str(ay));
				if (rule_policy(x, rx)->enforce == MC_ENFORCE_PROTECT)
					mc_buf_puts(&why, " (phase-in: the sender protects before the receiver accepts; "
						    "apply phase accept on the receiver first)");
				code = "peer-protection";
			}
			if (!why.len && x_clear && ay == MC_PROTECT && !rule_clear_passes(y, ry)) {
				mc_buf_puts(&why, "sent in clear, but the receiver requires IPsec");
				if (ax == MC_PROTECT)
					mc_buf_printf(&why, " (phase-in: the receiver is at phase %s while the sender "
						      "is at %s; the sender must protect before the receiver requires)",
						      rule_phase(y, ry), rule_phase(x, rx));
				code = "peer-protection";
			}
			if (why.len && !seen_pair(&seen, &nseen, &capseen, rx, ry)) {
				rule_name(x, rx, &nx);
				rule_name(y, ry, &ny);
				mc_box_str(&in.p[j].box, &eg);
				mc_diag_addc(ds, MC_ERROR, rule_loc(x, rx), code, "%s (sending) and %s (receiving) disagree on %s: %s",
					     mc_buf_str(&nx), mc_buf_str(&ny), mc_buf_str(&eg), mc_buf_str(&why));
				found++;
			}
			mc_buf_free(&why);
			mc_buf_free(&nx);
			mc_buf_free(&ny);
			mc_buf_free(&eg);
		}
		mc_pieces_free(&in);
	}
	free(seen);
	mc_pieces_free(&out);
	mc_boxes_free(&u);
	return found;
}

size_t mc_check_peer(const struct mc_peer_side *a, const struct mc_peer_side *b, struct mc_diags *ds)
{
	struct side sa = { .p = a, .label = a->site->file }, sb = { .p = b, .label = b->site->file };
	size_t found;

	if (a->addr.family != b->addr.family) {
		mc_err(ds, mc_loc_file(a->site->file), "check-peer: the two addresses are of different families");
		return 1;
	}
	mc_porder_build(a->plan, &sa.order);
	mc_porder_build(b->plan, &sb.order);
	found = travel(&sa, &sb, ds) + travel(&sb, &sa, ds);
	mc_porder_free(&sa.order);
	mc_porder_free(&sb.order);
	return found;
}

int mc_peer_guess(const struct mc_site *s, struct mc_addr *ret)
{
	bool found = false;

	for (size_t i = 0; i < s->npol; i++) {
		const struct mc_policy *p = &s->pol[i];
		struct mc_addr a;
		if (p->action != MC_PROTECT || p->remote.any || p->remote.n != 1 || !mc_range_is_host(&p->remote.r[0]))
			continue;
		mc_addr_from_u128(p->remote.r[0].family, p->remote.r[0].lo, &a);
		if (found && !mc_addr_eq(&a, ret))
			return -EEXIST;
		*ret = a;
		found = true;
	}
	return found ? 0 : -ENOENT;
}
