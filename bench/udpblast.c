/* SPDX-License-Identifier: MIT */
/* bench helper: unconnected UDP datagrams as fast as one core sends them, for SECONDS, from
 * NSOCK source ports in turn (each sendto is its own route and policy lookup). Prints
 * "sent N errors E". usage: udpblast ADDR PORT SECONDS [NSOCK [SIZE]] (SIZE bytes a datagram,
 * default 1) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6 };
	int nsock = argc > 4 ? atoi(argv[4]) : 1;
	static char payload[65000];
	size_t size = argc > 5 ? (size_t)atoi(argv[5]) : 1;
	unsigned long long sent = 0, errors = 0;
	struct timespec start, now;

	if (argc < 4 || inet_pton(AF_INET6, argv[1], &dst.sin6_addr) != 1 || nsock < 1 || nsock > 4096 || size < 1 ||
	    size > sizeof(payload)) {
		fprintf(stderr, "usage: udpblast ADDR PORT SECONDS [NSOCK [SIZE]]\n");
		return 2;
	}
	dst.sin6_port = htons((unsigned short)atoi(argv[2]));
	int *fds = calloc((size_t)nsock, sizeof(*fds));
	for (int i = 0; i < nsock; i++)
		if ((fds[i] = socket(AF_INET6, SOCK_DGRAM, 0)) < 0)
			return 1;
	double seconds = atof(argv[3]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned long long i = 0;; i++) {
		if ((i & 1023) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= seconds)
				break;
		}
		if (sendto(fds[i % (unsigned)nsock], payload, size, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
			errors++;
		else
			sent++;
	}
	printf("sent %llu errors %llu\n", sent, errors);
	return 0;
}
