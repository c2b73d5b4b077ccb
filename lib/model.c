/* SPDX-License-Identifier: MIT */
/* Model helpers: lookups, names, freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model.h"
#include "util.h"
#include "wire.h"

const struct mc_key *mc_site_key(const struct mc_site *s, const char *name)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

const struct mc_policy *mc_site_policy(const struct mc_site *s, const char *name)
{
	for (size_t i = 0; i < s->npol; i++)
		if (s->pol[i].name && !strcasecmp(s->pol[i].name, name))
			return &s->pol[i];
	return NULL;
}

void mc_site_free(struct mc_site *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->npol; i++) {
		struct mc_policy *p = &s->pol[i];
		free(p->name);
		free(p->local.r);
		free(p->remote.r);
		free(p->local_ports.r);
		free(p->remote_ports.r);
		free(p->integrity_key);
		free(p->confidentiality_key);
		free(p->next.integrity_key);
		free(p->next.confidentiality_key);
	}
	free(s->pol);
	for (size_t i = 0; i < s->nsels; i++) {
		free(s->sels[i].name);
		free(s->sels[i].addrs.r);
	}
	free(s->sels);
	for (size_t i = 0; i < s->nkeys; i++) {
		mc_wipe(s->keys[i].bytes, s->keys[i].len);
		free(s->keys[i].bytes);
		free(s->keys[i].name);
		free(s->keys[i].type);
	}
	free(s->keys);
	free(s->keys_file);
	free(s->keys_text);
	free(s->file);
	free(s);
}

const char *mc_dir_str(enum mc_dir d)
{
	return d == MC_DIR_IN ? "in" : "out";
}

const char *mc_action_str(enum mc_action a)
{
	return a == MC_BYPASS ? "bypass" : a == MC_DISCARD ? "discard" : "protect";
}

const char *mc_action_upper(enum mc_action a)
{
	return a == MC_BYPASS ? "BYPASS" : a == MC_DISCARD ? "DISCARD" : "PROTECT";
}

const char *mc_phase_str(enum mc_phase ph)
{
	return ph == MC_PHASE_SWITCH ? "switch" : "accept";
}

const char *mc_enforce_str(enum mc_enforce e)
{
	return e == MC_ENFORCE_ACCEPT ? "accept" : e == MC_ENFORCE_PROTECT ? "protect" : "require";
}

int mc_enforce_rank(enum mc_enforce e)
{
	return e == MC_ENFORCE_ACCEPT ? 0 : e == MC_ENFORCE_PROTECT ? 1 : 2;
}

const char *mc_clear_passes_str(enum mc_dir dir)
{
	return dir == MC_DIR_OUT ? "sends in clear (enforce accept); its SAs are installed"
				 : "accepts clear as well as IPsec (enforce accept or protect)";
}

static const char *const default_names[] = { "ipv6-only", "bypass", "deny", "deny-all" };

const char *mc_default_str(enum mc_default d)
{
	return default_names[d];
}

bool mc_default_parse(const char *s, enum mc_default *ret)
{
	char sq[32], canon[32];

	mc_squeeze(s, sq, sizeof(sq));
	for (size_t i = 0; i < MC_ARRAY_SIZE(default_names); i++) {
		mc_squeeze(default_names[i], canon, sizeof(canon));
		if (!strcmp(sq, canon)) {
			*ret = (enum mc_default)i;
			return true;
		}
	}
	return false;
}

static const struct {
	const char *name;
	int proto;
} protos[] = {
	{ "any", MC_PROTO_ANY }, { "icmp", MC_PROTO_ICMP }, { "tcp", MC_PROTO_TCP },
	{ "udp", MC_PROTO_UDP }, { "bip", MC_PROTO_BIP }, { "esp", MC_PROTO_ESP },
	{ "ah", MC_PROTO_AH }, { "icmpv6", MC_PROTO_ICMPV6 },
};

const char *mc_proto_str(int proto, char *buf, size_t len)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(protos); i++)
		if (protos[i].proto == proto)
			return protos[i].name;
	snprintf(buf, len, "%d", proto);
	return buf;
}

const char *mc_ipsec_proto_str(int proto)
{
	return proto == MC_PROTO_AH ? "ah" : proto == MC_PROTO_ESP ? "esp" : "?";
}

int mc_proto_parse(const char *s)
{
	uint32_t v;

	for (size_t i = 0; i < MC_ARRAY_SIZE(protos); i++)
		if (!strcasecmp(protos[i].name, s))
			return protos[i].proto;
	if (!strcasecmp(s, "bna"))
		return MC_PROTO_BIP;
	if (mc_parse_u32(s, 255, &v) && v > 0)
		return (int)v;
	return -1;
}

bool mc_name_reserved(const char *name)
{
	return !strncasecmp(name, "BUILTIN-", 8) || !strncasecmp(name, "DEFAULT-", 8);
}

static int cmp_portrange(const void *a, const void *b)
{
	const struct mc_portrange *x = a, *y = b;
	return x->lo != y->lo ? (x->lo < y->lo ? -1 : 1) : 0;
}

bool mc_addrset_has(const struct mc_addrset *a, const struct mc_addr *x)
{
	mc_u128 v = mc_addr_to_u128(x);

	if (a->any)
		return true;
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].family == x->family && a->r[i].lo <= v && v <= a->r[i].hi)
			return true;
	return false;
}

enum mc_unbound mc_ports_unbound(const struct mc_portset *ps, unsigned eph_lo, unsigned eph_hi)
{
	unsigned long covered = 0;

	if (ps->any)
		return MC_UNBOUND_ALL;
	for (size_t i = 0; i < ps->n; i++) {
		unsigned lo = ps->r[i].lo > eph_lo ? ps->r[i].lo : eph_lo;
		unsigned hi = ps->r[i].hi < eph_hi ? ps->r[i].hi : eph_hi;
		if (lo <= hi)
			covered += hi - lo + 1; /* merged ranges never overlap */
	}
	return !covered ? MC_UNBOUND_NONE : covered == (unsigned long)eph_hi - eph_lo + 1 ? MC_UNBOUND_ALL
											 : MC_UNBOUND_SOME;
}

bool mc_ports_take_zero(const struct mc_portset *ps, unsigned eph_lo, unsigned eph_hi)
{
	/* A selector of port 0 alone is taken as written: it can mean nothing else. */
	if (!ps->any && ps->n == 1 && ps->r[0].lo == 0 && ps->r[0].hi == 0)
		return true;
	return mc_ports_unbound(ps, eph_lo, eph_hi) == MC_UNBOUND_ALL;
}

void mc_portset_merge(struct mc_portset *set)
{
	if (set->any) {
		set->n = 0;
		return;
	}
	if (!set->n)
		return;
	qsort(set->r, set->n, sizeof(*set->r), cmp_portrange);
	size_t out = 0;
	for (size_t i = 1; i < set->n; i++) {
		if (set->r[i].lo <= (unsigned)set->r[out].hi + 1) {
			if (set->r[i].hi > set->r[out].hi)
				set->r[out].hi = set->r[i].hi;
		} else {
			set->r[++out] = set->r[i];
		}
	}
	set->n = out + 1;
	if (set->n == 1 && set->r[0].lo == 0 && set->r[0].hi == 65535) {
		set->any = true;
		set->n = 0;
	}
}

bool mc_icmp_parse(const char *s, struct mc_icmpspec *ret)
{
	unsigned tlo, thi, clo = 0, chi = 255;
	char tmp[32];
	char *slash;

	if (!strcasecmp(s, "any")) {
		*ret = (struct mc_icmpspec){ .any = true };
		return true;
	}
	if (strlen(s) >= sizeof(tmp))
		return false;
	strcpy(tmp, s);
	if ((slash = strchr(tmp, '/'))) {
		uint32_t t;
		*slash = '\0';
		if (!mc_parse_u32(tmp, 255, &t) ||
		    (strcasecmp(slash + 1, "any") && !mc_parse_range(slash + 1, 255, &clo, &chi)))
			return false;
		tlo = thi = t;
	} else if (!mc_parse_range(tmp, 255, &tlo, &thi)) {
		return false;
	}
	*ret = (struct mc_icmpspec){ false, (uint8_t)tlo, (uint8_t)thi, (uint8_t)clo, (uint8_t)chi, { 0 } };
	return true;
}

bool mc_proto_has_ports(int proto)
{
	return MC_WIRE_HAS_PORTS(proto);
}

bool mc_proto_is_icmp(int proto)
{
	return MC_WIRE_IS_ICMP(proto);
}
