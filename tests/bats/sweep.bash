# shellcheck shell=bash
# The fault-injection sweep, shared by the host suite (policies) and the lab suite (policies and
# SAs): a change of many kernel operations is failed, or the process killed, at every one of
# them in turn. Needs the sanitizer build (MCPSEC_FAULT exists only there).

# The kernel's objects without counters or times, as a sorted set (see xfrm_canon).
sweep_canon() { xfrm_canon "$NS_A"; }

# The state directory's committed generation, by content: what `current` names and its files.
state_fingerprint() {
	local g
	g=$(readlink "$STATE/current" 2>/dev/null || echo none)
	echo "current=$g"
	[ "$g" = none ] || (cd "$STATE/$g" && sha256sum -- *)
}

# The state directory holds nothing of an unfinished commit and the lock is free. (Called in
# `||` lists, where bash ignores set -e: every check is chained explicitly.)
state_clean() {
	[ ! -e "$STATE/pending" ] &&
		[ "$(find "$STATE" -maxdepth 1 -name 'gen-*' | wc -l)" -eq 1 ] &&
		[ -z "$(find "$STATE" -maxdepth 1 \( -name '*.tmp.*' -o -name '*.new' \))" ] &&
		flock -n "$STATE/lock" true
}

# The operations of the change to AFTER (from what the kernel holds now) to sweep, 1-based, in
# the order they are sent: all of them, or with SWEEP=sa those on SAs, the first after every
# switch between SAs and policies (where a batch ends) and the last. The lab sweeps that way: its
# policy operations are the same code path the host suite (250-faults) sweeps one by one.
sweep_ops() {
	local after=$1
	# shellcheck disable=SC2016 # jq's own variables
	mc_a apply --dry-run --json "$after" | jq -r --arg only "${SWEEP:-all}" '
		[.changes[].object] as $o | range($o | length) |
		select($only != "sa" or $o[.] == "sa" or . == 0 or $o[. - 1] != $o[.] or . == ($o | length) - 1) | . + 1'
}

# sweep_fail BEFORE AFTER: for every operation N of BEFORE -> AFTER (sweep_ops), a refusal at N
# leaves the kernel and the state directory as they were, exits 2 and names the object. Prints
# "SWEPT of TOTAL".
sweep_fail() {
	local before=$1 after=$2 n k0 s0 out rc ops
	mc_a apply "$before" >/dev/null || return 1
	k0=$(sweep_canon)
	s0=$(state_fingerprint)
	n=$(mc_a apply --dry-run "$after" | sed -n 's/^operations (\([0-9]*\)).*/\1/p')
	[ "${n:-0}" -ge 1 ] || return 1
	ops=$(sweep_ops "$after")
	[ -n "$ops" ] || return 1
	for i in $ops; do
		rc=0
		out=$(MCPSEC_FAULT=fail:$i mc_a apply "$after" 2>&1) || rc=$?
		[ "$rc" -eq 2 ] || { echo "fail:$i: exit $rc: $out" >&2; return 1; }
		[[ "$out" == *"injected fault (MCPSEC_FAULT)"* && "$out" == *"'"*"'"* ]] ||
			{ echo "fail:$i: the refused object is not named: $out" >&2; return 1; }
		[[ "$out" == *"the previous state was restored"* ]] || { echo "fail:$i: $out" >&2; return 1; }
		[ "$(sweep_canon)" = "$k0" ] || { echo "fail:$i: the kernel differs from before" >&2; return 1; }
		[ "$(state_fingerprint)" = "$s0" ] || { echo "fail:$i: the state directory changed" >&2; return 1; }
		state_clean || { echo "fail:$i: the state directory is not clean" >&2; ls -la "$STATE" >&2; return 1; }
	done
	echo "$(wc -w <<<"$ops") of $n"
}

# sweep_kill BEFORE AFTER [daemon]: for every operation N (sweep_ops), the process is killed at
# N; then a plain apply of AFTER converges to AFTER, enable converges to BEFORE (the last
# committed), and (with "daemon") mcpsecd started afterwards repairs to BEFORE. Nothing of
# mcpsec's is left behind and the lock is free every time. Prints "SWEPT of TOTAL".
sweep_kill() {
	local before=$1 after=$2 daemon=${3:-} n k_before k_after rc ops
	mc_a apply "$after" >/dev/null || return 1
	k_after=$(sweep_canon)
	mc_a apply "$before" >/dev/null || return 1
	k_before=$(sweep_canon)
	[ "$k_before" != "$k_after" ] || return 1
	n=$(mc_a apply --dry-run "$after" | sed -n 's/^operations (\([0-9]*\)).*/\1/p')
	[ "${n:-0}" -ge 1 ] || return 1
	ops=$(sweep_ops "$after")
	[ -n "$ops" ] || return 1
	for i in $ops; do
		for then in apply enable ${daemon:+daemon}; do
			mc_a apply "$before" >/dev/null || return 1
			rc=0
			MCPSEC_FAULT=kill:$i mc_a apply "$after" >/dev/null 2>&1 || rc=$?
			[ "$rc" -eq 137 ] || { echo "kill:$i: expected SIGKILL, got exit $rc" >&2; return 1; }
			[ -e "$STATE/pending" ] || { echo "kill:$i: no pending intent was recorded" >&2; return 1; }
			case $then in
			apply)
				mc_a apply "$after" >/dev/null || return 1
				[ "$(sweep_canon)" = "$k_after" ] || { echo "kill:$i: apply did not converge" >&2; return 1; } ;;
			enable)
				mc_a enable >/dev/null || return 1
				[ "$(sweep_canon)" = "$k_before" ] || { echo "kill:$i: enable did not converge" >&2; return 1; } ;;
			daemon)
				start_daemon || return 1
				for _ in $(seq 100); do [ "$(sweep_canon)" = "$k_before" ] && break; sleep 0.05; done
				stop_daemon
				[ "$(sweep_canon)" = "$k_before" ] || { echo "kill:$i: mcpsecd did not repair" >&2; return 1; } ;;
			esac
			state_clean || { echo "kill:$i then $then: the state directory is not clean" >&2; ls -la "$STATE" >&2; return 1; }
		done
	done
	echo "$(wc -w <<<"$ops") of $n"
}
