/* SPDX-License-Identifier: MIT */
/* Semantic checks: protocol/port/ICMP consistency, PROTECT requirements, keys, SPIs, families. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "algo.h"
#include "diag.h"
#include "model.h"
#include "util.h"
#include "validate.h"

#define FAM4 1u
#define FAM6 2u

static unsigned families(const struct mc_addrset *a)
{
	unsigned f = 0;

	if (a->any)
		return FAM4 | FAM6;
	for (size_t i = 0; i < a->n; i++)
		f |= a->r[i].family == AF_INET ? FAM4 : FAM6;
	return f;
}

static bool one_host(const struct mc_addrset *a)
{
	return !a->any && a->n == 1 && mc_range_is_host(&a->r[0]);
}

static void check_key(const struct mc_site *s, struct mc_diags *ds, const struct mc_policy *p,
		      const struct mc_alg *alg, const char *keyname, struct mc_loc loc)
{
	const struct mc_key *k;

	if (!alg || !keyname || s->keys_skipped)
		return;
	/* test and check work on the policy logic before keys exist: then these are warnings. */
	enum mc_severity sev = s->keys_optional ? MC_WARNING : MC_ERROR;
	if (!s->keys_file) {
		mc_diag_add(ds, sev, loc, "policy '%s' uses key '%s' but the site names no key file (ipsec.keys)%s",
			    p->name, keyname, s->keys_optional ? "; apply needs it" : "");
		return;
	}
	if (!(k = mc_site_key(s, keyname))) {
		if (!s->keys_absent)
			mc_diag_add(ds, sev, loc, "policy '%s': unknown key '%s' (not in %s)%s", p->name, keyname,
				    s->keys_file, s->keys_optional ? "; apply needs it" : "");
		return;
	}
	if (!mc_key_type_known(k->type))
		return; /* the key file's own error said what is wrong with its algorithm */
	if (strcmp(k->type, alg->key_type))
		mc_err(ds, loc, "policy '%s': key '%s' is a %s key, but %s needs a %s key", p->name,
		       keyname, k->type, alg->name, alg->key_type);
	else if (alg == p->confidentiality && p->confidentiality_bits && k->len * 8 != p->confidentiality_bits)
		/* AES_CBC_256 with a 16-byte key would silently be AES-128. */
		mc_err(ds, p->confidentiality_loc, "policy '%s': the algorithm's name says a %u-bit key, but key '%s' "
		       "has %zu bits; give a %u-bit key, or write aes-cbc (the key's length decides)", p->name,
		       p->confidentiality_bits, keyname, k->len * 8, p->confidentiality_bits);
}

/* The SA a PROTECT policy needs, as far as the model knows it (local may still be 'any'). */
struct sa_id {
	const struct mc_policy *p;
	const struct mc_range *dst; /* NULL: this host's address, resolved at apply */
	int proto;
	uint32_t spi;
	struct mc_loc loc; /* of the spi */
	bool next;
};

static bool same_dst(const struct sa_id *a, const struct sa_id *b)
{
	if (!a->dst || !b->dst)
		return !a->dst && !b->dst;
	return a->dst->family == b->dst->family && a->dst->lo == b->dst->lo;
}

static void check_spis(const struct mc_site *s, struct mc_diags *ds)
{
	struct sa_id *ids = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < s->npol; i++) {
		const struct mc_policy *p = &s->pol[i];
		if (p->action != MC_PROTECT || !p->spi || !p->ipsec_proto || !one_host(&p->remote))
			continue;
		const struct mc_range *local = one_host(&p->local) ? &p->local.r[0] : NULL;
		const struct mc_range *dst = p->dir == MC_DIR_OUT ? &p->remote.r[0] : local;
		*MC_PUSH(&ids, &n, &cap) = (struct sa_id){ p, dst, p->ipsec_proto, p->spi, p->spi_loc, false };
		/* A rollover's next SA is an SA of its own: its SPI must be free as well. */
		if (p->next.given && p->next.spi)
			*MC_PUSH(&ids, &n, &cap) = (struct sa_id){ p, dst, p->ipsec_proto, p->next.spi,
								   p->next.spi_loc, true };
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (ids[i].spi != ids[j].spi)
				continue;
			if (ids[i].p == ids[j].p) {
				mc_err(ds, ids[i].loc, "policy '%s': next spi %u (0x%x) is the policy's own spi: "
				       "a rollover needs a new SPI", ids[i].p->name, ids[i].spi, ids[i].spi);
			} else if (ids[i].proto == ids[j].proto && same_dst(&ids[i], &ids[j]) &&
				   ids[i].p->dir == ids[j].p->dir) {
				mc_err(ds, ids[i].loc,
				       "%sspi %u (0x%x) of policy '%s' is already used by '%s' for the same "
				       "destination and protocol (line %d): the kernel allows one SA per "
				       "(destination, SPI, protocol)", ids[i].next ? "next " : "",
				       ids[i].spi, ids[i].spi, ids[i].p->name, ids[j].p->name, ids[j].p->loc.line);
			} else if (s->allow_shared_spi) {
				mc_warnc(ds, ids[i].loc, "spi-reused",
					"spi %u (0x%x) of policy '%s' repeats the SPI of '%s' (line %d): MCP "
					"requires SPIs to be unique on a host (allowed by ipsec.allow-shared-spi)",
					ids[i].spi, ids[i].spi, ids[i].p->name, ids[j].p->name, ids[j].p->loc.line);
			} else {
				/* The kernel would take it (another destination or protocol), but MCP requires
				 * SPIs unique on a host, and a shared SPI hides which SA a packet used. */
				mc_err(ds, ids[i].loc,
				       "spi %u (0x%x) of policy '%s' repeats the SPI of '%s' (line %d): MCP requires "
				       "SPIs to be unique on a host; choose another, or set ipsec.allow-shared-spi: "
				       "true if you need this", ids[i].spi, ids[i].spi, ids[i].p->name, ids[j].p->name,
				       ids[j].p->loc.line);
			}
			break;
		}
	}
	free(ids);
}

static void check_policy(const struct mc_site *s, struct mc_diags *ds, const struct mc_policy *p)
{
	bool ports = !p->local_ports.any || !p->remote_ports.any;
	bool is_icmp = mc_proto_is_icmp(p->proto);
	unsigned lf = families(&p->local), rf = families(&p->remote);
	char pb[8];

	if (ports && p->proto != MC_PROTO_TCP && p->proto != MC_PROTO_UDP)
		mc_err(ds, !p->local_ports.any ? p->local_ports.loc : p->remote_ports.loc,
		       "policy '%s': ports need protocol tcp or udp (protocol is %s)", p->name,
		       mc_proto_str(p->proto, pb, sizeof(pb)));
	if (!p->icmp.any && !is_icmp)
		mc_err(ds, p->icmp.loc, "policy '%s': 'icmp' needs protocol icmp or icmpv6 (protocol is %s)",
		       p->name, mc_proto_str(p->proto, pb, sizeof(pb)));

	bool reported = false;
	if (s->def == MC_DEF_IPV6_ONLY) {
		reported = ((lf & FAM4) && !p->local.any) || ((rf & FAM4) && !p->remote.any) ||
			   p->proto == MC_PROTO_ICMP;
		if ((lf & FAM4) && !p->local.any)
			mc_err(ds, p->local.loc, "policy '%s' names IPv4 addresses, but with ipsec.default "
			       "ipv6-only IPv4 is outside IPsec (use bypass, deny or deny-all)", p->name);
		if ((rf & FAM4) && !p->remote.any)
			mc_err(ds, p->remote.loc, "policy '%s' names IPv4 addresses, but with ipsec.default "
			       "ipv6-only IPv4 is outside IPsec (use bypass, deny or deny-all)", p->name);
		if (p->proto == MC_PROTO_ICMP)
			mc_err(ds, p->proto_loc, "policy '%s': protocol icmp is IPv4, which ipsec.default "
			       "ipv6-only leaves outside IPsec", p->name);
		lf &= FAM6;
		rf &= FAM6;
	}
	unsigned common = lf & rf;
	if (p->proto == MC_PROTO_ICMP)
		common &= FAM4;
	if (p->proto == MC_PROTO_ICMPV6)
		common &= FAM6;
	if ((p->local.n || p->local.any) && (p->remote.n || p->remote.any) && !common && !reported)
		mc_err(ds, p->loc, "policy '%s' can match no packet: its local and remote addresses%s "
		       "share no address family", p->name, is_icmp ? " and protocol" : "");

	if (p->action != MC_PROTECT) {
		if (p->spi_given)
			mc_err(ds, p->spi_loc, "policy '%s': 'spi' is only for action protect", p->name);
		if (p->ipsec_proto)
			mc_err(ds, p->integrity_loc, "policy '%s': 'ah'/'esp' are only for action protect", p->name);
		if (p->next.given)
			mc_err(ds, p->next.loc, "policy '%s': 'next' (a key rollover) is only for action protect", p->name);
		if (mc_lifetime_set(&p->lifetime))
			mc_err(ds, p->lifetime_loc, "policy '%s': 'lifetime' is only for action protect (SAs)", p->name);
		if (p->enforce_given)
			mc_err(ds, p->enforce_loc, "policy '%s': 'enforce' (phasing protection in) is only for action "
			       "protect", p->name);
		return;
	}
	if (!p->spi_given)
		mc_err(ds, p->loc, "protect policy '%s' needs an 'spi' (256-4294967295)", p->name);
	if (!p->ipsec_proto)
		mc_err(ds, p->loc, "protect policy '%s' needs 'ah' or 'esp'", p->name);
	if (!one_host(&p->remote))
		mc_err(ds, p->remote.loc, "protect policy '%s': remote must be exactly one host "
		       "(MCP policies are point-to-point)", p->name);
	if (!p->local.any && !one_host(&p->local))
		mc_err(ds, p->local.loc, "protect policy '%s': local must be 'any' or exactly one host "
		       "(the SA needs one address)", p->name);
	if (p->ipsec_proto == MC_PROTO_ESP && p->confidentiality && !p->integrity)
		mc_warnc(ds, p->confidentiality_loc, "no-integrity", "policy '%s': ESP confidentiality without integrity "
			"leaves packets open to tampering (RFC 4303 §3.2); consider adding integrity", p->name);
	if (p->lifetime.hard_bytes || p->lifetime.hard_packets || p->lifetime.hard_secs)
		mc_warnc(ds, p->lifetime_loc, "hard-lifetime", "policy '%s': a hard lifetime removes the SA when it is "
			"reached and its traffic is dropped until the key is rolled over (mcpsec rekey) and applied; "
			"mcpsecd does not put it back", p->name);
	if (p->confidentiality && p->confidentiality->legacy)
		mc_warnc(ds, p->confidentiality_loc, "legacy-algorithm", "policy '%s': %s is a legacy algorithm; prefer aes-cbc",
			p->name, p->confidentiality->name);
	check_key(s, ds, p, p->integrity, p->integrity_key, p->integrity_loc);
	check_key(s, ds, p, p->confidentiality, p->confidentiality_key, p->confidentiality_loc);
	if (p->next.given && p->enforce != MC_ENFORCE_REQUIRE)
		mc_err(ds, p->enforce_loc, "policy '%s': a key rollover ('next') and a phase-in ('enforce: %s') at once; "
		       "finish the phase-in first", p->name, mc_enforce_str(p->enforce));
	if (p->next.given) {
		check_key(s, ds, p, p->integrity, p->next.integrity_key, p->next.integrity_loc);
		check_key(s, ds, p, p->confidentiality, p->next.confidentiality_key, p->next.confidentiality_loc);
	}
}

static const struct mc_site *cmp_site;

static int cmp_policy_name(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcasecmp(cmp_site->pol[x].name, cmp_site->pol[y].name);

	return c ? c : (x < y ? -1 : x > y);
}

/* Duplicate names, case-insensitively (MCP's names are; status and test look them up so), in O(n log n): 10 000 policies must validate in milliseconds. */
static void check_names(const struct mc_site *s, struct mc_diags *ds)
{
	size_t *idx = mc_calloc(s->npol + 1, sizeof(size_t)), n = 0;

	for (size_t i = 0; i < s->npol; i++)
		if (s->pol[i].name)
			idx[n++] = i;
	cmp_site = s;
	qsort(idx, n, sizeof(*idx), cmp_policy_name);
	/* The first of each run of equal names is remembered, not searched for again: 40,000
	 * copies of one name cost n log n. */
	for (size_t i = 1, first = 0; i < n; i++) {
		const struct mc_policy *p = &s->pol[idx[i]];
		if (strcasecmp(s->pol[idx[first]].name, p->name))
			first = i;
		else if (strcmp(s->pol[idx[first]].name, p->name))
			mc_err(ds, p->loc, "policy name '%s' repeats '%s' (line %d): names are case-insensitive, "
			       "as in MCP", p->name, s->pol[idx[first]].name, s->pol[idx[first]].loc.line);
		else
			mc_err(ds, p->loc, "duplicate policy name '%s' (first at line %d)", p->name,
			       s->pol[idx[first]].loc.line);
	}
	free(idx);
}

int mc_site_validate(const struct mc_site *s, struct mc_diags *ds)
{
	size_t errors_before = ds->errors;

	check_names(s, ds);
	for (size_t i = 0; i < s->npol; i++)
		if (s->pol[i].name)
			check_policy(s, ds, &s->pol[i]);
	check_spis(s, ds);
	if (s->def == MC_DEF_DENY_ALL)
		mc_warnc(ds, s->def_loc.line ? s->def_loc : mc_loc_file(s->file), "deny-all",
			"ipsec.default deny-all installs no built-in bypasses: IPv6 Neighbor Discovery, ::1 "
			"and traffic to the host's own IPv6 addresses work only if your policies allow them "
			"(IPv4 through lo is never subject to IPsec on Linux)");
	return ds->errors > errors_before ? -EINVAL : 0;
}
