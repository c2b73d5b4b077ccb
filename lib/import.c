/* SPDX-License-Identifier: MIT */
/*
 * MCP listing import. The seed itself writes the same field several ways (Disposition /
 * IPSec Action, SPI / Security Policy Index, Next Layer Protocol / Upper Layer Provider,
 * OUTBOUND / OUT, "20-21" / "20, 21"); each spelling maps to one field below. The result is
 * a model (struct mc_site) written out by emit.c, so import and mirror write the same YAML.
 */
#include <ctype.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "algo.h"
#include "diag.h"
#include "emit.h"
#include "import.h"
#include "util.h"
#include "validate.h"

enum field {
	F_NAME, F_LOCAL, F_LOCAL_SEL, F_REMOTE, F_REMOTE_SEL, F_ULP, F_LOCAL_PORTS, F_REMOTE_PORTS,
	F_ICMP, F_DIR, F_ACTION, F_SPI, F_IPSEC_PROTO, F_MODE, F_IKEY, F_IALG, F_CKEY, F_CALG, F_COUNT
};

/* Spellings, compared case-insensitively with runs of spaces as one. */
static const struct {
	const char *spelling;
	enum field f;
} spellings[] = {
	{ "policy name", F_NAME },
	{ "name", F_NAME },
	{ "local ip address", F_LOCAL },
	{ "local address", F_LOCAL },
	{ "local ip selector", F_LOCAL_SEL },
	{ "local selector", F_LOCAL_SEL },
	{ "remote ip address", F_REMOTE },
	{ "remote address", F_REMOTE },
	{ "remote ip selector", F_REMOTE_SEL },
	{ "remote selector", F_REMOTE_SEL },
	{ "next layer protocol", F_ULP },
	{ "upper layer provider", F_ULP },
	{ "upper layer protocol", F_ULP },
	{ "ulp", F_ULP },
	{ "local ports", F_LOCAL_PORTS },
	{ "local port", F_LOCAL_PORTS },
	{ "remote ports", F_REMOTE_PORTS },
	{ "remote port", F_REMOTE_PORTS },
	{ "local types/codes", F_ICMP },
	{ "types/codes", F_ICMP },
	{ "icmp types/codes", F_ICMP },
	{ "icmp type/code", F_ICMP },
	{ "direction", F_DIR },
	{ "disposition", F_ACTION },
	{ "ipsec action", F_ACTION },
	{ "action", F_ACTION },
	{ "spi", F_SPI },
	{ "security policy index", F_SPI },
	{ "protocol", F_IPSEC_PROTO },
	{ "ipsec protocol", F_IPSEC_PROTO },
	{ "mode", F_MODE },
	{ "ipsec mode", F_MODE },
	{ "integrity key name", F_IKEY },
	{ "integrity key", F_IKEY },
	{ "integrity algorithm", F_IALG },
	{ "confidentiality key name", F_CKEY },
	{ "confidentiality key", F_CKEY },
	{ "confidentiality algorithm", F_CALG },
};

struct value {
	char *text;  /* NULL: absent */
	char *field; /* the field as written: "Security Policy Index" */
	struct mc_loc loc;
};

struct block {
	struct value v[F_COUNT];
	struct mc_loc loc; /* first line */
	bool any;
};

struct importer {
	const char *file;
	struct mc_diags *ds;
	struct mc_site *site;
	struct selector { char *name, *addr; } *sels; /* selector names seen, for consistency */
	size_t nsels, capsels;
	struct mc_strset names; /* policy names so far: a name is looked up, never searched for */
	struct base_next { char *base; unsigned next; } *nexts; /* generated bases, next suffix */
	size_t nnexts, capnexts;
};

static void block_clear(struct block *b)
{
	for (int f = 0; f < F_COUNT; f++) {
		free(b->v[f].text);
		free(b->v[f].field);
	}
	memset(b, 0, sizeof(*b));
}

/* "Local  IP Address" → "local ip address" */
static void normalise(const char *s, size_t n, char *out, size_t cap)
{
	size_t w = 0;
	bool space = false;

	for (size_t i = 0; i < n && w + 1 < cap; i++) {
		if (isspace((unsigned char)s[i])) {
			space = w > 0;
			continue;
		}
		if (space && w + 2 < cap)
			out[w++] = ' ';
		space = false;
		out[w++] = (char)tolower((unsigned char)s[i]);
	}
	out[w] = '\0';
}

static int lookup_field(const char *name)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(spellings); i++)
		if (!strcmp(spellings[i].spelling, name))
			return (int)spellings[i].f;
	return -1;
}

static bool is_any(const char *s)
{
	return !strcasecmp(s, "any");
}

/* ---- values ---- */

/* Calls fn for each comma-separated item of text, trimmed. */
static void for_each_item(struct importer *im, const struct value *v, void *arg,
			  void (*fn)(struct importer *im, const struct value *v, char *item, void *arg))
{
	char *copy = mc_strdup(v->text), *save = NULL;

	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*item))
			item++;
		for (char *e = item + strlen(item); e > item && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		fn(im, v, item, arg);
	}
	free(copy);
}

static void add_addr(struct importer *im, const struct value *v, char *item, void *arg)
{
	struct mc_addrset *set = arg;
	char buf[128];
	size_t w = 0;
	struct mc_range r;
	const char *err;

	for (const char *c = item; *c && w + 1 < sizeof(buf); c++)
		if (!isspace((unsigned char)*c)) /* "A - B" */
			buf[w++] = *c;
	buf[w] = '\0';
	if (!mc_range_parse(buf, &r, &err))
		mc_err(im->ds, v->loc, "address '%s': %s", buf, err);
	else
		*MC_PUSH(&set->r, &set->n, &set->cap) = r;
}

static void add_port(struct importer *im, const struct value *v, char *item, void *arg)
{
	struct mc_portset *set = arg;
	unsigned lo, hi;

	if (is_any(item))
		set->any = true;
	else if (!mc_parse_range(item, 65535, &lo, &hi))
		mc_err(im->ds, v->loc, "port '%s': expected ANY, N, N-M or a list of these", item);
	else
		*MC_PUSH(&set->r, &set->n, &set->cap) = (struct mc_portrange){ (uint16_t)lo, (uint16_t)hi };
}

/* "ADDR", "ADDR/LEN", "ADDR - ADDR", several separated by commas. */
static void conv_addrs(struct importer *im, const struct value *v, struct mc_addrset *set)
{
	memset(set, 0, sizeof(*set));
	set->loc = v->loc;
	if (!v->text || is_any(v->text)) {
		set->any = true;
		return;
	}
	for_each_item(im, v, set, add_addr);
	set->n = mc_ranges_merge(set->r, set->n);
}

/* "ANY", "20-21", "20 - 21", "20, 21" */
static void conv_ports(struct importer *im, const struct value *v, struct mc_portset *set)
{
	memset(set, 0, sizeof(*set));
	set->loc = v->loc;
	if (!v->text || is_any(v->text)) {
		set->any = true;
		return;
	}
	for_each_item(im, v, set, add_port);
	mc_portset_merge(set);
}

/* Algorithm spellings: HMAC_SHA1_96, HMAC-SHA-256, AES_CBC, AES-CBC-256, 3DES_CBC ... are
 * compared with everything but letters and digits removed. */
static const struct mc_alg *conv_alg(struct importer *im, const struct value *v, enum mc_alg_kind kind)
{
	const struct mc_alg *a = mc_alg_find(v->text, kind);

	if (a)
		return a;
	mc_err(im->ds, v->loc, "%s algorithm '%s' is not supported (supported: %s)",
	       kind == MC_ALG_INTEGRITY ? "integrity" : "confidentiality", v->text, mc_alg_names(kind));
	return NULL;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/*
 * A policy's address given through a selector name. The same name must always stand for the same
 * address; a name given alone (no address field) is the selector given earlier. The site keeps
 * the selectors, and the set their name, so that the output says PRODUCTION, not the addresses.
 */
static void use_selector(struct importer *im, const struct value *name, const struct value *addr,
			 struct mc_addrset *set)
{
	const char *a = addr->text ? addr->text : "ANY";
	struct mc_site *s = im->site;

	for (size_t i = 0; i < im->nsels; i++)
		if (!strcasecmp(im->sels[i].name, name->text)) {
			if (!addr->text) {
				/* By name alone: the addresses it was given before. */
				const struct mc_addrset *known = &s->sels[i].addrs;
				free(set->r);
				*set = *known;
				set->r = known->n ? mc_memdup(known->r, known->n * sizeof(*known->r)) : NULL;
				set->cap = set->n;
				set->loc = name->loc;
			} else if (strcasecmp(im->sels[i].addr, a)) {
				mc_err(im->ds, addr->loc.line ? addr->loc : name->loc,
				       "selector '%s' is '%s' here but '%s' earlier", name->text, a, im->sels[i].addr);
			}
			set->name = s->sels[i].name;
			return;
		}
	if (!addr->text) {
		mc_err(im->ds, name->loc, "selector '%s' has no address: give its IP address where it first "
		       "appears", name->text);
		return;
	}
	if (!valid_name(name->text) || !strcasecmp(name->text, "any")) {
		mc_err(im->ds, name->loc, "selector name '%s': use 1-64 letters, digits, '_', '.' or '-'", name->text);
		return;
	}
	*MC_PUSH(&im->sels, &im->nsels, &im->capsels) = (struct selector){ mc_strdup(name->text), mc_strdup(a) };
	struct mc_selector_name *sel = MC_PUSH(&s->sels, &s->nsels, &s->capsels);
	memset(sel, 0, sizeof(*sel));
	sel->name = mc_strdup(name->text);
	sel->addrs = *set;
	sel->addrs.r = set->n ? mc_memdup(set->r, set->n * sizeof(*set->r)) : NULL;
	sel->addrs.cap = set->n;
	sel->addrs.name = NULL;
	set->name = sel->name;
}

/* Policy names are case-insensitive, as in MCP and check: the set holds them folded. */
static char *folded(const char *name)
{
	char *f = mc_strdup(name);
	for (char *c = f; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return f;
}

static bool name_taken(const struct importer *im, const char *name)
{
	char *f = folded(name);
	bool has = mc_strset_has(&im->names, f);
	free(f);
	return has;
}

static void name_take(struct importer *im, const char *name)
{
	char *f = folded(name);
	mc_strset_add(&im->names, f);
	free(f);
}

/* A stable name for an unnamed block, from what it does: BYPASS-ANY-OUT, then -2, -3 ... */
static char *generated_name(struct importer *im, const struct mc_policy *p)
{
	char pb[16], base[64];
	const char *proto = p->proto == MC_PROTO_ANY ? "ANY" : mc_proto_str(p->proto, pb, sizeof(pb));

	snprintf(base, sizeof(base), "%s-%s-%s", mc_action_upper(p->action), proto,
		 p->dir == MC_DIR_IN ? "IN" : "OUT");
	for (char *c = base; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	/* Each base remembers where its suffixes got to (there are a few dozen bases at most), so
	 * 3,000 unnamed policies of one kind cost one name lookup each, not a walk from -2 up. */
	struct base_next *bn = NULL;
	for (size_t i = 0; i < im->nnexts && !bn; i++)
		if (!strcmp(im->nexts[i].base, base))
			bn = &im->nexts[i];
	if (!bn) {
		bn = MC_PUSH(&im->nexts, &im->nnexts, &im->capnexts);
		*bn = (struct base_next){ mc_strdup(base), 1 };
	}
	for (;; bn->next++) {
		char *name = bn->next == 1 ? mc_strdup(base) : mc_asprintf("%s-%u", base, bn->next);
		if (!name_taken(im, name)) {
			bn->next++;
			return name;
		}
		free(name);
	}
}

static void conv_protect(struct importer *im, const struct block *b, struct mc_policy *p)
{
	const struct value *v = b->v;

	if (!v[F_SPI].text)
		mc_err(im->ds, b->loc, "PROTECT policy needs an SPI (Security Policy Index)");
	else if (!mc_parse_u32(v[F_SPI].text, UINT32_MAX, &p->spi) || p->spi < 256)
		mc_err(im->ds, v[F_SPI].loc, "SPI '%s' must be a number from 256 to 4294967295 (MCP writes SPIs "
		       "in decimal)", v[F_SPI].text);
	p->spi_given = true;
	if (v[F_MODE].text && strcasecmp(v[F_MODE].text, "transport"))
		mc_err(im->ds, v[F_MODE].loc, "mode '%s' is not supported: transport only", v[F_MODE].text);
	if (v[F_IALG].text)
		p->integrity = conv_alg(im, &v[F_IALG], MC_ALG_INTEGRITY);
	if (v[F_CALG].text) {
		p->confidentiality = conv_alg(im, &v[F_CALG], MC_ALG_CONFIDENTIALITY);
		p->confidentiality_bits = mc_alg_name_bits(v[F_CALG].text);
	}
	/* Key names are written into site.yaml: only what keys.yaml can name, so that what import
	 * writes always loads again. */
	for (int f = F_IKEY; f <= F_CKEY; f += F_CKEY - F_IKEY)
		if (v[f].text && !valid_name(v[f].text))
			mc_err(im->ds, v[f].loc, "bad key name (1-64 letters, digits, '_', '.', '-')");
	if (v[F_IKEY].text)
		p->integrity_key = mc_strdup(v[F_IKEY].text);
	if (v[F_CKEY].text)
		p->confidentiality_key = mc_strdup(v[F_CKEY].text);
	if ((v[F_IALG].text != NULL) != (v[F_IKEY].text != NULL))
		mc_err(im->ds, v[F_IALG].text ? v[F_IALG].loc : v[F_IKEY].loc,
		       "Integrity Algorithm and Integrity Key Name go together");
	if ((v[F_CALG].text != NULL) != (v[F_CKEY].text != NULL))
		mc_err(im->ds, v[F_CALG].text ? v[F_CALG].loc : v[F_CKEY].loc,
		       "Confidentiality Algorithm and Confidentiality Key Name go together");

	char proto[64];
	if (!v[F_IPSEC_PROTO].text) {
		mc_err(im->ds, b->loc, "PROTECT policy needs a Protocol (AH, ESP Integrity or ESP Confidentiality)");
		return;
	}
	normalise(v[F_IPSEC_PROTO].text, strlen(v[F_IPSEC_PROTO].text), proto, sizeof(proto));
	bool ah = !strcmp(proto, "ah"), esp = !strncmp(proto, "esp", 3);
	bool wants_conf = strstr(proto, "confidentiality") != NULL, wants_int = strstr(proto, "integrity") != NULL;
	if (!ah && !esp) {
		mc_err(im->ds, v[F_IPSEC_PROTO].loc, "Protocol '%s': expected AH, ESP, ESP Integrity or ESP "
		       "Confidentiality", v[F_IPSEC_PROTO].text);
		return;
	}
	p->ipsec_proto = ah ? MC_PROTO_AH : MC_PROTO_ESP;
	if (ah && (v[F_CALG].text || !v[F_IALG].text))
		mc_err(im->ds, v[F_IPSEC_PROTO].loc, "Protocol AH takes an Integrity Algorithm and Key Name and no "
		       "confidentiality");
	if (esp && wants_conf && !v[F_CALG].text)
		mc_err(im->ds, v[F_IPSEC_PROTO].loc, "Protocol '%s' needs a Confidentiality Algorithm and Key Name",
		       v[F_IPSEC_PROTO].text);
	if (esp && wants_int && !v[F_IALG].text)
		mc_err(im->ds, v[F_IPSEC_PROTO].loc, "Protocol '%s' needs an Integrity Algorithm and Key Name",
		       v[F_IPSEC_PROTO].text);
	if (esp && !v[F_IALG].text && !v[F_CALG].text)
		mc_err(im->ds, v[F_IPSEC_PROTO].loc, "Protocol ESP needs an integrity or confidentiality algorithm");
}

static struct mc_loc loc_or(const struct value *v, const struct block *b)
{
	return v->text ? v->loc : b->loc;
}

/*
 * What check would refuse, said in the listing's own terms at the listing's own line: ports on
 * a protocol that has none, and IPv4 under IPSECDefault IPv6Only. Guessing what was meant (an
 * ICMP type written as a port? another IPSECDefault?) could protect or open the wrong traffic,
 * so these are errors that say what to write.
 */
static void check_meaning(struct importer *im, const struct block *b, const struct mc_policy *p)
{
	const struct value *v = b->v;

	for (int f = F_LOCAL_PORTS; f <= F_REMOTE_PORTS; f++) {
		const struct mc_portset *ps = f == F_LOCAL_PORTS ? &p->local_ports : &p->remote_ports;
		if (ps->any || !ps->n || p->proto == MC_PROTO_TCP || p->proto == MC_PROTO_UDP)
			continue;
		if (mc_proto_is_icmp(p->proto))
			mc_err(im->ds, v[f].loc, "%s '%s': %s has no ports; for ICMP types and codes write "
			       "'Types/Codes = %s'", v[f].field, v[f].text, v[F_ULP].text, v[f].text);
		else if (!v[F_ULP].text)
			mc_err(im->ds, v[f].loc, "%s '%s' needs a Next Layer Protocol of TCP or UDP (none is given, "
			       "which is ANY)", v[f].field, v[f].text);
		else
			mc_err(im->ds, v[f].loc, "%s '%s': ports are only for TCP or UDP (Next Layer Protocol is %s)",
			       v[f].field, v[f].text, v[F_ULP].text);
	}
	if (im->site->def != MC_DEF_IPV6_ONLY)
		return;
	static const char hint[] = "IPSECDefault IPv6Only (the default) leaves IPv4 outside IPsec; import with "
				   "--default bypass, deny or deny-all, as the host's IPSECDefault is";
	const struct mc_addrset *sets[] = { &p->local, &p->remote };
	for (size_t i = 0; i < MC_ARRAY_SIZE(sets); i++)
		for (size_t r = 0; r < sets[i]->n; r++)
			if (sets[i]->r[r].family == AF_INET) {
				char ab[128];
				mc_range_str(&sets[i]->r[r], ab, sizeof(ab));
				mc_err(im->ds, sets[i]->loc, "IPv4 address '%s': %s", ab, hint);
				break;
			}
	if (p->proto == MC_PROTO_ICMP)
		mc_err(im->ds, v[F_ULP].loc, "Next Layer Protocol ICMP is IPv4: %s", hint);
}

static void finish_block(struct importer *im, struct block *b)
{
	const struct value *v = b->v;
	struct mc_policy *p;

	if (!b->any)
		return;
	p = MC_PUSH(&im->site->pol, &im->site->npol, &im->site->cappol);
	memset(p, 0, sizeof(*p));
	p->loc = b->loc;
	if (!v[F_DIR].text)
		mc_err(im->ds, b->loc, "policy has no Direction (IN or OUT)");
	else if (!strcasecmp(v[F_DIR].text, "in") || !strcasecmp(v[F_DIR].text, "inbound"))
		p->dir = MC_DIR_IN;
	else if (!strcasecmp(v[F_DIR].text, "out") || !strcasecmp(v[F_DIR].text, "outbound"))
		p->dir = MC_DIR_OUT;
	else
		mc_err(im->ds, v[F_DIR].loc, "Direction '%s': expected IN, OUT, INBOUND or OUTBOUND", v[F_DIR].text);
	if (!v[F_ACTION].text)
		mc_err(im->ds, b->loc, "policy has no Disposition (BYPASS, DISCARD or PROTECT)");
	else if (!strcasecmp(v[F_ACTION].text, "bypass"))
		p->action = MC_BYPASS;
	else if (!strcasecmp(v[F_ACTION].text, "discard"))
		p->action = MC_DISCARD;
	else if (!strcasecmp(v[F_ACTION].text, "protect"))
		p->action = MC_PROTECT;
	else
		mc_err(im->ds, v[F_ACTION].loc, "Disposition '%s': expected BYPASS, DISCARD or PROTECT",
		       v[F_ACTION].text);
	p->proto = MC_PROTO_ANY;
	if (v[F_ULP].text && (p->proto = mc_proto_parse(v[F_ULP].text)) < 0) {
		mc_err(im->ds, v[F_ULP].loc, "protocol '%s' is not supported (ANY, TCP, UDP, ICMP, ICMPv6, BIP or "
		       "a number)", v[F_ULP].text);
		p->proto = MC_PROTO_ANY;
	}
	conv_addrs(im, &v[F_LOCAL], &p->local);
	conv_addrs(im, &v[F_REMOTE], &p->remote);
	if (v[F_LOCAL_SEL].text)
		use_selector(im, &v[F_LOCAL_SEL], &v[F_LOCAL], &p->local);
	if (v[F_REMOTE_SEL].text)
		use_selector(im, &v[F_REMOTE_SEL], &v[F_REMOTE], &p->remote);
	conv_ports(im, &v[F_LOCAL_PORTS], &p->local_ports);
	conv_ports(im, &v[F_REMOTE_PORTS], &p->remote_ports);
	p->icmp.any = true;
	if (v[F_ICMP].text && !mc_icmp_parse(v[F_ICMP].text, &p->icmp))
		mc_err(im->ds, v[F_ICMP].loc, "Types/Codes '%s': expected ANY, TYPE, TYPE-TYPE, TYPE/CODE or "
		       "TYPE/CODE-CODE", v[F_ICMP].text);
	/* Places for the checks check would make: a field left out is the block's first line. */
	p->proto_loc = loc_or(&v[F_ULP], b);
	p->spi_loc = loc_or(&v[F_SPI], b);
	p->integrity_loc = v[F_IALG].text ? v[F_IALG].loc : loc_or(&v[F_IPSEC_PROTO], b);
	p->confidentiality_loc = v[F_CALG].text ? v[F_CALG].loc : loc_or(&v[F_IPSEC_PROTO], b);
	if (!p->local.loc.line)
		p->local.loc = b->loc;
	if (!p->remote.loc.line)
		p->remote.loc = b->loc;
	check_meaning(im, b, p);
	if (p->action == MC_PROTECT) {
		conv_protect(im, b, p);
	} else {
		static const enum field protect_only[] = { F_SPI, F_IPSEC_PROTO, F_MODE, F_IKEY, F_IALG, F_CKEY, F_CALG };
		for (size_t i = 0; i < MC_ARRAY_SIZE(protect_only); i++)
			if (v[protect_only[i]].text && *v[protect_only[i]].text)
				mc_err(im->ds, v[protect_only[i]].loc, "%s is only for PROTECT policies",
				       v[protect_only[i]].field);
	}
	if (v[F_NAME].text && !valid_name(v[F_NAME].text))
		mc_err(im->ds, v[F_NAME].loc, "Policy Name '%s': use 1-64 letters, digits, '_', '.' or '-'",
		       v[F_NAME].text);
	else if (v[F_NAME].text && name_taken(im, v[F_NAME].text))
		mc_err(im->ds, v[F_NAME].loc, "Policy Name '%s' is used twice (names are case-insensitive)",
		       v[F_NAME].text);
	else {
		p->name = v[F_NAME].text ? mc_strdup(v[F_NAME].text) : generated_name(im, p);
		name_take(im, p->name);
	}
}

static void parse(struct importer *im, const char *text)
{
	struct block b = { 0 };
	int line = 0;

	for (const char *s = text; *s;) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);
		const char *eq = memchr(s, '=', n);
		size_t lead = 0;

		line++;
		while (lead < n && isspace((unsigned char)s[lead]))
			lead++;
		if (lead == n) {
			finish_block(im, &b); /* a blank line ends a block */
			block_clear(&b);
		} else if (s[lead] == '#') {
			/* comment */
		} else if (!eq) {
			mc_err(im->ds, ((struct mc_loc){ im->file, line, (int)lead + 1 }),
			       "expected 'Field = Value' (MCP policy listing)");
		} else {
			char name[64];
			size_t flen = (size_t)(eq - s) - lead;
			while (flen && isspace((unsigned char)s[lead + flen - 1]))
				flen--;
			normalise(s + lead, flen, name, sizeof(name));
			const char *val = eq + 1;
			size_t vlen = n - (size_t)(val - s);
			while (vlen && isspace((unsigned char)*val)) {
				val++;
				vlen--;
			}
			while (vlen && isspace((unsigned char)val[vlen - 1]))
				vlen--;
			int f = lookup_field(name);
			struct mc_loc vloc = { im->file, line, (int)(val - s) + 1 };
			if (f < 0) {
				mc_err(im->ds, ((struct mc_loc){ im->file, line, (int)lead + 1 }), "unknown field '%.*s'",
				       (int)flen, s + lead);
			} else {
				/* A new Policy Name, or a field seen twice, starts the next policy. */
				if (b.any && (f == F_NAME || b.v[f].text)) {
					finish_block(im, &b);
					block_clear(&b);
				}
				if (!b.any)
					b.loc = (struct mc_loc){ im->file, line, (int)lead + 1 };
				b.any = true;
				b.v[f].text = mc_strndup(val, vlen);
				b.v[f].field = mc_strndup(s + lead, flen);
				b.v[f].loc = vloc;
				if (!vlen)
					mc_err(im->ds, vloc, "%s has no value", b.v[f].field);
			}
		}
		s = eol ? eol + 1 : s + n;
	}
	finish_block(im, &b);
	block_clear(&b);
}

/*
 * Import never writes a file that check refuses: the site is validated as check validates it
 * (keys aside: they are not in the listing), and its errors are reported at the listing's lines.
 * check's warnings are left to check.
 */
static void validate(struct importer *im, struct mc_diags *ds)
{
	struct mc_diags v = { 0 };

	im->site->keys_skipped = true;
	mc_site_validate(im->site, &v);
	for (size_t i = 0; i < v.n; i++)
		if (v.d[i].sev == MC_ERROR)
			mc_diag_addc(ds, MC_ERROR, v.d[i].loc, v.d[i].code, "%s", v.d[i].msg);
	mc_diags_free(&v);
}

int mc_import(const char *file, const char *text, const struct mc_import_opts *o, struct mc_buf *out,
	      struct mc_diags *ds)
{
	struct importer im = { .file = mc_diags_intern(ds, file), .ds = ds };
	size_t errors = ds->errors;
	int rc;

	im.site = mc_calloc(1, sizeof(*im.site));
	im.site->enabled = true;
	im.site->def = o->def;
	parse(&im, text);
	if (!im.site->npol && ds->errors == errors)
		mc_err(ds, mc_loc_file(im.file), "no policies found");
	if (ds->errors == errors)
		validate(&im, ds);
	if (ds->errors > errors) {
		rc = -EINVAL;
	} else {
		mc_buf_puts(out, "# Imported by `mcpsec import` from ");
		mc_emit_comment(out, file);
		mc_buf_printf(out, " (%zu policies, in order).\n", im.site->npol);
		mc_buf_puts(out, "# The key file must define every key name used below, with the same values as\n"
				 "# the peer's (mcpsec key import, or keys.yaml by hand).\n");
		mc_emit_header(im.site, o->keys_text ? o->keys_text : "keys.yaml", out);
		for (size_t i = 0; i < im.site->npol; i++)
			mc_emit_policy(&im.site->pol[i], NULL, out);
		rc = (int)im.site->npol;
	}
	for (size_t i = 0; i < im.nsels; i++) {
		free(im.sels[i].name);
		free(im.sels[i].addr);
	}
	free(im.sels);
	for (size_t i = 0; i < im.nnexts; i++)
		free(im.nexts[i].base);
	free(im.nexts);
	mc_strset_free(&im.names);
	mc_site_free(im.site);
	return rc;
}
