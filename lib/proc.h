/* SPDX-License-Identifier: MIT */
/*
 * What a program learns from /proc and /run about the namespace it runs in: entering a named
 * network namespace, the kernel's XFRM counters, and sysctls. Shared by mcpsec and mcpsecd;
 * nothing here prints or exits: each program says what went wrong in its own name.
 */
#ifndef MCPSEC_PROC_H
#define MCPSEC_PROC_H

#include <stdbool.h>

struct mc_stats;

/* Enters the network namespace /run/netns/NAME (as `ip netns exec`). 0, -EINVAL for a name
 * that is empty or holds '/', or -errno of opening it (-ENOENT: no such namespace) or of
 * setns (-EPERM). */
int mc_netns_enter(const char *name);

/* This namespace's /proc/net/xfrm_stat (it follows setns); all zero when it cannot be read. */
void mc_proc_xfrm_stat(struct mc_stats *ret);

/* A 0/1 sysctl of this namespace under /proc/sys (they are per network namespace), or dflt
 * when it cannot be read. */
bool mc_proc_sysctl_on(const char *path, bool dflt);
/* Sets a 0/1 sysctl of this namespace (opened without following links or blocking): 0 or -errno. */
int mc_proc_sysctl_set(const char *path, bool on);

/* The namespace's ephemeral port range (net.ipv4.ip_local_port_range, which IPv6 shares);
 * Linux's default 32768-60999 when it cannot be read. */
void mc_proc_ephemeral(unsigned *lo, unsigned *hi);

#endif
