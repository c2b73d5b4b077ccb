#!/usr/bin/env bats
# Fleets are not pairs (issue 28): 16 hosts in network namespaces wired by topologies
# (tests/ansible/fleet.py up-topo): a hub h01 with spokes h02-h07, a full mesh h07-h11, two groups
# [h12, h13] x [h14, h15], and h16 in no pair. The tests run in order on one fleet: first run,
# second run, a spoke added, a pair removed, a clash. This kernel has no ESP: the topologies'
# policies bypass and discard (the lab VM's tests prove real SAs).
load helpers

setup_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	export FLEET_PREFIX="mct-$$-tp"
	export FLEET="$BATS_FILE_TMPDIR/fleet"
	"$PY" "$ROOT/tests/ansible/fleet.py" up-topo "$FLEET" "$FLEET_PREFIX"
	export ANSIBLE_CONFIG="$FLEET/ansible.cfg"
}

teardown_file() {
	[ -n "${FLEET_PREFIX:-}" ] && "$PY" "$ROOT/tests/ansible/fleet.py" down "$FLEET_PREFIX" 8
	return 0
}

setup() { require_root; basic_setup; }

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

# The kernel's policies of one host (what it enforces, byte for byte).
kernel() { ip -n "$FLEET_PREFIX-$1" xfrm policy list; }
snap_all() { local i; for i in $(seq -f 'h%02g' 1 16); do kernel "$i" >"$WORK/$1.$i"; done; }
# The names of the user policies a host enforces, sorted.
names() {
	"$MCPSEC" --netns "$FLEET_PREFIX-$1" --state-dir "$FLEET/hosts/$1/state" status ipsec all --json |
		"$PY" -c 'import json, sys; print("\n".join(sorted(p["name"] for p in json.load(sys.stdin)["policies"] if p.get("kind") == "user")))'
}
# Edits the topologies in group_vars with a Python expression on `t` (the list).
topo_edit() {
	"$PY" - "$FLEET/group_vars/all/pairs.yml" "$1" <<'PY'
import sys, yaml
p = sys.argv[1]
g = yaml.safe_load(open(p))
t = g['mcpsec_topologies']
exec(sys.argv[2])
yaml.safe_dump(g, open(p, 'w'), sort_keys=False)
PY
}

@test "topologies: the first run changes all 15 wired hosts, a second changes none" {
	play first || { tail -40 "$WORK/first.log"; false; }
	run recap "$WORK/first.log"
	[ "${#lines[@]}" -eq 16 ]
	[ "$(printf '%s\n' "${lines[@]}" | awk '$2 > 0' | wc -l)" -eq 15 ]
	[ "$(printf '%s\n' "${lines[@]}" | awk '$1 == "h16" { print $2 }')" -eq 0 ]
	# The hub holds each spoke's policies under the pair's prefix, in pair-name order.
	names h01 >"$WORK/h01.names"
	[ "$(grep -c '^h01\.h0[2-7]-' "$WORK/h01.names")" -eq 24 ]
	# h07 is a spoke and a mesh member: 1 + 4 pairs, 4 policies each.
	[ "$(names h07 | wc -l)" -eq 20 ]
	play second || { tail -40 "$WORK/second.log"; false; }
	run recap "$WORK/second.log"
	[ "$(printf '%s\n' "${lines[@]}" | awk '$2 != 0' | wc -l)" -eq 0 ]
}

@test "topologies: a spoke added changes only the hub and the new spoke; the others' kernels are byte-identical" {
	snap_all before
	topo_edit "t[0]['spokes'].insert(0, 'h16')"  # first in the list: no other pair moves
	play add || { tail -40 "$WORK/add.log"; false; }
	run recap "$WORK/add.log"
	[ "$(printf '%s\n' "${lines[@]}" | awk '$2 > 0 { print $1 }' | tr '\n' ' ')" = "h01 h16 " ]
	snap_all after
	for i in $(seq -f 'h%02g' 2 15); do
		cmp "$WORK/before.$i" "$WORK/after.$i"
	done
	# The hub's existing policies kept their kernel objects (priorities included): only lines added.
	[ "$(comm -23 <(sort "$WORK/before.h01") <(sort "$WORK/after.h01") | wc -l)" -eq 0 ]
	[ "$(comm -13 <(sort "$WORK/before.h01") <(sort "$WORK/after.h01") | wc -l)" -gt 0 ]
	[ "$(names h16 | grep -c '^h01\.h16-')" -eq 4 ]
}

@test "topologies: a pair removed takes exactly its objects from both hosts" {
	names h01 >"$WORK/h01.before"
	names h07 >"$WORK/h07.before"
	snap_all before
	topo_edit "t[0]['spokes'].remove('h07')"
	play remove || { tail -40 "$WORK/remove.log"; false; }
	run recap "$WORK/remove.log"
	[ "$(printf '%s\n' "${lines[@]}" | awk '$2 > 0 { print $1 }' | tr '\n' ' ')" = "h01 h07 " ]
	# By name: what went is the pair's (prefix h01.h07-), all of it, on both hosts.
	[ "$(comm -23 "$WORK/h01.before" <(names h01) | grep -vc '^h01\.h07-')" -eq 0 ]
	[ "$(comm -23 "$WORK/h01.before" <(names h01) | wc -l)" -eq 4 ]
	[ "$(comm -23 "$WORK/h07.before" <(names h07) | grep -vc '^h01\.h07-')" -eq 0 ]
	[ "$(comm -23 "$WORK/h07.before" <(names h07) | wc -l)" -eq 4 ]
	[ "$(names h01 | grep -c '^h01\.h07-')" -eq 0 ]
	# In the kernel: only lines removed on the two hosts (nothing else moved), and nothing
	# changed anywhere else.
	snap_all after
	for h in h01 h07; do
		[ "$(comm -13 <(sort "$WORK/before.$h") <(sort "$WORK/after.$h") | wc -l)" -eq 0 ]
		[ "$(comm -23 <(sort "$WORK/before.$h") <(sort "$WORK/after.$h") | wc -l)" -gt 0 ]
	done
	for i in h02 h03 h08 h12 h16; do
		cmp "$WORK/before.$i" "$WORK/after.$i"
	done
}

@test "topologies: a policy name two pairs give one host fails before any host changes, naming both pairs" {
	snap_all before
	# A listed pair h01-h12 whose policy has the name the hub's pair with h02 gives h01.
	"$PY" - "$FLEET/group_vars/all/pairs.yml" <<'PY'
import sys, yaml
p = sys.argv[1]
g = yaml.safe_load(open(p))
g['mcpsec_pairs'] = [{'name': 'extra', 'a': 'h01', 'b': 'h12', 'a_addr': '10.78.0.1', 'b_addr': '10.78.0.12',
                      'default': 'deny', 'policies': [{'name': 'h01.h02-SSHIN', 'direction': 'in',
                                                       'protocol': 'tcp', 'local-ports': 2222, 'action': 'bypass'}]}]
yaml.safe_dump(g, open(p, 'w'), sort_keys=False)
PY
	run play clash
	[ "$status" -ne 0 ]
	grep -q 'no host was changed' "$WORK/clash.log"
	grep -q 'host h01: policy h01.h02-SSHIN is in pair extra and pair hub.h01.h02' "$WORK/clash.log" ||
		grep -q 'host h01: policy h01.h02-SSHIN is in pair hub.h01.h02 and pair extra' "$WORK/clash.log"
	snap_all after
	for i in $(seq -f 'h%02g' 1 16); do
		cmp "$WORK/before.$i" "$WORK/after.$i"
	done
}
