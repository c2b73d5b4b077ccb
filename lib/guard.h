/* SPDX-License-Identifier: MIT */
/*
 * The lockout guard (pure): which established connections a new plan would cut. The sockets
 * come from /proc/net/{tcp,tcp6,udp,udp6} (read by the command); each is evaluated both ways
 * with mcpsec test's evaluator, against the new plan and the one the kernel enforces now.
 */
#ifndef MCPSEC_GUARD_H
#define MCPSEC_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model.h"

struct mc_plan;

/* A TCP connection that still carries traffic (mc_conn_state_carries) or a connected UDP
 * socket, from this host's side. */
struct mc_conn {
	int proto; /* MC_PROTO_TCP or MC_PROTO_UDP */
	struct mc_addr local, remote; /* IPv4-mapped IPv6 addresses are given as IPv4, as the kernel decides them */
	uint16_t lport, rport;
	uint8_t state; /* as /proc/net/tcp gives it (1: ESTABLISHED, 8: CLOSE-WAIT, ...) */
};

/* Whether a socket in this state (of /proc/net/tcp or udp) can still be cut by a change, and
 * the state's name. */
bool mc_conn_state_carries(int proto, unsigned state);
const char *mc_conn_state_str(int proto, unsigned state);

struct mc_conns {
	struct mc_conn *c;
	size_t n, cap;
};

/* Adds the TCP connections that carry traffic and the connected UDP sockets of one
 * /proc/net/{tcp,udp}{,6} text.
 * Returns the number added, or -EINVAL when the text is not such a table. */
int mc_conns_parse_proc(const char *text, int proto, struct mc_conns *ret);
void mc_conns_free(struct mc_conns *c);

/* One connection the new plan would cut. */
struct mc_cut {
	size_t conn;        /* index into the connections */
	enum mc_dir dir;    /* the direction decided */
	enum mc_action action; /* MC_DISCARD, or MC_PROTECT newly required */
	const char *policy; /* the deciding rule (points into the new plan); NULL: nothing matches */
	uint32_t spi;       /* for PROTECT: the SPI the peer must already have */
};

struct mc_cuts {
	struct mc_cut *c;
	size_t n, cap;
};

/*
 * The cuts of moving from old (what the kernel enforces now; NULL: nothing) to new: a
 * connection whose packets new discards in either direction where old did not, or that new
 * protects with an SA that old did not use for it (the peer may have no such SA yet).
 */
void mc_guard_check(const struct mc_plan *new_plan, const struct mc_plan *old_plan, const struct mc_conns *cs,
		    struct mc_cuts *ret);
void mc_cuts_free(struct mc_cuts *c);

/* Whether c is the SSH session described by an SSH_CONNECTION value
 * ("client_ip client_port server_ip server_port"). */
bool mc_conn_is_ssh(const struct mc_conn *c, const char *ssh_connection);

#endif
