/* SPDX-License-Identifier: MIT */
/*
 * YAML loader. Uses libyaml's document API so that every node carries its start mark, and
 * checks keys itself because libyaml accepts duplicate keys silently. All problems of a file
 * are collected; nothing stops at the first.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "algo.h"
#include "conf.h"
#include "diag.h"
#include "fileio.h"
#include "flowtest.h"
#include "keys.h"
#include "model.h"
#include "util.h"



struct ctx {
	yaml_document_t doc;
	const char *file;
	bool secret; /* a key file: messages never quote what is in it but key names */
	bool strict; /* a key file others can read is an error (apply), not a warning (check) */
	struct mc_diags *ds;
	struct mc_site *site;
};

static struct mc_loc loc_of(const struct ctx *c, const yaml_node_t *n)
{
	if (!n)
		return (struct mc_loc){ c->file, 0, 0 };
	return (struct mc_loc){ c->file, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1 };
}

/* The last line of a node that holds content: a block collection's own end mark lies at the next
 * token, past trailing comments, so the deepest last scalar decides. */
static int last_content_line(struct ctx *c, yaml_node_t *n, int depth)
{
	yaml_node_t *last = NULL;

	if (!n || depth > 64)
		return 0;
	if (n->type == YAML_SEQUENCE_NODE && n->data.sequence.items.top > n->data.sequence.items.start)
		last = yaml_document_get_node(&c->doc, n->data.sequence.items.top[-1]);
	else if (n->type == YAML_MAPPING_NODE && n->data.mapping.pairs.top > n->data.mapping.pairs.start)
		last = yaml_document_get_node(&c->doc, n->data.mapping.pairs.top[-1].value);
	if (last)
		return last_content_line(c, last, depth + 1);
	return (int)n->end_mark.line + 1 - (n->end_mark.column == 0 && n->end_mark.line > n->start_mark.line);
}

static struct mc_span span_of(struct ctx *c, yaml_node_t *n)
{
	if (!n)
		return (struct mc_span){ 0, 0, 0, 0 };
	struct mc_span s = { (int)n->start_mark.line + 1, (int)n->start_mark.column + 1,
			     (int)n->end_mark.line + 1, (int)n->end_mark.column + 1 };
	if (n->type != YAML_SCALAR_NODE)
		s.end_line = last_content_line(c, n, 0);
	return s;
}

static const char *node_kind(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE ? "a mapping" :
	       n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

static bool valid_name(const char *s);

/* Text from the file that did not parse as mcpsec's (an unknown or repeated key, a value of the
 * wrong kind): a message quotes it only where it is a plain name. A site or key path that points
 * at another file (say /etc/shadow, through a link) must not print that file, whatever its
 * mode; a misspelt key ('spii') is a name and is still shown. */
static const char *shown(const struct ctx *c, const char *s)
{
	return valid_name(s) ? s : c->secret ? "(not shown: text of a key file)" : "(not shown: not a name)";
}

/* The scalar text of n, or NULL with an error that says what was expected. A NUL inside the
 * value would silently cut it short, so it is an error. */
static const char *scalar(struct ctx *c, yaml_node_t *n, const char *what)
{
	if (n->type != YAML_SCALAR_NODE) {
		mc_err(c->ds, loc_of(c, n), "%s must be a scalar, not %s", what, node_kind(n));
		return NULL;
	}
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		mc_err(c->ds, loc_of(c, n), "%s contains a NUL character", what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

static bool expect_mapping(struct ctx *c, yaml_node_t *n, const char *what)
{
	if (n->type == YAML_MAPPING_NODE)
		return true;
	mc_err(c->ds, loc_of(c, n), "%s must be a mapping, not %s", what, node_kind(n));
	return false;
}

static int cmp_key_nodes(const void *a, const void *b)
{
	const yaml_node_t *x = *(yaml_node_t *const *)a, *y = *(yaml_node_t *const *)b;
	int r = strcmp((const char *)x->data.scalar.value, (const char *)y->data.scalar.value);
	/* Equal names keep file order, so the later one is reported as the duplicate. */
	return r ? r : (x < y ? -1 : x > y);
}

/*
 * Reports unknown and duplicate keys of a mapping. allowed is NULL-terminated; NULL allows any
 * key (name tables) but still catches duplicates. Duplicates are found by sorting: a mapping
 * of 40,000 names costs n log n, not n².
 */
static void check_keys(struct ctx *c, yaml_node_t *map, const char *const *allowed, const char *what)
{
	size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start), nk = 0;
	yaml_node_t **ks = mc_calloc(n ? n : 1, sizeof(*ks));

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		const char *s = scalar(c, k, "a key");

		if (!s)
			continue;
		ks[nk++] = k;
		if (allowed) {
			bool ok = false;
			for (const char *const *a = allowed; *a && !ok; a++)
				ok = !strcmp(*a, s);
			if (!ok)
				mc_err(c->ds, loc_of(c, k), "unknown key '%s' in %s", shown(c, s), what);
		}
	}
	/* Nodes are allocated in document order, so their addresses order them as in the file. */
	qsort(ks, nk, sizeof(*ks), cmp_key_nodes);
	for (size_t i = 1; i < nk; i++) {
		size_t first = i - 1;
		while (i < nk && !strcmp((const char *)ks[first]->data.scalar.value, (const char *)ks[i]->data.scalar.value)) {
			mc_err(c->ds, loc_of(c, ks[i]), "duplicate key '%s' (first at line %d)",
			       shown(c, (const char *)ks[i]->data.scalar.value), (int)ks[first]->start_mark.line + 1);
			i++;
		}
	}
	free(ks);
}

/* Value node for key in a mapping (the first, if duplicated), or NULL. */
static yaml_node_t *get(struct ctx *c, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
			return yaml_document_get_node(&c->doc, p->value);
	}
	return NULL;
}

static yaml_node_t *key_node(struct ctx *c, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
			return k;
	}
	return NULL;
}

static bool parse_bool(struct ctx *c, yaml_node_t *n, const char *what, bool *ret)
{
	const char *s = scalar(c, n, what);

	if (!s)
		return false;
	if (!strcmp(s, "true") || !strcmp(s, "yes")) {
		*ret = true;
		return true;
	}
	if (!strcmp(s, "false") || !strcmp(s, "no")) {
		*ret = false;
		return true;
	}
	mc_err(c->ds, loc_of(c, n), "%s must be true or false, not '%s'", what, shown(c, s));
	return false;
}

/* Calls fn for each item of a scalar "a, b" or a list [a, b]; items are trimmed. */
static void for_each_item(struct ctx *c, yaml_node_t *n, const char *what,
			  void (*fn)(struct ctx *c, yaml_node_t *at, const char *item, void *arg), void *arg)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		if (n->data.sequence.items.start == n->data.sequence.items.top)
			mc_err(c->ds, loc_of(c, n), "%s must not be an empty list", what);
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			yaml_node_t *item = yaml_document_get_node(&c->doc, *i);
			const char *s = scalar(c, item, what);
			if (s)
				fn(c, item, s, arg);
		}
		return;
	}
	const char *s = scalar(c, n, what);
	if (!s)
		return;
	char *copy = mc_strdup(s), *save = NULL;
	int count = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t len = strlen(tok);
		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		fn(c, n, tok, arg);
		count++;
	}
	if (!count)
		mc_err(c->ds, loc_of(c, n), "%s must not be empty", what);
	free(copy);
}

/* ---- addresses ---- */

struct addr_arg {
	struct mc_addrset *set;
	bool allow_names;
	const char *what;
	size_t items;
	const char *sel_name; /* the last item's selector name, if it was one */
};

static void add_addr_item(struct ctx *c, yaml_node_t *at, const char *item, void *argp)
{
	struct addr_arg *a = argp;
	struct mc_range r;
	const char *err;

	a->items++;
	a->sel_name = NULL;
	if (!strcasecmp(item, "any")) {
		a->set->any = true;
		return;
	}
	if (a->allow_names) {
		for (size_t i = 0; i < c->site->nsels; i++) {
			struct mc_selector_name *sel = &c->site->sels[i];
			if (!strcasecmp(sel->name, item)) {
				a->sel_name = sel->name;
				if (sel->addrs.any)
					a->set->any = true;
				for (size_t j = 0; j < sel->addrs.n; j++)
					*MC_PUSH(&a->set->r, &a->set->n, &a->set->cap) = sel->addrs.r[j];
				return;
			}
		}
	}
	if (!mc_range_parse(item, &r, &err)) {
		if (!strpbrk(item, ":./-") && a->allow_names)
			mc_err(c->ds, loc_of(c, at), "%s: unknown selector name '%s'", a->what, item);
		else
			mc_err(c->ds, loc_of(c, at), "%s: '%s': %s", a->what, item, err);
		return;
	}
	/* An IPv4-mapped address (::ffff:a.b.c.d) never travels: a dual-stack socket sends to it as
	 * IPv4, and the kernel decides it by IPv4 policies, so an IPv6 selector of it matches nothing
	 * (a PROTECT written so would protect nothing). */
	const mc_u128 mapped_lo = (mc_u128)0xffff << 32, mapped_hi = mapped_lo | 0xffffffffu;
	if (r.family == AF_INET6 && r.lo >= mapped_lo && r.hi <= mapped_hi) {
		struct mc_range v4 = { AF_INET, r.lo & 0xffffffffu, r.hi & 0xffffffffu };
		char buf[96];
		mc_range_str(&v4, buf, sizeof(buf));
		mc_err(c->ds, loc_of(c, at), "%s: '%s' is IPv4-mapped: the kernel sends such traffic as IPv4, so an "
		       "IPv6 selector never matches it; write %s", a->what, item, buf);
		return;
	}
	*MC_PUSH(&a->set->r, &a->set->n, &a->set->cap) = r;
}

static void parse_addrset(struct ctx *c, yaml_node_t *n, struct mc_addrset *set, bool allow_names,
			  const char *what)
{
	struct addr_arg a = { set, allow_names, what, 0, NULL };

	set->loc = loc_of(c, n);
	for_each_item(c, n, what, add_addr_item, &a);
	if (a.items == 1)
		set->name = a.sel_name;
	if (set->any && set->n) {
		mc_err(c->ds, set->loc, "%s: 'any' cannot be combined with addresses", what);
		set->n = 0;
	}
	set->n = mc_ranges_merge(set->r, set->n);
}

/* ---- ports and ICMP ---- */

static void add_port_item(struct ctx *c, yaml_node_t *at, const char *item, void *argp)
{
	struct mc_portset *set = argp;
	unsigned lo, hi;

	if (!strcasecmp(item, "any")) {
		set->any = true;
		return;
	}
	if (!mc_parse_range(item, 65535, &lo, &hi)) {
		mc_err(c->ds, loc_of(c, at), "bad port '%s': expected any, N, N-M or a list of these", item);
		return;
	}
	*MC_PUSH(&set->r, &set->n, &set->cap) = (struct mc_portrange){ (uint16_t)lo, (uint16_t)hi };
}

static void parse_portset(struct ctx *c, yaml_node_t *n, struct mc_portset *set)
{
	set->loc = loc_of(c, n);
	for_each_item(c, n, "ports", add_port_item, set);
	mc_portset_merge(set);
}

static void parse_icmp(struct ctx *c, yaml_node_t *n, struct mc_icmpspec *ic)
{
	const char *s = scalar(c, n, "icmp");
	struct mc_loc loc = loc_of(c, n);

	ic->loc = loc;
	if (s && !mc_icmp_parse(s, ic))
		mc_err(c->ds, loc, "bad icmp '%s': expected any, TYPE, TYPE-TYPE, TYPE/CODE or TYPE/CODE-CODE (0-255)", s);
	ic->loc = loc;
}

/* ---- PROTECT ---- */

static const struct mc_alg *parse_alg(struct ctx *c, yaml_node_t *n, enum mc_alg_kind kind,
				      struct mc_loc *ret_loc)
{
	const char *s = scalar(c, n, kind == MC_ALG_INTEGRITY ? "integrity" : "confidentiality");
	const struct mc_alg *a;

	*ret_loc = loc_of(c, n);
	if (!s)
		return NULL;
	if (!(a = mc_alg_find(s, kind)))
		mc_err(c->ds, *ret_loc, "unknown %s algorithm '%s' (expected %s)",
		       kind == MC_ALG_INTEGRITY ? "integrity" : "confidentiality", s, mc_alg_names(kind));
	return a;
}

static char *parse_keyname(struct ctx *c, yaml_node_t *n, const char *what)
{
	const char *s = scalar(c, n, what);
	return s ? mc_strdup(s) : NULL;
}

static void parse_ah(struct ctx *c, yaml_node_t *n, struct mc_policy *p)
{
	static const char *const keys[] = { "integrity", "key", NULL };
	yaml_node_t *v;

	if (!expect_mapping(c, n, "ah"))
		return;
	check_keys(c, n, keys, "ah");
	p->ipsec_proto = MC_PROTO_AH;
	p->integrity_loc = loc_of(c, n);
	if ((v = get(c, n, "integrity")))
		p->integrity = parse_alg(c, v, MC_ALG_INTEGRITY, &p->integrity_loc);
	else
		mc_err(c->ds, loc_of(c, n), "ah needs 'integrity' (AH always authenticates)");
	if ((v = get(c, n, "key"))) {
		p->integrity_key = parse_keyname(c, v, "key");
		p->ikey_span = span_of(c, v);
	} else
		mc_err(c->ds, loc_of(c, n), "ah needs 'key' (the name of a key in the key file)");
}

static void parse_esp(struct ctx *c, yaml_node_t *n, struct mc_policy *p)
{
	static const char *const keys[] = { "confidentiality", "confidentiality-key", "integrity",
					    "integrity-key", NULL };
	yaml_node_t *v;

	if (!expect_mapping(c, n, "esp"))
		return;
	check_keys(c, n, keys, "esp");
	p->ipsec_proto = MC_PROTO_ESP;
	p->integrity_loc = p->confidentiality_loc = loc_of(c, n);
	if ((v = get(c, n, "integrity")))
		p->integrity = parse_alg(c, v, MC_ALG_INTEGRITY, &p->integrity_loc);
	if ((v = get(c, n, "integrity-key"))) {
		p->integrity_key = parse_keyname(c, v, "integrity-key");
		p->ikey_span = span_of(c, v);
	}
	if ((v = get(c, n, "confidentiality"))) {
		p->confidentiality = parse_alg(c, v, MC_ALG_CONFIDENTIALITY, &p->confidentiality_loc);
		if (p->confidentiality) /* a scalar, then (parse_alg said so otherwise) */
			p->confidentiality_bits = mc_alg_name_bits(scalar(c, v, "confidentiality"));
	}
	if ((v = get(c, n, "confidentiality-key"))) {
		p->confidentiality_key = parse_keyname(c, v, "confidentiality-key");
		p->ekey_span = span_of(c, v);
	}
	if (!get(c, n, "integrity") && !get(c, n, "confidentiality"))
		mc_err(c->ds, loc_of(c, n), "esp needs 'integrity' and/or 'confidentiality'");
	if (get(c, n, "integrity") && !p->integrity_key)
		mc_err(c->ds, p->integrity_loc, "esp integrity needs 'integrity-key'");
	if (get(c, n, "confidentiality") && !p->confidentiality_key)
		mc_err(c->ds, p->confidentiality_loc, "esp confidentiality needs 'confidentiality-key'");
	if (!get(c, n, "integrity") && (v = get(c, n, "integrity-key")))
		mc_err(c->ds, loc_of(c, v), "'integrity-key' without 'integrity'");
	if (!get(c, n, "confidentiality") && (v = get(c, n, "confidentiality-key")))
		mc_err(c->ds, loc_of(c, v), "'confidentiality-key' without 'confidentiality'");
}

/* next: the SA a key rollover moves to. Its key names follow the policy's own protocol (ah: key;
 * esp: integrity-key and/or confidentiality-key, as the policy has them); algorithms stay. */
static void parse_next(struct ctx *c, yaml_node_t *key, yaml_node_t *n, struct mc_policy *p)
{
	static const char *const keys[] = { "phase", "spi", "key", "integrity-key", "confidentiality-key", NULL };
	struct mc_next *x = &p->next;
	yaml_node_t *v;
	const char *s;

	x->loc = loc_of(c, n);
	x->key_span = span_of(c, key);
	x->value_span = span_of(c, n);
	x->spi_loc = x->phase_loc = x->integrity_loc = x->confidentiality_loc = x->loc;
	if (!expect_mapping(c, n, "next"))
		return;
	check_keys(c, n, keys, "next");
	x->given = true;
	if (!(v = get(c, n, "phase"))) {
		mc_err(c->ds, x->loc, "next needs a 'phase' (accept or switch)");
	} else if ((s = scalar(c, v, "phase"))) {
		x->phase_loc = loc_of(c, v);
		x->phase_span = span_of(c, v);
		if (!strcasecmp(s, "accept"))
			x->phase = MC_PHASE_ACCEPT;
		else if (!strcasecmp(s, "switch"))
			x->phase = MC_PHASE_SWITCH;
		else
			mc_err(c->ds, x->phase_loc, "phase must be accept or switch, not '%s' (to retire the "
			       "old SA, move next's spi and keys into the policy: mcpsec rekey does)", s);
	}
	if (!(v = get(c, n, "spi"))) {
		mc_err(c->ds, x->loc, "next needs an 'spi' (256-4294967295)");
	} else if ((s = scalar(c, v, "spi"))) {
		x->spi_loc = loc_of(c, v);
		x->spi_span = span_of(c, v);
		if (!mc_parse_u32(s, UINT32_MAX, &x->spi) || x->spi < 256)
			mc_err(c->ds, x->spi_loc, "bad spi '%s': expected 256-4294967295, decimal or 0x-hex", s);
	}
	bool ah = p->ipsec_proto == MC_PROTO_AH;
	const char *iname = ah ? "key" : "integrity-key";
	if ((v = get(c, n, iname))) {
		x->integrity_key = parse_keyname(c, v, iname);
		x->integrity_loc = loc_of(c, v);
		x->ikey_span = span_of(c, v);
	}
	if (!ah && (v = get(c, n, "confidentiality-key"))) {
		x->confidentiality_key = parse_keyname(c, v, "confidentiality-key");
		x->confidentiality_loc = loc_of(c, v);
		x->ekey_span = span_of(c, v);
	}
	if (ah && (v = get(c, n, "integrity-key")))
		mc_err(c->ds, loc_of(c, v), "next of an ah policy names its key as 'key'");
	if (ah && (v = get(c, n, "confidentiality-key")))
		mc_err(c->ds, loc_of(c, v), "ah has no confidentiality: next needs no 'confidentiality-key'");
	if (!ah && (v = get(c, n, "key")))
		mc_err(c->ds, loc_of(c, v), "next of an esp policy names 'integrity-key' and/or 'confidentiality-key'");
	if (p->integrity && !x->integrity_key)
		mc_err(c->ds, x->loc, "next needs '%s': the policy uses integrity %s", iname, p->integrity->name);
	if (p->confidentiality && !x->confidentiality_key)
		mc_err(c->ds, x->loc, "next needs 'confidentiality-key': the policy uses confidentiality %s",
		       p->confidentiality->name);
	if (!p->integrity && x->integrity_key && p->ipsec_proto)
		mc_err(c->ds, x->integrity_loc, "next names an integrity key, but the policy has no integrity");
	if (!p->confidentiality && x->confidentiality_key && p->ipsec_proto)
		mc_err(c->ds, x->confidentiality_loc, "next names a confidentiality key, but the policy has no confidentiality");
}

/* One limit of lifetime: a value (the hard limit; the soft one at 90% of it) or {soft, hard}. */
static void parse_limit(struct ctx *c, yaml_node_t *n, const char *what, enum mc_unit unit, uint64_t *soft,
			uint64_t *hard)
{
	static const char *const keys[] = { "soft", "hard", NULL };
	const char *example = unit == MC_UNIT_SECONDS ? "90s, 15m, 24h, 30d" : unit == MC_UNIT_BYTES ? "4096, 512MiB, 30GiB"
											   : "a whole number";
	yaml_node_t *v;
	const char *s;

	if (n->type == YAML_SCALAR_NODE) {
		if ((s = scalar(c, n, what)) && !mc_parse_quantity(s, unit, hard))
			mc_err(c->ds, loc_of(c, n), "bad %s '%s' (expected %s)", what, s, example);
		*soft = *hard - *hard / 10;
		return;
	}
	if (!expect_mapping(c, n, what))
		return;
	check_keys(c, n, keys, what);
	uint64_t *dst[2] = { soft, hard };
	for (int i = 0; i < 2; i++)
		if ((v = get(c, n, keys[i])) && (s = scalar(c, v, keys[i])) && !mc_parse_quantity(s, unit, dst[i]))
			mc_err(c->ds, loc_of(c, v), "bad %s %s '%s' (expected %s)", what, keys[i], s, example);
	if (*soft && *hard && *soft > *hard)
		mc_err(c->ds, loc_of(c, n), "%s: the soft limit is above the hard one", what);
}

/* lifetime: {time, bytes, packets}; absent limits are none (the default: SAs live forever). */
static void parse_lifetime(struct ctx *c, yaml_node_t *n, struct mc_policy *p)
{
	static const char *const keys[] = { "time", "bytes", "packets", NULL };
	struct mc_lifetime *l = &p->lifetime;
	yaml_node_t *v;

	p->lifetime_loc = loc_of(c, n);
	if (!expect_mapping(c, n, "lifetime"))
		return;
	check_keys(c, n, keys, "lifetime");
	if ((v = get(c, n, "time")))
		parse_limit(c, v, "lifetime time", MC_UNIT_SECONDS, &l->soft_secs, &l->hard_secs);
	if ((v = get(c, n, "bytes")))
		parse_limit(c, v, "lifetime bytes", MC_UNIT_BYTES, &l->soft_bytes, &l->hard_bytes);
	if ((v = get(c, n, "packets")))
		parse_limit(c, v, "lifetime packets", MC_UNIT_COUNT, &l->soft_packets, &l->hard_packets);
}

/* ---- policies ---- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

/* enforce: accept | protect | require, the phases of turning protection on (or off) without loss. */
static void parse_enforce(struct ctx *c, yaml_node_t *key, yaml_node_t *v, struct mc_policy *p)
{
	const char *s = scalar(c, v, "enforce");

	p->enforce_given = true;
	p->enforce_loc = loc_of(c, v);
	p->enforce_key_span = span_of(c, key);
	p->enforce_span = span_of(c, v);
	if (!s)
		return;
	if (!strcasecmp(s, "accept"))
		p->enforce = MC_ENFORCE_ACCEPT;
	else if (!strcasecmp(s, "protect"))
		p->enforce = MC_ENFORCE_PROTECT;
	else if (!strcasecmp(s, "require"))
		p->enforce = MC_ENFORCE_REQUIRE;
	else
		mc_err(c->ds, p->enforce_loc, "enforce must be accept, protect or require, not '%s' (the phases of "
		       "turning protection on: mcpsec phase-in takes the next one)", s);
}

static void parse_policy(struct ctx *c, yaml_node_t *n)
{
	static const char *const keys[] = { "name", "description", "direction", "protocol", "local",
					    "remote", "local-ports", "remote-ports", "icmp", "action",
					    "spi", "ah", "esp", "mode", "next", "lifetime", "enforce", NULL };
	struct mc_policy *p = MC_PUSH(&c->site->pol, &c->site->npol, &c->site->cappol);
	yaml_node_t *v;
	const char *s;

	memset(p, 0, sizeof(*p));
	p->loc = loc_of(c, n);
	p->local.any = p->remote.any = p->local_ports.any = p->remote_ports.any = p->icmp.any = true;
	p->local.loc = p->remote.loc = p->local_ports.loc = p->remote_ports.loc = p->icmp.loc = p->loc;
	p->proto_loc = p->spi_loc = p->loc;
	p->action = MC_BYPASS;
	p->span = span_of(c, n);
	p->block_style = n->type == YAML_MAPPING_NODE && n->data.mapping.style != YAML_FLOW_MAPPING_STYLE;
	if (!expect_mapping(c, n, "a policy"))
		return;
	check_keys(c, n, keys, "a policy");

	if (!(v = get(c, n, "name"))) {
		mc_err(c->ds, p->loc, "policy needs a 'name'");
	} else if ((s = scalar(c, v, "name"))) {
		if (!valid_name(s))
			mc_err(c->ds, loc_of(c, v),
			       "bad policy name '%s': use 1-64 letters, digits, '_', '-' or '.'", s);
		else if (mc_name_reserved(s))
			mc_err(c->ds, loc_of(c, v),
			       "policy name '%s' is reserved (BUILTIN-* and DEFAULT-* are mcpsec's own)", s);
		p->name = mc_strdup(s);
		p->loc = loc_of(c, v);
	}
	if ((v = get(c, n, "description")))
		(void)scalar(c, v, "description");

	if (!(v = get(c, n, "direction"))) {
		mc_err(c->ds, p->loc, "policy%s%s%s needs a 'direction' (in or out)", p->name ? " '" : "",
		       p->name ? p->name : "", p->name ? "'" : "");
	} else if ((s = scalar(c, v, "direction"))) {
		if (!strcasecmp(s, "in") || !strcasecmp(s, "inbound"))
			p->dir = MC_DIR_IN;
		else if (!strcasecmp(s, "out") || !strcasecmp(s, "outbound"))
			p->dir = MC_DIR_OUT;
		else
			mc_err(c->ds, loc_of(c, v), "direction must be in or out, not '%s'", s);
	}

	p->proto = MC_PROTO_ANY;
	if ((v = get(c, n, "protocol"))) {
		p->proto_loc = loc_of(c, v);
		if ((s = scalar(c, v, "protocol"))) {
			int proto = mc_proto_parse(s);
			if (proto < 0)
				mc_err(c->ds, p->proto_loc,
				       "unknown protocol '%s' (expected any, tcp, udp, icmp, icmpv6, bip or 1-255)", s);
			else
				p->proto = proto;
		}
	}

	if ((v = get(c, n, "local"))) {
		p->local.any = false;
		parse_addrset(c, v, &p->local, true, "local");
	}
	if ((v = get(c, n, "remote"))) {
		p->remote.any = false;
		parse_addrset(c, v, &p->remote, true, "remote");
	}
	if ((v = get(c, n, "local-ports"))) {
		p->local_ports.any = false;
		parse_portset(c, v, &p->local_ports);
	}
	if ((v = get(c, n, "remote-ports"))) {
		p->remote_ports.any = false;
		parse_portset(c, v, &p->remote_ports);
	}
	if ((v = get(c, n, "icmp")))
		parse_icmp(c, v, &p->icmp);

	if (!(v = get(c, n, "action"))) {
		mc_err(c->ds, p->loc, "policy%s%s%s needs an 'action' (bypass, discard or protect)",
		       p->name ? " '" : "", p->name ? p->name : "", p->name ? "'" : "");
	} else if ((s = scalar(c, v, "action"))) {
		if (!strcasecmp(s, "bypass"))
			p->action = MC_BYPASS;
		else if (!strcasecmp(s, "discard"))
			p->action = MC_DISCARD;
		else if (!strcasecmp(s, "protect"))
			p->action = MC_PROTECT;
		else
			mc_err(c->ds, loc_of(c, v), "action must be bypass, discard or protect, not '%s'", s);
	}

	if ((v = get(c, n, "mode")) && (s = scalar(c, v, "mode"))) {
		if (!strcasecmp(s, "tunnel"))
			mc_err(c->ds, loc_of(c, v), "mode 'tunnel' is not supported: mcpsec (like MCP) does transport mode only");
		else if (strcasecmp(s, "transport"))
			mc_err(c->ds, loc_of(c, v), "mode must be transport, not '%s'", s);
	}
	if ((v = get(c, n, "spi")) && (s = scalar(c, v, "spi"))) {
		uint32_t spi;
		p->spi_loc = loc_of(c, v);
		p->spi_span = span_of(c, v);
		p->spi_given = true;
		if (!mc_parse_u32(s, UINT32_MAX, &spi) || spi < 256)
			mc_err(c->ds, p->spi_loc, "bad spi '%s': expected 256-4294967295, decimal or 0x-hex "
				"(0-255 are reserved by IANA)", s);
		else
			p->spi = spi;
	}
	if ((v = get(c, n, "ah")))
		parse_ah(c, v, p);
	if ((v = get(c, n, "esp"))) {
		if (get(c, n, "ah"))
			mc_err(c->ds, loc_of(c, key_node(c, n, "esp")),
			       "a policy has either 'ah' or 'esp', not both (MCP: one IPsec protocol per packet)");
		else
			parse_esp(c, v, p);
	}
	if ((v = get(c, n, "next")))
		parse_next(c, key_node(c, n, "next"), v, p);
	if ((v = get(c, n, "lifetime")))
		parse_lifetime(c, v, p);
	if ((v = get(c, n, "enforce")))
		parse_enforce(c, key_node(c, n, "enforce"), v, p);
}

/* ---- top level ---- */

static void parse_selectors(struct ctx *c, yaml_node_t *n)
{
	if (!expect_mapping(c, n, "selectors"))
		return;
	check_keys(c, n, NULL, "selectors");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&c->doc, p->value);
		const char *name = scalar(c, k, "a selector name");

		if (!name)
			continue;
		if (!valid_name(name) || !strcasecmp(name, "any")) {
			mc_err(c->ds, loc_of(c, k), "bad selector name '%s'", name);
			continue;
		}
		struct mc_selector_name *sel = MC_PUSH(&c->site->sels, &c->site->nsels, &c->site->capsels);
		memset(sel, 0, sizeof(*sel));
		sel->name = mc_strdup(name);
		parse_addrset(c, v, &sel->addrs, false, "selector");
	}
}

static char *resolve_relative(const char *base_file, const char *path)
{
	if (path[0] == '/')
		return mc_strdup(path);
	char *copy = mc_strdup(base_file);
	char *res = mc_asprintf("%s/%s", dirname(copy), path);
	free(copy);
	return res;
}

static void parse_ipsec(struct ctx *c, yaml_node_t *n)
{
	static const char *const keys[] = { "enabled", "default", "keys", "on-failure", "allow-shared-spi", NULL };
	yaml_node_t *v;
	const char *s;

	if (!expect_mapping(c, n, "ipsec"))
		return;
	check_keys(c, n, keys, "ipsec");
	if ((v = get(c, n, "enabled"))) {
		parse_bool(c, v, "ipsec.enabled", &c->site->enabled);
		c->site->enabled_given = true;
	}
	if ((v = get(c, n, "allow-shared-spi")))
		parse_bool(c, v, "ipsec.allow-shared-spi", &c->site->allow_shared_spi);
	if ((v = get(c, n, "default")) && (s = scalar(c, v, "ipsec.default"))) {
		c->site->def_loc = loc_of(c, v);
		if (!mc_default_parse(s, &c->site->def))
			mc_err(c->ds, loc_of(c, v),
			       "ipsec.default must be ipv6-only, bypass, deny or deny-all (MCP: IPv6Only, BYPASS, "
			       "DENY, DENYALL), not '%s'", s);
	}
	if ((v = get(c, n, "on-failure")) && (s = scalar(c, v, "ipsec.on-failure"))) {
		if (!strcasecmp(s, "lockdown"))
			c->site->on_failure = MC_ON_FAILURE_LOCKDOWN;
		else if (!strcasecmp(s, "open"))
			c->site->on_failure = MC_ON_FAILURE_OPEN;
		else
			mc_err(c->ds, loc_of(c, v), "ipsec.on-failure must be lockdown or open, not '%s'", s);
	}
	if ((v = get(c, n, "keys")) && (s = scalar(c, v, "ipsec.keys"))) {
		c->site->keys_file = resolve_relative(c->file, s);
		c->site->keys_text = mc_strdup(s);
		c->site->keys_loc = loc_of(c, v);
	}
}

/*
 * Reads a whole regular file (mc_file_read: non-blocking, so a FIFO in its place is refused, not
 * waited on). A key file is checked on the opened descriptor's fstat, not by name, so nothing can
 * be swapped in between: no symlink, owned by root or the caller, no access for group or others.
 */
static char *read_file(struct ctx *c, const char *path, size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int r = mc_file_read(path, c->secret ? MC_READ_NOFOLLOW | MC_READ_SECRET : 0, MC_FILE_MAX, &buf, &len,
			     &st);

	if (r < 0) {
		if (r == -ELOOP && c->secret)
			mc_err(c->ds, mc_loc_file(c->file), "the key file is a symbolic link: name the file itself");
		else
			mc_err(c->ds, mc_loc_file(c->file), "cannot read: %s",
			       r == -EINVAL ? "not a regular file" : r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
		return NULL;
	}
	if (c->secret) {
		enum mc_severity sev = c->strict ? MC_ERROR : MC_WARNING;
		bool open_mode = st.st_mode & 0077, foreign = st.st_uid != 0 && st.st_uid != getuid();
		if (open_mode)
			mc_diag_add(c->ds, sev, mc_loc_file(c->file),
				    "key file mode is %04o: group and others must not have access (chmod 600)",
				    (unsigned)(st.st_mode & 07777));
		if (foreign)
			mc_diag_add(c->ds, sev, mc_loc_file(c->file), "key file is owned by uid %u, not by root or you",
				    (unsigned)st.st_uid);
		if (c->strict && (open_mode || foreign)) {
			mc_wipe(buf, len);
			free(buf);
			return NULL;
		}
	}
	*ret_len = len;
	return buf;
}

/* Line and column (1-based) of a byte offset. */
static struct mc_loc loc_at_offset(const struct ctx *c, const char *buf, size_t len, size_t off)
{
	struct mc_loc l = { c->file, 1, 1 };

	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			l.line++;
			l.col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			l.col++;
		}
	}
	return l;
}

/* Deeper than any site or key file needs (they nest 5 levels); libyaml's scanner costs grow
 * with the square of the depth, so a deeper file is refused before it is loaded. */
#define MAX_DEPTH 32

/* Walks buf's events and stops at the first collection deeper than MAX_DEPTH: true when
 * there is none (syntax errors are left for the loader to report). */
static bool depth_ok(struct ctx *c, const char *buf, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0;
	bool ok = true, done = false;

	if (!yaml_parser_initialize(&parser))
		return true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && yaml_parser_parse(&parser, &ev)) {
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
			if (++depth > MAX_DEPTH) {
				struct mc_loc l = { c->file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1 };
				mc_err(c->ds, l, "nested deeper than %d levels", MAX_DEPTH);
				ok = false;
				done = true;
			}
		} else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		done |= ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return ok;
}

/* Wipes every scalar of the document, then deletes it: key files hold secrets. */
static void wipe_doc(yaml_document_t *doc)
{
	for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE)
			mc_wipe(n->data.scalar.value, n->data.scalar.length);
	yaml_document_delete(doc);
}

/* A file of mcpsec's holds one YAML document: anything after a second '---' would otherwise be
 * ignored without a word (a policy list split in two, the second half never enforced). */
static bool one_document(struct ctx *c, yaml_parser_t *parser)
{
	yaml_document_t extra;
	bool ok = true;

	if (!yaml_parser_load(parser, &extra)) {
		struct mc_loc l = { c->file, (int)parser->problem_mark.line + 1, (int)parser->problem_mark.column + 1 };
		mc_err(c->ds, l, "a second YAML document that does not parse: a file holds one document");
		return false;
	}
	if (yaml_document_get_root_node(&extra)) {
		struct mc_loc l = { c->file, (int)extra.start_mark.line + 1, (int)extra.start_mark.column + 1 };
		mc_err(c->ds, l, "a second YAML document ('---'): a file holds one document, and nothing after it "
		       "would be read");
		ok = false;
	}
	wipe_doc(&extra);
	return ok;
}

/* Parses buf into c->doc; false (with diagnostics) on syntax errors. */
static bool parse_doc(struct ctx *c, const char *buf, size_t len)
{
	yaml_parser_t parser;

	if (!depth_ok(c, buf, len))
		return false;
	if (!yaml_parser_initialize(&parser)) {
		mc_err(c->ds, mc_loc_file(c->file), "out of memory");
		return false;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &c->doc)) {
		/* The reader (bad UTF-8, control characters) gives an offset, not a mark. */
		struct mc_loc l = parser.error == YAML_READER_ERROR ?
			loc_at_offset(c, buf, len, parser.problem_offset) :
			(struct mc_loc){ c->file, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1 };
		const char *hint = strstr(parser.problem ? parser.problem : "", "tab") ?
			" (YAML indentation must use spaces, not tabs)" : "";
		mc_err(c->ds, l, "YAML syntax: %s%s%s%s", parser.problem ? parser.problem : "error",
		       parser.context ? " " : "", parser.context ? parser.context : "", hint);
		yaml_parser_delete(&parser);
		return false;
	}
	bool ok = one_document(c, &parser);
	yaml_parser_delete(&parser);
	if (!ok)
		wipe_doc(&c->doc);
	return ok;
}


static void parse_key(struct ctx *c, yaml_node_t *k, yaml_node_t *v, const char *name)
{
	static const char *const keys[] = { "algorithm", "hex", "ascii", "comment", NULL };
	yaml_node_t *a, *hx, *as;
	const char *type = NULL, *written = NULL;
	size_t exact_len = 0;

	if (!expect_mapping(c, v, "a key"))
		return;
	check_keys(c, v, keys, "a key");
	if (!valid_name(name)) {
		mc_err(c->ds, loc_of(c, k), "bad key name '%s'", shown(c, name));
		return;
	}
	if (!(a = get(c, v, "algorithm"))) {
		mc_err(c->ds, loc_of(c, k), "key '%s' needs an 'algorithm' (%s)", name, mc_key_type_names());
	} else if ((type = scalar(c, a, "algorithm")) && !(type = mc_key_type_parse(written = type, &exact_len))) {
		mc_err(c->ds, loc_of(c, a), "key '%s': unknown algorithm '%s' (expected %s, in any case and "
		       "spelling, SHA-1 as sha1; aes128 and aes256 fix the length)", name, shown(c, written),
		       mc_key_type_names());
	}
	hx = get(c, v, "hex");
	as = get(c, v, "ascii");
	if (!!hx == !!as) {
		mc_err(c->ds, loc_of(c, k), "key '%s' needs exactly one of 'hex' or 'ascii'", name);
		return;
	}
	uint8_t *bytes = NULL;
	size_t len = 0;
	if (hx) {
		const char *s = scalar(c, hx, "hex");
		if (!s)
			return;
		/* The message never quotes the value: it is a secret even when malformed. */
		if (!mc_hex_parse(s, &bytes, &len)) {
			mc_err(c->ds, loc_of(c, hx), "key '%s': hex value is malformed (expected an even number of hex digits, optional 0x, spaces or colons)", name);
			return;
		}
	} else {
		const char *s = scalar(c, as, "ascii");
		if (!s)
			return;
		len = strlen(s);
		bytes = (uint8_t *)mc_strndup(s, len);
	}
	if (type && (!mc_key_len_ok(type, len) || (exact_len && len != exact_len))) {
		char need[32];
		snprintf(need, sizeof(need), "%zu", exact_len);
		mc_err(c->ds, loc_of(c, hx ? hx : as), "key '%s' is %zu byte%s; algorithm %s needs %s bytes",
		       name, len, len == 1 ? "" : "s", written, exact_len ? need : mc_key_lens_text(type));
	} else if (type && !strcmp(type, "tdes") && mc_tdes_weak(bytes)) {
		mc_err(c->ds, loc_of(c, hx ? hx : as), "key '%s' is a weak or degenerate 3DES key (a weak DES third, "
		       "or K1 = K2 or K2 = K3); generate another with 'mcpsec key generate'", name);
	}
	struct mc_key *key = MC_PUSH(&c->site->keys, &c->site->nkeys, &c->site->capkeys);
	*key = (struct mc_key){ mc_strdup(name), mc_strdup(type ? type : ""), bytes, len, loc_of(c, k) };
}

/* A key file's text → c->site's keys. */
static void parse_keys_text(struct ctx *c, const char *buf, size_t len)
{
	yaml_node_t *root, *keys;

	if (!parse_doc(c, buf, len))
		return;
	root = yaml_document_get_root_node(&c->doc);
	if (!root) {
		mc_err(c->ds, mc_loc_file(c->file), "empty key file");
		goto out;
	}
	static const char *const top[] = { "keys", NULL };
	if (!expect_mapping(c, root, "the key file"))
		goto out;
	check_keys(c, root, top, "the key file");
	if (!(keys = get(c, root, "keys"))) {
		mc_err(c->ds, loc_of(c, root), "key file needs a 'keys' mapping");
		goto out;
	}
	if (keys->type == YAML_SCALAR_NODE && !*keys->data.scalar.value)
		goto out; /* "keys:" with nothing: an empty key file */
	if (!expect_mapping(c, keys, "keys"))
		goto out;
	check_keys(c, keys, NULL, "keys");
	for (yaml_node_pair_t *p = keys->data.mapping.pairs.start; p < keys->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		const char *name = scalar(c, k, "a key name");
		if (name && !mc_site_key(c->site, name))
			parse_key(c, k, yaml_document_get_node(&c->doc, p->value), name);
	}
out:
	wipe_doc(&c->doc);
}

/* Reads and parses a key file. keep, when given, receives the very text that was checked and
 * parsed (the caller wipes and frees it), so that no second read by name can differ from it. */
static void load_keys(struct ctx *sc, const char *path, bool strict, char **keep, size_t *keep_len)
{
	/* Locations point at strings the site owns, so the model outlives the diagnostics. */
	struct ctx c = { .file = path, .ds = sc->ds, .site = sc->site, .secret = true, .strict = strict };
	size_t len = 0;
	char *buf = read_file(&c, path, &len);

	if (!buf)
		return;
	parse_keys_text(&c, buf, len);
	if (keep) {
		*keep = buf;
		*keep_len = len;
		return;
	}
	mc_wipe(buf, len);
	free(buf);
}

static struct mc_site *site_new(const char *name)
{
	struct mc_site *s = mc_calloc(1, sizeof(*s));
	s->file = mc_strdup(name);
	s->enabled = true;
	s->def = MC_DEF_IPV6_ONLY;
	return s;
}

/* A site file's text → c->site (its key file is not read here). */
static void parse_site_text(struct ctx *c, const char *buf, size_t len)
{
	yaml_node_t *root, *v;

	if (!parse_doc(c, buf, len))
		return;
	root = yaml_document_get_root_node(&c->doc);
	if (!root) {
		mc_err(c->ds, mc_loc_file(c->file), "empty configuration file");
		goto out;
	}
	static const char *const top[] = { "ipsec", "selectors", "policies", NULL };
	if (!expect_mapping(c, root, "the site file"))
		goto out;
	check_keys(c, root, top, "the site file");
	if ((v = get(c, root, "ipsec")))
		parse_ipsec(c, v);
	/* Selectors first: policies may name them wherever they appear in the file. */
	if ((v = get(c, root, "selectors")))
		parse_selectors(c, v);
	if (!(v = get(c, root, "policies"))) {
		mc_err(c->ds, loc_of(c, root), "the site file needs a 'policies' list");
	} else if (v->type != YAML_SEQUENCE_NODE) {
		mc_err(c->ds, loc_of(c, v), "policies must be a list, not %s", node_kind(v));
	} else {
		for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++)
			parse_policy(c, yaml_document_get_node(&c->doc, *i));
	}
out:
	yaml_document_delete(&c->doc);
}

int mc_conf_load(const char *path, const struct mc_conf_opts *opts, struct mc_diags *ds,
		 struct mc_site **ret)
{
	struct ctx c = { .ds = ds };
	size_t errors_before = ds->errors, len = 0;
	char *buf;

	*ret = NULL;
	c.site = site_new(path);
	c.file = c.site->file;
	if (!(buf = read_file(&c, path, &len))) {
		mc_site_free(c.site);
		return -EINVAL;
	}
	parse_site_text(&c, buf, len);
	free(buf);
	if (opts && opts->keys_path) {
		free(c.site->keys_file);
		c.site->keys_file = mc_strdup(opts->keys_path);
	}
	c.site->keys_optional = opts && opts->keys_optional;
	if (c.site->keys_file && !(opts && opts->skip_keys)) {
		c.site->keys_absent = c.site->keys_optional && access(c.site->keys_file, F_OK) < 0 && errno == ENOENT;
		if (c.site->keys_absent)
			mc_warnc(ds, c.site->keys_loc.line ? c.site->keys_loc : mc_loc_file(c.file), "keys-missing",
				 "key file %s does not exist yet: the policy logic is tested without keys; apply "
				 "needs them ('mcpsec key generate')", c.site->keys_file);
		else
			load_keys(&c, c.site->keys_file, opts && opts->strict_key_perms, NULL, NULL);
	}
	c.site->keys_skipped = opts && opts->skip_keys;
	*ret = c.site;
	return ds->errors > errors_before ? -EINVAL : 0;
}

int mc_conf_parse(const char *name, const char *buf, size_t len, struct mc_diags *ds, struct mc_site **ret)
{
	struct ctx c = { .ds = ds };
	size_t errors_before = ds->errors;

	c.site = site_new(name);
	c.file = c.site->file;
	parse_site_text(&c, buf, len);
	*ret = c.site;
	return ds->errors > errors_before ? -EINVAL : 0;
}

int mc_conf_parse_keys(const char *name, const char *buf, size_t len, struct mc_diags *ds, struct mc_site **ret)
{
	struct ctx c = { .ds = ds, .secret = true };
	size_t errors_before = ds->errors;

	c.site = mc_calloc(1, sizeof(*c.site));
	c.site->file = mc_strdup(name);
	c.file = c.site->file;
	parse_keys_text(&c, buf, len);
	*ret = c.site;
	return ds->errors > errors_before ? -EINVAL : 0;
}

int mc_conf_load_keys_text(const char *path, bool strict_perms, struct mc_diags *ds, struct mc_site **ret,
			   char **text, size_t *len)
{
	struct ctx c = { .ds = ds };
	size_t errors_before = ds->errors;

	if (text) {
		*text = NULL;
		*len = 0;
	}
	c.site = mc_calloc(1, sizeof(*c.site));
	c.site->file = mc_strdup(path);
	c.file = c.site->file;
	load_keys(&c, c.site->file, strict_perms, text, len);
	*ret = c.site;
	return ds->errors > errors_before ? -EINVAL : 0;
}

int mc_conf_load_keys(const char *path, bool strict_perms, struct mc_diags *ds, struct mc_site **ret)
{
	return mc_conf_load_keys_text(path, strict_perms, ds, ret, NULL, NULL);
}

/* ---- test suites (tests.yaml) ---- */

/* A scalar field of a test or expectation, copied into the suite (NULL when absent). */
static const char *suite_field(struct ctx *c, struct mc_suite *su, yaml_node_t *map, const char *key)
{
	yaml_node_t *v = get(c, map, key);
	const char *s = v ? scalar(c, v, key) : NULL;

	if (!s)
		return NULL;
	char *copy = mc_strdup(s);
	*MC_PUSH(&su->strings, &su->nstrings, &su->capstrings) = copy;
	return copy;
}

static void suite_range(struct ctx *c, struct mc_suite *su, yaml_node_t *map, struct mc_test_input *in)
{
	in->local_ip = suite_field(c, su, map, "local-ip");
	in->remote_ip = suite_field(c, su, map, "remote-ip");
	in->local_port = suite_field(c, su, map, "local-port");
	in->remote_port = suite_field(c, su, map, "remote-port");
	in->icmp = suite_field(c, su, map, "icmp");
}

static void parse_suite_test(struct ctx *c, struct mc_suite *su, yaml_node_t *n)
{
	static const char *const keys[] = { "name", "description", "ulp", "direction", "local-ip", "local-port",
					    "remote-ip", "remote-port", "icmp", "expect", NULL };
	static const char *const ekeys[] = { "local-ip", "local-port", "remote-ip", "remote-port", "icmp",
					     "result", "first-match", NULL };
	yaml_node_t *v;

	if (!expect_mapping(c, n, "a test"))
		return;
	check_keys(c, n, keys, "a test");
	struct mc_suite_test *t = MC_PUSH(&su->t, &su->n, &su->cap);
	memset(t, 0, sizeof(*t));
	t->loc = loc_of(c, n);
	const char *name = suite_field(c, su, n, "name");
	if (!name)
		mc_err(c->ds, t->loc, "a test needs a 'name'");
	for (size_t i = 0; name && i + 1 < su->n; i++)
		if (su->t[i].name && !strcasecmp(su->t[i].name, name))
			mc_err(c->ds, t->loc, "test name '%s' repeats the test at line %d", name, su->t[i].loc.line);
	t->name = mc_strdup(name ? name : "?");
	t->in.ulp = suite_field(c, su, n, "ulp");
	t->in.dir = suite_field(c, su, n, "direction");
	suite_range(c, su, n, &t->in);
	if (!(v = get(c, n, "expect")))
		return; /* mc_suite_prepare says it is missing */
	if (v->type != YAML_SEQUENCE_NODE) {
		mc_err(c->ds, loc_of(c, v), "expect must be a list, not %s", node_kind(v));
		return;
	}
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
		yaml_node_t *e = yaml_document_get_node(&c->doc, *i);
		if (!expect_mapping(c, e, "an expectation"))
			continue;
		check_keys(c, e, ekeys, "an expectation");
		struct mc_test_expect *x = MC_PUSH(&t->expect, &t->nexpect, &t->capexpect);
		memset(x, 0, sizeof(*x));
		x->loc = loc_of(c, e);
		suite_range(c, su, e, &x->range);
		x->result = suite_field(c, su, e, "result");
		x->first_match = suite_field(c, su, e, "first-match");
	}
}

int mc_conf_load_suite(const char *path, struct mc_diags *ds, struct mc_suite *ret)
{
	struct ctx c = { .ds = ds };
	size_t errors_before = ds->errors, len = 0;
	char *buf;
	yaml_node_t *root, *v;

	memset(ret, 0, sizeof(*ret));
	ret->file = mc_strdup(path);
	c.file = mc_diags_intern(ds, path);
	if (!(buf = read_file(&c, path, &len)))
		return -EINVAL;
	if (parse_doc(&c, buf, len)) {
		static const char *const top[] = { "tests", NULL };
		root = yaml_document_get_root_node(&c.doc);
		if (!root)
			mc_err(ds, mc_loc_file(c.file), "empty test suite");
		else if (expect_mapping(&c, root, "the test suite")) {
			check_keys(&c, root, top, "the test suite");
			if (!(v = get(&c, root, "tests")) || v->type != YAML_SEQUENCE_NODE)
				mc_err(ds, loc_of(&c, v ? v : root), "the test suite needs a 'tests' list");
			else
				for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++)
					parse_suite_test(&c, ret, yaml_document_get_node(&c.doc, *i));
		}
		yaml_document_delete(&c.doc);
	}
	free(buf);
	return ds->errors > errors_before ? -EINVAL : 0;
}
