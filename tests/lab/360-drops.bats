#!/usr/bin/env bats
# mcpsecd's per-flow drop records on Debian's 6.1 kernel (the lab VM), where fexit attaches:
# the outbound hook (fexit/xfrm_lookup_with_ifid) names each refused flow and its policy, and
# the inbound hook, built once against no particular kernel, relocates here too (CO-RE).
load helpers

setup() {
	lab_setup
	cat >"$WORK/site.yaml" <<-EOF
	policies:
	  - { name: DISCARDDNSOUT, direction: out, protocol: udp, remote-ports: 53, action: discard }
	  - { name: DISCARDNTPOUT, direction: out, protocol: udp, remote-ports: 123, action: discard }
	  - { name: DISCARDFTPOUT, direction: out, protocol: tcp, remote-ports: 21, action: discard }
	  - { name: DISCARDTELNETIN, direction: in, protocol: tcp, local-ports: 23, action: discard }
	  - { name: BYPASSALLOUT, direction: out, action: bypass }
	  - { name: BYPASSALLIN, direction: in, action: bypass }
	EOF
	quiet mc_a apply "$WORK/site.yaml"
}
teardown() {
	stop_daemon
	basic_teardown
}

records() { jq -c "select($1)" "$STATE/log.jsonl" 2>/dev/null; }

@test "lab drops: both hooks attach; UDP to two outbound DISCARD policies in one second gives two exact records" {
	start_daemon
	wait_record 30 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	[ "$(in_a "$NET" udp-send "$B_ADDR" 53 41053)" = "EPERM" ]
	[ "$(in_a "$NET" udp-send "$B_ADDR" 123 41123)" = "EPERM" ]
	wait_record 20 '.policy == "DISCARDDNSOUT" and .direction == "out" and .src == "'"$A_ADDR"'" and .src_port == 41053 and .dst == "'"$B_ADDR"'" and .dst_port == 53' >/dev/null
	wait_record 20 '.policy == "DISCARDNTPOUT" and .direction == "out" and .src_port == 41123 and .dst_port == 123' >/dev/null
	[ -z "$(records '(.detail // "") | test("one of")')" ]
	# Both counted exactly as the kernel counted them.
	want=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	for _ in $(seq 50); do [ "$(daemon_totals | jq '.by_reason["policy-block"]')" = "$want" ] && break; sleep 0.2; done
	[ "$(daemon_totals | jq '.by_reason["policy-block"]')" -eq "$want" ]
}

@test "lab drops: an outbound TCP connect to a DISCARD port, and an inbound SYN to one, each give a record" {
	start_daemon
	wait_record 30 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "EPERM" ]
	wait_record 20 '.policy == "DISCARDFTPOUT" and .direction == "out" and .protocol == "tcp" and .dst_port == 21 and .src == "'"$A_ADDR"'"' >/dev/null
	in_b "$NET" connect "$A_ADDR" 23 42023 >/dev/null
	wait_record 20 '.policy == "DISCARDTELNETIN" and .direction == "in" and .src == "'"$B_ADDR"'" and .src_port == 42023 and .dst_port == 23' >/dev/null
}

@test "lab drops: the outbound hook detaches while idle and attaches again at the next block" {
	start_daemon --out-hook-idle 8
	wait_record 60 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	for _ in $(seq 120); do [ "$(daemon_totals | jq '.per_flow.outbound')" = false ] && break; sleep 0.5; done
	[ "$(daemon_totals | jq '.per_flow.outbound')" = false ]
	# Detached: the first block is reported from the counter (its policy by last use), and the
	# hook attaches again. Blocks then go on, one a second from a new source port each (an
	# application retrying), so that the hook stays attached however long this machine takes
	# between two steps of this test: one of them must come back as a flow. (Sending a single
	# second block raced the idle timer: attached at the first block, the hook was idle again
	# before a slow run sent the second, and both were reported from the counter.)
	[ "$(in_a "$NET" udp-send "$B_ADDR" 53 43053)" = "EPERM" ]
	wait_record 60 '.direction == "out" and .reason == "policy-block" and .policy == "DISCARDDNSOUT" and .src == null' >/dev/null
	(
		for p in $(seq 43100 43400); do
			[ -e "$WORK/stop" ] && break
			in_a "$NET" udp-send "$B_ADDR" 53 "$p" >/dev/null
			sleep 1
		done
	) 3>&- &
	trickle=$!
	wait_record 120 '.policy == "DISCARDDNSOUT" and .dst_port == 53 and .src_port >= 43100' >/dev/null || {
		touch "$WORK/stop"
		wait "$trickle"
		false
	}
	touch "$WORK/stop"
	wait "$trickle"
	[ "$(daemon_totals | jq '.per_flow.outbound')" = true ]
	# The blocks before the hook attached are counted too: the totals equal the kernel's counter.
	want=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	for _ in $(seq 100); do [ "$(daemon_totals | jq '.by_reason["policy-block"]')" = "$want" ] && break; sleep 0.2; done
	[ "$(daemon_totals | jq '.by_reason["policy-block"]')" -eq "$want" ]
}

@test "lab drops: the host suite's drop tests pass on Debian's 6.1 too (CO-RE: one object, two kernels)" {
	# tests/bats/320-drops.bats as it is: inbound with and without listeners, UDP, two policies
	# in one second, the default discard, another namespace, outbound (here by fexit), --no-bpf,
	# the daemon built without BPF, and the flood. Every one of its tests must pass.
	# The flood is a tenth of the host's: it proves the same (every packet counted, memory
	# bounded), and emulation sends a tenth as fast.
	FLOOD_PACKETS=100000 run bats --tap "$ROOT/tests/bats/320-drops.bats"
	printf '# %s\n' "${lines[@]}" >&3
	[ "$status" -eq 0 ]
	want=$(bats --count "$ROOT/tests/bats/320-drops.bats")
	[ "$want" -ge 8 ]
	[ "$(grep -c '^ok ' <<<"$output")" -eq "$want" ]
}
