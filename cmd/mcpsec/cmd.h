/* SPDX-License-Identifier: MIT */
/* Shared pieces of the mcpsec subcommands. */
#ifndef MCPSEC_CMD_H
#define MCPSEC_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "../../lib/model.h"
#include "../../lib/plan.h"

struct mc_nl;
struct mc_state;
struct mc_diags;

/* Exit codes (also in the man page). */
#define EXIT_CONFIG 1 /* usage, configuration or validation error: nothing was changed */
#define EXIT_KERNEL 2 /* the kernel refused, or could not be reached */

struct global_opts {
	const char *netns;     /* NULL: the current namespace */
	const char *state_dir; /* resolved default when not given */
};

extern struct global_opts g_opts;

int apply_main(int argc, char **argv);
/* enable and disable both: argv[0] says which. */
int enable_main(int argc, char **argv);
int check_main(int argc, char **argv);
int status_main(int argc, char **argv);
int test_main(int argc, char **argv);
int mirror_main(int argc, char **argv);
int check_peer_main(int argc, char **argv);
int import_main(int argc, char **argv);
int log_main(int argc, char **argv);
int key_main(int argc, char **argv);

/* Enters --netns, if any. Returns 0 or an exit code after printing why. */
int enter_netns(void);
/* Loads and validates a site; prints diagnostics. Returns NULL on errors (nothing printed twice). */
struct mc_site *load_site(const char *path, const char *keys_override, bool strict_perms,
			  struct mc_diags *ds);
void print_diags(struct mc_diags *ds);
/* Opens netlink, printing why on failure. */
int open_kernel(struct mc_nl **ret);

/* Host facts for the compiler, from the kernel (route lookups, own addresses, prior state). */
struct host_facts {
	struct mc_addr *own6;
	size_t nown6;
};
int gather_host(struct mc_nl *nl, struct host_facts *ret);
void free_host(struct host_facts *h);
int route_src_cb(void *ctx, const struct mc_addr *remote, struct mc_addr *ret);

/* Compiles a site against this host (route lookups, own addresses, committed priorities).
 * Diagnostics go to ds. Returns 0 or an exit code. */
int compile_for_host(const struct mc_site *s, struct mc_nl *nl, struct mc_state *st, struct mc_diags *ds,
		     struct mc_plan *plan);
/* Loads the committed site and keys of state directory dir: 0, -ENOENT when nothing is
 * committed, or EXIT_CONFIG (ds says why). */
int load_committed(const char *dir, struct mc_state *st, struct mc_diags *ds, struct mc_site **ret);
/* "policy 'NAME' (out, fec0::/64 ...)": an operation in words. */
struct mc_op;
void describe_op(const struct mc_op *o, const struct mc_state *st, struct mc_buf *b);
/* The rule an operation belongs to (stale policies are named from the committed state). */
const char *op_name(const struct mc_op *o, const struct mc_state *st);

/* Reconciles and sends; rolls back on failure. Prints what happened. Returns an exit code. */
int sync_kernel(struct mc_nl *nl, const struct mc_plan *plan, bool with_policies, bool dry_run,
		bool ip_cmds, const struct mc_state *st, size_t *ret_changes);

/* Writes b to path, or to stdout when path is NULL; prints why on failure. Returns an exit code. */
struct mc_buf;
int write_output(const char *cmd, const char *path, const struct mc_buf *b);

/* Sends one request line to the namespace's mcpsecd (state dir socket) and reads the whole
 * answer into ret. Returns 0, or -errno when no daemon answers. */
int ask_daemon(const char *request, struct mc_buf *ret);

/* This namespace's /proc/net/xfrm_stat (empty when the kernel has none). */
struct mc_stats;
void read_xfrm_stat(struct mc_stats *ret);

void die_oom(void);
bool is_flag(const char *arg, const char *name);

#endif
