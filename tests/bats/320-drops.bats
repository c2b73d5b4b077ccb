#!/usr/bin/env bats
# mcpsecd's per-flow drop records (issue 14) on the host kernel: the BPF hook tp_btf/kfree_skb
# sees each inbound packet an XFRM policy refused, and mcpsecd names its policy by evaluating
# the flow as `mcpsec test` does. Outbound needs fexit, which this kernel may forbid: then the
# daemon says so once and reports outbound drops from the counters. tests/lab/360-drops.bats
# runs the outbound side where fexit works (Debian's 6.1 in the VM).
load helpers

setup() {
	basic_setup
	two_ns
	cat >"$WORK/site.yaml" <<-EOF
	policies:
	  - { name: DISCARDTELNETIN, direction: in, protocol: tcp, local-ports: 23, action: discard }
	  - { name: DISCARDDNSIN, direction: in, protocol: udp, local-ports: 53, action: discard }
	  - { name: DISCARDSYSLOGIN, direction: in, protocol: udp, local-ports: 514, action: discard }
	  - { name: DISCARDFTPOUT, direction: out, protocol: tcp, remote-ports: 21, action: discard }
	  - { name: BYPASSICMPIN, direction: in, protocol: icmpv6, action: bypass }
	  - { name: BYPASSWEBIN, direction: in, protocol: tcp, local-ports: 80, action: bypass }
	  - { name: BYPASSTCPIN, direction: in, protocol: tcp, remote-ports: 1024-65535, local-ports: 1024-65535, action: bypass }
	  - { name: BYPASSALLOUT, direction: out, action: bypass }
	EOF
	mc_a apply "$WORK/site.yaml" >/dev/null
}
teardown() {
	stop_daemon
	basic_teardown
}

# The JSON records of the daemon's log that match a jq filter, one per line.
records() { jq -c "select($1)" "$STATE/log.jsonl" 2>/dev/null; }

# B sends to A: a TCP connect from SRCPORT, or 3 UDP datagrams.
syn_from_b() { in_b "$NET" connect "$A_ADDR" "$1" "$2" >/dev/null; }
udp_from_b() { in_b "$NET" udp-send "$A_ADDR" "$1" "$2" >/dev/null; }

@test "drops: a TCP SYN to an inbound DISCARD port is a record with its exact flow and policy, with and without a listener" {
	start_daemon
	wait_record 2 '.event == "daemon" and (.reason | startswith("per-flow"))' >/dev/null
	syn_from_b 23 40023 # nothing listens on 23: the kernel frees it as NO_SOCKET after the policy refused it
	wait_record 5 '.policy == "DISCARDTELNETIN" and .src_port == 40023' >/dev/null
	r=$(records '.policy == "DISCARDTELNETIN" and .src_port == 40023' | head -1)
	[ "$(jq -r '[.event, .reason, .direction, .protocol, .src, .src_port, .dst, .dst_port] | join(" ")' <<<"$r")" = \
	  "drop policy-block in tcp $B_ADDR 40023 $A_ADDR 23" ]
	[ "$(jq -r .flow <<<"$r")" = "tcp $B_ADDR port 40023 -> $A_ADDR port 23" ]
	# With a listener the kernel frees it as XFRM_POLICY: the same record.
	start_listener "$WORK/l23" in_a "$NET" serve 23 1 8
	syn_from_b 23 40123
	wait_record 5 '.policy == "DISCARDTELNETIN" and .src_port == 40123 and .dst_port == 23' >/dev/null
	[ "$(listener_result "$WORK/l23")" = "got 0" ]
	run mc_a log
	[[ "$output" == *"drop policy-block in policy DISCARDTELNETIN"*": tcp $B_ADDR port 40123 -> $A_ADDR port 23"* ]]
	# A closed port that the list bypasses is no IPsec drop: not reported.
	syn_from_b 80 40080
	sleep 2.5
	[ -z "$(records '.dst_port == 80')" ]
}

@test "drops: UDP to an inbound DISCARD port, with and without a listener; the totals agree with XfrmInPolBlock" {
	start_daemon
	udp_from_b 53 45353
	wait_record 5 '.policy == "DISCARDDNSIN" and .src_port == 45353 and .count == 3' >/dev/null
	start_listener "$WORK/l53" in_a "$NET" udp-recv 53 6 3
	udp_from_b 53 45354
	wait_record 5 '.policy == "DISCARDDNSIN" and .src_port == 45354 and .protocol == "udp" and .dst == "'"$A_ADDR"'"' >/dev/null
	[ "$(listener_result "$WORK/l53")" = "got 0" ]
	blocked=$(xfrm_stat "$NS_A" XfrmInPolBlock)
	[ "$blocked" -eq 6 ]
	for _ in $(seq 40); do [ "$(daemon_totals | jq '.by_policy.DISCARDDNSIN')" = 6 ] && break; sleep 0.1; done
	[ "$(daemon_totals | jq '.by_policy.DISCARDDNSIN')" -eq "$blocked" ]
}

@test "drops: two inbound DISCARD policies hit in the same second are both named exactly; the default discard by its name" {
	start_daemon
	udp_from_b 53 46053 &
	local sender=$!
	udp_from_b 514 46514
	wait "$sender"
	syn_from_b 25 46025 # no policy of the list: DEFAULT-DISCARD-IN6
	wait_record 5 '.policy == "DISCARDDNSIN" and .src_port == 46053 and .dst_port == 53' >/dev/null
	wait_record 5 '.policy == "DISCARDSYSLOGIN" and .src_port == 46514 and .dst_port == 514' >/dev/null
	wait_record 5 '.policy == "DEFAULT-DISCARD-IN6" and .src_port == 46025 and .dst_port == 25' >/dev/null
	[ -z "$(records '(.detail // "") | test("one of")')" ]
	# mcpsec log filters by policy (any case), port and address.
	run mc_a log --policy discardsysloGIN
	[ "$status" -eq 0 ]
	[[ "$output" == *"DISCARDSYSLOGIN"* ]]
	[[ "$output" != *"DISCARDDNSIN"* && "$output" != *"DEFAULT-DISCARD-IN6"* ]]
	[ "$(mc_a log --port 46053 --json | jq -r .policy | sort -u)" = DISCARDDNSIN ]
	[ "$(mc_a log --addr "$B_ADDR" --port 25 --json | jq -r .policy | sort -u)" = DEFAULT-DISCARD-IN6 ]
	[ -z "$(mc_a log --addr fec0::9 --json)" ]
	[ "$(mc_a log --addr fec0::/16 --policy DISCARDDNSIN --json | jq -r .src_port | sort -u)" = 46053 ]
	run mc_a log --port 70000
	[ "$status" -eq 1 ]
	run mc_a status ipsec all
	[[ "$output" == *"top discarded flows by policy:"* ]]
	[[ "$output" == *"DISCARDSYSLOGIN in: udp $B_ADDR port 46514 -> $A_ADDR port 514 x3"* ]]
	[ "$(mc_a status ipsec all --json | jq -r '.daemon.totals.top_flows[] | select(.policy == "DEFAULT-DISCARD-IN6") | .flow')" = \
	  "tcp $B_ADDR port 46025 -> $A_ADDR port 25" ]
}

@test "drops: another namespace's drops are never reported" {
	# B gets a list of its own that discards UDP 53; A sends there. Only B drops anything.
	mkdir -p "$WORK/b"
	printf 'policies:\n  - { name: BDISCARDDNS, direction: in, protocol: udp, local-ports: 53, action: discard }\n  - { name: BALLIN, direction: in, action: bypass }\n  - { name: BALLOUT, direction: out, action: bypass }\n' >"$WORK/b/site.yaml"
	"$MCPSEC" --netns "$NS_B" --state-dir "$STATE-b" apply "$WORK/b/site.yaml" >/dev/null
	start_daemon
	in_a "$NET" udp-send "$B_ADDR" 53 47053 >/dev/null
	# And one drop in A, so that a silent hook cannot pass for a correct one.
	udp_from_b 53 47054
	wait_record 5 '.policy == "DISCARDDNSIN" and .src_port == 47054' >/dev/null
	[ "$(xfrm_stat "$NS_B" XfrmInPolBlock)" -eq 3 ]
	sleep 1.5
	[ -z "$(records '.src_port == 47053 or .dst == "'"$B_ADDR"'" or .policy == "BDISCARDDNS"')" ]
}

@test "drops: outbound drops come from the counters where fexit is refused, and the reason is said once" {
	start_daemon
	wait_record 2 '.event == "daemon" and (.reason | startswith("per-flow"))' >/dev/null
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "EPERM" ]
	if [ -n "$(records '.reason == "per-flow"')" ]; then
		# A kernel that allows trampolines: the outbound flow itself.
		wait_record 5 '.policy == "DISCARDFTPOUT" and .direction == "out" and .dst_port == 21 and .src == "'"$A_ADDR"'"' >/dev/null
	else
		[ "$(records '.reason == "per-flow-inbound"' | wc -l)" -eq 1 ]
		[[ "$(records '.reason == "per-flow-inbound"' | jq -r .detail)" == *"fexit/xfrm_lookup_with_ifid refused"* ]]
		wait_record 5 '.reason == "policy-block" and .direction == "out" and .policy == "DISCARDFTPOUT"' >/dev/null
		[ -z "$(records '.direction == "out" and .reason == "policy-block" and .src != null')" ]
	fi
	run mc_a status ipsec all
	[[ "$output" == *"per-flow drop records: inbound (outbound by counters only)"* || "$(records '.reason == "per-flow"')" ]]
}

@test "drops: --no-bpf gives the counter records of before" {
	start_daemon --no-bpf
	wait_record 2 '.reason == "per-flow-off"' >/dev/null
	udp_from_b 53 48053
	wait_record 5 '.reason == "policy-block" and .direction == "in" and .policy == "DISCARDDNSIN" and .count == 3' >/dev/null
	[ -z "$(records '.src != null and .event == "drop"')" ]
	run mc_a status ipsec all
	[[ "$output" == *"per-flow drop records: off (counter records only)"* ]]
}

@test "drops: mcpsecd built without BPF (make WITH_BPF=0) links no libbpf, says why, and records drops by counters" {
	nobpf="$ROOT/build/nobpf/san/mcpsecd"
	[ -x "$nobpf" ] # make check and make bats build it
	run ldd "$nobpf"
	[ "$status" -eq 0 ]
	[[ "$output" != *libbpf* ]]
	MCPSECD=$nobpf start_daemon
	wait_record 2 '.reason == "per-flow-off" and (.detail | contains("built without BPF (make WITH_BPF=0)"))' >/dev/null
	udp_from_b 53 48053
	wait_record 5 '.reason == "policy-block" and .direction == "in" and .policy == "DISCARDDNSIN" and .count == 3' >/dev/null
	[ -z "$(records '.src != null and .event == "drop"')" ]
}

@test "drops: a flood of discarded packets (a million on the host): memory bounded, the daemon answers, totals equal XfrmInPolBlock" {
	# FLOOD_PACKETS: the lab VM runs this file under emulation with a smaller flood.
	local flood=${FLOOD_PACKETS:-1000000}
	# The release build: the sanitizer build's allocator quarantine would be measured instead.
	t0=$(date +%s)
	MCPSECD=$ROOT/mcpsecd start_daemon
	rss() { awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON/status"; }
	udp_from_b 53 49000
	wait_record 5 '.policy == "DISCARDDNSIN" and .src_port == 49000' >/dev/null
	before=$(rss)
	# At least $flood datagrams from 1,000 source ports, as fast as B sends them (a C sender:
	# bench/udpblast.c), one second at a time until the kernel has blocked that many.
	cc -O2 -o "$WORK/udpblast" "$ROOT/bench/udpblast.c"
	for _ in $(seq 300); do
		[ "$(xfrm_stat "$NS_A" XfrmInPolBlock)" -ge $((flood + 3)) ] && break
		in_b "$WORK/udpblast" "$A_ADDR" 53 1 1000 >/dev/null
		kill -0 "$DAEMON"
	done
	want=$(xfrm_stat "$NS_A" XfrmInPolBlock)
	[ "$want" -ge $((flood + 3)) ]
	got=
	for _ in $(seq 300); do
		got=$(daemon_totals | jq '.by_reason["policy-block"]')
		[ "$got" = "$want" ] && break
		sleep 0.2
	done
	flows=$(daemon_totals | jq '.by_policy.DISCARDDNSIN')
	after=$(rss)
	echo "# XfrmInPolBlock $want, daemon policy-block total $got, of them seen as flows $flows; RSS ${before} KiB -> ${after} KiB" >&3
	# Every packet counted: as flows, and any the hook did not see by the record that says so (a
	# tracing program skips a packet freed while it runs on the same CPU: rare, under emulation
	# in the lab VM; the gap rule is unit-tested). Nearly all of them as flows.
	[ "$got" -eq "$want" ]
	[ $((flows * 1000)) -ge $((want * 999)) ]
	[ $((after - before)) -lt 8192 ]
	# The log stayed bounded by the rate limit (mcpsecd's defaults: a burst of 200, then 20 records
	# a second), over as long as this daemon has run: a bound from this run's own duration, so
	# that a slower machine, whose flood lasts longer, gets the allowance it is due.
	logged=$(wc -l <"$STATE/log.jsonl")
	elapsed=$(($(date +%s) - t0 + 1))
	echo "# log: $logged lines in $elapsed s; the rate limit allows $((200 + 20 * elapsed))" >&3
	[ "$logged" -le $((200 + 20 * elapsed)) ]
	kill -0 "$DAEMON"
}
