#!/usr/bin/env bats
# IPsec turned on without loss (issue 28), on files and plans: mcpsec phase-in and phase-out's
# steps on a pair of hosts (B by mirror), check-peer across the steps, the kernel operations of
# each phase (apply --dry-run), and what the commands refuse. Packets: tests/lab/355-phase-in.bats.
load helpers

setup() {
	basic_setup
	SITE_A=$(site_copy "$ROOT/examples/host-a/site.yaml")
	SITE_B=$(site_copy "$ROOT/examples/host-b/site.yaml")
	FTP=(PROTECTFTPOUT PROTECTFTPIN)
	# The FTP policies start at phase accept (written by hand, as a phase-in starts).
	"$PY" - "$SITE_A" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r'(  - name: PROTECTFTP(OUT|IN)\n(?:    .*\n|      .*\n)*)', lambda m: m.group(1) + '    enforce: accept\n', s)
open(p, 'w').write(s)
PY
	mirror
}

mirror() { "$MCPSEC" mirror "$SITE_A" --peer "$B_ADDR" --self "$A_ADDR" --out "$SITE_B"; }
# One step on A (the committed check skipped: nothing is applied here), B by mirror.
step() {
	"$MCPSEC" --state-dir "$STATE" "${1:-phase-in}" "${FTP[@]}" --site "$SITE_A" --force \
		--peer "$B_ADDR" --self "$A_ADDR" --peer-out "$SITE_B" >"$WORK/step.out"
}
enforce_of() { awk -v n="$2" '$0 ~ "name: " n "( |$)" { on = 1; next } /^  - / { on = 0 } on && /enforce:/ { print $2 }' "$1"; }
at() { cp "$SITE_A" "$(dirname "$SITE_A")/a-$1.yaml"; cp "$SITE_B" "$(dirname "$SITE_B")/b-$1.yaml"; }
A() { echo "$(dirname "$SITE_A")/a-$1.yaml"; }
B() { echo "$(dirname "$SITE_B")/b-$1.yaml"; }
peer_check() { "$MCPSEC" check-peer "$1" "$2" 2>&1 | grep -v -e ': warning: ' -e 'agree on all traffic'; }

@test "phase-in: accept, protect, require on a pair; B follows by mirror; the files keep their comments" {
	[ "$(enforce_of "$SITE_A" PROTECTFTPOUT)" = accept ]
	[ "$(enforce_of "$SITE_B" PROTECTFTPIN)" = accept ]
	at accept
	step
	[[ "$(cat "$WORK/step.out")" == *"PROTECTFTPOUT (out): protect: sends with IPsec (spi 24577)"* ]]
	[ "$(enforce_of "$SITE_A" PROTECTFTPOUT)" = protect ]
	[ "$(enforce_of "$SITE_B" PROTECTFTPOUT)" = protect ]
	at protect
	step
	[[ "$(cat "$WORK/step.out")" == *"PROTECTFTPIN (in): require: requires IPsec: clear is dropped"* ]]
	[ -z "$(enforce_of "$SITE_A" PROTECTFTPOUT)" ] && [ -z "$(enforce_of "$SITE_B" PROTECTFTPIN)" ]
	grep -q 'Policies 5 and 6: ESP confidentiality for FTP' "$SITE_A"
	# Each step is clean against the one before on the other host, both ways.
	[ -z "$(peer_check "$(A protect)" "$(B accept)")" ]
	[ -z "$(peer_check "$(A accept)" "$(B protect)")" ]
	[ -z "$(peer_check "$SITE_A" "$(B protect)")" ]
	# Skipping protect is named, with both phases.
	run peer_check "$SITE_A" "$(B accept)"
	[[ "$output" == *"the receiver is at phase require while the sender is at accept"* ]]
	# And the way back: require, protect, accept.
	step phase-out
	[ "$(enforce_of "$SITE_A" PROTECTFTPIN)" = protect ]
	step phase-out
	[ "$(enforce_of "$SITE_B" PROTECTFTPOUT)" = accept ]
	# Back where it started: the same file, but for the comment phase-out puts on its line.
	[ "$(sed 's/  *# protection in phases.*//' "$SITE_A")" = "$(cat "$(A accept)")" ]
}

@test "phase-in's kernel operations: accept sends in clear with the SAs installed; inbound accepts clear too" {
	run "$MCPSEC" apply --dry-run --ip-xfrm "$SITE_A"
	[ "$status" -eq 0 ]
	[[ "$output" == *"add SA"*"PROTECTFTPOUT"* ]]
	grep -E 'proto tcp dport 20 dir out priority [0-9]+ action allow$' <<<"$output"
	grep -E 'proto tcp sport 20 dir in priority [0-9]+ action allow tmpl proto esp spi 0x00000000 reqid [0-9]+ mode transport level use$' <<<"$output"
	run "$MCPSEC" test "$SITE_A" --ulp tcp --dir out --local-ip any --remote-ip DRBACKUP --remote-port 21
	[[ "$output" == *"First Matched Policy = PROTECTFTPOUT"*"Phase-In = sends in clear (enforce accept); its SAs are installed"* ]]
}

@test "phase-in refuses what it cannot do, naming it: past require, before accept, mixed phases, not PROTECT, not applied here" {
	run "$MCPSEC" --state-dir "$STATE" phase-out "${FTP[@]}" --site "$SITE_A" --force
	[ "$status" -ne 0 ]
	[[ "$output" == *"policy 'PROTECTFTPOUT' is at phase accept: it sends in clear and accepts clear already"* ]]
	run "$MCPSEC" --state-dir "$STATE" phase-in PROTECTFTPOUT PROTECTBNAOUT --site "$SITE_A" --force
	[[ "$output" == *"the policies are at different phases ('PROTECTFTPOUT': accept, 'PROTECTBNAOUT': require)"* ]]
	run "$MCPSEC" --state-dir "$STATE" phase-in PROTECTBNAOUT --site "$SITE_A" --force
	[[ "$output" == *"is at phase require: its protection is on already"* ]]
	run "$MCPSEC" --state-dir "$STATE" phase-in BYPASSALLOUT --site "$SITE_A" --force
	[[ "$output" == *"only PROTECT policies are phased in (to start, write it as a PROTECT policy with 'enforce: accept'"* ]]
	run "$MCPSEC" --state-dir "$STATE" phase-in "${FTP[@]}" --site "$SITE_A"
	[ "$status" -ne 0 ]
	[[ "$output" == *"nothing is committed"* ]]
	# --dry-run writes nothing.
	cp "$SITE_A" "$WORK/before.yaml"
	run "$MCPSEC" --state-dir "$STATE" phase-in "${FTP[@]}" --site "$SITE_A" --force --dry-run
	[ "$status" -eq 0 ]
	cmp "$SITE_A" "$WORK/before.yaml"
}
