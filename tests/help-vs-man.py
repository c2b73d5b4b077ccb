#!/usr/bin/python3
"""Every command's --help and its man page section list the same long options (TAP).

usage: tests/help-vs-man.py MCPSEC MCPSECD [ROOT]

mcpsec: the commands are those `mcpsec --help` lists; a command's section in mcpsec(8) is its
entry in COMMANDS (".TP" then ".B COMMAND ..."; test has two). mcpsecd: its --help against the
OPTIONS section of mcpsecd(8). The global options (--netns, --state-dir, --help, --version)
are left out on both sides: mcpsec --help and OPTIONS document them once.
"""
import re
import subprocess
import sys

GLOBAL = {"--netns", "--state-dir", "--help", "--version"}
OPT = re.compile(r"--[a-z][a-z0-9-]*")


def man_text(path):
    # \- is a hyphen in roff; \f[BIRP] font changes are not text.
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"\\f[BIRP]", "", text.replace("\\-", "-"))


def sections(text, start, stop):
    """The lines between `.SH start` and the next .SH."""
    lines = text.splitlines()
    i = lines.index(".SH " + start)
    out = []
    for line in lines[i + 1:]:
        if line.startswith(".SH "):
            break
        out.append(line)
    return out


def help_options(text):
    """Long options in the options: block of a --help text."""
    found, block = set(), False
    for line in text.splitlines():
        if line.startswith("options:"):
            block = True
            continue
        if block and line.startswith("  -"):
            found |= set(OPT.findall(line.strip().split("  ")[0]))  # the option column
        elif block and not line.startswith(" "):
            block = False
    # The synopsis lines name them too: each must be described below it.
    synopsis = {o for line in text.splitlines() if line.lstrip().startswith(("usage:", "mcpsec ", "["))
                for o in OPT.findall(line)}
    return found, synopsis


def main():
    mcpsec, mcpsecd = sys.argv[1], sys.argv[2]
    root = sys.argv[3] if len(sys.argv) > 3 else "."
    top = subprocess.run([mcpsec, "--help"], capture_output=True, text=True, check=True).stdout
    commands = []
    in_commands = False
    for line in top.splitlines():
        if line == "commands:":
            in_commands = True
        elif in_commands and not line.strip():
            break
        elif in_commands and re.match(r"^  [a-z]", line):
            name = line.split()[0]
            if name not in commands:
                commands.append(name)
    man = sections(man_text(root + "/doc/mcpsec.8"), "COMMANDS", None)
    # Split COMMANDS into entries: ".TP" followed by ".B <command>".
    entries = {}
    current = None
    for i, line in enumerate(man):
        m = re.match(r"^\.B ([a-z-]+)", line)
        if m and i and man[i - 1] == ".TP" and m.group(1) in commands:
            current = m.group(1)
        if current:
            entries.setdefault(current, []).append(line)
    n = 0
    failed = 0
    for cmd in commands:
        n += 1
        h = subprocess.run([mcpsec, cmd, "--help"], capture_output=True, text=True)
        listed, synopsis = help_options(h.stdout)
        in_man = set(OPT.findall("\n".join(entries.get(cmd, [])))) - GLOBAL
        listed -= GLOBAL
        problems = []
        if h.returncode != 0:
            problems.append(f"exit status {h.returncode}")
        if cmd not in entries:
            problems.append("no entry in mcpsec(8) COMMANDS")
        if listed != in_man:
            problems.append(f"only in --help: {sorted(listed - in_man)}; only in mcpsec(8): {sorted(in_man - listed)}")
        if synopsis - GLOBAL - listed:
            problems.append(f"in the usage line but not described: {sorted(synopsis - GLOBAL - listed)}")
        if problems:
            failed += 1
            print(f"not ok {n} - mcpsec {cmd}: " + "; ".join(problems))
        else:
            print(f"ok {n} - mcpsec {cmd}: --help and mcpsec(8) list the same {len(listed)} options")
    n += 1
    h = subprocess.run([mcpsecd, "--help"], capture_output=True, text=True)
    listed, _ = help_options(h.stdout)
    listed -= GLOBAL
    in_man = set(OPT.findall("\n".join(sections(man_text(root + "/doc/mcpsecd.8"), "OPTIONS", None)))) - GLOBAL
    if listed != in_man or h.returncode != 0 or not listed:
        failed += 1
        print(f"not ok {n} - mcpsecd: only in --help: {sorted(listed - in_man)}; "
              f"only in mcpsecd(8) OPTIONS: {sorted(in_man - listed)}")
    else:
        print(f"ok {n} - mcpsecd: --help and mcpsecd(8) OPTIONS list the same {len(listed)} options")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
