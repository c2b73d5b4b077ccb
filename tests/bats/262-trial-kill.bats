#!/usr/bin/env bats
# apply --confirm cut short (issue 25): SIGTERM, SIGINT or SIGKILL at every kernel operation and
# at every step of the commit. A held-back signal lets apply finish or undo the change first; a
# SIGKILL leaves a half-done change, which status names and whoever comes next (the trial's own
# timer, or mcpsecd) converges. Either way, once the deadline has passed the kernel holds the
# committed generation, which is the base: the change was never confirmed.
load helpers

setup() {
	basic_setup
	one_ns
	BASE=$(site_copy "$FIX/live/base.yaml")
	CUT="$WORK/live/cut.yaml"
	mc_a apply "$BASE" >/dev/null
	BASE_K=$(xfrm_canon "$NS_A")
	BASE_GEN=$(readlink "$STATE/current")
	mc_a apply --dry-run "$CUT" >"$WORK/plan"
	NOPS=$(sed -n 's/^operations (\([0-9]*\)).*/\1/p' "$WORK/plan")
}
teardown() {
	stop_daemon
	pkill -KILL -f -- "--state-dir $(realpath "$STATE") rollback --token" 2>/dev/null || true
	basic_teardown
}

# The kernel and `current` are back at the base, within the deadline and a few seconds more.
converged() {
	for _ in $(seq 100); do
		[ "$(xfrm_canon "$NS_A")" = "$BASE_K" ] && [ "$(readlink "$STATE/current")" = "$BASE_GEN" ] &&
			[ ! -e "$STATE/trial" ] && [ ! -e "$STATE/pending" ] && return 0
		sleep 0.1
	done
	echo "not back at the base: current $(readlink "$STATE/current"); status:" >&2
	mc_a status ipsec all >&2
	return 1
}

# One cut: MCPSEC_FAULT=$1 on apply --confirm 1; prints what happened.
cut_at() {
	local fault=$1 rc=0 k
	MCPSEC_FAULT=$fault mc_a apply --confirm 1 "$CUT" >"$WORK/apply.out" 2>&1 || rc=$?
	k=$(xfrm_canon "$NS_A")
	if [ "$k" != "$BASE_K" ] && [ "$k" != "$CUT_K" ]; then
		# Half a change in the kernel. The timer (or mcpsecd) converges it as soon as apply is
		# gone, so status is held to it only when the kernel was still mixed after status ran.
		local said
		said=$(mc_a status ipsec all | grep -c '^KERNEL DIFFERS: ' || true)
		if [ "$(xfrm_canon "$NS_A")" = "$k" ] && [ "$said" -ne 1 ]; then
			echo "$fault: the kernel holds part of a change and status does not say so" >&2
			return 1
		fi
		echo "$fault: exit $rc, kernel mixed$([ "$said" -eq 1 ] && echo ' (status says KERNEL DIFFERS)')"
	else
		echo "$fault: exit $rc, kernel $([ "$k" = "$BASE_K" ] && echo base || echo new)"
	fi
	case $fault in
	kill:* | commit-kill:*) [ "$rc" -eq 137 ] ;;
	term:* | commit-term:*) [ "$rc" -eq 143 ] ;;
	int:* | commit-int:*) [ "$rc" -eq 130 ] || [ "$rc" -eq 0 ] ;; # SIGINT may be ignored in a background shell
	esac || { echo "$fault: unexpected exit $rc: $(cat "$WORK/apply.out")" >&2; return 1; }
	# A held-back signal never leaves half a change.
	case $fault in
	kill:* | commit-kill:*) ;;
	*) [ "$k" = "$BASE_K" ] || [ "$k" = "$CUT_K" ] || { echo "$fault: half a change after $fault" >&2; return 1; } ;;
	esac
	converged || { echo "$fault: not converged" >&2; return 1; }
}

sweep() {
	local sig point n=0
	CUT_K=$(mc_a apply "$CUT" >/dev/null && xfrm_canon "$NS_A")
	mc_a apply "$BASE" >/dev/null
	BASE_GEN=$(readlink "$STATE/current")
	for sig in "$@"; do
		for point in $(seq "$NOPS" | sed "s/^/$sig:/") $(seq 7 | sed "s/^/commit-$sig:/"); do
			cut_at "$point" >&3 || return 1
			n=$((n + 1))
		done
	done
	echo "# $n cuts, every one back at the base after its deadline" >&3
}

@test "trial cut short: SIGTERM, SIGINT and SIGKILL at every operation and commit step; the timer converges" {
	[ "$NOPS" -ge 2 ]
	sweep term int kill
}

@test "trial cut short: SIGKILL at every operation and commit step, with mcpsecd running, converges too" {
	start_daemon --no-bpf
	sweep kill
}

@test "trial cut short: a plain apply killed halfway leaves a kernel status calls KERNEL DIFFERS; enable converges it" {
	# No timer and no mcpsecd: the half-done change stays until the next lock-taker.
	[ "$NOPS" -ge 2 ]
	run -137 env MCPSEC_FAULT=kill:2 "$MCPSEC" --netns "$NS_A" --state-dir "$STATE" apply "$CUT"
	[ "$(xfrm_canon "$NS_A")" != "$BASE_K" ]
	run mc_a status ipsec all
	[ "$status" -eq 0 ]
	[[ "$output" == *"KERNEL DIFFERS: the kernel does not hold the committed configuration $BASE_GEN ("*"and a change was under way)"* ]]
	run mc_a status ipsec all --json
	[[ "$output" == *'"kernel_differs":"the kernel does not hold'* ]]
	mc_a enable >/dev/null
	[ "$(xfrm_canon "$NS_A")" = "$BASE_K" ]
	run mc_a status ipsec all --json
	[[ "$output" == *'"kernel_differs":null'* ]]
}
