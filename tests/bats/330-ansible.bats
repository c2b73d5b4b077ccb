#!/usr/bin/env bats
# The Ansible collection (ansible/, mcpsec.ipsec) on a fleet of 20 hosts: network namespaces
# joined in 10 pairs (tests/ansible/fleet.py), ansible_connection local. The tests run in order
# on one fleet: first run, second run, check and diff mode, an inconsistent pair, a failing host.
# Odd pairs protect with ESP and are staged (ipsec.enabled: false: this kernel has no ESP; the
# lab VM's tests/lab/370-ansible.bats runs a pair with real SAs); even pairs bypass and discard.
load helpers

FLEET_PAIRS=10
# A test here runs up to three playbooks on 20 hosts: 150 s alone, over 300 beside the lab
# VM's emulation on two cores (a CI run timed out in the middle of one, leaving its change for
# the next test). Still a deadline, for a hang.
# shellcheck disable=SC2034 # read by bats
BATS_TEST_TIMEOUT=900

setup_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	export FLEET_PREFIX="mct-$$-fl"
	export FLEET="$BATS_FILE_TMPDIR/fleet"
	"$PY" "$ROOT/tests/ansible/fleet.py" up "$FLEET" "$FLEET_PREFIX" "$FLEET_PAIRS"
	export ANSIBLE_CONFIG="$FLEET/ansible.cfg"
}

teardown_file() {
	[ -n "${FLEET_PREFIX:-}" ] && "$PY" "$ROOT/tests/ansible/fleet.py" down "$FLEET_PREFIX" "$FLEET_PAIRS"
	return 0
}

setup() { require_root; basic_setup; }

# ansible-playbook on the fleet, its output in $WORK/$1.log (the first argument names the run).
play() {
	local name=$1; shift
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.pairs "$@") >"$WORK/$name.log" 2>&1
}

# "HOST CHANGED" for every host of the last PLAY RECAP of a log.
recap() {
	awk '/^PLAY RECAP/ { delete c; n = 0 } $2 == ":" && $1 ~ /^h[0-9]+$/ {
		for (i = 3; i <= NF; i++) if ($i ~ /^changed=/) { split($i, kv, "="); c[$1] = kv[2] } }
		END { for (h in c) print h, c[h] }' "$1" | sort
}

# Everything mcpsec and the kernel hold for every host: policies, SAs (hashed), the committed
# generation and the state directory's files (names, sizes, times).
snapshot() {
	local h ns
	for h in $(seq -f 'h%02g' 1 $((2 * FLEET_PAIRS))); do
		ns="$FLEET_PREFIX-$h"
		echo "== $h"
		ip -n "$ns" xfrm policy list
		# SAs by hash: a failing diff must not print key material.
		echo "SAs $(ip -n "$ns" xfrm state list | sha256sum)"
		[ -d "$FLEET/hosts/$h/state" ] && find "$FLEET/hosts/$h/state" -printf '%P %s %T@ %l\n' | sort
		[ -f "$FLEET/hosts/$h/site.yaml" ] && sha256sum "$FLEET/hosts/$h/site.yaml"
	done
}

host_snapshot() { snapshot | awk -v h="== $1" '/^== / { on = ($0 == h) } on'; }

@test "ansible: first run changes every host; the kernel enforces each host's site" {
	play first -vvv || { tail -40 "$WORK/first.log"; false; }
	cp "$WORK/first.log" "$FLEET/first-vvv.log"
	run recap "$WORK/first.log"
	[ "${#lines[@]}" -eq 20 ]
	for l in "${lines[@]}"; do
		[ "${l#* }" -ge 1 ] || { echo "not changed: $l"; false; }
	done
	# An even pair is enforced: its DISCARD is in the kernel, by name.
	run "$MCPSEC" --netns "$FLEET_PREFIX-h03" --state-dir "$FLEET/hosts/h03/state" status ipsec TELNETOUT --json
	[ "$status" -eq 0 ]
	[[ "$output" == *'"action":"discard"'* ]]
	[[ "$output" == *'"kernel_policies":1'* ]]
	# B's site is A's mirror: its inbound TELNET... is A's outbound, seen from B.
	grep -q 'name: TELNETIN' "$FLEET/hosts/h04/site.yaml"
	# An odd pair is staged (committed, not enforced), its keys imported on both hosts.
	for h in h01 h02; do
		run "$MCPSEC" key list --keys "$FLEET/hosts/$h/keys.yaml" --json
		[[ "$output" == *'"PG-AUTH"'* && "$output" == *'"PG-ENC"'* ]]
	done
	run "$MCPSEC" --netns "$FLEET_PREFIX-h01" --state-dir "$FLEET/hosts/h01/state" status ipsec all --json
	[[ "$output" == *'"committed":true,"enabled":false'* ]]
	# Both hosts of a protected pair hold the same key values (compared by mcpsec, not shown).
	run "$MCPSEC" check-peer "$FLEET/hosts/h01/site.yaml" "$FLEET/hosts/h02/site.yaml"
	[ "$status" -eq 0 ]
	# The keys were stored once, Vault-encrypted, on the controller.
	head -1 "$FLEET/keys/pair01.export.vault" | grep -q "^\\\$ANSIBLE_VAULT;"
}

@test "ansible: a second run changes nothing anywhere" {
	snapshot >"$WORK/before"
	play second || { tail -40 "$WORK/second.log"; false; }
	run recap "$WORK/second.log"
	[ "${#lines[@]}" -eq 20 ]
	for l in "${lines[@]}"; do
		[ "${l#* }" -eq 0 ] || { echo "changed: $l"; false; }
	done
	snapshot >"$WORK/after"
	diff "$WORK/before" "$WORK/after"
}

@test "ansible: check mode leaves every kernel byte-identical; diff mode names the policy that changes" {
	local pairs="$FLEET/group_vars/all/pairs.yml"
	cp "$pairs" "$WORK/pairs.yml"
	# pair02 (h03, h04) opens 8080 outbound too.
	sed -i "0,/remote-ports: 80,443/s//remote-ports: 80,443,8080/" "$pairs"
	snapshot >"$WORK/before"
	play check --check --diff
	local rc=$?
	cp "$WORK/pairs.yml" "$pairs"
	[ "$rc" -eq 0 ] || { tail -40 "$WORK/check.log"; false; }
	snapshot >"$WORK/after"
	diff "$WORK/before" "$WORK/after"
	# The diff names the policy and host; h03 "would change", the pairs left alone would not.
	grep -E '^\+ add policy WEBOUT \(out bypass 10\.77\.2\.1/32 -> 10\.77\.2\.2/32 tcp dport 8080' "$WORK/check.log"
	run recap "$WORK/check.log"
	[[ "$output" == *"h03 1"* ]]
	[[ "$output" == *"h05 0"* ]]
	# Mutation of the checker: a real run of the same change does change the kernel.
	sed -i "0,/remote-ports: 80,443/s//remote-ports: 80,443,8080/" "$pairs"
	play real
	rc=$?
	cp "$WORK/pairs.yml" "$pairs"
	[ "$rc" -eq 0 ]
	host_snapshot h03 >"$WORK/h03-after"
	! diff -q <(awk -v h="== h03" '/^== / { on = ($0 == h) } on' "$WORK/before") "$WORK/h03-after" || false
	play back
}

@test "ansible: one inconsistent pair stops the run before any host changes, naming the pair" {
	local pairs="$FLEET/group_vars/all/pairs.yml"
	cp "$pairs" "$WORK/pairs.yml"
	# Every pair would change (a new policy in each) ...
	sed -i 's/^  policies:$/  policies:\n  - {name: NTPOUT, direction: out, protocol: udp, remote-ports: 123, action: bypass}/' "$pairs"
	# ... but h14 (pair07's B) lets PostgreSQL in without IPsec: A protects it, B would not.
	mkdir -p "$FLEET/host_vars"
	printf 'mcpsec_host_policies:\n  - {name: PGCLEAR, direction: in, protocol: tcp, local-ports: 5432, action: bypass}\n' \
		>"$FLEET/host_vars/h14.yml"
	snapshot >"$WORK/before"
	run play inconsistent
	cp "$WORK/pairs.yml" "$pairs"
	rm "$FLEET/host_vars/h14.yml"
	[ "$status" -ne 0 ]
	grep -q 'pair pair07 (h13, h14) is inconsistent' "$WORK/inconsistent.log"
	grep -q "PGCLEAR" "$WORK/inconsistent.log"
	grep -q 'no host was changed' "$WORK/inconsistent.log"
	# The rollout play never started, and nothing changed anywhere.
	run grep -c 'Roll out to this host' "$WORK/inconsistent.log"
	[ "$output" -eq 0 ]
	snapshot >"$WORK/after"
	diff "$WORK/before" "$WORK/after"
}

@test "ansible: a host whose apply fails stops the rollout; later batches are untouched" {
	local pairs="$FLEET/group_vars/all/pairs.yml" ro="$FLEET/hosts/h06/state"
	cp "$pairs" "$WORK/pairs.yml"
	sed -i 's/^  policies:$/  policies:\n  - {name: NTPOUT, direction: out, protocol: udp, remote-ports: 123, action: bypass}/' "$pairs"
	snapshot >"$WORK/before"
	# h06 (second batch of 4) cannot commit: its state directory is read-only. Its check
	# (apply --dry-run) passes; its apply fails.
	mount --bind "$ro" "$ro"
	mount -o remount,ro,bind "$ro"
	run play failing -e mcpsec_serial=4
	umount "$ro"
	cp "$WORK/pairs.yml" "$pairs"
	[ "$status" -ne 0 ]
	grep -qE 'fatal: \[h06\].*mcpsec apply failed \(exit status 3\)' "$WORK/failing.log"
	snapshot >"$WORK/after"
	# Batch 1 (h01-h04) changed; h06 did not; batches 3-5 (h09-h20) are exactly as before.
	for h in h01 h03; do
		! diff -q <(awk -v h="== $h" '/^== / { on = ($0 == h) } on' "$WORK/before") \
			<(awk -v h="== $h" '/^== / { on = ($0 == h) } on' "$WORK/after") || false
	done
	for h in h06 $(seq -f 'h%02g' 9 20); do
		diff <(awk -v h="== $h" '/^== / { on = ($0 == h) } on' "$WORK/before") \
			<(awk -v h="== $h" '/^== / { on = ($0 == h) } on' "$WORK/after")
	done
	# Put the fleet back for the tests that follow.
	play back
}

@test "ansible: no key byte or passphrase in -vvv output or the fact cache (and the check can fail)" {
	local log="$FLEET/first-vvv.log" keyfile="$FLEET/hosts/h01/keys.yaml" pass hex name f
	[ -s "$log" ]
	# The fact cache holds mcpsec's facts for every host.
	(cd "$FLEET" && ansible all -m mcpsec.ipsec.mcpsec_facts \
		-a 'binary={{ mcpsec_binary }} netns={{ mcpsec_netns }} state_dir={{ mcpsec_state_dir }}') >"$WORK/facts.log" 2>&1
	[ "$(grep -l '"mcpsec"' "$FLEET"/facts/* | wc -l)" -eq 20 ]
	pass=$(cd "$FLEET" && ansible-vault view group_vars/all/vault.yml | sed -n 's/^mcpsec_key_passphrase: "\(.*\)"$/\1/p')
	[ ${#pass} -ge 8 ]
	for name in PG-AUTH PG-ENC; do
		hex=$("$MCPSEC" key show "$name" --reveal --keys "$keyfile")
		hex=${hex#0x}
		[ ${#hex} -ge 32 ]
		for f in "$log" "$WORK/facts.log" "$FLEET"/facts/*; do
			refute_in_file "$hex" "$f"
		done
	done
	for f in "$log" "$WORK/facts.log" "$FLEET"/facts/*; do
		refute_in_file "$pass" "$f"
	done
	# Mutation: a task that does print a key at -vvv is caught by the same check.
	(cd "$FLEET" && ansible h01 -vvv -m ansible.builtin.command \
		-a "$MCPSEC key show PG-AUTH --reveal --keys $keyfile") >"$WORK/leak.log" 2>&1
	hex=$("$MCPSEC" key show PG-AUTH --reveal --keys "$keyfile")
	run refute_in_file "${hex#0x}" "$WORK/leak.log"
	[ "$status" -ne 0 ]
}

@test "ansible: pair mistakes are reported together, before any host changes" {
	local pairs="$FLEET/group_vars/all/pairs.yml"
	cp "$pairs" "$WORK/pairs.yml"
	# A pair of one host with itself, and a PROTECT policy naming a key the pair does not have.
	sed -i '0,/  b: h04/s//  b: h03/' "$pairs"
	sed -i '0,/integrity-key: PG-AUTH/s//integrity-key: NOSUCHKEY/' "$pairs"
	snapshot >"$WORK/before"
	run play mistakes
	cp "$WORK/pairs.yml" "$pairs"
	[ "$status" -ne 0 ]
	grep -q 'pair pair02: a and b are the same host' "$WORK/mistakes.log"
	grep -q 'key NOSUCHKEY is not in the pair' "$WORK/mistakes.log"
	snapshot >"$WORK/after"
	diff "$WORK/before" "$WORK/after"
}

@test "ansible: two pairs that use one name on a host fail before any host changes, naming both" {
	local pairs="$FLEET/group_vars/all/pairs.yml"
	cp "$pairs" "$WORK/pairs.yml"
	# h02 in a second pair: both pairs' SSH policies land on it under the same names.
	sed -i '0,/  b: h04/s//  b: h02/' "$pairs"
	snapshot >"$WORK/before"
	run play clash
	cp "$WORK/pairs.yml" "$pairs"
	[ "$status" -ne 0 ]
	grep -Eq 'host h02: policy [A-Z]+ is in pair pair01 and pair pair02' "$WORK/clash.log"
	snapshot >"$WORK/after"
	diff "$WORK/before" "$WORK/after"
}

@test "ansible: a key rollover takes accept, switch and retire on both hosts of a pair, each applied first" {
	local h1="$FLEET/hosts/h01" h2="$FLEET/hosts/h02" g1 g2
	g1=$(readlink "$h1/state/current")
	g2=$(readlink "$h2/state/current")
	grep -q 'spi: 4002' "$h1/site.yaml"
	snapshot | awk '/^== h0[3-9]|^== h[12][0-9]/ { on = 1 } /^== h0[12]$/ { on = 0 } on' >"$WORK/others-before"
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.rollover --limit h01:h02 -v) >"$WORK/rollover.log" 2>&1 ||
		{ grep -E 'fatal|FAILED' "$WORK/rollover.log"; false; }
	# Three steps, each a new committed generation on both hosts (catch-up changed nothing).
	[ "$(readlink "$h1/state/current")" = "gen-$((${g1#gen-} + 3))" ]
	[ "$(readlink "$h2/state/current")" = "gen-$((${g2#gen-} + 3))" ]
	[ "$(grep -c '"rekeyed": \["pair01"\]' "$WORK/rollover.log")" -eq 3 ]
	# The new SA everywhere: new SPIs and key names, no rollover in progress, the old SPI gone.
	run ! grep -q 'spi: 4002' "$h1/site.yaml"
	run ! grep -q 'next:' "$h1/site.yaml" "$h2/site.yaml"
	grep -q 'integrity-key: PG-AUTH-r2' "$h1/site.yaml"
	grep -q 'integrity-key: PG-AUTH-r2' "$h2/site.yaml"
	# Both key files hold the new keys (the old ones too), with the same values.
	run "$MCPSEC" check-peer "$h1/site.yaml" "$h2/site.yaml"
	[ "$status" -eq 0 ]
	grep -q '^step: retire' "$FLEET/keys/pair01.rollover.yml"
	# The other pairs were not stepped, and a plain run afterwards changes nothing.
	snapshot | awk '/^== h0[3-9]|^== h[12][0-9]/ { on = 1 } /^== h0[12]$/ { on = 0 } on' >"$WORK/others-after"
	diff "$WORK/others-before" "$WORK/others-after"
	[ ! -e "$FLEET/keys/pair03.rollover.yml" ]
	play after --limit h01:h02
	run recap "$WORK/after.log"
	[ "$output" = "$(printf 'h01 0\nh02 0')" ]
}
