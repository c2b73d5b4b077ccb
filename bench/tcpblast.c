/* SPDX-License-Identifier: MIT */
/* bench helper: one TCP connection's throughput. "tcpblast sink PORT" accepts connections and
 * discards what they send, forever; "tcpblast send ADDR PORT SECONDS" writes 64 KiB chunks for
 * SECONDS and prints "sent BYTES". IPv6 addresses. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static char buf[65536];
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };

	if (argc == 3 && !strcmp(argv[1], "sink")) {
		int one = 1, l = socket(AF_INET6, SOCK_STREAM, 0);
		sa.sin6_port = htons((unsigned short)atoi(argv[2]));
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 8) < 0)
			return 1;
		for (;;) {
			int c = accept(l, NULL, NULL);
			while (c >= 0 && read(c, buf, sizeof(buf)) > 0)
				;
			if (c >= 0)
				close(c);
		}
	}
	if (argc != 5 || strcmp(argv[1], "send") || inet_pton(AF_INET6, argv[2], &sa.sin6_addr) != 1) {
		fprintf(stderr, "usage: tcpblast sink PORT | tcpblast send ADDR PORT SECONDS\n");
		return 2;
	}
	sa.sin6_port = htons((unsigned short)atoi(argv[3]));
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 1;
	unsigned long long sent = 0;
	double end = now() + atof(argv[4]);
	while (now() < end) {
		ssize_t n = write(s, buf, sizeof(buf));
		if (n <= 0)
			return 1;
		sent += (unsigned long long)n;
	}
	printf("sent %llu\n", sent);
	close(s);
	return 0;
}
