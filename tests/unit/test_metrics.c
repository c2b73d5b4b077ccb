/* SPDX-License-Identifier: MIT */
/* Prometheus metrics (lib/metrics.c): names, labels, merging, escaping, parts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/kobj.h"
#include "../../lib/kview.h"
#include "../../lib/metrics.h"
#include "../../lib/monitor.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "t.h"

#define PRIO_WEB (MC_PRIO_USER_LO + 0x100)
#define PRIO_DB (MC_PRIO_USER_LO + 0x200)
#define REQID_DB (MC_REQID_BASE + 3)

static struct mc_kpolicy *kpol(struct mc_kstate *k, uint32_t prio, enum mc_dir dir, int family, uint64_t used)
{
	struct mc_kpolicy *p = MC_PUSH(&k->pols, &k->npols, &k->cappols);
	memset(p, 0, sizeof(*p));
	p->x.priority = prio;
	p->x.dir = dir;
	p->x.sel.family = (uint8_t)family;
	p->x.action = MC_BYPASS;
	p->use_time = used;
	return p;
}

static struct mc_ksa *ksa(struct mc_kstate *k, uint32_t spi, uint32_t reqid, uint64_t bytes)
{
	struct mc_ksa *s = MC_PUSH(&k->sas, &k->nsas, &k->capsas);
	memset(s, 0, sizeof(*s));
	s->x.spi = spi;
	s->x.reqid = reqid;
	s->x.proto = 50;
	s->bytes = bytes;
	s->packets = bytes / 100;
	s->integrity_fail = 2;
	s->replay_fail = 1;
	return s;
}

/* Lines of text that start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
	int n = 0;
	size_t len = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		n += !strncmp(p, prefix, len);
	return n;
}

static bool has_line(const char *text, const char *line)
{
	size_t len = strlen(line);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, line, len) && (p[len] == '\n' || !p[len]))
			return true;
	return false;
}

/* No two sample lines with the same name and labels (Prometheus refuses duplicate series). */
static bool unique_series(const char *text)
{
	char *copy = mc_strdup(text), *save = NULL;
	char **seen = NULL;
	size_t n = 0, cap = 0;
	bool ok = true;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#')
			continue;
		*strrchr(l, ' ') = '\0';
		for (size_t i = 0; i < n; i++)
			ok &= strcmp(seen[i], l) != 0;
		*MC_PUSH(&seen, &n, &cap) = l;
	}
	free(seen);
	free(copy);
	return ok;
}

int main(void)
{
	char dir[] = "/tmp/mcpsec-metrics-XXXXXX";
	struct mc_state st;
	struct mc_kstate k = { 0 };
	struct mc_stats xs = { 0 };
	struct mc_buf b = { 0 };

	if (!mkdtemp(dir))
		return 2;
	char *path = mc_asprintf("%s/state", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "enabled yes\nrule %u out WEBOUT\nrule %u in DBIN reqid %u\n", PRIO_WEB, PRIO_DB, REQID_DB);
	fclose(f);
	T_EQ_INT(mc_state_load(dir, &st), 0, "a state with two named rules loads");

	/* WEBOUT: an IPv4 and an IPv6 kernel policy, one used at 1000, one at 2000. */
	kpol(&k, PRIO_WEB, MC_DIR_OUT, AF_INET, 1000);
	kpol(&k, PRIO_WEB, MC_DIR_OUT, AF_INET6, 2000);
	kpol(&k, PRIO_DB, MC_DIR_IN, AF_INET6, 0)->x.action = MC_PROTECT;
	kpol(&k, MC_PRIO_USER_LO + 0x900, MC_DIR_IN, AF_INET6, 0); /* owned, not in the state */
	kpol(&k, 100, MC_DIR_OUT, AF_INET, 5);                       /* foreign */
	ksa(&k, 0xfa2, REQID_DB, 12345);
	ksa(&k, 0xfa9, 77, 999); /* foreign SA */
	ksa(&k, 0xfb0, MC_REQID_BASE + 9, 5); /* mcpsec's reqid, but no rule of the state has it */
	mc_stats_parse("XfrmInNoStates            4\nXfrmOutPolBlock           9\n", &xs);

	struct mc_metrics m = { .netns = "lab\"1\\x" };
	struct mc_kview v;
	mc_kview_build(&k, &st.names, &v);
	mc_metrics_kernel(&m, &v, &xs, true, false);
	mc_kview_free(&v);
	mc_metrics_daemon(&m, NULL, false, false);
	mc_metrics_render(&m, MC_METRICS_ALL, &b);
	const char *t = mc_buf_str(&b);

	T_OK(has_line(t, "mcpsec_policy_kernel_policies{namespace=\"lab\\\"1\\\\x\",policy=\"WEBOUT\",direction=\"out\",action=\"bypass\"} 2"),
	     "a rule's two kernel policies are one series of 2; the namespace label escapes \" and \\");
	T_OK(has_line(t, "mcpsec_policy_last_use_timestamp_seconds{namespace=\"lab\\\"1\\\\x\",policy=\"WEBOUT\",direction=\"out\"} 2000"),
	     "its last use is the latest of the two");
	T_OK(has_line(t, "mcpsec_policy_kernel_policies{namespace=\"lab\\\"1\\\\x\",policy=\"DBIN\",direction=\"in\",action=\"protect\"} 1"),
	     "a PROTECT rule");
	T_OK(strstr(t, "policy=\"UNKNOWN-PRIORITY-") != NULL, "an owned policy the state does not name is still counted");
	T_EQ_INT(count_lines(t, "mcpsec_policy_kernel_policies{"), 3, "foreign policies are not mcpsec's to report");
	T_OK(has_line(t, "mcpsec_sa_bytes_total{namespace=\"lab\\\"1\\\\x\",policy=\"DBIN\",direction=\"in\",spi=\"0x00000fa2\",protocol=\"esp\"} 12345"),
	     "an SA's bytes, named by its reqid's policy, direction and SPI in hex");
	T_OK(strstr(t, "mcpsec_sa_integrity_failures_total{") && strstr(t, "} 2\n") && strstr(t, "mcpsec_sa_replay_failures_total{"),
	     "integrity and replay failures per SA");
	T_OK(!strstr(t, "0x00000fa9"), "foreign SAs are left out");
	T_OK(has_line(t, "mcpsec_sa_bytes_total{namespace=\"lab\\\"1\\\\x\",policy=\"\",direction=\"\",spi=\"0x00000fb0\",protocol=\"esp\"} 5"),
	     "an SA of mcpsec's that no committed rule names: empty policy and direction");
	T_OK(has_line(t, "mcpsec_xfrm_stat_total{namespace=\"lab\\\"1\\\\x\",counter=\"XfrmOutPolBlock\"} 9"),
	     "xfrm_stat counters by name");
	T_OK(has_line(t, "mcpsec_enabled{namespace=\"lab\\\"1\\\\x\"} 1") && has_line(t, "mcpsec_enforced{namespace=\"lab\\\"1\\\\x\"} 0"),
	     "enabled and enforced from the state directory's word");
	T_OK(has_line(t, "mcpsec_daemon_up{namespace=\"lab\\\"1\\\\x\"} 0"), "no daemon: up 0");
	T_EQ_INT(count_lines(t, "mcpsec_daemon_records_written_total{"), 0, "no daemon: no totals");
	T_EQ_INT(count_lines(t, "# TYPE mcpsec_daemon_records_written_total counter"), 1, "but every family is declared");
	T_EQ_INT(count_lines(t, "# HELP "), count_lines(t, "# TYPE "), "every family has HELP and TYPE");
	T_OK(unique_series(t), "every series appears once");
	mc_buf_free(&b);
	mc_metrics_free(&m);

	/* The daemon's part: drops by policy and reason, counted whatever the rate limit lets out. */
	struct mc_monitor mon;
	mc_mon_init(&mon, 1700000000);
	mc_mon_configure(&mon, &(struct mc_mon_config){ .rate = 1, .burst = 1 });
	struct mc_record r;
	memset(&r, 0, sizeof(r));
	snprintf(r.event, sizeof(r.event), "drop");
	snprintf(r.reason, sizeof(r.reason), "policy-block");
	snprintf(r.policy, sizeof(r.policy), "WEBOUT");
	snprintf(r.dir, sizeof(r.dir), "out");
	r.count = 3;
	(void)mc_mon_admit(&mon, &r, 1700000000);
	r.count = 4;
	T_OK(!mc_mon_admit(&mon, &r, 1700000000), "the second record is held back by the rate limit");
	snprintf(r.reason, sizeof(r.reason), "no-sa");
	snprintf(r.event, sizeof(r.event), "acquire");
	r.count = 1;
	(void)mc_mon_admit(&mon, &r, 1700000000);
	struct mc_metrics d = { .netns = "" };
	mc_metrics_daemon(&d, &mon, true, true);
	mc_metrics_render(&d, MC_METRICS_DAEMON, &b);
	t = mc_buf_str(&b);
	T_OK(has_line(t, "mcpsec_policy_drops_total{namespace=\"\",policy=\"WEBOUT\",direction=\"out\",reason=\"policy-block\"} 7"),
	     "drops by policy and reason, suppressed records included");
	T_OK(has_line(t, "mcpsec_policy_drops_total{namespace=\"\",policy=\"WEBOUT\",direction=\"out\",reason=\"no-sa\"} 1"),
	     "an ACQUIRE counts as a no-sa drop of its policy");
	T_OK(has_line(t, "mcpsec_daemon_records_suppressed_total{namespace=\"\"} 2"), "suppressed records");
	T_OK(has_line(t, "mcpsec_daemon_records_written_total{namespace=\"\"} 1"), "records written: the one the limit let out");
	T_OK(mc_mon_suppressed_record(&mon, 1700000002, &r), "two seconds on, a suppressed record says how many were held back");
	mc_buf_free(&b);
	mc_metrics_free(&d);
	mc_metrics_daemon(&d, &mon, true, true);
	mc_metrics_render(&d, MC_METRICS_DAEMON, &b);
	t = mc_buf_str(&b);
	T_OK(has_line(t, "mcpsec_daemon_records_written_total{namespace=\"\"} 2"), "and it is written too");
	T_OK(has_line(t, "mcpsec_daemon_up{namespace=\"\"} 1") && has_line(t, "mcpsec_daemon_enforced{namespace=\"\"} 1") &&
	     has_line(t, "mcpsec_daemon_start_time_seconds{namespace=\"\"} 1700000000"), "up, enforced, started");
	T_EQ_INT(count_lines(t, "# TYPE mcpsec_sa_bytes_total"), 0, "the daemon part has no kernel families");
	T_OK(unique_series(t), "every series once");
	mc_buf_free(&b);
	mc_metrics_free(&d);
	mc_mon_free(&mon);

	mc_stats_free(&xs);
	mc_kstate_free(&k);
	mc_state_free(&st);
	unlink(path);
	rmdir(dir);
	free(path);
	return t_done();
}
