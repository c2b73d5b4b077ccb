/* SPDX-License-Identifier: MIT */
/*
 * The raw-netlink floors for bench/apply-10k.sh: the time to send a site's kernel policies as
 * prebuilt XFRM messages in large batches and read every ack, and the time to dump them back
 * without decoding. mcpsec's own apply and no-change re-apply are measured against these.
 * usage: nlfloor SITE.yaml   (in the namespace to measure; it must hold none of the policies)
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/compile.h"
#include "../lib/diag.h"
#include "../lib/engine.h"
#include "../lib/nlx.h"
#include "../lib/plan.h"
#include "../lib/util.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Reads until n acks (or one dump's DONE, when n is 0) arrived; returns messages seen. */
static long drain(int fd, long n, char *buf, size_t cap)
{
	long seen = 0;
	for (;;) {
		ssize_t r = recv(fd, buf, cap, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r); h = NLMSG_NEXT(h, r)) {
			seen++;
			if (!n && h->nlmsg_type == NLMSG_DONE)
				return seen;
			if (h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error) {
				fprintf(stderr, "nlfloor: the kernel refused a message: %s\n",
					strerror(-((struct nlmsgerr *)NLMSG_DATA(h))->error));
				return -1;
			}
			if (n && seen == n)
				return seen;
		}
	}
}

int main(int argc, char **argv)
{
	struct mc_diags ds = { 0 };
	struct mc_plan plan;

	if (argc != 2) {
		fprintf(stderr, "usage: nlfloor SITE.yaml\n");
		return 2;
	}
	struct mc_site *s = mc_engine_load_site(argv[1], NULL, false, &ds);
	if (!s || mc_compile(s, NULL, &ds, &plan) < 0) {
		fprintf(stderr, "nlfloor: %s does not compile\n", argv[1]);
		return 1;
	}
	/* Every policy as a prebuilt message: what any sender must put on the socket. */
	size_t cap = plan.npols * 512 + 4096, len = 0;
	char *msgs = mc_malloc(cap);
	for (size_t i = 0; i < plan.npols; i++) {
		struct mc_op op = { .kind = MC_OP_POL_ADD, .pol = plan.pols[i] };
		len += mc_nl_encode(&op, (uint32_t)i + 1, msgs + len, cap - len);
	}
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM), big = 8 << 20, one = 1;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("nlfloor: netlink");
		return 1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	char *rbuf = mc_malloc(1 << 20);

	/* Send: batches of up to 64 KiB, each batch's acks read before the next. */
	double t0 = now();
	long acks = 0;
	for (size_t off = 0; off < len;) {
		size_t end = off, nmsg = 0;
		while (end < len && end - off < (64u << 10)) {
			struct nlmsghdr *h = (struct nlmsghdr *)(msgs + end);
			h->nlmsg_flags |= NLM_F_ACK;
			end += NLMSG_ALIGN(h->nlmsg_len);
			nmsg++;
		}
		if (send(fd, msgs + off, end - off, 0) < 0 || drain(fd, (long)nmsg, rbuf, 1 << 20) < 0)
			return 1;
		acks += (long)nmsg;
		off = end;
	}
	double t_send = now() - t0;

	/* Dump: one request, every message read, nothing decoded. */
	struct {
		struct nlmsghdr h;
		struct xfrm_userpolicy_id id;
	} req;
	memset(&req, 0, sizeof(req));
	req.h = (struct nlmsghdr){ sizeof(req), XFRM_MSG_GETPOLICY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 };
	t0 = now();
	long got = send(fd, &req, sizeof(req), 0) < 0 ? -1 : drain(fd, 0, rbuf, 1 << 20);
	double t_dump = now() - t0;
	printf("raw send of %ld policies (64 KiB batches, every ack read): %.3f s\n", acks, t_send);
	printf("raw dump of %ld policies (not decoded):                    %.3f s\n", got - 1, t_dump);
	free(rbuf);
	free(msgs);
	close(fd);
	mc_plan_free(&plan);
	mc_site_free(s);
	mc_diags_free(&ds);
	return got < 0;
}
