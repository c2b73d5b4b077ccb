/* SPDX-License-Identifier: MIT */
/* mcpsec: declarative, ordered, manually keyed IPsec host policy for Linux XFRM. */
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/state.h"
#include "../../lib/util.h"
#include "cmd.h"

#include "version.h" /* MCPSEC_VERSION, from debian/changelog (Makefile) */

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
	{ "apply", apply_main },	 { "confirm", confirm_main }, { "rollback", confirm_main },
	{ "check", check_main },	 { "test", test_main },	      { "mirror", mirror_main },
	{ "rekey", rekey_main },	 { "phase-in", phase_in_main }, { "phase-out", phase_out_main },
	{ "check-peer", check_peer_main }, { "import", import_main },
	{ "status", status_main },	 { "log", log_main },	      { "key", key_main },
	{ "enable", enable_main },	 { "disable", enable_main }, { "stage", stage_main },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mcpsec [--netns NAME] [--state-dir DIR] COMMAND [ARGS]\n\ncommands:\n");
	command_list(f);
	fprintf(f, "\noptions:\n"
		   "  --netns NAME     act on network namespace /run/netns/NAME (as 'ip netns')\n"
		   "  --state-dir DIR  committed configuration (default /var/lib/mcpsec,\n"
		   "                   or /var/lib/mcpsec/netns/NAME with --netns)\n"
		   "  --help, --version (COMMAND --help or help COMMAND: that command's options)\n"
		   "\nexit status: 0 ok, 1 usage or configuration error (nothing changed),\n"
		   "             2 the kernel refused or holds a conflicting object (previous state restored),\n"
		   "             3 local failure: state directory or file not written, out of memory\n"
		   "               (nothing changed, or the kernel put back as it was),\n"
		   "             4 the kernel refused and undoing failed: a partial configuration is installed\n"
		   "             5 enable: not fully enforced (failing closed: see 'mcpsec status ipsec all')\n"
		   "See mcpsec(8).\n");
}

/* One command's synopsis and options (cmd/mcpsec/help.c). */
static void print_command_help(const char *name)
{
	command_help(stdout, name);
	printf("\nglobal options: --netns NAME, --state-dir DIR (see 'mcpsec --help', mcpsec(8))\n");
}

int main(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 1, sizeof(char *));
	int nargs = 0, rc;
	char *default_state = NULL;

	mc_set_oom_handler(die_oom);
	/* Key material passes through this process: no core dumps, no ptrace by other users. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!args)
		die_oom();
	/* Global options may come anywhere; everything else goes to the subcommand. */
	for (int i = 1; i < argc; i++) {
		if ((is_flag(argv[i], "--netns") || is_flag(argv[i], "--state-dir")) && i + 1 < argc) {
			if (argv[i][2] == 'n')
				g_opts.netns = argv[++i];
			else
				g_opts.state_dir = argv[++i];
		} else if (!strncmp(argv[i], "--netns=", 8)) {
			g_opts.netns = argv[i] + 8;
		} else if (!strncmp(argv[i], "--state-dir=", 12)) {
			g_opts.state_dir = argv[i] + 12;
		} else if (is_flag(argv[i], "--netns") || is_flag(argv[i], "--state-dir")) {
			fprintf(stderr, "mcpsec: %s needs a value\n", argv[i]);
			free(args);
			return EXIT_CONFIG;
		} else {
			args[nargs++] = argv[i];
		}
	}
	g_opts.state_dir_given = g_opts.state_dir != NULL;
	if (!g_opts.state_dir) {
		default_state = mc_state_default_dir(g_opts.netns);
		g_opts.state_dir = default_state;
	}
	/* help COMMAND: as COMMAND --help. */
	if (nargs == 2 && !strcmp(args[0], "help") && command_known(args[1])) {
		print_command_help(args[1]);
		rc = 0;
		goto out;
	}
	if (nargs == 0 || is_flag(args[0], "--help") || is_flag(args[0], "-h") || is_flag(args[0], "help")) {
		usage(nargs ? stdout : stderr);
		rc = nargs ? 0 : EXIT_CONFIG;
		goto out;
	}
	if (is_flag(args[0], "--version") || is_flag(args[0], "version")) {
		printf("mcpsec %s\n", MCPSEC_VERSION);
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < MC_ARRAY_SIZE(commands); i++) {
		if (!strcmp(args[0], commands[i].name)) {
			/* COMMAND --help (or -h) anywhere: that command's synopsis and options. */
			for (int j = 1; j < nargs; j++)
				if (is_flag(args[j], "--help") || is_flag(args[j], "-h")) {
					print_command_help(args[0]);
					rc = 0;
					goto out;
				}
			rc = commands[i].fn(nargs, args);
			goto out;
		}
	}
	fprintf(stderr, "mcpsec: unknown command '%s'\n", args[0]);
	usage(stderr);
	rc = EXIT_CONFIG;
out:
	free(default_state);
	free(args);
	return rc;
}
