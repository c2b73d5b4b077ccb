#!/usr/bin/env bats
# The Ansible collection with real SAs (lab VM: Debian's kernel has ESP): one pair of network
# namespaces rolled out by the pairs playbook, then by the rollover playbook; PostgreSQL's port
# is ESP on the wire with the inventory's SPI, then with the rollover's new SPI only.
load helpers

setup_file() {
	export FLEET_PREFIX="mct-$$-lf"
	export FLEET="$BATS_FILE_TMPDIR/fleet"
	"$PY" "$ROOT/tests/ansible/fleet.py" up "$FLEET" "$FLEET_PREFIX" 1 --protect-enabled
	export ANSIBLE_CONFIG="$FLEET/ansible.cfg" HOME="$FLEET/home"
	mkdir -p "$HOME"
}

teardown_file() {
	[ -n "${FLEET_PREFIX:-}" ] && "$PY" "$ROOT/tests/ansible/fleet.py" down "$FLEET_PREFIX" 1
	return 0
}

setup() {
	basic_setup
	# The pair's two hosts, for the capture helpers: B is h02, A is h01.
	NS_A="$FLEET_PREFIX-h01"
	NS_B="$FLEET_PREFIX-h02"
}
teardown() { :; }

# One TCP connection from A to B's port 5432, captured on B's side; prints the ESP SPIs seen.
# Called with its output to a file, never in $(...) or run: the capture runs in the background.
pg_spis() {
	local ok=0
	capture_start
	serve_b 5432
	[ "$(in_a "$NET" connect 10.77.1.2 5432)" = "ok" ] || { echo "pg_spis: connect failed" >&2; ok=1; }
	[ "$(served 5432)" = "got 1" ] || { echo "pg_spis: nothing served" >&2; ok=1; }
	capture_stop
	# Never in clear: no TCP segment to or from 5432 on the wire.
	[ -z "$(cap_text 'tcp port 5432')" ] || { echo "pg_spis: PostgreSQL in clear" >&2; ok=1; }
	cap_text esp | grep -oE 'ESP\(spi=0x[0-9a-f]+' | sort -u | sed 's/ESP(spi=//'
	return "$ok"
}

@test "ansible lab: the pairs playbook installs real SAs; the pair's traffic is ESP on the wire" {
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.pairs) >"$WORK/run.log" 2>&1 || { tail -30 "$WORK/run.log"; false; }
	grep -qE '^h01 +: .*changed=[1-9]' "$WORK/run.log"
	grep -qE '^h02 +: .*changed=[1-9]' "$WORK/run.log"
	pg_spis >"$WORK/spis"
	# A sends with PGOUT's SPI (4002), B answers with PGIN's (4003): the inventory's SPIs.
	[ "$(cat "$WORK/spis")" = "$(printf '0x%08x\n0x%08x' 4002 4003)" ]
	# Mutation of the capture check: with the pair's policies gone (disable), 5432 is in clear
	# and the same check fails.
	"$MCPSEC" --netns "$NS_A" --state-dir "$FLEET/hosts/h01/state" disable 2>/dev/null
	"$MCPSEC" --netns "$NS_B" --state-dir "$FLEET/hosts/h02/state" disable 2>/dev/null
	! pg_spis >"$WORK/spis" 2>"$WORK/spis.err" || false
	grep -q 'PostgreSQL in clear' "$WORK/spis.err"
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.pairs) >"$WORK/again.log" 2>&1 || { tail -30 "$WORK/again.log"; false; }
	pg_spis >"$WORK/spis"
}

@test "ansible lab: the rollover playbook moves the pair to new SAs; only the new SPIs are then on the wire" {
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.rollover) >"$WORK/rollover.log" 2>&1 ||
		{ grep -E 'fatal|FAILED' "$WORK/rollover.log"; false; }
	out_spi=$(awk '/name: PGOUT/ { on = 1 } on && /spi:/ { print $2; exit }' "$FLEET/hosts/h01/site.yaml")
	in_spi=$(awk '/name: PGIN/ { on = 1 } on && /spi:/ { print $2; exit }' "$FLEET/hosts/h01/site.yaml")
	[ "$out_spi" -ne 4002 ] && [ "$in_spi" -ne 4003 ]
	pg_spis >"$WORK/spis"
	[ "$(cat "$WORK/spis")" = "$(printf '0x%08x\n0x%08x\n' "$out_spi" "$in_spi" | sort)" ]
	# The old SAs are gone from both kernels.
	[ -z "$(ip -n "$NS_A" xfrm state list spi 4002)" ]
	[ -z "$(ip -n "$NS_B" xfrm state list spi 4003)" ]
}

@test "ansible lab: the phase-out and phase-in playbooks turn the pair's protection off to accept and on again" {
	only='{"mcpsec_phase_only": ["pair01"]}'
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.phase_out -e "$only") >"$WORK/out.log" 2>&1 ||
		{ grep -E 'fatal|FAILED' "$WORK/out.log"; false; }
	grep -q 'enforce: accept' "$FLEET/hosts/h01/site.yaml"
	grep -q 'enforce: accept' "$FLEET/hosts/h02/site.yaml"
	# At accept both hosts send in clear, with the SAs still installed.
	! pg_spis >"$WORK/spis" 2>"$WORK/spis.err" || false
	grep -q 'PostgreSQL in clear' "$WORK/spis.err"
	[ -n "$(ip -n "$NS_A" xfrm state list)" ]
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.phase_in -e "$only") >"$WORK/in.log" 2>&1 ||
		{ grep -E 'fatal|FAILED' "$WORK/in.log"; false; }
	[ "$(grep -c 'Render and check every pair' "$WORK/in.log")" -eq 3 ]
	run ! grep -q 'enforce:' "$FLEET/hosts/h01/site.yaml"
	pg_spis >"$WORK/spis"
	[ "$(wc -l <"$WORK/spis")" -eq 2 ]
	# Running it again takes each step again and changes nothing.
	(cd "$FLEET" && ansible-playbook mcpsec.ipsec.phase_in -e "$only") >"$WORK/again.log" 2>&1 ||
		{ grep -E 'fatal|FAILED' "$WORK/again.log"; false; }
	grep -qE '^h01 +: .*changed=0' "$WORK/again.log"
}
