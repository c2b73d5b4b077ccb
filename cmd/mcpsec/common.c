/* SPDX-License-Identifier: MIT */
/* Namespaces, loading, diagnostics printing, the kernel sync used by apply/enable/disable. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../lib/diag.h"
#include "../../lib/fileio.h"
#include "../../lib/monitor.h"
#include "../../lib/nlx.h"
#include "../../lib/proc.h"
#include "../../lib/util.h"
#include "cmd.h"

struct global_opts g_opts;

void die_oom(void)
{
	fputs("mcpsec: out of memory\n", stderr);
	exit(EXIT_LOCAL);
}

bool is_flag(const char *arg, const char *name)
{
	return !strcmp(arg, name);
}

int enter_netns(void)
{
	int r;

	if (!g_opts.netns || !(r = mc_netns_enter(g_opts.netns)))
		return 0;
	if (r == -EINVAL)
		fprintf(stderr, "mcpsec: bad namespace name '%s'\n", g_opts.netns);
	else if (r == -EPERM)
		fprintf(stderr, "mcpsec: entering namespace '%s': %s\n", g_opts.netns, strerror(-r));
	else
		fprintf(stderr, "mcpsec: namespace '%s': /run/netns/%s: %s\n", g_opts.netns, g_opts.netns, strerror(-r));
	return r == -EPERM ? EXIT_KERNEL : EXIT_CONFIG;
}

void print_diags(struct mc_diags *ds)
{
	struct mc_buf b = { 0 };

	mc_diags_sort(ds);
	mc_diags_render(ds, &b);
	fputs(mc_buf_str(&b), stderr);
	mc_buf_free(&b);
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

int write_output(const char *cmd, const char *path, const struct mc_buf *b)
{
	struct stat sb;
	mode_t mask = umask(0);
	int r;

	umask(mask);
	if (!path) {
		fputs(mc_buf_str(b), stdout);
		return fflush(stdout) == 0 ? 0 : EXIT_CONFIG;
	}
	/* Like every file mcpsec writes: whole or not at all, and never through a link or FIFO that
	 * someone else put where the output goes (mc_file_write_atomic). An existing file keeps its
	 * mode; a new one gets what the umask allows. */
	unsigned mode = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? sb.st_mode & 0777 : 0666 & ~mask;
	if ((r = mc_file_write_atomic(path, b->s ? b->s : "", b->len, mode)) < 0) {
		fprintf(stderr, "mcpsec %s: cannot write %s: %s\n", cmd, path,
			r == -ELOOP ? "it is a symbolic link (name the file itself)" : strerror(-r));
		return EXIT_CONFIG;
	}
	return 0;
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
	/* A staged list's table can be large (65,536 flows): more time for it. The send timeout
	 * also bounds connect(), which waits while a busy daemon's backlog is full. */
	struct timeval tv = { strncmp(request, "staged", 6) ? 2 : 15, 0 };
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto out;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
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

const char *mcpsecd_command(void)
{
	static char cmd[512];

	snprintf(cmd, sizeof(cmd), "mcpsecd%s%s%s%s", g_opts.netns ? " --netns " : "", g_opts.netns ? g_opts.netns : "",
		 g_opts.state_dir_given ? " --state-dir " : "", g_opts.state_dir_given ? g_opts.state_dir : "");
	return cmd;
}

char *read_text_file(const char *path)
{
	struct mc_buf b = { 0 };
	char chunk[4096];
	size_t n;
	bool binary = false;

	if (strcmp(path, "-")) {
		char *text = NULL;
		size_t len = 0;
		int r = mc_file_read(path, MC_READ_SECRET, MC_FILE_MAX, &text, &len, NULL);
		if (r == 0 && memchr(text, '\0', len)) {
			mc_wipe(text, len);
			free(text);
			r = -EINVAL;
		}
		errno = -r;
		return r == 0 ? text : NULL;
	}
	FILE *f = stdin;
	while (!binary && (n = fread(chunk, 1, sizeof(chunk) - 1, f)) > 0) {
		chunk[n] = '\0';
		binary = memchr(chunk, '\0', n) != NULL;
		if (!binary)
			mc_buf_puts(&b, chunk);
	}
	mc_wipe(chunk, sizeof(chunk));
	if (binary) {
		mc_buf_wipe(&b);
		errno = EINVAL;
		return NULL;
	}
	return b.s ? b.s : mc_strdup("");
}
