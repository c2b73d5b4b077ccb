/* SPDX-License-Identifier: MIT */
/*
 * `mcpsec COMMAND --help`, usage errors and `mcpsec --help`: each command's synopsis and options,
 * one entry per command.
 * mcpsec(8) has a section per command with the same options (tests/help-vs-man compares the
 * two lists, and completion/mcpsec offers the same flags).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/util.h"
#include "cmd.h"

/*
 * Each command's synopsis (after "usage: mcpsec "), its line in `mcpsec --help`, and its
 * description and options: the one place they are written. Usage errors, --help, help COMMAND
 * and the command list all print from here.
 */
static const struct command_doc {
	const char *name, *synopsis, *summary, *text;
} docs[] = {
	{ "apply",
	  "apply [--dry-run [--ip-xfrm]] [--confirm SECONDS] [--force] [--json] SITE.yaml",
	  "compile, diff, install, commit (--confirm: on trial)",
	  "Validates and compiles SITE.yaml, sends the kernel only what differs, then commits it.\n"
	  "options:\n"
	  "  --dry-run, -n       print the plan and the operations; change nothing\n"
	  "  --ip-xfrm           with --dry-run: the operations as ip xfrm commands (keys as placeholders)\n"
	  "  --confirm SECONDS   apply on trial: rolled back unless 'mcpsec confirm' runs in time\n"
	  "  --force             apply although a change waits for confirmation or the lockout guard\n"
	  "                      found connections the change would cut\n"
	  "  --json              one JSON object on stdout, whatever happened\n" },
	{ "confirm",
	  "confirm",
	  "keep the change made with apply --confirm",
	  "Keeps the change made with apply --confirm.\n" },
	{ "rollback",
	  "rollback",
	  "undo the change made with apply --confirm, now",
	  "Restores the configuration confirmed before apply --confirm, now.\n" },
	{ "check",
	  "check [--plan|--json] SITE.yaml",
	  "validate and lint; never changes the kernel",
	  "Validation, compilation and lint; never changes the kernel (with --netns, reads the namespace's\n"
	  "addresses to warn of a site written for another host). Exit 0 with warnings, 1 with errors.\n"
	  "options:\n"
	  "  --plan              print the compiled plan\n"
	  "  --json              the diagnostics as one JSON object\n" },
	{ "test",
	  "test SITE.yaml|--kernel [--name NAME] --ulp tcp|udp|icmp|icmpv6|bip|N --dir in|out\n"
	  "                   --local-ip ADDRS --remote-ip ADDRS [--local-port P|P-Q|any]\n"
	  "                   [--remote-port P|P-Q|any] [--icmp TYPE[/CODE]|TYPE-TYPE|TYPE/CODE-CODE|any] [--json]\n"
	  "       mcpsec test SITE.yaml|--kernel --suite TESTS.yaml [--json]",
	  "which policy decides; or named tests with expected results",
	  "Which policy decides this traffic, in MCP's layout.\n"
	  "options:\n"
	  "  --kernel            the policies installed now instead of a site file\n"
	  "  --name NAME         the test's name in the output\n"
	  "  --ulp PROTO         tcp, udp, icmp, icmpv6, bip or a protocol number\n"
	  "  --dir in|out        the direction\n"
	  "  --local-ip ADDRS    any, an address, a prefix, a range A-B, a selector name, or a list\n"
	  "  --remote-ip ADDRS   the same for the remote end\n"
	  "  --local-port P      a port or range (default 1-65535); ICMP type/code for icmp and icmpv6\n"
	  "  --remote-port P     a port or range (default 1-65535)\n"
	  "  --icmp T[/C]        ICMP type and code ranges (default any)\n"
	  "  --suite TESTS.yaml  run a named test suite with expected results\n"
	  "  --json              results as JSON\n" },
	{ "mirror",
	  "mirror SITE.yaml --peer ADDR [--self ADDR] [--out FILE]",
	  "the peer's site.yaml",
	  "Writes the peer's site.yaml: local and remote, directions and SPIs swapped; keys by name.\n"
	  "options:\n"
	  "  --peer ADDR         the peer's address\n"
	  "  --self ADDR         this host's address as the peer sees it (PROTECT with local any)\n"
	  "  --out FILE          write FILE instead of stdout\n" },
	{ "rekey",
	  "rekey POLICY... --site SITE.yaml [--peer ADDR [--self ADDR] --peer-out FILE]\n"
	  "                    [--force] [--dry-run]",
	  "roll keys over, make before break: accept, switch, retire",
	  "Moves PROTECT policies one step of a key rollover: accept, switch, retire.\n"
	  "options:\n"
	  "  --site SITE.yaml    the site to edit (as text)\n"
	  "  --peer ADDR         also write the peer's site (with --peer-out), by mirror\n"
	  "  --self ADDR         this host's address as the peer sees it\n"
	  "  --peer-out FILE     where the peer's site goes\n"
	  "  --force             step although the committed configuration is not at the file's phase\n"
	  "  --dry-run           print the edited site; write nothing\n" },
	{ "phase-in",
	  "phase-in POLICY... --site SITE.yaml [--peer ADDR [--self ADDR] --peer-out FILE]\n"
	  "                    [--force] [--dry-run]",
	  "turn protection on without loss: accept, protect, require",
	  "Moves PROTECT policies one step of a phase-in: enforce accept, protect, require.\n"
	  "options:\n"
	  "  --site SITE.yaml    the site to edit (as text)\n"
	  "  --peer ADDR         also write the peer's site (with --peer-out), by mirror\n"
	  "  --self ADDR         this host's address as the peer sees it\n"
	  "  --peer-out FILE     where the peer's site goes\n"
	  "  --force             step although the committed configuration is not at the file's phase\n"
	  "  --dry-run           print the edited site; write nothing\n" },
	{ "phase-out",
	  "phase-out POLICY... --site SITE.yaml [--peer ADDR [--self ADDR] --peer-out FILE]\n"
	  "                    [--force] [--dry-run]",
	  "turn protection off without loss: protect, accept",
	  "Moves PROTECT policies one step back: enforce require, protect, accept.\n"
	  "options:\n"
	  "  --site SITE.yaml    the site to edit (as text)\n"
	  "  --peer ADDR         also write the peer's site (with --peer-out), by mirror\n"
	  "  --self ADDR         this host's address as the peer sees it\n"
	  "  --peer-out FILE     where the peer's site goes\n"
	  "  --force             step although the committed configuration is not at the file's phase\n"
	  "  --dry-run           print the edited site; write nothing\n" },
	{ "check-peer",
	  "check-peer A.yaml B.yaml [--addr-a ADDR] [--addr-b ADDR]",
	  "mismatches between two hosts",
	  "Reports every flow between the two hosts that their policies treat differently.\n"
	  "options:\n"
	  "  --addr-a ADDR       host A's address (default: from its PROTECT policies)\n"
	  "  --addr-b ADDR       host B's address\n" },
	{ "import",
	  "import POLICIES.txt|- [--keys FILE] [--default D] [--out FILE]",
	  "MCP policy listings to site.yaml",
	  "MCP policy listings (Field = Value lines) to site.yaml.\n"
	  "options:\n"
	  "  --keys FILE         ipsec.keys of the site written (default keys.yaml)\n"
	  "  --default D         ipsec.default: ipv6-only, bypass, deny or deny-all (any case)\n"
	  "  --out FILE          write FILE instead of stdout\n" },
	{ "status",
	  "status ipsec all|POLICYNAME|staged [--json|--prometheus] [--kernel-view]",
	  "what the kernel enforces, by name",
	  "What the kernel enforces, by policy name, with counters (any case). 'staged': what the staged\n"
	  "list (mcpsec stage) would change in the traffic mcpsecd saw.\n"
	  "options:\n"
	  "  --kernel-view       selectors in the kernel's source -> destination form\n"
	  "  --json              one JSON object\n"
	  "  --prometheus        metrics in the Prometheus text format (as mcpsecd --metrics-file)\n" },
	{ "log",
	  "log [--staged] [--follow] [--since TIME] [--policy NAME] [--addr ADDR|PREFIX|A-B] [--port N] [--json]",
	  "mcpsecd's drop records",
	  "mcpsecd's drop records.\n"
	  "options:\n"
	  "  --staged            the staged list's records instead: each flow it would change, when first\n"
	  "                      seen, and a summary each minute (mcpsec stage)\n"
	  "  --follow, -f        keep reading, across rotations\n"
	  "  --since TIME        90s, 15m, 2h, 3d (ago), seconds since the epoch, or 2026-11-26T10:00:00Z\n"
	  "  --policy NAME       the records of one policy (any case)\n"
	  "  --addr A            records whose flow has this address (prefix, range) at either end\n"
	  "  --port N            records whose flow has this port at either end\n"
	  "  --json              the JSON lines themselves\n" },
	{ "stage",
	  "stage SITE.yaml | stage --clear | stage --learn SECONDS [--out FILE]",
	  "compare a candidate list with live traffic; enforce nothing",
	  "Validates and compiles SITE.yaml as apply does, and keeps it in the state directory beside the\n"
	  "committed list without enforcing it. mcpsecd then decides every flow it sees by both lists:\n"
	  "'mcpsec status ipsec staged' and 'mcpsec log --staged' show the flows whose decision would\n"
	  "change. Applying the same file drops it.\n"
	  "options:\n"
	  "  --clear             drop the staged list\n"
	  "  --learn SECONDS     let mcpsecd see SECONDS of traffic, then write a first site that allows\n"
	  "                      every flow seen (a list to edit, not to trust); nothing stays staged\n"
	  "  --out FILE          with --learn: write FILE instead of stdout\n" },
	{ "key",
	  "key generate NAME --alg ALG [--keys FILE] [--replace]\n"
	  "       mcpsec key set NAME --alg ALG (--hex|--ascii) [--keys FILE] [--replace]\n"
	  "       mcpsec key list [--keys FILE] [--site FILE]... [--json]\n"
	  "       mcpsec key show NAME --reveal [--keys FILE]\n"
	  "       mcpsec key export NAME... --out FILE [--keys FILE] [--passphrase-file F]\n"
	  "       mcpsec key import FILE [--keys FILE] [--passphrase-file F] [--replace] [--dry-run] [--json]\n"
	  "       mcpsec key delete NAME [--keys FILE] [--site FILE]...",
	  "named manual keys",
	  "Named manual keys.\n"
	  "options:\n"
	  "  --keys FILE         the key file (default /etc/mcpsec/keys.yaml)\n"
	  "  --alg ALG           sha1, sha256, sha512, aes128, aes256, tdes (and MCP's spellings)\n"
	  "  --replace           replace a key of that name\n"
	  "  --hex               set: the value in hex on stdin or a prompt\n"
	  "  --ascii             set: the value as text on stdin or a prompt\n"
	  "  --site FILE         list, delete: the policies of FILE using each key\n"
	  "  --json              list, import: JSON (names, never values)\n"
	  "  --reveal            show: print the value\n"
	  "  --out FILE          export: the encrypted file written\n"
	  "  --passphrase-file F export, import: the passphrase (else the terminal)\n"
	  "  --dry-run, -n       import: write nothing\n" },
	{ "enable",
	  "enable [--force]",
	  "install the committed configuration, failing closed",
	  "Installs the committed configuration, failing closed.\n"
	  "options:\n"
	  "  --force             although the lockout guard found connections it would cut\n" },
	{ "disable",
	  "disable",
	  "remove mcpsec's policies (traffic flows unprotected)",
	  "Removes mcpsec's policies (traffic flows unprotected).\n" },
};

static const struct command_doc *find(const char *name)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(docs); i++)
		if (!strcmp(docs[i].name, name))
			return &docs[i];
	return NULL;
}

bool command_known(const char *name)
{
	return find(name) != NULL;
}

const char *command_usage(const char *name)
{
	static char buf[1024];
	const struct command_doc *d = find(name);

	snprintf(buf, sizeof(buf), "usage: mcpsec %s\n", d ? d->synopsis : name);
	return buf;
}

void command_help(FILE *f, const char *name)
{
	const struct command_doc *d = find(name);

	if (d)
		fprintf(f, "%s%s", command_usage(name), d->text);
}

void command_list(FILE *f)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(docs); i++) {
		/* The synopsis's first line; a long one gets the summary on a line of its own. */
		const char *syn = docs[i].synopsis, *nl = strchr(syn, '\n');
		int len = nl ? (int)(nl - syn) : (int)strlen(syn);
		if (len <= 42)
			fprintf(f, "  %-42.*s %s\n", len, syn, docs[i].summary);
		else
			fprintf(f, "  %.*s%s\n  %-42s %s\n", len, syn, nl ? " ..." : "", "", docs[i].summary);
	}
}
