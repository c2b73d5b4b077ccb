/* SPDX-License-Identifier: MIT */
/* Namespaces, loading, diagnostics printing, the kernel sync used by apply/enable/disable. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/monitor.h"
#include "../../lib/nlx.h"
#include "../../lib/reconcile.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "../../lib/validate.h"
#include "cmd.h"

struct global_opts g_opts;

void die_oom(void)
{
	fputs("mcpsec: out of memory\n", stderr);
	exit(EXIT_KERNEL);
}

bool is_flag(const char *arg, const char *name)
{
	return !strcmp(arg, name);
}

int enter_netns(void)
{
	char path[512];
	int fd;

	if (!g_opts.netns)
		return 0;
	if (strchr(g_opts.netns, '/') || !*g_opts.netns) {
		fprintf(stderr, "mcpsec: bad namespace name '%s'\n", g_opts.netns);
		return EXIT_CONFIG;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", g_opts.netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mcpsec: namespace '%s': %s: %s\n", g_opts.netns, path, strerror(errno));
		return EXIT_CONFIG;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "mcpsec: entering namespace '%s': %s\n", g_opts.netns, strerror(errno));
		close(fd);
		return EXIT_KERNEL;
	}
	close(fd);
	return 0;
}

void print_diags(struct mc_diags *ds)
{
	struct mc_buf b = { 0 };

	mc_diags_sort(ds);
	mc_diags_render(ds, &b);
	fputs(mc_buf_str(&b), stderr);
	mc_buf_free(&b);
}

struct mc_site *load_site(const char *path, const char *keys_override, bool strict_perms,
			  struct mc_diags *ds)
{
	struct mc_conf_opts o = { .keys_path = keys_override, .strict_key_perms = strict_perms };
	struct mc_site *s = NULL;

	mc_conf_load(path, &o, ds, &s);
	if (s)
		mc_site_validate(s, ds);
	if (ds->errors) {
		mc_site_free(s);
		return NULL;
	}
	return s;
}

int open_kernel(struct mc_nl **ret)
{
	int r = mc_nl_open(ret);

	if (r < 0) {
		fprintf(stderr, "mcpsec: cannot open XFRM netlink: %s\n", strerror(-r));
		return EXIT_KERNEL;
	}
	return 0;
}

int route_src_cb(void *ctx, const struct mc_addr *remote, struct mc_addr *ret)
{
	return mc_nl_route_src(ctx, remote, ret);
}

int gather_host(struct mc_nl *nl, struct host_facts *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = mc_nl_own_addrs6(nl, &ret->own6, &ret->nown6)) < 0) {
		fprintf(stderr, "mcpsec: listing the host's addresses: %s\n", strerror(-r));
		return EXIT_KERNEL;
	}
	return 0;
}

void free_host(struct host_facts *h)
{
	free(h->own6);
}

const char *op_name(const struct mc_op *o, const struct mc_state *st)
{
	const char *n = NULL;

	if (strcmp(o->name, "(stale)"))
		return o->name;
	if (o->kind == MC_OP_POL_DEL)
		n = mc_state_rule_name(st, o->pol.priority, o->pol.dir, o->pol.sel.family);
	return n ? n : "(stale)";
}

void describe_op(const struct mc_op *o, const struct mc_state *st, struct mc_buf *b)
{
	char a1[64], a2[64];

	switch (o->kind) {
	case MC_OP_SA_ADD:
	case MC_OP_SA_DEL:
		mc_buf_printf(b, "%s SA of '%s' (spi %u/0x%08x %s %s -> %s)",
			      o->kind == MC_OP_SA_ADD ? "adding" : "deleting", op_name(o, st), o->sa.spi,
			      o->sa.spi, o->sa.proto == 51 ? "ah" : "esp", mc_addr_str(&o->sa.saddr, a1, sizeof(a1)),
			      mc_addr_str(&o->sa.daddr, a2, sizeof(a2)));
		break;
	default:
		mc_buf_printf(b, "%s policy '%s' (dir %s, priority %u, ",
			      o->kind == MC_OP_POL_ADD ? "adding" : o->kind == MC_OP_POL_UPD ? "updating" : "deleting",
			      op_name(o, st), mc_dir_str(o->pol.dir), o->pol.priority);
		mc_sel_str(&o->pol.sel, o->pol.dir, b);
		mc_buf_puts(b, ")");
	}
}

int sync_kernel(struct mc_nl *nl, const struct mc_plan *plan, bool with_policies, bool dry_run,
		bool ip_cmds, const struct mc_state *st, size_t *ret_changes)
{
	struct mc_kstate have;
	struct mc_diags ds = { 0 };
	struct mc_diff diff, undo;
	int r, rc = 0;

	*ret_changes = 0;
	if ((r = mc_nl_dump(nl, &have)) < 0) {
		fprintf(stderr, "mcpsec: reading the kernel's XFRM policies and SAs: %s\n", strerror(-r));
		return EXIT_KERNEL;
	}
	if (mc_reconcile(plan, &have, with_policies, &ds, &diff) < 0) {
		print_diags(&ds);
		fprintf(stderr, "mcpsec: nothing was changed\n");
		rc = EXIT_KERNEL;
		goto out;
	}
	for (size_t i = 0; i < diff.n; i++)
		diff.ops[i].name = op_name(&diff.ops[i], st);
	*ret_changes = diff.n;
	if (dry_run) {
		struct mc_buf b = { 0 };
		mc_buf_printf(&b, "\noperations (%zu): policies %zu add, %zu update, %zu delete, %zu unchanged; "
			      "SAs %zu add, %zu replace, %zu delete, %zu unchanged\n", diff.n, diff.pol_add,
			      diff.pol_upd, diff.pol_del, diff.pol_same, diff.sa_add, diff.sa_replace, diff.sa_del,
			      diff.sa_same);
		mc_diff_render(&diff, false, &b);
		if (ip_cmds) {
			mc_buf_puts(&b, "\nas ip commands (keys not shown):\n");
			mc_diff_render(&diff, true, &b);
		}
		fputs(mc_buf_str(&b), stdout);
		mc_buf_free(&b);
		goto out;
	}
	if (!diff.n)
		goto out;
	if ((r = mc_nl_exec(nl, diff.ops, diff.n)) < 0) {
		struct mc_buf b = { 0 };
		size_t failed = 0, done = 0;
		for (size_t i = 0; i < diff.n; i++) {
			if (!diff.ops[i].err) {
				done++;
				continue;
			}
			if (diff.ops[i].err == -ECANCELED)
				continue; /* not sent: an SA before it failed */
			if (failed++ >= 5)
				continue;
			describe_op(&diff.ops[i], st, &b);
			fprintf(stderr, "mcpsec: %s: %s%s%s%s\n", mc_buf_str(&b), strerror(-diff.ops[i].err),
				diff.ops[i].errmsg[0] ? " (kernel: " : "", diff.ops[i].errmsg,
				diff.ops[i].errmsg[0] ? ")" : "");
			b.len = 0;
			if (b.s)
				b.s[0] = '\0';
		}
		if (failed > 5)
			fprintf(stderr, "mcpsec: ... and %zu more failed operations\n", failed - 5);
		mc_buf_free(&b);
		mc_diff_inverse(diff.ops, diff.n, &undo);
		int ur = undo.n ? mc_nl_exec(nl, undo.ops, undo.n) : 0;
		if (ur < 0)
			fprintf(stderr, "mcpsec: rolling back %zu operations failed too (%s): the kernel now "
				"holds a partial configuration; run 'mcpsec status ipsec all'\n", done, strerror(-ur));
		else
			fprintf(stderr, "mcpsec: the kernel refused the change; the previous state was restored "
				"(%zu operations undone)\n", done);
		mc_diff_free(&undo);
		rc = EXIT_KERNEL;
		goto out;
	}
	printf("changed: policies %zu added, %zu updated, %zu removed (%zu unchanged); "
	       "SAs %zu added, %zu replaced, %zu removed (%zu unchanged)\n",
	       diff.pol_add, diff.pol_upd, diff.pol_del, diff.pol_same, diff.sa_add, diff.sa_replace,
	       diff.sa_del, diff.sa_same);
out:
	mc_diff_free(&diff);
	mc_kstate_free(&have);
	mc_diags_free(&ds);
	return rc;
}

int write_output(const char *cmd, const char *path, const struct mc_buf *b)
{
	FILE *f;

	if (!path) {
		fputs(mc_buf_str(b), stdout);
		return fflush(stdout) == 0 ? 0 : EXIT_CONFIG;
	}
	f = fopen(path, "w");
	if (!f || fputs(mc_buf_str(b), f) == EOF || fclose(f) != 0) {
		fprintf(stderr, "mcpsec %s: cannot write %s: %s\n", cmd, path, strerror(errno));
		return EXIT_CONFIG;
	}
	return 0;
}

int compile_for_host(const struct mc_site *s, struct mc_nl *nl, struct mc_state *st, struct mc_diags *ds,
		     struct mc_plan *plan)
{
	struct host_facts hf;
	int rc;

	if ((rc = gather_host(nl, &hf)))
		return rc;
	struct mc_host host = { route_src_cb, nl, hf.own6, hf.nown6, mc_state_prev_priority, st };
	int r = mc_compile(s, &host, ds, plan);
	free_host(&hf);
	if (r < 0) {
		mc_plan_free(plan);
		memset(plan, 0, sizeof(*plan));
		return EXIT_CONFIG;
	}
	return 0;
}

int load_committed(const char *dir, struct mc_state *st, struct mc_diags *ds, struct mc_site **ret)
{
	*ret = NULL;
	if (mc_state_load(dir, st) < 0 || !st->committed)
		return -ENOENT;
	char *site = mc_state_site_path(st), *keys = mc_state_keys_path(st);
	bool have_keys = access(keys, R_OK) == 0;
	*ret = load_site(site, have_keys ? keys : NULL, true, ds);
	free(site);
	free(keys);
	return *ret ? 0 : EXIT_CONFIG;
}

int ask_daemon(const char *request, struct mc_buf *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path = mc_asprintf("%s/mcpsecd.sock", g_opts.state_dir);
	int fd = -1, rc = -ENOENT;
	char buf[4096];
	ssize_t n;

	if (strlen(path) >= sizeof(sa.sun_path))
		goto out;
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	struct timeval tv = { 2, 0 };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char *line = mc_asprintf("%s\n", request);
	ssize_t sent = send(fd, line, strlen(line), MSG_NOSIGNAL); /* one write: the daemon reads once */
	free(line);
	if (sent < 0)
		goto out;
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		mc_buf_puts(ret, buf);
	}
	rc = ret->len ? 0 : -EIO;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

void read_xfrm_stat(struct mc_stats *ret)
{
	FILE *f = fopen("/proc/net/xfrm_stat", "re"); /* this namespace's: /proc/net follows setns */
	struct mc_buf text = { 0 };
	char line[256];

	if (f) {
		while (fgets(line, sizeof(line), f))
			mc_buf_puts(&text, line);
		fclose(f);
	}
	mc_stats_parse(mc_buf_str(&text), ret);
	mc_buf_free(&text);
}
