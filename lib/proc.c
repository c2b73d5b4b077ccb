/* SPDX-License-Identifier: MIT */
/* /proc and /run readers (proc.h): through mc_file_read, never trusting what they hold. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "model.h"
#include "monitor.h"
#include "proc.h"

int mc_netns_enter(const char *name)
{
	char path[512];
	int fd, r = 0;

	if (!*name || strchr(name, '/') || strlen(name) > 255)
		return -EINVAL;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		r = -errno;
	close(fd);
	return r;
}

void mc_proc_xfrm_stat(struct mc_stats *ret)
{
	char *text = NULL;
	size_t len = 0;

	(void)mc_file_read("/proc/net/xfrm_stat", MC_READ_NOFOLLOW, 1u << 16, &text, &len, NULL);
	mc_stats_parse(text ? text : "", ret);
	free(text);
}

bool mc_proc_sysctl_on(const char *path, bool dflt)
{
	char *text = NULL;
	size_t len = 0;
	bool on = dflt;

	if (mc_file_read(path, MC_READ_NOFOLLOW, 16, &text, &len, NULL) == 0)
		on = strtol(text, NULL, 10) != 0;
	free(text);
	return on;
}

int mc_proc_sysctl_set(const char *path, bool on)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1\n" : "0\n", 2) != 2)
		r = -errno;
	close(fd);
	return r;
}

void mc_proc_ephemeral(unsigned *lo, unsigned *hi)
{
	char *text = NULL;
	size_t len = 0;
	unsigned a, b;

	*lo = MC_EPHEMERAL_LO;
	*hi = MC_EPHEMERAL_HI;
	if (mc_file_read("/proc/sys/net/ipv4/ip_local_port_range", MC_READ_NOFOLLOW, 64, &text, &len, NULL) == 0 &&
	    sscanf(text, "%u %u", &a, &b) == 2 && a >= 1 && a <= b && b <= 65535) {
		*lo = a;
		*hi = b;
	}
	free(text);
}
