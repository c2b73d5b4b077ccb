/* SPDX-License-Identifier: MIT */
/* Model helpers: lookups, names, freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model.h"
#include "util.h"

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
		if (s->pol[i].name && !strcmp(s->pol[i].name, name))
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

const char *mc_default_str(enum mc_default d)
{
	static const char *names[] = { "ipv6-only", "bypass", "deny", "deny-all" };
	return names[d];
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
