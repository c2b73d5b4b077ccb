#!/usr/bin/env bats
# Fault injection (sanitizer build only): every kernel operation of a large change refused, or
# the process killed there; and a kill at every step of a commit. Policies on this kernel; the
# lab suite runs the same sweep with SAs in the VM.
load helpers
load sweep

# A site of policies P<from>..P<to> (mixed actions, ports shifted by $3), on the fixture's base.
gen_site() {
	local from=$1 to=$2 shift=$3 out=$4
	{
		printf 'ipsec:\n  default: ipv6-only\npolicies:\n'
		for ((p = from; p <= to; p++)); do
			printf '  - name: P%d\n    direction: %s\n    remote: fec0::2222:a00:bff:fe3a:127\n' "$p" "$([ $((p % 2)) = 0 ] && echo out || echo in)"
			printf '    protocol: tcp\n    remote-ports: %d\n    action: %s\n' $((1000 + p * 10 + shift)) "$([ $((p % 3)) = 0 ] && echo discard || echo bypass)"
		done
		printf '  - name: BYPASSREST\n    direction: out\n    action: bypass\n'
	} >"$out"
}

setup() {
	basic_setup
	one_ns
	gen_site 1 20 0 "$WORK/before.yaml"
	# Five removed, ten moved to other ports (updated in place or replaced), eleven new.
	gen_site 6 31 5 "$WORK/after.yaml"
}

@test "faults: the release binary has no fault hook" {
	run ! grep -aq MCPSEC_FAULT "$ROOT/mcpsec"
	run ! grep -aq MCPSEC_FAULT "$ROOT/mcpsecd"
	grep -aq MCPSEC_FAULT "$MCPSEC"
}

@test "faults: a refusal at every operation of a 30+ operation change restores kernel and state, exits 2 naming the object" {
	r=$(sweep_fail "$WORK/before.yaml" "$WORK/after.yaml")
	echo "# swept $r operations" >&3
	read -r swept _ total <<<"$r"
	[ "$total" -ge 30 ] && [ "$swept" -eq "$total" ]
}

@test "faults: a kill at every operation: apply converges to the new, enable and mcpsecd to the committed" {
	r=$(sweep_kill "$WORK/before.yaml" "$WORK/after.yaml" daemon)
	echo "# swept $r operations" >&3
	read -r swept _ total <<<"$r"
	[ "$total" -ge 30 ] && [ "$swept" -eq "$total" ]
}

@test "faults: a kill at any step of a commit never leaves the state directory half-written" {
	mc_a apply "$WORK/before.yaml" >/dev/null
	mc_a apply "$WORK/after.yaml" >/dev/null
	after_state=$(state_fingerprint | sed 1d | awk '{print $1}' | sort)
	steps=0
	for k in $(seq 1 12); do
		mc_a apply "$WORK/before.yaml" >/dev/null
		before_state=$(state_fingerprint | sed 1d | awk '{print $1}' | sort)
		rc=0
		MCPSEC_FAULT=commit-kill:$k mc_a apply "$WORK/after.yaml" >/dev/null 2>&1 || rc=$?
		[ "$rc" -eq 0 ] && break # past the last step: the commit completed
		[ "$rc" -eq 137 ]
		steps=$k
		# Read as status does, without the lock: a whole generation, the old or the new.
		now=$(state_fingerprint | sed 1d | awk '{print $1}' | sort)
		[ "$now" = "$before_state" ] || [ "$now" = "$after_state" ]
		mc_a status ipsec all --json | jq -e '.policies | length > 0' >/dev/null
		# The next holder of the lock finishes the cleanup.
		mc_a enable >/dev/null
		state_clean
	done
	echo "# killed at each of $steps commit steps" >&3
	[ "$steps" -ge 6 ]
}

@test "faults: a commit that cannot be written changes nothing; one that cannot be switched undoes the kernel (exit 3)" {
	mc_a apply "$WORK/before.yaml" >/dev/null
	k0=$(sweep_canon)
	s0=$(state_fingerprint)
	for f in prepare-fail switch-fail; do
		run env MCPSEC_FAULT=$f "$MCPSEC" --netns "$NS_A" --state-dir "$STATE" apply "$WORK/after.yaml"
		[ "$status" -eq 3 ]
		[[ "$output" == *"No space left on device"* ]]
		[ "$(sweep_canon)" = "$k0" ]
		[ "$(state_fingerprint)" = "$s0" ]
		state_clean
	done
	[[ "$output" == *"the change could not be committed; the previous state was restored"* ]]
}
