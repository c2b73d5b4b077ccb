/* SPDX-License-Identifier: MIT */
/* mcpsecd's pure logic: events, counter attribution, rate limit, records as JSON and back. */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/drops.h"
#include "../../lib/monitor.h"
#include "../../lib/validate.h"
#include "../../lib/kobj.h"
#include "../../lib/util.h"
#include "t.h"

#define PRIO_FTP (MC_PRIO_USER_LO + 0x300)
#define PRIO_BNA (MC_PRIO_USER_LO + 0x400)
#define PRIO_IN (MC_PRIO_USER_LO + 0x500)

static const char *namer(void *ctx, uint32_t prio, enum mc_dir dir, int family)
{
	(void)ctx;
	(void)family;
	if (prio == PRIO_FTP && dir == MC_DIR_OUT)
		return "DISCARDFTPOUT";
	if (prio == PRIO_BNA && dir == MC_DIR_OUT)
		return "DISCARDBNAOUT";
	if (prio == PRIO_IN && dir == MC_DIR_IN)
		return "PROTECTFTPIN";
	return NULL;
}

static struct mc_kpolicy kpol(uint32_t prio, enum mc_dir dir, enum mc_action action, uint64_t use_time)
{
	struct mc_kpolicy p;
	memset(&p, 0, sizeof(p));
	p.x.priority = prio;
	p.x.dir = dir;
	p.x.action = action;
	p.x.sel.family = AF_INET6;
	p.use_time = use_time;
	if (action == MC_PROTECT) {
		p.ntmpl = 1;
		p.x.tmpl_spi = 24578;
		p.x.tmpl_proto = MC_PROTO_ESP;
		p.x.tmpl_reqid = MC_REQID_BASE + 7;
	}
	return p;
}

static const char *test_reqid_namer(void *ctx, uint32_t reqid)
{
	(void)ctx;
	return reqid == MC_REQID_BASE + 7 ? "PROTECTFTPIN" : NULL;
}

static void stats(struct mc_stats *st, uint64_t outblock, uint64_t icv, uint64_t nostates)
{
	char text[256];
	snprintf(text, sizeof(text), "XfrmInError 0\nXfrmOutPolBlock %llu\nXfrmInStateProtoError %llu\n"
		 "XfrmOutNoStates %llu\nXfrmOutNoQueueSpace 0\n", (unsigned long long)outblock,
		 (unsigned long long)icv, (unsigned long long)nostates);
	mc_stats_parse(text, st);
}

/* One exact flow as the per-flow hook gives it. */
static struct mc_drop_flow drop(enum mc_drop_kind hook, int proto, const char *src, unsigned sport, const char *dst,
				unsigned dport, uint64_t count)
{
	struct mc_drop_flow f;
	memset(&f, 0, sizeof(f));
	f.hook = hook;
	f.count = count;
	mc_addr_parse(src, &f.flow.saddr);
	mc_addr_parse(dst, &f.flow.daddr);
	f.flow.family = f.flow.saddr.family;
	f.flow.plen_s = f.flow.plen_d = f.flow.family == AF_INET ? 32 : 128;
	f.flow.proto = (uint8_t)proto;
	f.flow.sport = (uint16_t)sport;
	f.flow.dport = (uint16_t)dport;
	f.flow.sport_mask = f.flow.dport_mask = 0xffff;
	return f;
}

/* Per-flow records: each flow named by the plan's first match; a closed port the plan bypasses
 * is no drop; a lasting gap to the counters is said once and made up for. */
static void test_flows(void)
{
	const char text[] = "ipsec: {default: ipv6-only}\npolicies:\n"
			    "  - {name: DISCARDTELNETIN, direction: in, protocol: tcp, local-ports: 23, action: discard}\n"
			    "  - {name: DISCARDDNSOUT, direction: out, protocol: udp, remote-ports: 53, action: discard}\n"
			    "  - {name: BYPASSWEBIN, direction: in, protocol: tcp, local-ports: 80, action: bypass}\n"
			    "  - {name: ALLOUT, direction: out, action: bypass}\n";
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_plan plan = { 0 };
	mc_conf_parse("flows.yaml", text, strlen(text), &ds, &s);
	mc_site_validate(s, &ds);
	mc_compile(s, NULL, &ds, &plan);
	T_EQ_INT(ds.errors, 0, "the flows fixture compiles");

	struct mc_monitor m;
	mc_mon_init(&m, 1000);
	m.hook_in = true;
	struct mc_drop_flow fl[] = {
		drop(MC_DROP_IN_NOSOCK, MC_PROTO_TCP, "fec0::127", 40023, "fec0::100", 23, 3),
		drop(MC_DROP_IN_NOSOCK, MC_PROTO_TCP, "fec0::127", 40080, "fec0::100", 80, 2),  /* closed, bypassed */
		drop(MC_DROP_IN_POLICY, MC_PROTO_UDP, "fec0::127", 4444, "fec0::100", 5353, 1), /* the default */
		drop(MC_DROP_OUT_EPERM, MC_PROTO_UDP, "fec0::100", 41053, "fec0::127", 53, 4),
		drop(MC_DROP_IN_POLICY, MC_PROTO_ICMPV6, "fec0::127", 128, "fec0::100", 0, 1),
	};
	struct mc_drop_flows f = { fl, MC_ARRAY_SIZE(fl), MC_ARRAY_SIZE(fl), { 0 } };
	struct mc_records out = { 0 };
	mc_mon_flows(&m, 1001, &f, &plan, &out);
	T_EQ_INT(out.n, 4, "four records: the bypassed closed port is none");
	T_OK(out.n == 4 && !strcmp(out.r[0].policy, "DISCARDTELNETIN") && !strcmp(out.r[0].dir, "in") &&
	     out.r[0].count == 3 && !strcmp(out.r[0].flow, "tcp fec0::127 port 40023 -> fec0::100 port 23") &&
	     out.r[0].sport == 40023 && out.r[0].dport == 23 && !strcmp(out.r[0].src, "fec0::127"),
	     "a NO_SOCKET drop the plan discards: its policy and its exact flow");
	T_OK(out.n == 4 && !strcmp(out.r[1].policy, "DEFAULT-DISCARD-IN6"), "no user policy: the default discard by name");
	T_OK(out.n == 4 && !strcmp(out.r[2].policy, "DISCARDDNSOUT") && !strcmp(out.r[2].dir, "out") &&
	     out.r[2].sport == 41053, "outbound: local is the source");
	T_OK(out.n == 4 && out.r[3].icmp_type == 128 && out.r[3].sport == -1 && !strcmp(out.r[3].proto, "icmpv6"),
	     "ICMPv6: type and code, no ports");
	/* JSON and back keep the flow's fields. */
	struct mc_buf b = { 0 };
	struct mc_record back;
	mc_record_json(&out.r[0], "ns", &b);
	T_OK(mc_record_parse(mc_buf_str(&b), &back) && back.sport == 40023 && back.dport == 23 &&
	     !strcmp(back.src, "fec0::127") && !strcmp(back.dst, "fec0::100") && !strcmp(back.proto, "tcp") &&
	     back.icmp_type == -1, "a record's flow fields survive JSON: %s", mc_buf_str(&b));
	mc_buf_free(&b);
	struct mc_record_filter flt = { .port = 23 };
	T_OK(mc_record_match(&out.r[0], &flt) && !mc_record_match(&out.r[2], &flt), "log --port matches either port");
	flt = (struct mc_record_filter){ .port = -1, .policy = "discarddnsout" };
	T_OK(!mc_record_match(&out.r[0], &flt) && mc_record_match(&out.r[2], &flt), "log --policy is case-insensitive");
	const char *why;
	flt = (struct mc_record_filter){ .port = -1, .has_range = true };
	T_OK(mc_range_parse("fec0::100/128", &flt.range, &why) && mc_record_match(&out.r[0], &flt), "log --addr: the destination");

	/* Counters: XfrmInPolBlock is covered by the flows (5 packets so far: 3 + 1 + 1). */
	struct mc_stats st;
	mc_stats_parse("XfrmInPolBlock 100\n", &st);
	mc_records_free(&out);
	mc_mon_counters(&m, 1001, &st, NULL, &out); /* baseline */
	mc_stats_free(&st);
	m.hooked[MC_HC_IN_BLOCK] = 0; /* the flows above came before the baseline */
	mc_stats_parse("XfrmInPolBlock 105\n", &st);
	mc_records_free(&out);
	m.hooked[MC_HC_IN_BLOCK] = 5;
	mc_mon_counters(&m, 1002, &st, NULL, &out);
	T_EQ_INT(out.n, 0, "the counter moved by what the flows reported: no counter record");
	mc_stats_free(&st);
	mc_stats_parse("XfrmInPolBlock 107\n", &st);
	mc_mon_counters(&m, 1003, &st, NULL, &out);
	T_EQ_INT(out.n, 0, "2 packets counted but not yet seen: waited for, once");
	mc_mon_counters(&m, 1004, &st, NULL, &out);
	T_OK(out.n == 1 && out.r[0].count == 2 && strstr(out.r[0].detail, "did not see") &&
	     !strcmp(out.r[0].reason, "policy-block"), "the same gap a second tick: one record for it");
	mc_mon_counters(&m, 1005, &st, NULL, &out);
	T_EQ_INT(out.n, 1, "and not again");
	mc_stats_free(&st);
	mc_records_free(&out);

	/* Without a plan a NO_SOCKET drop cannot be told from a closed port: not reported. */
	struct mc_drop_flows one = { fl, 1, 1, { 0 } };
	mc_mon_flows(&m, 1006, &one, NULL, &out);
	T_EQ_INT(out.n, 0, "no plan: a NO_SOCKET flow is not reported");
	mc_records_free(&out);
	mc_mon_free(&m);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
}

/* When the outbound hook runs: attached while XfrmOutPolBlock moves, detached after the idle time. */
static void test_pace(void)
{
	struct mc_monitor m;
	struct mc_stats st;

	mc_mon_init(&m, 0);
	mc_mon_configure(&m, &(struct mc_mon_config){ .rate = 20, .burst = 200, .out_hook_idle = 60 });
	stats(&st, 5, 0, 0);
	T_EQ_INT(mc_mon_pace_out(&m, 10, &st, false), MC_HOOK_STAY, "no outbound hook loaded: never attached");
	mc_stats_free(&st);
	mc_mon_hooks_loaded(&m, true, true, 10);
	T_OK(m.hook_in && m.hook_out, "both hooks attached when loaded");
	stats(&st, 5, 0, 0);
	T_EQ_INT(mc_mon_pace_out(&m, 69, &st, true), MC_HOOK_STAY, "quiet for 59 s: stays");
	T_EQ_INT(mc_mon_pace_out(&m, 70, &st, true), MC_HOOK_DETACH, "quiet for 60 s: detached");
	mc_mon_hook_out(&m, false, &st);
	T_EQ_INT(mc_mon_pace_out(&m, 200, &st, false), MC_HOOK_STAY, "detached and quiet: stays off");
	mc_stats_free(&st);
	stats(&st, 6, 0, 0);
	T_EQ_INT(mc_mon_pace_out(&m, 201, &st, false), MC_HOOK_ATTACH, "an outbound block: attached again");
	mc_mon_hook_out(&m, true, &st);
	T_EQ_INT(mc_mon_pace_out(&m, 260, &st, true), MC_HOOK_STAY, "59 s after that block: stays");
	T_EQ_INT(mc_mon_pace_out(&m, 261, &st, true), MC_HOOK_DETACH, "60 s: detached");
	mc_stats_free(&st);
	mc_mon_free(&m);
}

static const char *group_name(const struct mc_op *o, const void *ctx)
{
	(void)ctx;
	return o->kind == MC_OP_POL_DEL ? "OLD" : o->pol.priority == 1 ? "A" : "B";
}

/* Drift grouping: one group per (kind, rule), counted, in the order of first operations. */
static void test_drift_groups(void)
{
	struct mc_diff d = { 0 };
	struct mc_op_group *g;
	const struct { enum mc_op_kind kind; uint32_t prio; } ops[] = {
		{ MC_OP_POL_ADD, 2 }, { MC_OP_POL_ADD, 1 }, { MC_OP_POL_DEL, 9 },
		{ MC_OP_POL_ADD, 2 }, { MC_OP_POL_DEL, 8 }, { MC_OP_POL_ADD, 1 },
	};
	for (size_t i = 0; i < MC_ARRAY_SIZE(ops); i++) {
		struct mc_op *o = MC_PUSH(&d.ops, &d.n, &d.cap);
		memset(o, 0, sizeof(*o));
		o->kind = ops[i].kind;
		o->pol.priority = ops[i].prio;
	}
	size_t n = mc_drift_groups(&d, group_name, NULL, &g);
	T_EQ_INT(n, 3, "six operations, three groups");
	T_OK(n == 3 && !strcmp(g[0].name, "B") && g[0].first == 0 && g[0].count == 2, "B first, twice");
	T_OK(n == 3 && !strcmp(g[1].name, "A") && g[1].first == 1 && g[1].count == 2, "then A, twice");
	T_OK(n == 3 && !strcmp(g[2].name, "OLD") && g[2].first == 2 && g[2].count == 2, "then the deletions");
	free(g);
	free(d.ops);
}

int main(void)
{
	test_flows();
	test_pace();
	test_drift_groups();
	struct mc_monitor m;
	struct mc_records out = { 0 };
	struct mc_event ev;

	mc_mon_init(&m, 1000);
	mc_mon_configure(&m, &(struct mc_mon_config){ .rate = 20, .burst = 200, .namer = namer, .own_portid = 4242 });

	/* xfrm_stat text */
	struct mc_stats st;
	stats(&st, 7, 0, 0);
	T_EQ_INT(st.n, 5, "five counters parsed");
	T_EQ_INT(mc_stats_get(&st, "XfrmOutPolBlock"), 7, "values read by name");
	mc_stats_free(&st);

	/* ACQUIRE: named, the flow, the missing SA; once per flow per interval */
	memset(&ev, 0, sizeof(ev));
	ev.kind = MC_EV_ACQUIRE;
	ev.priority = PRIO_FTP;
	ev.family = AF_INET6;
	ev.flow.family = AF_INET6;
	ev.flow.proto = MC_PROTO_TCP;
	mc_addr_parse("fec0::100", &ev.flow.saddr);
	mc_addr_parse("fec0::127", &ev.flow.daddr);
	ev.flow.sport = 40000;
	ev.flow.dport = 21;
	ev.saddr = ev.flow.saddr;
	ev.daddr = ev.flow.daddr;
	ev.spi = 24577;
	ev.proto = MC_PROTO_ESP;
	T_OK(!mc_mon_event(&m, &ev, 1000, &out), "an ACQUIRE is not drift");
	T_EQ_INT(out.n, 1, "an ACQUIRE gives one record");
	T_EQ_STR(out.r[0].policy, "DISCARDFTPOUT", "named from the policy's priority");
	T_EQ_STR(out.r[0].flow, "tcp fec0::100 port 40000 -> fec0::127 port 21", "the flow");
	T_OK(strstr(out.r[0].detail, "esp spi 24577 (0x6001) fec0::100 -> fec0::127") != NULL, "the missing SA: %s",
	     out.r[0].detail);
	mc_mon_event(&m, &ev, 1030, &out);
	T_EQ_INT(out.n, 1, "the same flow within the interval: not again");
	ev.flow.sport = 40001;
	mc_mon_event(&m, &ev, 1030, &out);
	T_EQ_INT(out.n, 2, "another flow: reported");
	ev.flow.sport = 40000;
	mc_mon_event(&m, &ev, 1061, &out);
	T_EQ_INT(out.n, 3, "the first flow after the interval: reported again");
	ev.priority = 100;
	ev.flow.sport = 40005;
	mc_mon_event(&m, &ev, 1061, &out);
	T_OK(out.r[3].policy[0] == '\0' && strstr(out.r[3].detail, "does not own"), "a foreign policy's ACQUIRE says so");
	out.n = 0;

	/* expiries */
	memset(&ev, 0, sizeof(ev));
	ev.kind = MC_EV_SA_EXPIRE;
	ev.hard = true;
	mc_mon_event(&m, &ev, 1100, &out);
	T_EQ_INT(out.n, 0, "a larval (spi 0) expiry is ACQUIRE's own: ignored");
	T_OK(!mc_event_changes_sas(&ev), "a larval expiry removes no SA");
	ev.spi = 2001;
	ev.reqid = MC_REQID_LEGACY;
	ev.proto = MC_PROTO_AH;
	T_OK(!mc_mon_event(&m, &ev, 1100, &out) && out.n == 1 && !strcmp(out.r[0].event, "sa-expire") &&
	     !strcmp(out.r[0].reason, "hard-lifetime") && strstr(out.r[0].detail, "does not put it back"),
	     "a hard expiry of our SA: a record saying the traffic drops until a rollover; no repair");
	T_OK(mc_event_changes_sas(&ev), "a hard expiry removes an SA");
	ev.hard = false;
	T_OK(!mc_event_changes_sas(&ev), "a soft expiry removes none");
	ev.hard = true;
	{
		/* whose SA does not matter: any SA means something can be inside IPsec */
		struct mc_event e = { .kind = MC_EV_SA_NEW, .reqid = 7 };
		T_OK(mc_event_changes_sas(&e), "a foreign SA added");
		e.kind = MC_EV_SA_DEL;
		T_OK(mc_event_changes_sas(&e), "an SA deleted");
		e.kind = MC_EV_SA_FLUSH;
		T_OK(mc_event_changes_sas(&e), "SAs flushed");
		e.kind = MC_EV_SA_UPD;
		T_OK(!mc_event_changes_sas(&e), "an SA updated: as many as before");
		e.kind = MC_EV_POL_NEW;
		T_OK(!mc_event_changes_sas(&e), "a policy added: no SA");
		e.kind = MC_EV_ACQUIRE;
		T_OK(!mc_event_changes_sas(&e), "an ACQUIRE: no SA yet");
	}
	out.n = 0;
	struct mc_xsa gone = { .spi = 2001, .proto = MC_PROTO_AH };
	T_OK(mc_mon_sa_expired(&m, &gone), "our SA gone at its hard lifetime: a repair keeps it out");
	mc_mon_forget_expired(&m);
	ev.reqid = 7;
	mc_mon_event(&m, &ev, 1100, &out);
	T_OK(!mc_mon_sa_expired(&m, &gone), "a foreign SA's expiry: not ours to keep out");
	ev.reqid = MC_REQID_BASE + 7;
	mc_mon_event(&m, &ev, 1100, &out);
	gone.spi = 2002;
	T_OK(!mc_mon_sa_expired(&m, &gone), "another SPI is not kept out");
	gone.spi = 2001;
	mc_mon_forget_expired(&m);
	T_OK(!mc_mon_sa_expired(&m, &gone), "another configuration committed: forgotten");
	out.n = 0;
	ev.hard = false;
	mc_mon_configure(&m, &(struct mc_mon_config){ .rate = 20, .burst = 200, .namer = namer,
						     .reqid_namer = test_reqid_namer, .own_portid = 4242 });
	T_OK(!mc_mon_event(&m, &ev, 1100, &out) && out.n == 1 && !strcmp(out.r[0].event, "rekey-due") &&
	     !strcmp(out.r[0].policy, "PROTECTFTPIN") && strstr(out.r[0].detail, "roll the key over"),
	     "a soft expiry: rekey-due, naming the policy by its reqid");
	out.n = 0;

	/* what counts as drift */
	memset(&ev, 0, sizeof(ev));
	ev.kind = MC_EV_POL_DEL;
	ev.priority = PRIO_FTP;
	ev.portid = 777;
	T_OK(mc_mon_event(&m, &ev, 1100, &out), "someone deleted one of our policies: drift");
	ev.portid = 4242;
	T_OK(!mc_mon_event(&m, &ev, 1100, &out), "our own change: not drift");
	ev.portid = 777;
	ev.priority = 100;
	T_OK(!mc_mon_event(&m, &ev, 1100, &out), "a foreign policy: not ours");
	ev.kind = MC_EV_POL_FLUSH;
	T_OK(mc_mon_event(&m, &ev, 1100, &out), "a flush: drift check");
	ev.kind = MC_EV_SA_DEL;
	ev.reqid = MC_REQID_LEGACY;
	T_OK(mc_mon_event(&m, &ev, 1100, &out), "our SA deleted: drift");
	ev.reqid = 7;
	T_OK(!mc_mon_event(&m, &ev, 1100, &out), "a foreign SA: not ours");
	T_EQ_INT(out.n, 0, "none of these is a drop record");

	/* counters: baseline, then attribution by last use */
	struct mc_kstate k = { 0 };
	*MC_PUSH(&k.pols, &k.npols, &k.cappols) = kpol(PRIO_FTP, MC_DIR_OUT, MC_DISCARD, 1190);
	*MC_PUSH(&k.pols, &k.npols, &k.cappols) = kpol(PRIO_BNA, MC_DIR_OUT, MC_DISCARD, 900);
	*MC_PUSH(&k.pols, &k.npols, &k.cappols) = kpol(PRIO_IN, MC_DIR_IN, MC_PROTECT, 1199);
	struct mc_ksa *sa = MC_PUSH(&k.sas, &k.nsas, &k.capsas);
	memset(sa, 0, sizeof(*sa));
	sa->x.spi = 24578;
	sa->x.proto = MC_PROTO_ESP;
	sa->x.reqid = MC_REQID_BASE + 7;
	mc_addr_parse("fec0::100", &sa->x.daddr);
	mc_addr_parse("fec0::127", &sa->x.saddr);
	stats(&st, 10, 0, 0);
	T_OK(mc_mon_needs_dump(&m, &st), "the first snapshot needs a dump (SA baseline)");
	mc_mon_counters(&m, 1190, &st, &k, &out);
	T_EQ_INT(out.n, 0, "the first snapshot is only a baseline");
	mc_stats_free(&st);
	stats(&st, 10, 0, 0);
	T_OK(!mc_mon_needs_dump(&m, &st), "nothing moved: no dump needed");
	mc_stats_free(&st);
	stats(&st, 13, 0, 0);
	T_OK(mc_mon_needs_dump(&m, &st), "a block counter moved: dump");
	mc_mon_counters(&m, 1191, &st, &k, &out);
	T_EQ_INT(out.n, 1, "one record for the block delta");
	T_OK(!strcmp(out.r[0].policy, "DISCARDFTPOUT") && out.r[0].count == 3 && !strcmp(out.r[0].dir, "out"),
	     "3 blocks attributed to the one DISCARD whose last use moved");
	out.n = 0;
	mc_stats_free(&st);
	k.pols[1].use_time = 1192;
	k.pols[0].use_time = 1192;
	stats(&st, 15, 0, 0);
	mc_mon_counters(&m, 1192, &st, &k, &out);
	T_OK(out.n == 1 && !out.r[0].policy[0] && strstr(out.r[0].detail, "one of: DISCARDFTPOUT,DISCARDBNAOUT"),
	     "two moved: both named as candidates, none guessed (%s)", out.n ? out.r[0].detail : "");
	out.n = 0;
	mc_stats_free(&st);
	k.sas[0].integrity_fail = 4;
	stats(&st, 15, 5, 2);
	mc_mon_counters(&m, 1193, &st, &k, &out);
	T_EQ_INT(out.n, 3, "ICV (attributed and rest) and no-sa records");
	T_OK(!strcmp(out.r[0].reason, "icv-failure") && !strcmp(out.r[0].policy, "PROTECTFTPIN") && out.r[0].count == 4,
	     "4 ICV failures attributed to the SA's policy");
	T_OK(!strcmp(out.r[1].reason, "icv-failure") && !out.r[1].policy[0] && out.r[1].count == 1,
	     "the fifth, not seen on any of our SAs, is a total");
	T_OK(!strcmp(out.r[2].reason, "no-sa") && out.r[2].count == 2, "no-sa as a total");
	mc_stats_free(&st);
	free(k.pols);
	free(k.sas);

	/* rate limit: totals count everything, the log gets the burst, then a summary */
	struct mc_monitor r;
	mc_mon_init(&r, 5000);
	mc_mon_configure(&r, &(struct mc_mon_config){ .rate = 1, .burst = 3 });
	int admitted = 0;
	for (size_t i = 0; i < out.n; i++)
		admitted += mc_mon_admit(&r, &out.r[i], 5000);
	admitted += mc_mon_admit(&r, &out.r[0], 5000);
	admitted += mc_mon_admit(&r, &out.r[0], 5000);
	T_EQ_INT(admitted, 3, "3 of 5 records admitted at once");
	T_EQ_INT(r.records, 5, "all 5 counted");
	struct mc_record sup;
	T_OK(!mc_mon_suppressed_record(&r, 5000, &sup), "no summary while the bucket is empty");
	T_OK(mc_mon_suppressed_record(&r, 5002, &sup) && sup.count == 2, "then a summary of the 2 held back");
	struct mc_buf tj = { 0 };
	mc_mon_totals_json(&r, &tj);
	T_OK(strstr(tj.s, "\"by_reason\":{\"icv-failure\":13,\"no-sa\":2}") && strstr(tj.s, "\"PROTECTFTPIN\":12"),
	     "totals by reason and by policy: %s", tj.s);
	mc_buf_free(&tj);
	mc_mon_free(&r);

	/* records as JSON lines and back */
	struct mc_record rec = out.r[0], back;
	snprintf(rec.detail, sizeof(rec.detail), "quote \" backslash \\ newline \n tab \t");
	struct mc_buf line = { 0 };
	mc_record_json(&rec, "ns\"1", &line);
	T_OK(strchr(line.s, '\n') == line.s + line.len - 1, "one line, escapes included");
	T_OK(mc_record_parse(line.s, &back), "parses back");
	T_OK(!strcmp(back.detail, rec.detail) && !strcmp(back.policy, rec.policy) && back.count == rec.count &&
	     back.time == rec.time && !strcmp(back.reason, rec.reason) && !strcmp(back.dir, rec.dir),
	     "every field survives, escapes included");
	T_OK(!mc_record_parse("{\"event\":\"x\"", &back) && !mc_record_parse("not json", &back), "malformed lines refused");
	mc_buf_free(&line);

	mc_records_free(&out);
	mc_mon_free(&m);
	return t_done();
}
