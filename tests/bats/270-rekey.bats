#!/usr/bin/env bats
# Key rollover, make before break (issue 12), on files and plans: mcpsec rekey's three steps on a
# pair of hosts, check-peer over every pair of phases, and the step guard against this host's
# committed configuration. Packets and SAs: tests/lab/350-rekey.bats in the lab VM.
load helpers

setup() {
	basic_setup
	SITE_A=$(site_copy "$ROOT/examples/host-a/site.yaml")
	SITE_B=$(site_copy "$ROOT/examples/host-b/site.yaml")
	KEYS_A="$(dirname "$SITE_A")/keys.yaml"
	KEYS_B="$(dirname "$SITE_B")/keys.yaml"
	echo "a long enough passphrase" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	FTP=(PROTECTFTPOUT PROTECTFTPIN)
}

# One step on A, B's file written by mirror, the new keys carried to B by export/import.
step() {
	"$MCPSEC" --state-dir "$STATE" rekey "${FTP[@]}" --site "$SITE_A" --force \
		--peer "$B_ADDR" --self "$A_ADDR" --peer-out "$SITE_B" >"$WORK/rekey.out"
	local new
	new=$(sed -n 's/^new key \([^ ]*\) .*/\1/p' "$WORK/rekey.out")
	if [ -n "$new" ]; then
		# shellcheck disable=SC2086 # one name per word
		"$MCPSEC" key export $new --keys "$KEYS_A" --out "$WORK/export" --passphrase-file "$WORK/pass" >/dev/null
		"$MCPSEC" key import "$WORK/export" --keys "$KEYS_B" --passphrase-file "$WORK/pass" >/dev/null
	fi
}
# check-peer of two files that lie in the two host directories (their key files beside them).
peer_check() { "$MCPSEC" check-peer "$1" "$2" 2>&1 | grep -v -e ': warning: ' -e 'agree on all traffic'; }
at() { cp "$SITE_A" "$(dirname "$SITE_A")/a-$1.yaml"; cp "$SITE_B" "$(dirname "$SITE_B")/b-$1.yaml"; }
A() { echo "$(dirname "$SITE_A")/a-$1.yaml"; }
B() { echo "$(dirname "$SITE_B")/b-$1.yaml"; }

@test "rekey: accept, switch, retire on a pair; the files keep their comments; new SPIs and keys at the end" {
	at none
	old_spi_out=$(yq_spi "$SITE_A" PROTECTFTPOUT)
	step
	at accept
	[[ "$(cat "$WORK/rekey.out")" == *"PROTECTFTPOUT (out): accept: next SA spi "*"still sending with the current one"* ]]
	[[ "$(cat "$WORK/rekey.out")" == *"new key PRODUCTIONKEY-r2 (successor of PRODUCTIONKEY)"* ]]
	[[ "$(cat "$WORK/rekey.out")" == *"new key DRSYSTEMKEY-r2 (successor of DRSYSTEMKEY)"* ]]
	# The key values are never printed (fingerprints only).
	run "$MCPSEC" key show PRODUCTIONKEY-r2 --reveal --keys "$KEYS_A"
	hex=$(grep -o '[0-9a-f]\{32\}' <<<"$output" | head -1)
	[ -n "$hex" ]
	run ! grep -q "$hex" "$WORK/rekey.out"
	grep -q 'phase: accept' "$SITE_A"
	grep -q 'phase: accept' "$SITE_B"
	"$MCPSEC" check "$SITE_A" >/dev/null 2>&1
	"$MCPSEC" check "$SITE_B" >/dev/null 2>&1

	step
	at switch
	[[ "$(cat "$WORK/rekey.out")" == *"PROTECTFTPOUT (out): switch: sends with spi "* ]]
	grep -q 'phase: switch' "$SITE_A"
	step
	at retired
	[[ "$(cat "$WORK/rekey.out")" == *"is now at phase none (rollover complete)"* ]]
	run ! grep -q 'next:' "$SITE_A"
	new_spi_out=$(yq_spi "$SITE_A" PROTECTFTPOUT)
	[ "$new_spi_out" != "$old_spi_out" ]
	grep -q 'confidentiality-key: PRODUCTIONKEY-r2' "$SITE_A"
	# Every comment of the example is still there; only spi and key-name lines changed.
	diff <(grep '#' "$ROOT/examples/host-a/site.yaml") <(grep '#' "$SITE_A")
	[ "$(diff "$ROOT/examples/host-a/site.yaml" "$SITE_A" | grep -c '^>')" -eq 4 ]
	[ "$(peer_check "$SITE_A" "$SITE_B")" = "" ]
}

@test "check-peer over the phases: every order the steps allow is clean, every other one is named" {
	at none
	step; at accept
	step; at switch
	step; at retired
	# Allowed: each host at most one step ahead of the other.
	for pair in none:accept accept:switch switch:retired accept:accept switch:switch; do
		a=${pair%:*} b=${pair#*:}
		run peer_check "$(A "$a")" "$(B "$b")"
		[ "$output" = "" ] || { echo "A $a, B $b: $output"; false; }
		run peer_check "$(A "$b")" "$(B "$a")"
		[ "$output" = "" ] || { echo "A $b, B $a: $output"; false; }
	done
	# A switches before B accepts: A's FTP to B would be dropped.
	run peer_check "$(A switch)" "$(B none)"
	[[ "$output" == *"'PROTECTFTPOUT' (sending) and "*"'PROTECTFTPIN' (receiving) disagree on tcp $A_ADDR"*"the sender switched before the receiver accepted"* ]]
	# A retires while B still sends with the old SA.
	run peer_check "$(A retired)" "$(B accept)"
	[[ "$output" == *"'PROTECTFTPOUT' (sending) and "*"'PROTECTFTPIN' (receiving) disagree"*"the receiver retired the old SA while the sender still sends with it"* ]]
	# Two steps apart is always a mismatch.
	run peer_check "$(A retired)" "$(B none)"
	[[ "$output" == *"mismatch"* ]]
}

@test "rekey moves only from what this host runs: a step not yet applied here is refused" {
	two_ns
	sed -i 's/enabled: true/enabled: false/' "$SITE_A" # commits without SAs (this kernel has no ESP)
	mc_a apply "$SITE_A" >/dev/null 2>&1
	run mc_a rekey "${FTP[@]}" --site "$SITE_A"
	[[ "$output" == *"This host runs phase none (committed); $SITE_A is now at phase accept."* ]]
	grep -q 'phase: accept' "$SITE_A"
	run mc_a rekey "${FTP[@]}" --site "$SITE_A"
	[ "$status" -eq 1 ]
	[[ "$output" == *"policy 'PROTECTFTPOUT': $SITE_A is at phase accept but this host runs none: apply it here"* ]]
	run ! grep -q 'phase: switch' "$SITE_A"
	mc_a apply "$SITE_A" >/dev/null 2>&1
	mc_a rekey "${FTP[@]}" --site "$SITE_A" >/dev/null
	grep -q 'phase: switch' "$SITE_A"
}

@test "rekey refuses what it cannot do, naming it: unknown, not PROTECT, mixed phases, flow style, no peer file" {
	run "$MCPSEC" rekey NOPE --site "$SITE_A" --force
	[ "$status" -eq 1 ]
	[[ "$output" == *"has no policy 'NOPE'"* ]]
	run "$MCPSEC" rekey BYPASSALLOUT --site "$SITE_A" --force
	[[ "$output" == *"policy 'BYPASSALLOUT' is bypass: only PROTECT policies have keys to roll over"* ]]
	"$MCPSEC" --state-dir "$STATE" rekey PROTECTFTPOUT --site "$SITE_A" --force >/dev/null
	run "$MCPSEC" rekey PROTECTFTPOUT PROTECTFTPIN --site "$SITE_A" --force
	[[ "$output" == *"at different phases ('PROTECTFTPOUT': accept, 'PROTECTFTPIN': none)"* ]]
	run "$MCPSEC" rekey PROTECTFTPIN --site "$SITE_A" --peer "$B_ADDR" --force
	[[ "$output" == *"--peer and --peer-out go together"* ]]
	cat >"$(dirname "$SITE_A")/flow.yaml" <<EOF2
ipsec: { keys: keys.yaml }
policies:
  - { name: P, direction: out, remote: $B_ADDR, action: protect, spi: 4096, ah: { integrity: hmac-sha1-96, key: BNAAHKEY } }
EOF2
	run "$MCPSEC" rekey P --site "$(dirname "$SITE_A")/flow.yaml" --force
	[ "$status" -eq 1 ]
	[[ "$output" == *"policy 'P' is written as a flow mapping ({ ... }); rekey edits block-style policies only"* ]]
}

@test "apply --dry-run of a rollover: both SAs of each policy, inbound template on SPI 0 and the policy's reqid" {
	two_ns
	"$MCPSEC" --state-dir "$STATE" rekey "${FTP[@]}" --site "$SITE_A" --force >/dev/null
	next_in=$(awk '/name: PROTECTFTPIN/ { p = 1 } p && /^      spi:/ { print $2; exit }' "$SITE_A")
	run mc_a apply --dry-run --ip-xfrm "$SITE_A"
	[ "$status" -eq 0 ]
	[[ "$output" == *"spi 0x00006001 "* ]]                           # PROTECTFTPOUT's current (24577)
	[[ "$output" == *"$(printf 'spi 0x%08x ' "$next_in")"* ]]     # PROTECTFTPIN's next
	in_tmpl=$(grep 'dir in .*tmpl proto esp' <<<"$output" | grep -c 'spi 0x00000000 reqid')
	[ "$in_tmpl" -ge 1 ]
	# Each PROTECT policy has its own reqid, carried by its SAs.
	reqids=$(grep -o 'tmpl proto [a-z]* spi 0x[0-9a-f]* reqid [0-9]*' <<<"$output" | awk '{ print $NF }' | sort -u | wc -l)
	[ "$reqids" -eq 4 ]
	# Outbound SAs may wrap, inbound ones never carry the flag.
	[ "$(grep -c 'ip xfrm state add src fec0::2222:a00:bff:fe3a:100 .*extra-flag oseq-may-wrap' <<<"$output")" -ge 3 ]
	run ! grep -q 'dst fec0::2222:a00:bff:fe3a:100 .*oseq-may-wrap' <<<"$output"
}
