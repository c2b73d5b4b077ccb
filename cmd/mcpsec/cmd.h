/* SPDX-License-Identifier: MIT */
/* Shared pieces of the mcpsec subcommands. */
#ifndef MCPSEC_CMD_H
#define MCPSEC_CMD_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/model.h"
#include "../../lib/plan.h"

struct mc_nl;
struct mc_state;
struct mc_diags;

/* Exit codes (also in the man page). */
#define EXIT_CONFIG 1  /* usage, configuration or validation error: nothing was changed */
#define EXIT_KERNEL 2  /* the kernel refused or could not be reached: the previous state was restored */
#define EXIT_LOCAL 3   /* a local failure (state directory or key file not written, out of memory):
			* nothing was changed, or the kernel was put back as it was */
#define EXIT_PARTIAL 4 /* the kernel refused and undoing failed too: it holds a partial configuration */
#define EXIT_NOT_ENFORCED 5 /* enable: the committed configuration is not fully enforced; what could
			     * be was installed, failing closed (no SAs: PROTECT traffic dropped;
			     * unreadable: the lockdown set) */

struct global_opts {
	const char *netns;     /* NULL: the current namespace */
	const char *state_dir; /* resolved default when not given */
	bool state_dir_given;  /* --state-dir was on the command line */
};

extern struct global_opts g_opts;

int apply_main(int argc, char **argv);
/* enable and disable both: argv[0] says which. */
int enable_main(int argc, char **argv);
/* confirm and rollback both: argv[0] says which. */
int confirm_main(int argc, char **argv);
int check_main(int argc, char **argv);
int status_main(int argc, char **argv);
int test_main(int argc, char **argv);
int mirror_main(int argc, char **argv);
int check_peer_main(int argc, char **argv);
int import_main(int argc, char **argv);
int log_main(int argc, char **argv);
int key_main(int argc, char **argv);
int rekey_main(int argc, char **argv);
int phase_in_main(int argc, char **argv);
int phase_out_main(int argc, char **argv);
int stage_main(int argc, char **argv);

/* A fresh random key for alg into bytes (alg->len of them; never a weak 3DES key). 0 or -EIO. */
struct mc_keyalg;
int key_random(const struct mc_keyalg *alg, uint8_t *bytes);

/* Enters --netns, if any. Returns 0 or an exit code after printing why. */
int enter_netns(void);
void print_diags(struct mc_diags *ds);
/* Opens netlink, printing why on failure. */
int open_kernel(struct mc_nl **ret);

/* Writes b to path, or to stdout when path is NULL; prints why on failure. Returns an exit code. */
struct mc_buf;
int write_output(const char *cmd, const char *path, const struct mc_buf *b);

/* Sends one request line to the namespace's mcpsecd (state dir socket) and reads the whole
 * answer into ret. Returns 0, or -errno when no daemon answers. */
int ask_daemon(const char *request, struct mc_buf *ret);
/* The command that starts the mcpsecd these options talk to ("mcpsecd --netns N --state-dir D",
 * each option only as given), for the hints that say to start one. */
const char *mcpsecd_command(void);


/* The lockout guard: prints the established connections moving from old_plan (NULL: nothing
 * enforced) to new_plan (NULL: nothing) would cut, as "error" or "warning"; returns how many. */
size_t lockout_check(const struct mc_plan *new_plan, const struct mc_plan *old_plan, const char *verdict);

/* A whole text file ("-": stdin), through mc_file_read: a FIFO or device is refused, never
 * waited on. NULL with errno set (EINVAL: not a regular file, or it holds a NUL byte). The read
 * buffer is wiped: key files pass through here. Caller frees. */
char *read_text_file(const char *path);

/* Each command's synopsis, summary and options, from the one table in cmd/mcpsec/help.c. */
bool command_known(const char *name);
/* "usage: mcpsec SYNOPSIS\n" (static buffer). */
const char *command_usage(const char *name);
/* The usage, then the description and options (COMMAND --help). */
void command_help(FILE *f, const char *name);
/* The command list of `mcpsec --help`. */
void command_list(FILE *f);

void die_oom(void);
bool is_flag(const char *arg, const char *name);

#endif
