#!/usr/bin/env bats
# CLI basics, validation output and exit codes. No privileges needed.
load helpers

@test "mcpsec --help lists every command and exits 0" {
	run "$MCPSEC" --help
	[ "$status" -eq 0 ]
	for c in apply check status enable disable; do
		[[ "$output" == *"  $c"* ]]
	done
}

@test "an unknown command is a usage error (exit 1)" {
	run "$MCPSEC" frobnicate
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown command 'frobnicate'"* ]]
}

@test "check accepts the seed's examples for both hosts" {
	for h in host-a host-b; do
		run "$MCPSEC" check "$ROOT/examples/$h/site.yaml"
		[ "$status" -eq 0 ]
		[[ "$output" == *"ok (8 policies"* ]]
	done
}

@test "check reports every error of a file as file:line:col, then exits 1" {
	f=$(site_copy "$ROOT/tests/unit/fixtures/bad/protect.yaml")
	run "$MCPSEC" check "$f"
	[ "$status" -eq 1 ]
	[ "$(grep -cE '^[^:]+protect\.yaml:[0-9]+:[0-9]+: error: ' <<<"$output")" -eq 8 ]
	[[ "$output" == *"protect.yaml:31:11: error: mode 'tunnel' is not supported"* ]]
	[[ "$output" == *"8 errors, 0 warnings"* ]]
}

@test "check --plan shows the seed's policies in first-match order with built-ins first" {
	run "$MCPSEC" check --plan "$ROOT/examples/host-a/site.yaml"
	[ "$status" -eq 0 ]
	order=$(grep -oE '^  (BUILTIN|ALLOW|PROTECT|BYPASS|DEFAULT)[A-Z0-9-]*OUT[46]?' <<<"$output" | tr -d ' ' | tr '\n' ' ')
	# Last, unmatched IPv4 passes (ipv6-only) by an explicit catch-all: the kernel's default blocks.
	[ "$order" = "BUILTIN-LOOPBACK-OUT BUILTIN-ND-OUT BUILTIN-MLD-OUT ALLOWICMPV6OUT PROTECTBNAOUT PROTECTFTPOUT BYPASSALLOUT DEFAULT-DISCARD-OUT6 DEFAULT-BYPASS-OUT4 " ]
}

@test "apply without a file is a usage error" {
	run "$MCPSEC" apply
	[ "$status" -eq 1 ]
	[[ "$output" == *"usage: mcpsec apply"* ]]
}

@test "--netns naming a missing namespace fails cleanly" {
	require_root
	run "$MCPSEC" --netns "mct-missing-$$" status ipsec all
	[ "$status" -eq 1 ]
	[[ "$output" == *"/run/netns/mct-missing-$$"* ]]
}

@test "make install puts the programs, man pages, units (mcpsecd before the network), completion, schemas, examples under DESTDIR" {
	run make -s -C "$ROOT" install DESTDIR="$WORK/root" PREFIX=/usr
	[ "$status" -eq 0 ]
	for f in usr/sbin/mcpsec usr/sbin/mcpsecd usr/share/man/man8/mcpsec.8 usr/share/man/man8/mcpsecd.8 \
		lib/systemd/system/mcpsecd.service lib/systemd/system/mcpsecd.path \
		usr/share/bash-completion/completions/mcpsec usr/share/bash-completion/completions/mcpsecd \
		usr/share/mcpsec/schema/site.schema.json usr/share/doc/mcpsec/examples/host-a/site.yaml \
		usr/share/doc/mcpsec/contrib/grafana-dashboard.json; do
		[ -s "$WORK/root/$f" ]
	done
	# The man pages carry the version of debian/changelog, not the placeholder.
	refute_in_file '@VERSION@' "$WORK/root/usr/share/man/man8/mcpsec.8"
	grep -q "\"mcpsec $(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)\"" "$WORK/root/usr/share/man/man8/mcpsecd.8"
	# Not started before a site is committed: both units wait for the state directory's current.
	grep -qx 'ConditionPathIsSymbolicLink=|/var/lib/mcpsec/current' "$WORK/root/lib/systemd/system/mcpsecd.service"
	grep -qx 'PathExists=/var/lib/mcpsec/current' "$WORK/root/lib/systemd/system/mcpsecd.path"
	unit="$WORK/root/lib/systemd/system/mcpsecd.service"
	grep -qx 'ExecStart=/usr/sbin/mcpsecd --foreground' "$unit"
	# Fail closed: no ignored ExecStartPre; the daemon enforces first and then says ready.
	refute_in_file 'ExecStartPre' "$unit"
	grep -qx 'Type=notify' "$unit"
	grep -qx 'Before=network-pre.target shutdown.target' "$unit"
	refute_in_file '@BINDIR@' "$unit"
	"$WORK/root/usr/sbin/mcpsecd" --help | grep -q -- '--report-only'
	"$WORK/root/usr/sbin/mcpsecd" --help | grep -q -- '--no-bpf'
	# The per-flow drop hook's capabilities, and no others beyond what enforcing needs.
	grep -qx 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN CAP_DAC_READ_SEARCH CAP_BPF CAP_PERFMON' "$unit"
}

@test "the release binaries are hardened: PIE, full RELRO, fortified calls, stack protector" {
	for b in "$ROOT/mcpsec" "$ROOT/mcpsecd"; do
		readelf -h "$b" | grep -q 'Type:.*DYN'
		readelf -lW "$b" | grep -q GNU_RELRO
		readelf -d "$b" | grep -q 'BIND_NOW'
		nm -D "$b" | grep -q '__.*_chk'
		nm -D "$b" | grep -q '__stack_chk_fail'
	done
}
