/* SPDX-License-Identifier: MIT */
/*
 * The poll loop: XFRM events, the control socket, signals, the one-second timer, address and
 * state-directory changes.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/nlx.h"

#include "daemon.h"

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_event(void *ctx, const struct mc_event *ev)
{
	struct daemon *d = ctx;

	if (d->debug)
		fprintf(stderr, "mcpsecd: event %d from port %u, priority %u, spi %u, reqid %#x\n", (int)ev->kind,
			ev->portid, ev->priority, ev->spi, ev->reqid);
	/* An SA came or went, any owner's: whether anything can be inside IPsec may have changed
	 * (stage.c inner_want reads the count at the next dump). */
	if (mc_event_changes_sas(ev))
		d->plan_dirty = true;
	if (mc_mon_event(&d->mon, ev, d->now, &d->pending)) {
		d->plan_dirty = true;
		if (!d->drift_due)
			d->drift_due = now_ms() + 100; /* let a burst of changes settle first */
	}
}

static void read_events(struct daemon *d)
{
	int r = mc_nl_monitor_read(d->events, on_event, d);

	flush_records(d, &d->pending);
	if (r == -ENOBUFS) {
		/* The kernel dropped events: counters are absolute, so only the drift check can have
		 * missed something; do a full one now. */
		mc_mon_count(&d->mon, MC_MON_OVERRUN);
		note(d, "overrun", "enobufs", NULL, 1, "the kernel dropped XFRM events (receive buffer full): "
		     "ACQUIRE reports may be missing; drop totals still come from the counters; resynchronising");
		d->drift_due = now_ms();
	} else if (r < 0) {
		note(d, "daemon", "error", NULL, 0, "reading XFRM events: %s", strerror(-r));
	}
}

/* SIGHUP re-applies; SIGTERM and SIGINT stop (true). */
static bool handle_signals(struct daemon *d)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(d->sig, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			note(d, "daemon", "reload", NULL, 0, "SIGHUP: re-applying the committed configuration");
			d->force_apply = true;
			d->drift_due = now_ms();
		} else {
			stop = true;
		}
	}
	if (stop) /* Fail closed: the kernel keeps every policy; stopping opens nothing. */
		note(d, "daemon", "stop", NULL, 0, "stopping; the kernel keeps enforcing the policies");
	return stop;
}

/* Something to do soon (ms from now), unless something already is. */
static void soon(struct daemon *d, int64_t ms)
{
	mc_engine_cache_drop(&d->cache);
	if (!d->drift_due)
		d->drift_due = now_ms() + ms;
}

/* The poll loop, until a signal stops it (0) or poll fails (1). */
int run(struct daemon *d)
{
	for (;;) {
		enum { NFIXED = 6 };
		struct pollfd p[NFIXED + MC_ARRAY_SIZE(d->clients)] = {
			{ mc_nl_monitor_fd(d->events), POLLIN, 0 }, { d->ctl, POLLIN, 0 }, { d->sig, POLLIN, 0 },
			{ d->timer, POLLIN, 0 }, { mc_nl_monitor_addr_fd(d->events), POLLIN, 0 }, { d->inotify, POLLIN, 0 }
		};
		int64_t due = d->drift_due;
		for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients); i++) {
			const struct client *c = &d->clients[i];
			p[NFIXED + i] = (struct pollfd){ c->fd, c->out.s ? POLLOUT : POLLIN, 0 };
			if (c->fd >= 0 && (!due || c->deadline < due))
				due = c->deadline;
		}
		int timeout = -1;
		if (due) {
			int64_t wait = due - now_ms();
			timeout = wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
		}
		if (poll(p, MC_ARRAY_SIZE(p), timeout) < 0 && errno != EINTR)
			return 1;
		d->now = time(NULL);
		if (p[0].revents & (POLLIN | POLLERR))
			read_events(d);
		if (p[1].revents & POLLIN)
			accept_clients(d);
		for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients); i++)
			serve_client(d, &d->clients[i]);
		/* A new or removed IPv6 address moves the own-address bypass: check soon. */
		if ((p[4].revents & POLLIN) && mc_nl_monitor_addr_changed(d->events))
			soon(d, 100);
		/* A change in the state directory (a fixed key file, a commit): enforce again. */
		if ((p[5].revents & POLLIN) && state_changed(d))
			soon(d, 200);
		if ((p[2].revents & POLLIN) && handle_signals(d))
			return 0;
		if (p[3].revents & POLLIN) {
			uint64_t expirations;
			(void)!read(d->timer, &expirations, sizeof(expirations));
			tick(d);
			check_trial(d);
		}
		if (d->drift_due && now_ms() >= d->drift_due) {
			if (d->dirlock < 0)
				retry_dir(d);
			else
				check_drift(d, false);
		}
	}
}
