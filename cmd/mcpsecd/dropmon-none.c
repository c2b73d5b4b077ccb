/* SPDX-License-Identifier: MIT */
/* The per-flow drop hook when mcpsecd is built without BPF (make WITH_BPF=0): it never loads,
 * and says so; mcpsecd then reports drops from the kernel's counters alone. */
#include <errno.h>
#include <stdio.h>

#include "dropmon.h"

int mc_dropmon_open(uint32_t netns_ino, bool outbound, struct mc_dropmon **ret, char *why, size_t len)
{
	(void)netns_ino;
	(void)outbound;
	*ret = NULL;
	snprintf(why, len, "built without BPF (make WITH_BPF=0)");
	return -EOPNOTSUPP;
}

bool mc_dropmon_outbound(const struct mc_dropmon *m, const char **why)
{
	(void)m;
	*why = "built without BPF (make WITH_BPF=0)";
	return false;
}

int mc_dropmon_outbound_attach(struct mc_dropmon *m, bool on)
{
	(void)m;
	(void)on;
	return 0;
}

bool mc_dropmon_outbound_attached(const struct mc_dropmon *m)
{
	(void)m;
	return false;
}

bool mc_dropmon_inner_loaded(const struct mc_dropmon *m, char *why, size_t len)
{
	(void)m;
	snprintf(why, len, "mcpsecd was built without BPF");
	return false;
}

int mc_dropmon_inner(struct mc_dropmon *m, bool on, char *why, size_t len)
{
	(void)m;
	if (on)
		snprintf(why, len, "mcpsecd was built without BPF");
	return on ? -EOPNOTSUPP : 0;
}

int mc_dropmon_drain(struct mc_dropmon *m, struct mc_drop_flows *out)
{
	(void)m;
	(void)out;
	return -EOPNOTSUPP;
}

int mc_dropmon_observe(struct mc_dropmon *m, bool on, char *why, size_t len)
{
	(void)m;
	(void)on;
	snprintf(why, len, "built without BPF (make WITH_BPF=0)");
	return -EOPNOTSUPP;
}

bool mc_dropmon_observing(const struct mc_dropmon *m)
{
	(void)m;
	return false;
}

const char *mc_dropmon_observer(const struct mc_dropmon *m)
{
	(void)m;
	return "none";
}

int mc_dropmon_drain_seen(struct mc_dropmon *m, struct mc_seen_flows *out)
{
	(void)m;
	(void)out;
	return -EOPNOTSUPP;
}

bool mc_dropmon_unwatched(struct mc_dropmon *m, char *why, size_t len)
{
	(void)m;
	(void)why;
	(void)len;
	return false;
}

void mc_dropmon_close(struct mc_dropmon *m)
{
	(void)m;
}

size_t mc_dropmon_sweep(struct mc_dropmon *m, char *names, size_t len)
{
	(void)m;
	if (len)
		names[0] = '\0';
	return 0;
}
