/* SPDX-License-Identifier: MIT */
/*
 * Property: whatever import and mirror write, mcpsec reads back as the same model. Random
 * models (every protocol kind, address shapes including "fec0::" and "::", IPv4, lists, port
 * and ICMP specs, AH/ESP with every algorithm) are emitted through lib/emit.c, loaded again,
 * and compared field by field.
 */
#include <stdio.h>
#include <string.h>

#include "../../lib/algo.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/emit.h"
#include "../../lib/model.h"
#include "../../lib/util.h"
#include "t.h"

static unsigned seed = 11;
static unsigned rnd(unsigned n)
{
	seed = seed * 1103515245u + 12345u;
	return ((seed >> 8) & 0xffffff) % n;
}

static const char *addrs[] = { "\"fec0::\"", "\"::\"", "fec0::2", "2001:db8::/64", "fec0::1-fec0::9", "\"fec0::, fec0::5\"",
			       "[fec0::7, \"fe80::\"]", "192.0.2.1", "10.0.0.0/8", "any" };
static const char *protos[] = { "any", "tcp", "udp", "icmp", "icmpv6", "bip", "47", "132" };
static const char *integ[] = { "hmac-sha1-96", "hmac-sha256-128", "hmac-sha512-256" };
static const char *conf[] = { "aes-cbc", "tdes-cbc" };

static void random_site_text(struct mc_buf *b, int npol)
{
	mc_buf_printf(b, "ipsec:\n  enabled: %s\n  default: %s\npolicies:\n", rnd(2) ? "true" : "false",
		      rnd(2) ? "deny" : "bypass");
	for (int i = 0; i < npol; i++) {
		const char *proto = protos[rnd(8)];
		mc_buf_printf(b, "  - name: %s%d\n    direction: %s\n    protocol: %s\n", rnd(2) ? "P-" : "x.y_", i,
			      rnd(2) ? "in" : "out", proto);
		if (rnd(2))
			mc_buf_printf(b, "    local: %s\n", addrs[rnd(10)]);
		if (rnd(3))
			mc_buf_printf(b, "    remote: %s\n", addrs[rnd(10)]);
		if ((!strcmp(proto, "tcp") || !strcmp(proto, "udp")) && rnd(2))
			mc_buf_printf(b, "    remote-ports: \"%u-%u, %u\"\n", 1 + rnd(100), 200 + rnd(100), 400 + rnd(100));
		if ((!strcmp(proto, "tcp") || !strcmp(proto, "udp")) && rnd(2))
			mc_buf_printf(b, "    local-ports: [%u, %u]\n", 1000 + rnd(10), 2000 + rnd(10));
		if ((!strcmp(proto, "icmp") || !strcmp(proto, "icmpv6")) && rnd(2)) {
			static const char *ic[] = { "3", "3-4", "3/4", "128/0-9", "any" };
			mc_buf_printf(b, "    icmp: \"%s\"\n", ic[rnd(5)]);
		}
		unsigned a = rnd(3);
		mc_buf_printf(b, "    action: %s\n", a == 0 ? "bypass" : a == 1 ? "discard" : "protect");
		if (a != 2)
			continue;
		mc_buf_printf(b, "    spi: %u\n", 256 + rnd(100000));
		if (rnd(2))
			mc_buf_printf(b, "    ah: { integrity: %s, key: K%u }\n", integ[rnd(3)], rnd(5));
		else if (rnd(2))
			mc_buf_printf(b, "    esp:\n      confidentiality: %s\n      confidentiality-key: C%u\n"
				      "      integrity: %s\n      integrity-key: I.%u\n", conf[rnd(2)], rnd(5), integ[rnd(3)], rnd(5));
		else
			mc_buf_printf(b, "    esp: { integrity: %s, integrity-key: I-%u }\n", integ[rnd(3)], rnd(5));
	}
}

static bool same_addrs(const struct mc_addrset *a, const struct mc_addrset *b)
{
	if (a->any != b->any || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].family != b->r[i].family || a->r[i].lo != b->r[i].lo || a->r[i].hi != b->r[i].hi)
			return false;
	return true;
}

static bool same_ports(const struct mc_portset *a, const struct mc_portset *b)
{
	if (a->any != b->any || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].lo != b->r[i].lo || a->r[i].hi != b->r[i].hi)
			return false;
	return true;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The first field in which p and q differ, or NULL. */
static const char *differs(const struct mc_policy *p, const struct mc_policy *q)
{
	if (!same_str(p->name, q->name))
		return "name";
	if (p->dir != q->dir || p->proto != q->proto || p->action != q->action)
		return "direction, protocol or action";
	if (!same_addrs(&p->local, &q->local) || !same_addrs(&p->remote, &q->remote))
		return "addresses";
	if (!same_ports(&p->local_ports, &q->local_ports) || !same_ports(&p->remote_ports, &q->remote_ports))
		return "ports";
	if (p->icmp.any != q->icmp.any || (!p->icmp.any && (p->icmp.type_lo != q->icmp.type_lo ||
		p->icmp.type_hi != q->icmp.type_hi || p->icmp.code_lo != q->icmp.code_lo || p->icmp.code_hi != q->icmp.code_hi)))
		return "icmp";
	if (p->action == MC_PROTECT && (p->spi != q->spi || p->ipsec_proto != q->ipsec_proto ||
					p->integrity != q->integrity || p->confidentiality != q->confidentiality ||
					!same_str(p->integrity_key, q->integrity_key) ||
					!same_str(p->confidentiality_key, q->confidentiality_key)))
		return "protection";
	return NULL;
}

int main(void)
{
	int models = 0, policies = 0, bad = 0;

	for (int round = 0; round < 400; round++) {
		struct mc_buf text = { 0 }, out = { 0 };
		struct mc_diags ds = { 0 }, ds2 = { 0 };
		struct mc_site *s = NULL, *t = NULL;

		random_site_text(&text, 1 + (int)rnd(12));
		if (mc_conf_parse("random.yaml", text.s, text.len, &ds, &s) < 0) {
			struct mc_buf e = { 0 };
			mc_diags_render(&ds, &e);
			printf("# the generator wrote a file that does not load:\n%s", mc_buf_str(&e));
			mc_buf_free(&e);
			bad++;
			goto next;
		}
		mc_emit_header(s, "keys.yaml", &out);
		for (size_t i = 0; i < s->npol; i++)
			mc_emit_policy(&s->pol[i], rnd(2) ? "a comment: with # and \"quotes\"" : NULL, &out);
		if (mc_conf_parse("emitted.yaml", out.s, out.len, &ds2, &t) < 0) {
			struct mc_buf e = { 0 };
			mc_diags_render(&ds2, &e);
			printf("# emitted YAML does not load:\n%s---\n%s", mc_buf_str(&e), mc_buf_str(&out));
			mc_buf_free(&e);
			bad++;
			goto next;
		}
		if (s->npol != t->npol || s->enabled != t->enabled || s->def != t->def) {
			printf("# round %d: the site's header or policy count changed\n", round);
			bad++;
			goto next;
		}
		for (size_t i = 0; i < s->npol; i++) {
			const char *d = differs(&s->pol[i], &t->pol[i]);
			if (d) {
				printf("# round %d, policy %s: %s differs after emit and load:\n%s", round, s->pol[i].name, d,
				       mc_buf_str(&out));
				bad++;
				break;
			}
		}
		models++;
		policies += (int)s->npol;
	next:
		mc_site_free(s);
		mc_site_free(t);
		mc_diags_free(&ds);
		mc_diags_free(&ds2);
		mc_buf_free(&text);
		mc_buf_free(&out);
		if (bad)
			break;
	}
	T_OK(bad == 0, "%d random models (%d policies) emitted and loaded again are the same model", models, policies);
	T_OK(models == 400, "every generated model loaded");
	printf("1..%d\n", t_n);
	return t_failed != 0;
}
