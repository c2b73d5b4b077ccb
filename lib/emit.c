/* SPDX-License-Identifier: MIT */
/* Writes site.yaml in the style of examples/: block mappings, flow mappings for ah/esp. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "algo.h"
#include "emit.h"
#include "util.h"

/* Plain scalars that YAML would read as something other than the same string. */
static bool needs_quotes(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~" };

	if (!*s || !(isalpha((unsigned char)*s) || strchr("./_", *s)))
		return true; /* digits first could read as a number */
	for (size_t i = 0; i < MC_ARRAY_SIZE(words); i++)
		if (!strcasecmp(s, words[i]))
			return true;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_.-/", *c))
			return true;
	return false;
}

static void scalar(struct mc_buf *out, const char *s)
{
	if (needs_quotes(s))
		mc_buf_json_str(out, s); /* a JSON string is a valid YAML double-quoted scalar */
	else
		mc_buf_puts(out, s);
}

void mc_emit_comment(struct mc_buf *out, const char *s)
{
	/* One comment line whatever s holds: a newline in a file name must not start YAML. */
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '\n')
			mc_buf_puts(out, "\\n");
		else if (*c < 0x20 || *c == 0x7f)
			mc_buf_printf(out, "\\x%02x", *c);
		else
			mc_buf_printf(out, "%c", *c);
	}
}

void mc_addrset_str(const struct mc_addrset *a, struct mc_buf *out)
{
	if (a->any) {
		mc_buf_puts(out, "any");
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		char text[112];
		mc_range_str(&a->r[i], text, sizeof(text));
		mc_buf_printf(out, "%s%s", i ? ", " : "", text);
	}
}

/* An address set's value and newline: its selector name when by_name and it has one. An IPv6
 * text ending in ':' (fec0::) would read as a mapping key in plain YAML: such a list is quoted. */
static void addr_value(struct mc_buf *out, const struct mc_addrset *a, bool by_name)
{
	struct mc_buf t = { 0 };

	if (by_name && a->name)
		mc_buf_puts(&t, a->name);
	else
		mc_addrset_str(a, &t);
	if (t.len && (t.s[t.len - 1] == ':' || strstr(t.s, ": ")))
		mc_buf_json_str(out, t.s);
	else
		mc_buf_puts(out, mc_buf_str(&t));
	mc_buf_puts(out, "\n");
	mc_buf_free(&t);
}

void mc_emit_header(const struct mc_site *s, const char *keys_text, struct mc_buf *out)
{
	mc_buf_printf(out, "ipsec:\n  enabled: %s\n  default: %s\n", s->enabled ? "true" : "false",
		      mc_default_str(s->def));
	if (s->on_failure == MC_ON_FAILURE_OPEN)
		mc_buf_puts(out, "  on-failure: open\n");
	if (s->allow_shared_spi)
		mc_buf_puts(out, "  allow-shared-spi: true\n");
	if (keys_text) {
		mc_buf_puts(out, "  keys: ");
		scalar(out, keys_text);
		mc_buf_puts(out, "\n");
	}
	if (s->nsels)
		mc_buf_puts(out, "selectors:\n");
	for (size_t i = 0; i < s->nsels; i++) {
		mc_buf_puts(out, "  ");
		scalar(out, s->sels[i].name);
		mc_buf_puts(out, ": ");
		addr_value(out, &s->sels[i].addrs, false);
	}
	mc_buf_puts(out, "policies:\n");
}

/* "    key: fec0::1, fec0::/64\n" */
static void addrset_line(struct mc_buf *out, const char *key, const struct mc_addrset *a)
{
	mc_buf_printf(out, "    %s: ", key);
	addr_value(out, a, true);
}

static void ports_str(const struct mc_portset *p, struct mc_buf *out)
{
	for (size_t i = 0; i < p->n; i++) {
		if (i)
			mc_buf_puts(out, ", ");
		if (p->r[i].lo == p->r[i].hi)
			mc_buf_printf(out, "%u", p->r[i].lo);
		else
			mc_buf_printf(out, "%u-%u", p->r[i].lo, p->r[i].hi);
	}
}

static void icmp_str(const struct mc_icmpspec *c, struct mc_buf *out)
{
	bool all_codes = c->code_lo == 0 && c->code_hi == 255;

	if (c->type_lo != c->type_hi)
		mc_buf_printf(out, "%u-%u", c->type_lo, c->type_hi);
	else if (all_codes)
		mc_buf_printf(out, "%u", c->type_lo);
	else if (c->code_lo == c->code_hi)
		mc_buf_printf(out, "%u/%u", c->type_lo, c->code_lo);
	else
		mc_buf_printf(out, "%u/%u-%u", c->type_lo, c->code_lo, c->code_hi);
}

/* lifetime: in base units (seconds, bytes, packets), each limit as {soft, hard}. */
static void emit_lifetime(const struct mc_lifetime *l, struct mc_buf *out)
{
	uint64_t v[3][2];
	mc_lifetime_table(l, v);
	static const char *name[3] = { "time", "bytes", "packets" };
	bool first = true;

	if (!mc_lifetime_set(l))
		return;
	mc_buf_puts(out, "    lifetime: {");
	for (int i = 0; i < 3; i++) {
		if (!v[i][0] && !v[i][1])
			continue;
		mc_buf_printf(out, "%s %s: {", first ? "" : ",", name[i]);
		if (v[i][0])
			mc_buf_printf(out, " soft: %llu%s", (unsigned long long)v[i][0], v[i][1] ? "," : "");
		if (v[i][1])
			mc_buf_printf(out, " hard: %llu", (unsigned long long)v[i][1]);
		mc_buf_puts(out, " }");
		first = false;
	}
	mc_buf_puts(out, " }\n");
}

void mc_emit_policy(const struct mc_policy *p, const char *comment, struct mc_buf *out)
{
	char pb[16];

	mc_buf_puts(out, "  - name: ");
	scalar(out, p->name);
	if (comment) {
		mc_buf_puts(out, "  # ");
		mc_emit_comment(out, comment);
	}
	mc_buf_printf(out, "\n    direction: %s\n", mc_dir_str(p->dir));
	if (!p->local.any || p->local.name)
		addrset_line(out, "local", &p->local);
	if (!p->remote.any || p->remote.name)
		addrset_line(out, "remote", &p->remote);
	if (p->proto != MC_PROTO_ANY)
		mc_buf_printf(out, "    protocol: %s\n", mc_proto_str(p->proto, pb, sizeof(pb)));
	if (!p->local_ports.any) {
		mc_buf_puts(out, "    local-ports: \"");
		ports_str(&p->local_ports, out);
		mc_buf_puts(out, "\"\n");
	}
	if (!p->remote_ports.any) {
		mc_buf_puts(out, "    remote-ports: \"");
		ports_str(&p->remote_ports, out);
		mc_buf_puts(out, "\"\n");
	}
	if (!p->icmp.any) {
		mc_buf_puts(out, "    icmp: \"");
		icmp_str(&p->icmp, out);
		mc_buf_puts(out, "\"\n");
	}
	mc_buf_printf(out, "    action: %s\n", mc_action_str(p->action));
	if (p->action != MC_PROTECT)
		return;
	mc_buf_printf(out, "    spi: %u\n    mode: transport\n", p->spi);
	if (p->enforce != MC_ENFORCE_REQUIRE)
		mc_emit_enforce(p, "    ", out);
	emit_lifetime(&p->lifetime, out);
	if (p->ipsec_proto == MC_PROTO_AH) {
		mc_buf_printf(out, "    ah: { integrity: %s, key: ", p->integrity ? p->integrity->name : "?");
		scalar(out, p->integrity_key ? p->integrity_key : "");
		mc_buf_puts(out, " }\n");
		mc_emit_next(p, "    ", out);
		return;
	}
	mc_buf_puts(out, "    esp:\n");
	if (p->confidentiality) {
		/* A length the source's spelling fixed (AES_CBC_256) stays written, so that check still
		 * holds the key to it. */
		mc_buf_printf(out, "      confidentiality: %s", p->confidentiality->name);
		if (p->confidentiality_bits)
			mc_buf_printf(out, "-%u", p->confidentiality_bits);
		mc_buf_puts(out, "\n      confidentiality-key: ");
		scalar(out, p->confidentiality_key ? p->confidentiality_key : "");
		mc_buf_puts(out, "\n");
	}
	if (p->integrity) {
		mc_buf_printf(out, "      integrity: %s\n      integrity-key: ", p->integrity->name);
		scalar(out, p->integrity_key ? p->integrity_key : "");
		mc_buf_puts(out, "\n");
	}
	mc_emit_next(p, "    ", out);
}

void mc_emit_enforce(const struct mc_policy *p, const char *indent, struct mc_buf *out)
{
	mc_buf_printf(out, "%senforce: %s%*s# protection in phases (mcpsec phase-in, phase-out)\n", indent,
		      mc_enforce_str(p->enforce), (int)(18 - strlen(mc_enforce_str(p->enforce))), "");
}

void mc_emit_next(const struct mc_policy *p, const char *indent, struct mc_buf *out)
{
	const struct mc_next *x = &p->next;

	if (!x->given)
		return;
	mc_buf_printf(out, "%snext:                     # key rollover in progress (mcpsec rekey)\n", indent);
	mc_buf_printf(out, "%s  phase: %s\n%s  spi: %u\n", indent, mc_phase_str(x->phase), indent, x->spi);
	if (x->integrity_key) {
		mc_buf_printf(out, "%s  %s: ", indent, p->ipsec_proto == MC_PROTO_AH ? "key" : "integrity-key");
		scalar(out, x->integrity_key);
		mc_buf_puts(out, "\n");
	}
	if (x->confidentiality_key) {
		mc_buf_printf(out, "%s  confidentiality-key: ", indent);
		scalar(out, x->confidentiality_key);
		mc_buf_puts(out, "\n");
	}
}
