/* SPDX-License-Identifier: MIT */
/*
 * The log (log.jsonl, rotated past --log-max), syslog, and systemd's readiness messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"

/* systemd's readiness protocol (Type=notify) without libsystemd: one datagram. */
void sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/* The log: appended to, never through a link, never waited on (a FIFO put in its place would
 * otherwise stop the daemon until someone reads it); anything but a regular file is refused,
 * and the records then go to syslog alone. */
void open_log(struct daemon *d)
{
	struct stat sb;

	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = open(d->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
	if (d->log_fd >= 0 && (fstat(d->log_fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
		close(d->log_fd);
		d->log_fd = -1;
	}
}

/* Reopens after an outside rotation (the path now names another file) and rotates itself past
 * log_max bytes: log.jsonl → log.jsonl.1, so the log never holds more than twice log_max. */
static void log_check(struct daemon *d)
{
	struct stat a, b;

	if (d->log_fd < 0 || lstat(d->log_path, &a) < 0 || fstat(d->log_fd, &b) < 0 || a.st_ino != b.st_ino) {
		open_log(d);
		return;
	}
	if (b.st_size >= d->log_max) {
		char *old = mc_asprintf("%s.1", d->log_path);
		(void)rename(d->log_path, old);
		free(old);
		open_log(d);
	}
}

/* One record to the log file and syslog (the rate limit has already let it through). */
void emit_record(struct daemon *d, const struct mc_record *r)
{
	struct mc_buf line = { 0 }, text = { 0 };

	log_check(d);
	mc_record_json(r, d->netns, &line);
	if (d->log_fd >= 0 && write(d->log_fd, line.s, line.len) != (ssize_t)line.len)
		syslog(LOG_ERR, "writing %s: %s", d->log_path, strerror(errno));
	mc_record_text(r, &text);
	if (text.len)
		text.s[text.len - 1] = '\0';
	syslog(strcmp(r->event, "daemon") ? LOG_WARNING : LOG_INFO, "%s%s%s", d->netns ? d->netns : "",
	       d->netns ? ": " : "", mc_buf_str(&text));
	mc_buf_free(&line);
	mc_buf_free(&text);
}

static void write_record(struct daemon *d, const struct mc_record *r)
{
	if (mc_mon_admit(&d->mon, r, r->time))
		emit_record(d, r);
}

void flush_records(struct daemon *d, struct mc_records *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		write_record(d, &rs->r[i]);
	rs->n = 0;
}

void note(struct daemon *d, const char *event, const char *reason, const char *policy, uint64_t count,
	  const char *fmt, ...)
{
	struct mc_record r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.time = d->now;
	snprintf(r.event, sizeof(r.event), "%s", event);
	snprintf(r.reason, sizeof(r.reason), "%s", reason);
	if (policy)
		snprintf(r.policy, sizeof(r.policy), "%s", policy);
	r.count = count;
	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	write_record(d, &r);
}
