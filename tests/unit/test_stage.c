/* SPDX-License-Identifier: MIT */
/* A staged list's flows (lib/stage.c): each change decided by both plans, the ESP view of
 * protected traffic, the records, the bounded table with exact totals, the JSON. */
#include <errno.h>
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/crypto.h"
#include "../../lib/diag.h"
#include "../../lib/monitor.h"
#include "../../lib/stage.h"
#include "../../lib/lint.h"
#include "../../lib/suggest.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "t.h"

#define MC_FILE_MAX_TEST (16u << 20)

#define ME "fec0::1"
#define PEER "fec0::2"

/* The enforced list: PostgreSQL to the peer protected by SPI 4096/4097, the rest bypassed but
 * inbound SSH (left to the default discard). */
static const char enforced[] =
	"ipsec: {default: deny}\n"
	"policies:\n"
	"  - {name: PGOUT, direction: out, local: " ME ", remote: " PEER ", protocol: tcp, remote-ports: 5432, action: protect,\n"
	"     spi: 4096, esp: {integrity: hmac-sha256, integrity-key: K}}\n"
	"  - {name: PGIN, direction: in, local: " ME ", remote: " PEER ", protocol: tcp, local-ports: 5432, action: protect,\n"
	"     spi: 4097, esp: {integrity: hmac-sha256, integrity-key: K}}\n"
	"  - {name: SSHIN, direction: in, protocol: tcp, local-ports: 22, action: discard}\n"
	"  - {name: ALLOUT, direction: out, action: bypass}\n"
	"  - {name: ALLIN, direction: in, action: bypass}\n";

/* The staged one: PostgreSQL under new SPIs, SSH in allowed, DNS out discarded, HTTPS to the
 * peer protected, and the rest bypassed by policies of other names. */
static const char staged[] =
	"ipsec: {default: deny}\n"
	"policies:\n"
	"  - {name: PGOUT, direction: out, local: " ME ", remote: " PEER ", protocol: tcp, remote-ports: 5432, action: protect,\n"
	"     spi: 8192, esp: {integrity: hmac-sha256, integrity-key: K}}\n"
	"  - {name: PGIN, direction: in, local: " ME ", remote: " PEER ", protocol: tcp, local-ports: 5432, action: protect,\n"
	"     spi: 8193, esp: {integrity: hmac-sha256, integrity-key: K}}\n"
	"  - {name: WEBOUT, direction: out, remote: " PEER ", protocol: tcp, remote-ports: 443, action: protect,\n"
	"     spi: 12288, esp: {integrity: hmac-sha256, integrity-key: K}}\n"
	"  - {name: SSHIN, direction: in, protocol: tcp, local-ports: 22, action: bypass}\n"
	"  - {name: DNSOUT, direction: out, protocol: udp, remote-ports: 53, action: discard}\n"
	"  - {name: PINGOUT, direction: out, protocol: icmpv6, action: bypass}\n"
	"  - {name: ALLOUT, direction: out, action: bypass}\n"
	"  - {name: ALLIN, direction: in, action: bypass}\n";

static void compile_text(const char *text, struct mc_plan *plan)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;

	mc_conf_parse("site.yaml", text, strlen(text), &ds, &s);
	s->keys_skipped = true;
	mc_site_validate(s, &ds);
	mc_compile(s, NULL, &ds, plan);
	T_EQ_INT(ds.errors, 0, "the site compiles");
	mc_diags_free(&ds);
	mc_site_free(s);
}

/* A flow as the observer reports it: source and destination as sent. */
static struct mc_seen_flow flow(enum mc_dir dir, int proto, const char *src, unsigned sport, const char *dst,
				unsigned dport, uint64_t packets)
{
	struct mc_seen_flow f = { .dir = dir, .packets = packets, .bytes = packets * 100, .first = 1000, .last = 1000 };

	f.flow.proto = (uint8_t)proto;
	mc_addr_parse(src, &f.flow.saddr);
	mc_addr_parse(dst, &f.flow.daddr);
	f.flow.family = f.flow.saddr.family;
	f.flow.plen_s = f.flow.plen_d = f.flow.family == AF_INET ? 32 : 128;
	f.flow.sport = (uint16_t)sport;
	f.flow.dport = (uint16_t)dport;
	f.flow.sport_mask = f.flow.dport_mask = 0xffff;
	return f;
}

static enum mc_change change_of(const struct mc_plan *e, const struct mc_plan *s, struct mc_seen_flow f,
				struct mc_decision *de, struct mc_decision *ds)
{
	mc_stage_decide_both(e, s, f.dir, &f.flow, de, ds);
	return mc_stage_compare(de, ds);
}

static struct mc_plan *p_nopg, *p_pgbypass;

static void test_changes(const struct mc_plan *e, const struct mc_plan *s)
{
	struct mc_decision de, ds;

	/* DNS out: bypassed now, discarded by the staged list. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_OUT, 17, ME, 40000, "fec0::53", 53, 1), &de, &ds), MC_CHANGE_DISCARD,
		 "udp to port 53: would-discard");
	T_EQ_STR(de.policy, "ALLOUT", "  enforced by ALLOUT");
	T_EQ_STR(ds.policy, "DNSOUT", "  staged: DNSOUT");
	T_EQ_INT(ds.action, MC_DISCARD, "  staged action discard");
	/* SSH in: discarded now, bypassed by the staged list. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_IN, 6, "fec0::9", 50000, ME, 22, 1), &de, &ds), MC_CHANGE_BYPASS,
		 "tcp in to port 22: would-bypass");
	T_EQ_STR(de.policy, "SSHIN", "  enforced by SSHIN (discard)");
	/* HTTPS to the peer: bypassed now, protected by the staged list. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_OUT, 6, ME, 41000, PEER, 443, 1), &de, &ds), MC_CHANGE_PROTECT,
		 "tcp to the peer's 443: would-protect");
	T_EQ_INT(ds.spi, 12288, "  under the staged SPI 12288");
	/* PostgreSQL: protected both ways, under other SAs. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_OUT, 6, ME, 42000, PEER, 5432, 1), &de, &ds), MC_CHANGE_SA,
		 "tcp to the peer's 5432: other-sa");
	T_OK(de.spi == 4096 && ds.spi == 8192, "  SPI 4096 now, 8192 staged (got %u, %u)", de.spi, ds.spi);
	T_EQ_INT(change_of(e, s, flow(MC_DIR_IN, 6, PEER, 5432, ME, 42000, 1), &de, &ds), MC_CHANGE_NONE,
		 "the reply to it arrives on port 42000: ALLIN both ways (unchanged)");
	T_EQ_INT(change_of(e, s, flow(MC_DIR_IN, 6, PEER, 42001, ME, 5432, 1), &de, &ds), MC_CHANGE_SA,
		 "tcp in to 5432 from the peer: other-sa (4097 -> 8193)");
	/* ICMPv6 echo out: bypassed either way, by another policy. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_OUT, 58, ME, 128, "fec0::9", 0, 1), &de, &ds), MC_CHANGE_POLICY,
		 "icmpv6 echo out: other-policy (ALLOUT -> PINGOUT, both bypass)");
	T_EQ_STR(ds.policy, "PINGOUT", "  staged: PINGOUT");
	/* Anything else out: unchanged. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_OUT, 6, ME, 43000, "fec0::9", 80, 1), &de, &ds), MC_CHANGE_NONE,
		 "tcp to another host's 80: unchanged");
	/* IPv4 flows too: the default deny's IPv4 discard in both. */
	T_EQ_INT(change_of(e, s, flow(MC_DIR_OUT, 17, "192.0.2.1", 40000, "192.0.2.53", 53, 1), &de, &ds),
		 MC_CHANGE_DISCARD, "an IPv4 datagram to port 53: would-discard too (%s -> %s)",
		 mc_action_str(de.action), mc_action_str(ds.action));

	/* ESP at the device: decided by its SA. SPI 4096's destination is the peer. */
	struct mc_seen_flow esp = flow(MC_DIR_OUT, 50, ME, 0, PEER, 4096, 1);
	T_EQ_INT(change_of(e, s, esp, &de, &ds), MC_CHANGE_SA,
		 "ESP under SPI 4096: the staged PGOUT sends under 8192 (other-sa)");
	T_OK(de.action == MC_PROTECT && !strcmp(de.policy, "PGOUT"), "  enforced: PGOUT's SA (%s %s)",
	     mc_action_str(de.action), de.policy);
	T_OK(ds.action == MC_PROTECT && !strcmp(ds.policy, "PGOUT") && ds.spi == 8192, "  staged: PGOUT, SPI 8192");
	/* The same SA in both: unchanged. */
	struct mc_seen_flow esp_new = flow(MC_DIR_OUT, 50, ME, 0, PEER, 8192, 1);
	T_EQ_INT(change_of(s, s, esp_new, &de, &ds), MC_CHANGE_NONE, "ESP under 8192 in both: unchanged");
	/* The staged list without PGOUT: the SA is gone, its inner flows unseen. */
	T_EQ_INT(change_of(e, p_nopg, esp, &de, &ds), MC_CHANGE_SA, "ESP under 4096, PGOUT gone: other-sa");
	T_OK(ds.policy[0] == '\0' && ds.spi == 0, "  with no staged policy and no SPI");
	struct mc_seen_flow esp_bypassed = flow(MC_DIR_OUT, 50, ME, 0, PEER, 4096, 1);
	T_EQ_INT(change_of(e, p_pgbypass, esp_bypassed, &de, &ds), MC_CHANGE_BYPASS,
		 "ESP under 4096, PGOUT now a bypass: would-bypass");
	struct mc_seen_flow esp_in = flow(MC_DIR_IN, 50, PEER, 0, ME, 4097, 1);
	mc_stage_decide(e, MC_DIR_IN, &esp_in.flow, &de);
	T_OK(de.action == MC_PROTECT && !strcmp(de.policy, "PGIN") && de.spi == 4097, "ESP in under 4097: PGIN's SA");
	struct mc_seen_flow esp_hi = flow(MC_DIR_OUT, 50, ME, 1, PEER, 0, 1); /* SPI 65536 */
	mc_stage_decide(e, MC_DIR_OUT, &esp_hi.flow, &de);
	T_EQ_INT(de.action, MC_DISCARD, "ESP under an SPI nobody has (65536): no SA, discard");
	struct mc_seen_flow esp_wrong = flow(MC_DIR_OUT, 50, ME, 0, "fec0::9", 4096, 1);
	mc_stage_decide(e, MC_DIR_OUT, &esp_wrong.flow, &de);
	T_EQ_INT(de.action, MC_DISCARD, "ESP under 4096 to another destination: not the SA");
	T_OK(!strcmp(mc_change_str(MC_CHANGE_DISCARD), "would-discard") &&
		     !strcmp(mc_change_str(MC_CHANGE_PROTECT), "would-protect") &&
		     !strcmp(mc_change_str(MC_CHANGE_BYPASS), "would-bypass") &&
		     !strcmp(mc_change_str(MC_CHANGE_SA), "other-sa") &&
		     !strcmp(mc_change_str(MC_CHANGE_POLICY), "other-policy") &&
		     !strcmp(mc_change_str(MC_CHANGE_NONE), "unchanged"),
	     "the changes' names");
}

static void add(struct mc_stage *t, const struct mc_plan *e, const struct mc_plan *s, const struct mc_seen_flow *f,
		size_t n, struct mc_records *out)
{
	struct mc_seen_flows sf = { .f = (struct mc_seen_flow *)f, .n = n };
	for (size_t i = 0; i < n; i++) {
		int d = f[i].dir == MC_DIR_OUT ? MC_SEEN_OUT : MC_SEEN_IN;
		sf.packets[d] += f[i].packets;
		sf.bytes[d] += f[i].bytes;
	}
	mc_stage_add(t, &sf, e, s, 2000, out);
}

static void test_records(const struct mc_plan *e, const struct mc_plan *s)
{
	struct mc_stage t;
	struct mc_records out = { 0 };
	struct mc_seen_flow f[4] = {
		flow(MC_DIR_OUT, 17, ME, 40000, "fec0::53", 53, 3),  /* would-discard */
		flow(MC_DIR_OUT, 6, ME, 41000, PEER, 443, 5),        /* would-protect */
		flow(MC_DIR_OUT, 58, ME, 128, "fec0::9", 0, 7),      /* other-policy: no record */
		flow(MC_DIR_OUT, 6, ME, 43000, "fec0::9", 80, 11),   /* unchanged: no record */
	};

	mc_stage_init(&t, 0, 1000);
	add(&t, e, s, f, 4, &out);
	T_EQ_INT(out.n, 2, "4 flows first seen: a record for each that would change, 2");
	T_OK(out.n == 2 && !strcmp(out.r[0].event, "staged") && !strcmp(out.r[0].reason, "would-discard") &&
		     !strcmp(out.r[0].policy, "DNSOUT") && out.r[0].dport == 53 && out.r[0].count == 3 &&
		     !strcmp(out.r[0].dir, "out"),
	     "the would-discard record: event staged, policy DNSOUT, port 53, 3 packets, out");
	T_OK(out.n == 2 && strstr(out.r[0].detail, "enforced: ALLOUT (bypass)") &&
		     strstr(out.r[0].detail, "staged: DNSOUT (discard)"),
	     "its detail names both policies: %s", out.n ? out.r[0].detail : "");
	T_OK(out.n == 2 && !strcmp(out.r[1].reason, "would-protect") && strstr(out.r[1].detail, "peer must be ready"),
	     "would-protect says the peer must be ready");
	out.n = 0;
	add(&t, e, s, f, 4, &out);
	T_EQ_INT(out.n, 0, "the same flows again: no new record");
	T_EQ_INT(t.n, 4, "4 flows in the table");
	T_EQ_INT(t.flows[MC_CHANGE_DISCARD], 1, "flows: 1 would-discard");
	T_EQ_INT(t.packets[MC_CHANGE_DISCARD], 6, "its packets add up: 3 + 3");
	T_EQ_INT(t.packets[MC_CHANGE_NONE], 22, "unchanged packets: 11 + 11");
	T_EQ_INT(t.bytes[MC_CHANGE_POLICY], 1400, "other-policy bytes: 700 + 700");

	struct mc_record r;
	T_OK(!mc_stage_summary(&t, 1030, 60, &r), "no summary before the interval");
	T_OK(mc_stage_summary(&t, 1060, 60, &r) && !strcmp(r.reason, "summary") && r.count == 4 &&
		     strstr(r.detail, "1 would-discard, 1 would-protect, 0 would-bypass"),
	     "a summary after it: %s", r.detail);
	T_OK(!mc_stage_summary(&t, 1200, 60, &r), "no summary when nothing new was seen");

	/* JSON: every field the issue names, per flow. */
	struct mc_buf b = { 0 };
	mc_stage_json(&t, &b);
	static const char *const keys[] = { "\"protocol\":\"udp\"", "\"src\":\"fec0::1\"", "\"src_port\":40000",
					    "\"dst\":\"fec0::53\"", "\"dst_port\":53", "\"icmp_type\":null",
					    "\"icmp_code\":null", "\"packets\":6", "\"bytes\":600", "\"first_seen\":",
					    "\"last_seen\":", "\"enforced_action\":\"bypass\"",
					    "\"enforced_policy\":\"ALLOUT\"", "\"staged_action\":\"discard\"",
					    "\"staged_policy\":\"DNSOUT\"", "\"icmp_type\":128", "\"src_port\":null",
					    "\"would-discard\":{\"flows\":1,\"packets\":6,\"bytes\":600}" };
	int missing = 0;
	for (size_t i = 0; i < MC_ARRAY_SIZE(keys); i++)
		if (!strstr(mc_buf_str(&b), keys[i]))
			missing += printf("# missing %s\n", keys[i]) > 0;
	T_EQ_INT(missing, 0, "the JSON has each flow's fields");
	mc_buf_free(&b);
	mc_stage_text(&t, 10, &b);
	T_OK(strstr(mc_buf_str(&b), "would-discard:\n") && strstr(mc_buf_str(&b), "port 53") &&
		     strstr(mc_buf_str(&b), "staged: DNSOUT (discard)"),
	     "the text lists the would-discard flow with both policies");
	mc_buf_free(&b);
	mc_records_free(&out);
	mc_stage_free(&t);
}

/* An element of a counting set: one direction's flow and its counters. */
static struct mc_setflow elem(enum mc_dir dir, int proto, const char *src, unsigned sport, const char *dst,
			      unsigned dport, uint64_t packets)
{
	struct mc_setflow c = { .dir = dir, .packets = packets, .bytes = packets * 100 };
	c.flow = flow(dir, proto, src, sport, dst, dport, 0).flow;
	return c;
}

static const struct mc_seen_flow *seen_find(const struct mc_seen_flows *f, enum mc_dir dir, unsigned sport,
					    unsigned dport)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->f[i].dir == dir && f->f[i].flow.sport == sport && f->f[i].flow.dport == dport)
			return &f->f[i];
	return NULL;
}

/* The counting sets' view of protected traffic: each flow's packets since the previous reading,
 * by inner addresses and ports, and the totals' differences. */
static void test_inner(const struct mc_plan *e, const struct mc_plan *s)
{
	struct mc_innerprev prev = { 0 };
	struct mc_seen_flows out = { 0 };
	struct mc_setflow *v = mc_calloc(3, sizeof(*v));
	const struct mc_seen_flow *f;
	uint64_t packets[MC_SEEN_DIRS] = { [MC_SEEN_IN] = 6, [MC_SEEN_OUT] = 13 };
	uint64_t bytes[MC_SEEN_DIRS] = { [MC_SEEN_IN] = 600, [MC_SEEN_OUT] = 1300 };

	v[0] = elem(MC_DIR_OUT, 6, ME, 40000, PEER, 5432, 10); /* we connect out */
	v[1] = elem(MC_DIR_IN, 6, PEER, 50000, ME, 5432, 4);   /* the peer connects in */
	v[2] = elem(MC_DIR_IN, 6, PEER, 5432, ME, 40000, 2);   /* our connection's replies */
	mc_stage_inner(&prev, v, 3, packets, bytes, 1000, &out);
	T_EQ_INT(out.n, 3, "3 elements become 3 inner flows");
	f = seen_find(&out, MC_DIR_OUT, 40000, 5432);
	T_OK(f && f->inner && f->packets == 10 && f->bytes == 1000 && f->first == 1000,
	     "our connection to the peer: out, 10 packets, inner, seen now");
	f = seen_find(&out, MC_DIR_IN, 50000, 5432);
	T_OK(f && f->inner && f->packets == 4, "the peer's connection to us: in, 4 packets");
	T_OK(out.packets[MC_SEEN_OUT] == 13 && out.packets[MC_SEEN_IN] == 6 && out.bytes[MC_SEEN_OUT] == 1300,
	     "the totals are the counters' (3 outbound packets found no room in a set)");

	/* The next reading: the outbound flow sent 5 more; the peer's is gone (its element
	 * expired); the replies' element was made again, with fewer packets. */
	v = mc_calloc(2, sizeof(*v));
	v[0] = elem(MC_DIR_OUT, 6, ME, 40000, PEER, 5432, 15);
	v[1] = elem(MC_DIR_IN, 6, PEER, 5432, ME, 40000, 1);
	mc_seen_flows_free(&out);
	packets[MC_SEEN_OUT] = 18;
	packets[MC_SEEN_IN] = 7;
	mc_stage_inner(&prev, v, 2, packets, bytes, 1001, &out);
	T_EQ_INT(out.n, 2, "two flows moved");
	f = seen_find(&out, MC_DIR_OUT, 40000, 5432);
	T_OK(f && f->packets == 5 && f->bytes == 500, "the same element again: the 5 packets since (%llu)",
	     f ? (unsigned long long)f->packets : 0ULL);
	f = seen_find(&out, MC_DIR_IN, 5432, 40000);
	T_OK(f && f->packets == 1, "an element whose counters went back counts whole");
	T_OK(out.packets[MC_SEEN_OUT] == 5 && out.packets[MC_SEEN_IN] == 1 && out.bytes[MC_SEEN_OUT] == 0,
	     "the totals' differences");
	/* the same flow in the other direction's set is another flow */
	v = mc_calloc(2, sizeof(*v));
	v[0] = elem(MC_DIR_OUT, 6, ME, 40000, PEER, 5432, 15);
	v[1] = elem(MC_DIR_OUT, 6, PEER, 5432, ME, 40000, 1);
	mc_seen_flows_free(&out);
	packets[MC_SEEN_OUT] = 3; /* the table was made again */
	mc_stage_inner(&prev, v, 2, packets, bytes, 1002, &out);
	T_OK(out.n == 1 && out.f[0].dir == MC_DIR_OUT && out.f[0].flow.sport == 5432 && out.f[0].packets == 1,
	     "a direction is part of the flow: the outbound set's element is new");
	T_OK(out.packets[MC_SEEN_OUT] == 3, "totals that went back count whole");
	mc_seen_flows_free(&out);
	v = mc_calloc(1, sizeof(*v));
	v[0] = elem(MC_DIR_OUT, 6, ME, 40000, PEER, 5432, 15);
	mc_stage_inner(&prev, v, 1, packets, bytes, 1003, &out);
	T_EQ_INT(out.n, 0, "nothing new since: no flow");

	/* Into the table: the inner flow is decided by its selectors (PGOUT under another SPI). */
	struct mc_stage t;
	struct mc_records rec = { 0 };
	struct mc_seen_flow in = { MC_DIR_OUT, elem(MC_DIR_OUT, 6, ME, 40000, PEER, 5432, 0).flow, 10, 1000, 1000, 1000,
				   true };
	mc_stage_init(&t, 0, 1000);
	add(&t, e, s, &in, 1, &rec);
	T_OK(rec.n == 1 && !strcmp(rec.r[0].reason, "other-sa") &&
		     !strncmp(rec.r[0].detail, "inside IPsec (its clear-text flow); enforced: PGOUT (protect)", 61),
	     "its record: other-sa, said to be inside IPsec: %s", rec.n ? rec.r[0].detail : "");
	struct mc_buf b = { 0 };
	mc_stage_json(&t, &b);
	T_OK(strstr(mc_buf_str(&b), "\"inner\":true") && strstr(mc_buf_str(&b), "\"dst_port\":5432") &&
		     strstr(mc_buf_str(&b), "\"enforced_spi\":4096") && strstr(mc_buf_str(&b), "\"staged_spi\":8192"),
	     "the JSON marks it inner, with its ports and both SPIs");
	mc_buf_free(&b);
	mc_records_free(&rec);
	mc_stage_free(&t);
	mc_seen_flows_free(&out);
	mc_innerprev_free(&prev);
}

/* A flood of distinct flows: the table stays at its size, the totals stay exact. */
static void test_flood(const struct mc_plan *e, const struct mc_plan *s)
{
	enum { MAX = 1000, FLOWS = 100000, BATCH = 500 };
	struct mc_stage t;
	struct mc_seen_flow f[BATCH];
	uint64_t packets = 0, bytes = 0, discard = 0;
	size_t most = 0;

	mc_stage_init(&t, MAX, 1000);
	for (int k = 0; k < FLOWS; k += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			int n = k + i;
			f[i] = flow(MC_DIR_OUT, 17, ME, 1024 + n % 60000, "fec0::53", n % 3 ? 53 : 54, 1 + n % 5);
			f[i].flow.daddr.a[14] = (uint8_t)(n / 60000);
			packets += f[i].packets;
			bytes += f[i].bytes;
			discard += n % 3 ? f[i].packets : 0;
		}
		add(&t, e, s, f, BATCH, NULL);
		if (t.n > most)
			most = t.n;
	}
	uint64_t tp = 0, tb = 0, tf = 0;
	for (int c = 0; c < MC_CHANGE_N; c++) {
		tp += t.packets[c];
		tb += t.bytes[c];
		tf += t.flows[c];
	}
	T_EQ_INT(most, MAX, "100,000 distinct flows: the table never held more than its %d", MAX);
	T_EQ_INT(tf, FLOWS, "every flow counted");
	T_EQ_INT(t.evicted, FLOWS - MAX, "99,000 made room");
	T_EQ_INT(tp, packets, "packets exact");
	T_EQ_INT(tb, bytes, "bytes exact");
	T_EQ_INT(t.packets[MC_CHANGE_DISCARD], discard, "would-discard packets exact");
	T_EQ_INT(t.unattributed_packets, 0, "no packet without its flow");
	/* The most recent flows are the ones kept: the last one is found and grows. */
	struct mc_seen_flow last = f[BATCH - 1];
	uint64_t before = t.packets[MC_CHANGE_DISCARD] + t.packets[MC_CHANGE_NONE];
	size_t evicted = t.evicted;
	add(&t, e, s, &last, 1, NULL);
	T_EQ_INT(t.evicted, evicted, "the newest flow seen again: found, nothing made room");
	T_EQ_INT(t.packets[MC_CHANGE_DISCARD] + t.packets[MC_CHANGE_NONE], before + last.packets, "  its packets added");
	/* Seen again, a flow is the newest: the next to make room is the one after it. */
	struct mc_stage small;
	struct mc_seen_flow g[4];
	mc_stage_init(&small, 3, 1000);
	for (int i = 0; i < 4; i++)
		g[i] = flow(MC_DIR_OUT, 17, ME, 2000 + (unsigned)i, "fec0::53", 53, 1);
	add(&small, e, s, g, 3, NULL);
	add(&small, e, s, &g[0], 1, NULL); /* the oldest, seen again */
	add(&small, e, s, &g[3], 1, NULL); /* a fourth: the least recently seen (g[1]) makes room */
	uint64_t flows_before = small.flows[MC_CHANGE_DISCARD];
	add(&small, e, s, &g[0], 1, NULL);
	T_EQ_INT(small.flows[MC_CHANGE_DISCARD], flows_before, "a flow seen again is kept: the least recently seen made room");
	add(&small, e, s, &g[1], 1, NULL);
	T_EQ_INT(small.flows[MC_CHANGE_DISCARD], flows_before + 1, "  and the one that made room is new when seen again");
	mc_stage_free(&small);
	/* The oldest is gone: seen again, it is a new entry and counts again. */
	struct mc_seen_flow first = flow(MC_DIR_OUT, 17, ME, 1024, "fec0::53", 54, 1);
	add(&t, e, s, &first, 1, NULL);
	T_EQ_INT(t.evicted, evicted + 1, "the oldest seen again: a new entry (one more made room)");
	/* Packets the observer counted beyond its flows. */
	struct mc_seen_flows sf = { .f = &last, .n = 1 };
	sf.packets[MC_SEEN_OUT] = last.packets + 7;
	sf.bytes[MC_SEEN_OUT] = last.bytes + 700;
	mc_stage_add(&t, &sf, e, s, 2000, NULL);
	T_OK(t.unattributed_packets == 7 && t.unattributed_bytes == 700, "7 packets counted without a flow: unattributed");
	/* A drain whose flows hold packets its totals were read before: the next drain's totals
	 * have them, and the balance comes out exact, never above. */
	struct mc_seen_flow big = last;
	big.packets = 20;
	big.bytes = 2000;
	struct mc_seen_flows ahead = { .f = &big, .n = 1 };
	mc_stage_add(&t, &ahead, e, s, 2000, NULL);
	struct mc_seen_flows late = { .n = 0 };
	late.packets[MC_SEEN_OUT] = big.packets;
	late.bytes[MC_SEEN_OUT] = big.bytes;
	mc_stage_add(&t, &late, e, s, 2000, NULL);
	T_OK(t.unattributed_packets == 7 && t.unattributed_bytes == 700,
	     "flows ahead of their totals, then the totals: still 7 (%lld)", (long long)t.unattributed_packets);
	mc_stage_free(&t);
}

/* The table kept across a restart: saved and read back whole (the same JSON), each way of
 * damage refused with the table left as it was, another list's table stale. */
static void test_save(const struct mc_plan *e, const struct mc_plan *s)
{
	struct mc_stage t, back;
	struct mc_seen_flow g[5] = {
		flow(MC_DIR_OUT, 17, ME, 2000, "fec0::53", 53, 3),     flow(MC_DIR_IN, 6, PEER, 4000, ME, 22, 5),
		flow(MC_DIR_OUT, 58, ME, 128, PEER, 0, 1),             flow(MC_DIR_OUT, 6, "192.0.2.1", 999, "192.0.2.9", 80, 2),
		flow(MC_DIR_OUT, MC_PROTO_ESP, ME, 0, PEER, 4096, 4),
	};
	g[1].inner = true;
	g[2].first = 900;
	mc_stage_init(&t, 4, 500);
	add(&t, e, s, g, 5, NULL); /* five in a table of four: one made room */
	struct mc_seen_flows extra = { .n = 0 };
	extra.packets[MC_SEEN_IN] = 9;
	extra.bytes[MC_SEEN_IN] = 900;
	mc_stage_add(&t, &extra, e, s, 2000, NULL);
	struct mc_buf saved = { 0 }, j1 = { 0 }, j2 = { 0 };
	mc_stage_save(&t, "staged-3", "gen-7", MC_FILE_MAX_TEST, &saved);
	char why[200];
	mc_stage_init(&back, 4, 4000);
	T_EQ_INT(mc_stage_load(&back, saved.s, saved.len, "staged-3", "gen-7", why, sizeof(why)), 0, "read back: %s", why);
	mc_stage_json(&t, &j1);
	mc_stage_json(&back, &j2);
	T_EQ_STR(j2.s, j1.s, "the same table: totals, flows in the same order, both decisions");
	T_EQ_INT(back.n, 4, "four flows kept");
	/* seen again after the restart: counted on, not as new */
	uint64_t flows = back.flows[MC_CHANGE_DISCARD] + back.flows[MC_CHANGE_NONE] + back.flows[MC_CHANGE_POLICY] +
			 back.flows[MC_CHANGE_BYPASS] + back.flows[MC_CHANGE_PROTECT] + back.flows[MC_CHANGE_SA];
	add(&back, e, s, &g[4], 1, NULL);
	uint64_t after = back.flows[MC_CHANGE_DISCARD] + back.flows[MC_CHANGE_NONE] + back.flows[MC_CHANGE_POLICY] +
			 back.flows[MC_CHANGE_BYPASS] + back.flows[MC_CHANGE_PROTECT] + back.flows[MC_CHANGE_SA];
	T_EQ_INT(after, flows, "a flow read back and seen again is the same flow");
	mc_stage_free(&back);

	/* Another staged list's, or another enforced generation's: stale, not an error. */
	mc_stage_init(&back, 4, 4000);
	T_EQ_INT(mc_stage_load(&back, saved.s, saved.len, "staged-4", "gen-7", why, sizeof(why)), -ESTALE, "another staged list's");
	T_EQ_INT(mc_stage_load(&back, saved.s, saved.len, "staged-3", "gen-8", why, sizeof(why)), -ESTALE, "another enforced generation's");

	/* Damage: every prefix of the file (a write cut short), a byte changed on each line, a
	 * line twice, a NUL: refused, and the table left empty. */
	int cut_ok = 0, cuts = 0;
	for (size_t l = 0; l < saved.len; l++) {
		cuts++;
		cut_ok += mc_stage_load(&back, saved.s, l, "staged-3", "gen-7", why, sizeof(why)) == -EINVAL;
	}
	T_EQ_INT(cut_ok, cuts, "every cut-short file refused (%d)", cuts);
	int flipped = 0, refused = 0;
	for (size_t at = 0; at < saved.len; at++) {
		if (saved.s[at] == '\n')
			continue;
		char *bad = mc_strdup(saved.s);
		static const char swaps[] = "x 9-%";
		bad[at] = swaps[at % 5] == bad[at] ? 'q' : swaps[at % 5];
		int r = mc_stage_load(&back, bad, saved.len, "staged-3", "gen-7", why, sizeof(why));
		flipped++;
		refused += r == -EINVAL || (r == -ESTALE && at < 60); /* the list names changed */
		free(bad);
	}
	T_EQ_INT(refused, flipped, "a changed byte anywhere: refused (%d bytes)", flipped);
	T_EQ_INT(back.n, 0, "a refused file leaves the table as it was");
	char *nul = mc_strdup(saved.s);
	nul[saved.len / 2] = '\0';
	T_EQ_INT(mc_stage_load(&back, nul, saved.len, "staged-3", "gen-7", why, sizeof(why)), -EINVAL, "a NUL byte: %s", why);
	free(nul);
	/* A flow line twice, the file otherwise whole (its count and sum made to match). */
	struct mc_buf twice = { 0 };
	const char *f1 = strstr(saved.s, "\nflow ") + 1, *f2 = strchr(f1, '\n') + 1, *e1 = strstr(saved.s, "\nend ") + 1;
	mc_buf_printf(&twice, "%.*s%.*s%.*s", (int)(f2 - saved.s), saved.s, (int)(f2 - f1), f1, (int)(e1 - f2), f2);
	char sum[65];
	mc_sha256_hex(twice.s, twice.len, sum);
	mc_buf_printf(&twice, "end 5 %s\n", sum);
	mc_stage_free(&back);
	mc_stage_init(&back, 8, 4000);
	T_EQ_INT(mc_stage_load(&back, twice.s, twice.len, "staged-3", "gen-7", why, sizeof(why)), -EINVAL,
		 "a flow line twice: %s", why);
	T_OK(strstr(why, "twice") != NULL, "  said so");
	mc_stage_free(&back);

	/* A bound on its size: the oldest flows are left out, the rest read back. */
	struct mc_buf small = { 0 };
	mc_stage_save(&t, "staged-3", "gen-7", saved.len - 40, &small);
	mc_stage_init(&back, 4, 4000);
	T_EQ_INT(mc_stage_load(&back, small.s, small.len, "staged-3", "gen-7", why, sizeof(why)), 0, "bounded: %s", why);
	T_OK(small.len <= saved.len - 40 && back.n < 4 && back.n > 0, "the oldest left out (%zu of 4 kept)", back.n);
	mc_stage_free(&back);
	mc_buf_free(&small);
	mc_buf_free(&twice);
	mc_buf_free(&saved);
	mc_buf_free(&j1);
	mc_buf_free(&j2);
	mc_stage_free(&t);
}

/* stage --learn's suggestion: every flow seen covered by its own policy, the file valid, and
 * staged against the same flows, nothing would be discarded. */
static void test_suggest(void)
{
	/* Learning: everything passes but telnet in (discarded now, and kept so). */
	static const char learning[] = "policies:\n"
				       "  - {name: NOTELNET, direction: in, protocol: tcp, local-ports: 23, action: discard}\n"
				       "  - {name: LEARNIN, direction: in, action: bypass}\n"
				       "  - {name: LEARNOUT, direction: out, action: bypass}\n";
	struct mc_plan lp, sp;
	struct mc_stage t;
	struct mc_seen_flow f[64];
	size_t n = 0;

	compile_text(learning, &lp);
	/* 1: SSH in from two peers (both directions). */
	for (int i = 0; i < 2; i++) {
		const char *peer = i ? "fec0::21" : "fec0::20";
		f[n++] = flow(MC_DIR_IN, 6, peer, 50000 + (unsigned)i, ME, 22, 10);
		f[n++] = flow(MC_DIR_OUT, 6, ME, 22, peer, 50000 + (unsigned)i, 9);
	}
	/* 2: HTTPS out to the peer. 3: DNS out over IPv4. */
	f[n++] = flow(MC_DIR_OUT, 6, ME, 41000, PEER, 443, 5);
	f[n++] = flow(MC_DIR_IN, 6, PEER, 443, ME, 41000, 5);
	f[n++] = flow(MC_DIR_OUT, 17, "192.0.2.1", 40001, "192.0.2.53", 53, 1);
	f[n++] = flow(MC_DIR_IN, 17, "192.0.2.53", 53, "192.0.2.1", 40001, 1);
	/* 4: a web server with 10 clients: one policy for any remote each way. */
	for (unsigned i = 0; i < 10; i++) {
		char c[32];
		snprintf(c, sizeof(c), "fec0::1:%u", i);
		f[n++] = flow(MC_DIR_IN, 6, c, 33000 + i, ME, 8443, 3);
		f[n++] = flow(MC_DIR_OUT, 6, ME, 8443, c, 33000 + i, 3);
	}
	/* 5: ICMPv6 echo to the peer and back. */
	f[n++] = flow(MC_DIR_OUT, 58, ME, 128, PEER, 0, 2);
	f[n++] = flow(MC_DIR_IN, 58, PEER, 129, ME, 0, 2);
	/* Telnet in, discarded now. Neighbor Discovery and loopback: no policy needed. */
	f[n++] = flow(MC_DIR_IN, 6, "fec0::66", 51000, ME, 23, 3);
	f[n++] = flow(MC_DIR_OUT, 58, "fe80::1", 135, "ff02::1:ff00:1", 0, 1);
	f[n++] = flow(MC_DIR_OUT, 17, "127.0.0.1", 40000, "127.0.0.1", 53, 1);
	mc_stage_init(&t, 0, 1000);
	add(&t, &lp, &lp, f, n, NULL);
	struct mc_buf b = { 0 };
	struct mc_suggest_opts o = { .seconds = 60, .host = "test", .def = MC_DEF_DENY };
	mc_suggest(&t, &o, &b);
	const char *text = mc_buf_str(&b);
	T_OK(strstr(text, "A list to edit, not a list to trust"), "the suggestion says it is a list to edit");
	if (getenv("SHOW"))
		fputs(text, stdout);
	/* It is a valid site. */
	struct mc_diags ds = { 0 };
	struct mc_site *site = NULL;
	mc_conf_parse("suggested.yaml", text, strlen(text), &ds, &site);
	if (site) {
		mc_site_validate(site, &ds);
		mc_compile(site, NULL, &ds, &sp);
	}
	T_OK(site && ds.errors == 0, "the suggested site parses, validates and compiles");
	if (site && !ds.errors)
		mc_lint(site, &sp, &ds);
	/* ping -6's connect to port 1025, Packet Too Big, IPv4 ICMP: nothing check would warn of */
	T_EQ_INT(ds.warnings, 0, "mcpsec check has no warning for it");
	if (ds.errors || ds.warnings || !site) {
		printf("%s", text);
		for (size_t i = 0; i < ds.n; i++)
			printf("# %s\n", ds.d[i].msg);
	}
	mc_diags_free(&ds);
	/* Every flow seen: decided as the learning list decided it (nothing would be discarded). */
	int would_discard = 0, uncovered = 0;
	for (size_t i = 0; site && i < n; i++) {
		struct mc_decision de, dsg;
		mc_stage_decide_both(&lp, &sp, f[i].dir, &f[i].flow, &de, &dsg);
		would_discard += mc_stage_compare(&de, &dsg) == MC_CHANGE_DISCARD;
		uncovered += dsg.action != de.action;
	}
	T_EQ_INT(would_discard, 0, "staged against the flows it learned from: 0 would-discard");
	T_EQ_INT(uncovered, 0, "every flow decided as before");
	/* One policy per service and direction, the many clients as one, telnet kept discarded. */
	T_OK(strstr(text, "name: BYPASS-TCP22-FROM-PEER3-IN") && strstr(text, "name: BYPASS-TCP22-FROM-PEER4-OUT") &&
		     strstr(text, "local-ports: 22"), "SSH in, by peer");
	T_OK(strstr(text, "name: BYPASS-TCP443-ON-PEER2-OUT") && strstr(text, "remote-ports: 443"), "HTTPS out to the peer");
	T_OK(strstr(text, "name: BYPASS-UDP53-ON-PEER1-OUT"), "DNS out");
	T_OK(strstr(text, "name: BYPASS-TCP8443-FROM-ANY-IN") && !strstr(text, "BYPASS-TCP8443-FROM-PEER"),
	     "10 clients of port 8443: one policy for any remote");
	T_OK(strstr(text, "name: DISCARD-TCP23-FROM-PEER5-IN") && strstr(text, "discarded now by NOTELNET"),
	     "telnet in: discarded now, kept so");
	T_OK(!strstr(text, "ff02::") && !strstr(text, "127.0.0.1"), "no policy for ND or loopback");
	T_OK(strstr(text, "default: deny"), "the default decides the rest");
	size_t policies = 0;
	for (const char *c = text; (c = strstr(c, "  - name: ")); c++)
		policies++;
	T_EQ_INT(policies, 19, "19 policies: 4 for SSH (2 peers), 2 HTTPS, 2 DNS, 2 for 8443, 2 ICMPv6, 1 telnet; "
			       "ping -6's connect, Packet Too Big both ways, IPv4 ICMP both ways and ping's connect");
	T_OK(strstr(text, "name: BYPASS-PING6-PEER2-OUT\n    direction: out\n    remote: PEER2\n    protocol: udp\n"
			  "    remote-ports: 1025\n"), "ping -6 to the peer it pinged: its connect to port 1025");
	mc_buf_free(&b);
	mc_site_free(site);
	if (site)
		mc_plan_free(&sp);
	mc_plan_free(&lp);
	mc_stage_free(&t);
}

int main(void)
{
	struct mc_plan e, s;

	struct mc_plan nopg, pgbypass;
	compile_text(enforced, &e);
	compile_text(staged, &s);
	compile_text("policies:\n  - {name: ALLOUT, direction: out, action: bypass}\n", &nopg);
	compile_text("policies:\n  - {name: PGOUT, direction: out, action: bypass}\n", &pgbypass);
	p_nopg = &nopg;
	p_pgbypass = &pgbypass;
	test_changes(&e, &s);
	test_records(&e, &s);
	test_flood(&e, &s);
	test_inner(&e, &s);
	test_save(&e, &s);
	test_suggest();
	mc_plan_free(&e);
	mc_plan_free(&s);
	mc_plan_free(&nopg);
	mc_plan_free(&pgbypass);
	return t_done();
}
