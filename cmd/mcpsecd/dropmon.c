/* SPDX-License-Identifier: MIT */
/* Loader and drain of the per-flow drop hook (see dropmon.h). The only libbpf user. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/pkt_sched.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/drops.h"
#include "drops.skel.h"
#include "dropmon.h"
#include "../../lib/nlx.h"
#include "../../lib/prevs.h"
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

struct mc_dropmon {
	struct drops *skel;
	struct bpf_link *in_link, *out_link;
	bool out_loaded; /* the fexit program loaded: it can be attached and detached at will */
	char out_why[512];
	/* the inner observer (fentry: trampolines, loaded with the fexit program), attached only
	 * while a list is staged and protection is in play */
	bool inner_loaded;
	char inner_why[120]; /* why not loaded */
	struct bpf_link *inner[3];
	struct mc_prevs drops;
	uint64_t totals[MC_DROP_KINDS];
	/* the staging observer, attached only while a list is staged: at the tc hooks of each of
	 * the namespace's interfaces (tcx links, else clsact filters), else (fallback) at two
	 * tracepoints */
	struct bpf_link *seen_in, *seen_out;
	bool observing, tc_mode, tcx;
	struct tc_att { int ifindex; int link[2]; bool made; /* the clsact qdisc, by mcpsecd */ } *tc;
	size_t ntc, captc;
	/* interfaces whose attach failed at a drain (tried again at each), said once: bad holds
	 * their indexes, unsaid the reports not yet taken (mc_dropmon_unwatched) */
	int *bad;
	size_t nbad, capbad;
	struct unsaid { char why[200]; } *unsaid;
	size_t nunsaid, capunsaid;
	char observer[160];
	struct mc_prevs seen;
	uint64_t seen_totals[2 * MC_SEEN_DIRS];
	uint64_t *percpu; /* a per-CPU total as the kernel gives it */
	int ncpus;
};

/* A map lookup for mc_prevs_end: is the key still there? */
struct present_ctx {
	int fd;
	void *val; /* room for one of the map's values */
};

static bool present(void *ctx, const void *key)
{
	const struct present_ctx *c = ctx;
	return bpf_map_lookup_elem(c->fd, key, c->val) == 0;
}

static int open_skel(uint32_t netns_ino, bool outbound, struct drops **ret)
{
	struct drops *s = drops__open();
	int r;

	*ret = NULL;
	if (!s)
		return -errno ? -errno : -ENOMEM;
	s->rodata->netns_ino = netns_ino;
	/* the trampolines: the outbound drop hook and the inner observer, loaded together or not */
	bpf_program__set_autoload(s->progs.out_drop, outbound);
	bpf_program__set_autoload(s->progs.inner_out, outbound);
	bpf_program__set_autoload(s->progs.inner_in4, outbound);
	bpf_program__set_autoload(s->progs.inner_in6, outbound);
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
	snprintf(m->inner_why, sizeof(m->inner_why), "not asked for");
	/* The fexit program may be refused at load (no trampolines): then load without it. */
	if (outbound && (r = open_skel(netns_ino, true, &m->skel)) < 0) {
		snprintf(m->out_why, sizeof(m->out_why), "fexit/xfrm_lookup_with_ifid refused at load: %s%s (%.200s)",
			 strerror(-r), r == -EPERM ? ": this kernel forbids BPF trampolines (or CAP_BPF and CAP_PERFMON "
			 "are missing)" : "", last_msg[0] ? last_msg : "no message from libbpf");
		snprintf(m->inner_why, sizeof(m->inner_why), "refused at load: %s%s", strerror(-r),
			 r == -EPERM ? " (no BPF trampolines here)" : "");
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
	m->inner_loaded = outbound;
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
	mc_prevs_init(&m->drops, MC_DROP_FLOWS, sizeof(struct mc_drop_key));
	mc_prevs_init(&m->seen, MC_SEEN_FLOWS, sizeof(struct mc_drop_key));
	m->ncpus = libbpf_num_possible_cpus();
	if (m->ncpus < 1)
		m->ncpus = 1;
	m->percpu = mc_calloc((size_t)m->ncpus, sizeof(*m->percpu));
	*ret = m;
	return 0;
}

bool mc_dropmon_outbound(const struct mc_dropmon *m, const char **why)
{
	if (why)
		*why = m->out_why;
	return m->out_loaded;
}

static void inner_detach(struct mc_dropmon *m)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(m->inner); i++) {
		bpf_link__destroy(m->inner[i]);
		m->inner[i] = NULL;
	}
}

bool mc_dropmon_inner_loaded(const struct mc_dropmon *m, char *why, size_t len)
{
	if (!m->inner_loaded)
		snprintf(why, len, "%s", m->inner_why);
	return m->inner_loaded;
}

int mc_dropmon_inner(struct mc_dropmon *m, bool on, char *why, size_t len)
{
	if (!on || !m->inner_loaded) {
		inner_detach(m);
		if (on)
			snprintf(why, len, "%s", m->inner_why);
		return on ? -EOPNOTSUPP : 0;
	}
	if (m->inner[0])
		return 0;
	struct bpf_program *p[3] = { m->skel->progs.inner_out, m->skel->progs.inner_in4, m->skel->progs.inner_in6 };
	for (size_t i = 0; i < MC_ARRAY_SIZE(p); i++)
		if (!(m->inner[i] = bpf_program__attach(p[i]))) {
			int r = -errno;
			snprintf(why, len, "attaching %s: %s", bpf_program__section_name(p[i]), strerror(-r));
			inner_detach(m);
			return r;
		}
	return 0;
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
	mc_prevs_begin(&m->drops);
	/* At most as many steps as the kernel's table holds: a walk whose current key is evicted
	 * meanwhile starts again from the first, so under a flood it could go on for ever. */
	for (size_t steps = 0; steps < MC_DROP_FLOWS && bpf_map_get_next_key(flows, prev, &next) == 0; steps++) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(flows, &key, &val) < 0)
			continue; /* evicted meanwhile */
		uint64_t count = val.count, unused = 0;
		mc_prevs_step(&m->drops, &key, &count, &unused);
		if (count) {
			struct mc_drop_flow *f = MC_PUSH(&out->f, &out->n, &out->cap);
			f->hook = (enum mc_drop_kind)key.kind;
			to_sel(&key, &f->flow);
			f->count = count;
		}
	}
	mc_prevs_end(&m->drops, present, &(struct present_ctx){ flows, &val });
	return 0;
}

/*
 * The tc hooks, two ways. tcx (6.6 and later): one BPF link per hook, held by mcpsecd's file
 * descriptor, so a killed mcpsecd leaves nothing attached, and no qdisc is made. Debian 12's
 * libbpf (1.1) predates tcx: its attach types are given by their values in the kernel's ABI
 * (include/uapi/linux/bpf.h), which libbpf's bpf_link_create passes through. Else clsact:
 * filters with a handle and priority of mcpsecd's own.
 */
#define TCX_INGRESS ((enum bpf_attach_type)46)
#define TCX_EGRESS ((enum bpf_attach_type)47)
#define TC_HANDLE 0x6d63 /* "mc" */
#define TC_PRIORITY 0x6d63

/* Removes mcpsecd's links or filters at one interface (one gone has taken its filters along),
 * and a clsact qdisc mcpsecd made there once no filter is left on it (someone else's may have
 * joined it since: then it stays). */
static void tc_detach_one(const struct tc_att *a)
{
	enum bpf_tc_attach_point points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	for (int j = 0; j < 2; j++) {
		if (a->link[j] >= 0) {
			close(a->link[j]);
			continue;
		}
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = a->ifindex, .attach_point = points[j]);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY);
		(void)bpf_tc_detach(&h, &o);
	}
	size_t in = 1, out = 1;
	if (a->made && mc_nl_tc_filters(a->ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), &in) == 0 &&
	    mc_nl_tc_filters(a->ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS), &out) == 0 && !in && !out) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, q, .ifindex = a->ifindex);
		q.attach_point = (enum bpf_tc_attach_point)(BPF_TC_INGRESS | BPF_TC_EGRESS);
		(void)bpf_tc_hook_destroy(&q);
	}
}

static int tc_attach_one(struct mc_dropmon *m, int ifindex)
{
	const struct bpf_program *progs[2] = { m->skel->progs.seen_tc_in, m->skel->progs.seen_tc_out };
	struct tc_att a = { ifindex, { -1, -1 }, false };
	int r;

	if (m->tcx) {
		const enum bpf_attach_type types[2] = { TCX_INGRESS, TCX_EGRESS };
		for (int i = 0; i < 2; i++)
			if ((a.link[i] = bpf_link_create(bpf_program__fd(progs[i]), ifindex, types[i], NULL)) < 0) {
				r = -errno;
				if (i)
					close(a.link[0]);
				return r;
			}
	} else {
		/* An ingress qdisc (the same handle as clsact, so "exists") would take both filters,
		 * the egress one replacing the ingress one: not even tried (it is, each second). */
		bool legacy = false;
		if (mc_nl_tc_ingress_legacy(ifindex, &legacy) == 0 && legacy)
			return -EEXIST;
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex);
		/* Both points: libbpf's way of asking for the clsact qdisc (the enum has no such value). */
		hook.attach_point = (enum bpf_tc_attach_point)(BPF_TC_INGRESS | BPF_TC_EGRESS);
		if ((r = bpf_tc_hook_create(&hook)) < 0 && r != -EEXIST)
			return r;
		a.made = r == 0;
		enum bpf_tc_attach_point points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
		for (int i = 0; i < 2; i++) {
			DECLARE_LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = points[i]);
			DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY,
					    .prog_fd = bpf_program__fd(progs[i]), .flags = BPF_TC_F_REPLACE);
			if ((r = bpf_tc_attach(&h, &o)) < 0) {
				if (i) /* the ingress filter made, the egress one refused: none */
					tc_detach_one(&a);
				return r;
			}
		}
		/* One made meanwhile took both: then the ingress point holds another program. */
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hi, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIORITY);
		struct bpf_prog_info info = { 0 };
		__u32 ilen = sizeof(info);
		if (bpf_tc_query(&hi, &q) < 0 || bpf_obj_get_info_by_fd(bpf_program__fd(progs[0]), &info, &ilen) < 0 ||
		    q.prog_id != info.id) {
			tc_detach_one(&a);
			return -EEXIST;
		}
	}
	*MC_PUSH(&m->tc, &m->ntc, &m->captc) = a;
	return 0;
}

/* Whether the filter at our handle and priority of one point runs prog_name: ours, or one a
 * killed mcpsecd left (its program is ours by name). */
static bool tc_ours_at(int ifindex, enum bpf_tc_attach_point point, const char *prog_name)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = point);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIORITY);
	if (bpf_tc_query(&h, &q) < 0)
		return false;
	int fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd < 0)
		return false;
	struct bpf_prog_info info = { 0 };
	__u32 ilen = sizeof(info);
	bool ours = bpf_obj_get_info_by_fd(fd, &info, &ilen) == 0 && !strncmp(info.name, prog_name, sizeof(info.name));
	close(fd);
	return ours;
}

size_t mc_dropmon_sweep(struct mc_dropmon *m, char *names, size_t len)
{
	const struct bpf_program *progs[2] = { m->skel->progs.seen_tc_in, m->skel->progs.seen_tc_out };
	enum bpf_tc_attach_point points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	struct if_nameindex *ifs = if_nameindex();
	size_t n = 0, at = 0;

	names[0] = '\0';
	if (!ifs || m->observing)
		goto out;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		bool swept = false;
		for (int j = 0; j < 2; j++)
			if (tc_ours_at((int)i->if_index, points[j], bpf_program__name(progs[j]))) {
				DECLARE_LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = (int)i->if_index, .attach_point = points[j]);
				DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY);
				swept |= bpf_tc_detach(&h, &o) == 0;
			}
		if (!swept)
			continue;
		if (at < len) {
			int w = snprintf(names + at, len - at, "%s%s", n ? ", " : "", i->if_name);
			at += w > 0 ? (size_t)w : 0;
		}
		n++;
	}
out:
	if (ifs)
		if_freenameindex(ifs);
	return n;
}

static void tc_detach_all(struct mc_dropmon *m)
{
	for (size_t i = 0; i < m->ntc; i++)
		tc_detach_one(&m->tc[i]);
	m->ntc = m->nbad = m->nunsaid = 0;
}

/* Where ifindex is in m->bad, or m->nbad when it is not. */
static size_t bad_at(const struct mc_dropmon *m, int ifindex)
{
	size_t k = 0;
	while (k < m->nbad && m->bad[k] != ifindex)
		k++;
	return k;
}

/* Attaches to the namespace's interfaces that have none yet (new ones appear: each drain).
 * Every interface is tried; the first failure is returned, with why. With report, an
 * interface's failure is queued for mc_dropmon_unwatched the first time it happens. */
static int tc_refresh(struct mc_dropmon *m, bool report, char *why, size_t len)
{
	struct if_nameindex *ifs = if_nameindex();
	int r = 0;

	if (!ifs) {
		snprintf(why, len, "listing the interfaces: %s", strerror(errno));
		return -errno;
	}
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		bool have = false;
		for (size_t j = 0; j < m->ntc && !have; j++)
			have = m->tc[j].ifindex == (int)i->if_index;
		int e = have ? 0 : tc_attach_one(m, (int)i->if_index);
		size_t k = bad_at(m, (int)i->if_index);
		if (!e) {
			if (k < m->nbad)
				m->bad[k] = m->bad[--m->nbad];
			continue;
		}
		char msg[200];
		snprintf(msg, sizeof(msg), "attaching to %.32s's %s hooks: %s", i->if_name, m->tcx ? "tcx" : "clsact",
			 !m->tcx && e == -EEXIST ? "an ingress qdisc is there, and clsact cannot be added beside it"
						 : strerror(-e));
		if (!r) {
			r = e;
			snprintf(why, len, "%s", msg);
		}
		if (report && k == m->nbad) {
			*MC_PUSH(&m->bad, &m->nbad, &m->capbad) = (int)i->if_index;
			snprintf(MC_PUSH(&m->unsaid, &m->nunsaid, &m->capunsaid)->why, sizeof(m->unsaid->why), "%s", msg);
		}
	}
	/* Forget interfaces that are gone (their links too). */
	for (size_t j = 0; j < m->ntc;) {
		bool present = false;
		for (struct if_nameindex *i = ifs; i->if_index && !present; i++)
			present = m->tc[j].ifindex == (int)i->if_index;
		if (present) {
			j++;
			continue;
		}
		tc_detach_one(&m->tc[j]);
		m->tc[j] = m->tc[--m->ntc];
	}
	for (size_t j = 0; j < m->nbad;) {
		bool present = false;
		for (struct if_nameindex *i = ifs; i->if_index && !present; i++)
			present = m->bad[j] == (int)i->if_index;
		if (present)
			j++;
		else
			m->bad[j] = m->bad[--m->nbad];
	}
	if_freenameindex(ifs);
	return r;
}

bool mc_dropmon_unwatched(struct mc_dropmon *m, char *why, size_t len)
{
	if (!m->nunsaid)
		return false;
	snprintf(why, len, "%s", m->unsaid[0].why);
	memmove(&m->unsaid[0], &m->unsaid[1], --m->nunsaid * sizeof(*m->unsaid));
	return true;
}

int mc_dropmon_observe(struct mc_dropmon *m, bool on, char *why, size_t len)
{
	if (on == m->observing)
		return 0;
	if (!on) {
		tc_detach_all(m);
		bpf_link__destroy(m->seen_in);
		bpf_link__destroy(m->seen_out);
		m->seen_in = m->seen_out = NULL;
		m->observing = false;
		return 0;
	}
	/* First the tc hooks (the cheapest), by tcx, else by clsact; then, or when asked
	 * (MCPSECD_OBSERVER=clsact or tracepoints), the tracepoints. */
	/* why each way failed or was not tried: [0] clsact, [1] tcx */
	char tc_why[2][200] = { "not tried (MCPSECD_OBSERVER=tracepoints)", "not tried (MCPSECD_OBSERVER=clsact)" };
	const char *want = getenv("MCPSECD_OBSERVER");
	bool tracepoints = want && !strcmp(want, "tracepoints"), clsact = want && !strcmp(want, "clsact");
	for (int tcx = !clsact; !tracepoints && tcx >= 0; tcx--) {
		m->tcx = tcx;
		if (tc_refresh(m, false, tc_why[tcx], sizeof(tc_why[tcx])) == 0) {
			m->observing = m->tc_mode = true;
			if (tcx)
				snprintf(m->observer, sizeof(m->observer), "tcx on each interface");
			else
				snprintf(m->observer, sizeof(m->observer), "tc (clsact) on each interface (tcx: %.80s)",
					 tc_why[1]);
			return 0;
		}
		tc_detach_all(m);
	}
	m->seen_in = bpf_program__attach(m->skel->progs.seen_in);
	m->seen_out = m->seen_in ? bpf_program__attach(m->skel->progs.seen_out) : NULL;
	if (m->seen_out) {
		m->observing = true;
		m->tc_mode = false;
		snprintf(m->observer, sizeof(m->observer), "tp_btf/netif_receive_skb and tp_btf/net_dev_queue (tc: %.100s)",
			 tc_why[0]);
		return 0;
	}
	int r = -errno;
	snprintf(why, len, "tc: %s; tp_btf/%s: %s", tc_why[0], m->seen_in ? "net_dev_queue" : "netif_receive_skb",
		 strerror(-r));
	bpf_link__destroy(m->seen_in);
	m->seen_in = NULL;
	return r;
}

bool mc_dropmon_observing(const struct mc_dropmon *m)
{
	return m && m->observing;
}

const char *mc_dropmon_observer(const struct mc_dropmon *m)
{
	return m && m->observing ? m->observer : "none";
}

/* Seconds since the epoch of a bpf_ktime_get_ns() time (CLOCK_MONOTONIC). */
static int64_t epoch_of(uint64_t ns, const struct timespec *mono, const struct timespec *real)
{
	int64_t now_ns = (int64_t)mono->tv_sec * 1000000000 + mono->tv_nsec;
	return (int64_t)real->tv_sec - (now_ns - (int64_t)ns) / 1000000000;
}

int mc_dropmon_drain_seen(struct mc_dropmon *m, struct mc_seen_flows *out)
{
	int fd = bpf_map__fd(m->skel->maps.seen), totals = bpf_map__fd(m->skel->maps.seen_totals);
	struct mc_drop_key key, next;
	struct mc_seen_val val;
	struct timespec mono, real;
	void *prev = NULL;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	out->n = 0;
	char why[200];
	if (m->tc_mode)
		(void)tc_refresh(m, true, why, sizeof(why)); /* an interface added since: observed too */
	for (uint32_t i = 0; i < 2 * MC_SEEN_DIRS; i++) {
		uint64_t v = 0;
		if (bpf_map_lookup_elem(totals, &i, m->percpu) == 0) {
			for (int c = 0; c < m->ncpus; c++) /* one value per possible CPU */
				v += m->percpu[c];
			uint64_t d = v - m->seen_totals[i];
			if (i % 2)
				out->bytes[i / 2] = d;
			else
				out->packets[i / 2] = d;
			m->seen_totals[i] = v;
		}
	}
	mc_prevs_begin(&m->seen);
	/* Bounded as the drop table's walk is; what is left is in the totals. */
	for (size_t steps = 0; steps < MC_SEEN_FLOWS && bpf_map_get_next_key(fd, prev, &next) == 0; steps++) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &val) < 0)
			continue;
		uint64_t packets = val.packets, bytes = val.bytes;
		mc_prevs_step(&m->seen, &key, &packets, &bytes);
		if (!packets)
			continue;
		struct mc_seen_flow *f = MC_PUSH(&out->f, &out->n, &out->cap);
		f->dir = key.kind == MC_SEEN_OUT ? MC_DIR_OUT : MC_DIR_IN;
		to_sel(&key, &f->flow);
		f->packets = packets;
		f->bytes = bytes;
		f->first = epoch_of(val.first_ns, &mono, &real);
		f->last = epoch_of(val.last_ns, &mono, &real);
		f->inner = key.inner != 0;
	}
	mc_prevs_end(&m->seen, present, &(struct present_ctx){ fd, &val });
	return 0;
}

void mc_dropmon_close(struct mc_dropmon *m)
{
	if (!m)
		return;
	bpf_link__destroy(m->out_link);
	bpf_link__destroy(m->in_link);
	inner_detach(m);
	tc_detach_all(m);
	free(m->tc);
	free(m->bad);
	free(m->unsaid);
	bpf_link__destroy(m->seen_in);
	bpf_link__destroy(m->seen_out);
	drops__destroy(m->skel);
	mc_prevs_free(&m->drops);
	mc_prevs_free(&m->seen);
	free(m->percpu);
	free(m);
}

