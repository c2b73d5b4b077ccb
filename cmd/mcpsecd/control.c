/* SPDX-License-Identifier: MIT */
/*
 * The control socket (one request per connection, never waited on), the pid file and the
 * watch on the state directory: each a degradation when it cannot be had.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../lib/fileio.h"
#include "../../lib/metrics.h"

#include "daemon.h"

/* The answer to one request line. */
static void answer(struct daemon *d, const char *req, struct mc_buf *b)
{
	if (!strncmp(req, "totals", 6)) {
		mc_buf_printf(b, "{\"pid\":%ld,\"repair\":%s,\"netns\":", (long)getpid(), d->repair ? "true" : "false");
		if (d->netns)
			mc_buf_json_str(b, d->netns);
		else
			mc_buf_puts(b, "null");
		mc_buf_printf(b, ",\"enforced\":%s", d->enforced ? "true" : "false");
		if (!d->enforced) {
			mc_buf_puts(b, ",\"not_enforced\":");
			mc_buf_json_str(b, d->not_enforced);
		}
		mc_buf_puts(b, ",\"totals\":");
		mc_mon_totals_json(&d->mon, b);
		mc_buf_puts(b, "}\n");
	} else if (!strncmp(req, "suggest ", 8)) {
		stage_suggest(d, strtoll(req + 8, NULL, 10), b);
	} else if (!strncmp(req, "staged-text", 11)) {
		stage_answer(d, false, b);
	} else if (!strncmp(req, "staged", 6)) {
		stage_answer(d, true, b);
	} else if (!strncmp(req, "metrics", 7)) {
		render_metrics(d, NULL, NULL, MC_METRICS_DAEMON, b);
	} else if (!strncmp(req, "summary", 7)) {
		mc_buf_printf(b, "mcpsecd (pid %ld, %s) reports:\n", (long)getpid(), d->repair ? "repairing drift" : "report only");
		if (!d->enforced)
			mc_buf_printf(b, "  NOT ENFORCED: %s\n", d->not_enforced);
		mc_mon_totals_text(&d->mon, b);
	} else {
		mc_buf_puts(b, "{\"error\":\"unknown request; send 'totals', 'summary', 'metrics', 'staged', 'staged-text' or 'suggest SECONDS'\"}\n");
	}
}

void drop_client(struct client *c)
{
	close(c->fd);
	mc_buf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Accepts what waits (non-blocking). When every slot is taken, the oldest client makes room:
 * clients that connect and say nothing cannot keep status from the daemon. */
void accept_clients(struct daemon *d)
{
	for (;;) {
		struct client *slot = NULL;
		for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients) && !slot; i++)
			if (d->clients[i].fd < 0)
				slot = &d->clients[i];
		if (!slot) {
			slot = &d->clients[0];
			for (size_t i = 1; i < MC_ARRAY_SIZE(d->clients); i++)
				if (d->clients[i].deadline < slot->deadline)
					slot = &d->clients[i];
		}
		int fd = accept4(d->ctl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (slot->fd >= 0)
			drop_client(slot);
		slot->fd = fd;
		slot->deadline = now_ms() + 2000;
	}
}

/* Moves one client on as far as it goes without waiting: read the request line, then write the
 * answer as fast as the client takes it. A client that is too slow is dropped. */
void serve_client(struct daemon *d, struct client *c)
{
	if (c->fd < 0)
		return;
	if (!c->out.s) {
		ssize_t n = recv(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got, MSG_DONTWAIT);
		if (n > 0)
			c->got += (size_t)n;
		c->req[c->got] = '\0';
		bool line = memchr(c->req, '\n', c->got) || c->got == sizeof(c->req) - 1 || n == 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			drop_client(c);
			return;
		}
		if (!line)
			goto late;
		answer(d, c->req, &c->out);
	}
	while (c->sent < c->out.len) {
		ssize_t w = send(c->fd, c->out.s + c->sent, c->out.len - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			goto late;
		if (w <= 0)
			break;
		c->sent += (size_t)w;
		/* A client that keeps reading gets a large answer (a staged table) whole; one that
		 * stops is dropped 2 s later, as one that never reads. */
		c->deadline = now_ms() + 2000;
	}
	drop_client(c);
	return;
late:
	if (now_ms() >= c->deadline)
		drop_client(c);
}

/* The control socket, made anew in place of whatever stale entry is there (a socket of a
 * daemon that died). Failing is a degradation (no status from the daemon), never a reason to
 * stop enforcing. */
static int open_control(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int e;

	if (strlen(d->ctl_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, d->ctl_path);
	(void)unlink(d->ctl_path);
	d->ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->ctl < 0 || bind(d->ctl, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->ctl, 8) < 0) {
		e = errno;
		if (d->ctl >= 0)
			close(d->ctl);
		d->ctl = -1;
		return -e;
	}
	(void)chmod(d->ctl_path, 0600);
	return 0;
}

/* The pid file, for people and tools (systemd does not need it): one mcpsecd per directory is
 * the directory's own lock (mc_state_daemon_lock). Failing is a degradation. */
static int write_pidfile(const struct daemon *d)
{
	char *path = mc_asprintf("%s/mcpsecd.pid", d->state_dir), line[32];
	int r;

	snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	r = mc_file_write_atomic(path, line, strlen(line), 0644);
	free(path);
	return r;
}

/* What a daemon has besides enforcement, each a degradation when it cannot be had: the pid
 * file, the control socket (status asks through it), the watch on the state directory. */
void start_extras(struct daemon *d)
{
	int r;

	if ((r = write_pidfile(d)) < 0)
		note(d, "daemon", "degraded", NULL, 0, "no pid file %s/mcpsecd.pid: %s (enforcing anyway)",
		     d->state_dir, strerror(-r));
	if ((r = open_control(d)) < 0)
		note(d, "daemon", "degraded", NULL, 0, "no control socket %s: %s (enforcing anyway; status and "
		     "metrics cannot ask this daemon)", d->ctl_path, strerror(-r));
	if (d->inotify < 0 && (d->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		note(d, "daemon", "degraded", NULL, 0, "no watch on %s: %s (a repaired key file is seen at "
		     "SIGHUP only)", d->state_dir, strerror(errno));
	watch_state(d);
}
