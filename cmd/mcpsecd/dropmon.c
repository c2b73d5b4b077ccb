/* SPDX-License-Identifier: MIT */
/* Loader and drain of the per-flow drop hook (see dropmon.h). The only libbpf user. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/drops.h"
#include "drops.skel.h"
#include "dropmon.h"
#include "../../lib/util.h"

/* The first message libbpf logged about a load, for the reason a hook is missing (libbpf
 * would print to stderr, and the library never prints); its later lines only say "failed". */
static char last_msg[256];

/* libbpf hands over its own format strings: a callback cannot do otherwise. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int keep_message(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || last_msg[0])
		return 0;
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	snprintf(last_msg, sizeof(last_msg), "%s", line);
	return 0;
}
#pragma GCC diagnostic pop

/* The count of a flow at the previous drain: the kernel's counts only grow, so the change is
 * the difference; an entry the LRU evicted and re-created starts again from zero. */
struct seen {
	struct mc_drop_key key;
	uint64_t count;
	bool used, live;
};

struct mc_dropmon {
	struct drops *skel;
	struct bpf_link *in_link, *out_link;
	bool out_loaded; /* the fexit program loaded: it can be attached and detached at will */
	char out_why[512];
	struct seen *seen; /* open addressing, 2 × MC_DROP_FLOWS slots */
	size_t nslots;
	uint64_t totals[MC_DROP_KINDS];
};

static size_t key_hash(const struct mc_drop_key *k, size_t nslots)
{
	uint64_t h = 1469598103934665603ull;
	const unsigned char *p = (const unsigned char *)k;
	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (size_t)h & (nslots - 1);
}

static struct seen *seen_slot(struct mc_dropmon *m, const struct mc_drop_key *k)
{
	size_t h = key_hash(k, m->nslots);
	while (m->seen[h].used && memcmp(&m->seen[h].key, k, sizeof(*k)))
		h = (h + 1) & (m->nslots - 1);
	return &m->seen[h];
}

static int open_skel(uint32_t netns_ino, bool outbound, struct drops **ret)
{
	struct drops *s = drops__open();
	int r;

	*ret = NULL;
	if (!s)
		return -errno ? -errno : -ENOMEM;
	s->rodata->netns_ino = netns_ino;
	bpf_program__set_autoload(s->progs.out_drop, outbound);
	if ((r = drops__load(s)) < 0) {
		drops__destroy(s);
		return r;
	}
	*ret = s;
	return 0;
}

int mc_dropmon_open(uint32_t netns_ino, bool outbound, struct mc_dropmon **ret, char *why, size_t len)
{
	struct mc_dropmon *m = mc_calloc(1, sizeof(*m));
	int r;

	*ret = NULL;
	libbpf_set_print(keep_message);
	last_msg[0] = '\0';
	snprintf(m->out_why, sizeof(m->out_why), "not asked for");
	/* The fexit program may be refused at load (no trampolines): then load without it. */
	if (outbound && (r = open_skel(netns_ino, true, &m->skel)) < 0) {
		snprintf(m->out_why, sizeof(m->out_why), "fexit/xfrm_lookup_with_ifid refused at load: %s%s (%.200s)",
			 strerror(-r), r == -EPERM ? ": this kernel forbids BPF trampolines (or CAP_BPF and CAP_PERFMON "
			 "are missing)" : "", last_msg[0] ? last_msg : "no message from libbpf");
		outbound = false;
		last_msg[0] = '\0';
	}
	if (!m->skel && (r = open_skel(netns_ino, false, &m->skel)) < 0) {
		snprintf(why, len, "loading the BPF program: %s%s%s", strerror(-r), last_msg[0] ? " (libbpf: " : "",
			 last_msg[0] ? last_msg : "");
		if (last_msg[0])
			snprintf(why + strlen(why), len - strlen(why), ")");
		free(m);
		return r;
	}
	m->in_link = bpf_program__attach(m->skel->progs.in_drop);
	if (!m->in_link) {
		r = -errno;
		snprintf(why, len, "attaching tp_btf/kfree_skb: %s", strerror(-r));
		drops__destroy(m->skel);
		free(m);
		return r;
	}
	if (outbound) {
		m->out_link = bpf_program__attach(m->skel->progs.out_drop);
		if (!m->out_link)
			snprintf(m->out_why, sizeof(m->out_why), "fexit/xfrm_lookup_with_ifid refused: %s (this kernel "
				 "does not allow BPF trampolines)", strerror(errno));
		m->out_loaded = m->out_link != NULL;
	}
	m->nslots = 2 * MC_DROP_FLOWS;
	m->seen = mc_calloc(m->nslots, sizeof(*m->seen));
	*ret = m;
	return 0;
}

bool mc_dropmon_outbound(const struct mc_dropmon *m, const char **why)
{
	if (why)
		*why = m->out_why;
	return m->out_loaded;
}

bool mc_dropmon_outbound_attached(const struct mc_dropmon *m)
{
	return m->out_link != NULL;
}

int mc_dropmon_outbound_attach(struct mc_dropmon *m, bool on)
{
	if (!m->out_loaded || on == (m->out_link != NULL))
		return 0;
	if (!on) {
		bpf_link__destroy(m->out_link);
		m->out_link = NULL;
		return 0;
	}
	m->out_link = bpf_program__attach(m->skel->progs.out_drop);
	return m->out_link ? 0 : -errno;
}

static void to_sel(const struct mc_drop_key *k, struct mc_sel *s)
{
	memset(s, 0, sizeof(*s));
	s->family = k->family;
	s->proto = k->proto;
	s->saddr.family = s->daddr.family = k->family;
	size_t alen = k->family == AF_INET ? 4 : 16;
	memcpy(s->saddr.a, k->saddr, alen);
	memcpy(s->daddr.a, k->daddr, alen);
	s->plen_s = s->plen_d = (uint8_t)(alen * 8);
	s->sport = k->sport;
	s->dport = k->dport;
	s->sport_mask = s->dport_mask = 0xffff;
}

int mc_dropmon_drain(struct mc_dropmon *m, struct mc_drop_flows *out)
{
	int flows = bpf_map__fd(m->skel->maps.flows), totals = bpf_map__fd(m->skel->maps.totals);
	struct mc_drop_key key, next;
	struct mc_drop_val val;
	void *prev = NULL;

	memset(out->totals, 0, sizeof(out->totals));
	out->n = 0;
	for (uint32_t kind = 1; kind < MC_DROP_KINDS; kind++) {
		uint64_t v = 0;
		if (bpf_map_lookup_elem(totals, &kind, &v) == 0) {
			out->totals[kind] = v - m->totals[kind];
			m->totals[kind] = v;
		}
	}
	for (size_t i = 0; i < m->nslots; i++)
		m->seen[i].live = false;
	while (bpf_map_get_next_key(flows, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(flows, &key, &val) < 0)
			continue; /* evicted meanwhile */
		struct seen *s = seen_slot(m, &key);
		uint64_t before = s->used && val.count >= s->count ? s->count : 0;
		if (!s->used) {
			s->used = true;
			s->key = key;
		}
		s->count = val.count;
		s->live = true;
		if (val.count > before) {
			struct mc_drop_flow *f = MC_PUSH(&out->f, &out->n, &out->cap);
			f->hook = (enum mc_drop_kind)key.kind;
			to_sel(&key, &f->flow);
			f->count = val.count - before;
		}
	}
	/* Forget what the kernel evicted: the table never holds more than the kernel's. Rebuilt
	 * only when something was evicted: the common second costs no copy. */
	bool stale = false;
	for (size_t i = 0; i < m->nslots && !stale; i++)
		stale = m->seen[i].used && !m->seen[i].live;
	if (!stale)
		return 0;
	struct seen *old = m->seen;
	m->seen = mc_calloc(m->nslots, sizeof(*m->seen));
	for (size_t i = 0; i < m->nslots; i++)
		if (old[i].live)
			*seen_slot(m, &old[i].key) = old[i];
	free(old);
	return 0;
}

void mc_dropmon_close(struct mc_dropmon *m)
{
	if (!m)
		return;
	bpf_link__destroy(m->out_link);
	bpf_link__destroy(m->in_link);
	drops__destroy(m->skel);
	free(m->seen);
	free(m);
}

