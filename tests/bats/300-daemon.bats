#!/usr/bin/env bats
# mcpsecd on the host kernel, in network namespaces: drop records by observation (EPERM,
# counters, ACQUIRE), drift repair, signals, overruns. SAs and ICV failures: tests/lab.
load helpers

DISCARDBNA_PRIO=536875776 # DISCARDBNAOUT's priority in bypass-discard.yaml (third user policy)

setup() {
	basic_setup
	two_ns
	SITE=$(site_copy "$FIX/bypass-discard.yaml")
	mc_a apply "$SITE" >/dev/null
}
teardown() {
	stop_daemon
	basic_teardown
}

@test "mcpsecd: a DISCARD hit is reported within 2 s, attributed to its policy, in log and status" {
	start_daemon
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "EPERM" ]
	ms=$(wait_record 2 '.event == "drop" and .reason == "policy-block" and .policy == "DISCARDFTPOUT" and .direction == "out"')
	echo "# reported after $ms ms"
	run mc_a log
	[[ "$output" == *"drop policy-block out policy DISCARDFTPOUT"* ]]
	[ "$(daemon_totals | jq '.by_policy.DISCARDFTPOUT')" -eq 1 ]
	run mc_a status ipsec all
	echo "status $status: $output" | tail -6
	[[ "$output" == *"dropped packets by policy: DISCARDFTPOUT 1"* ]]
}

@test "mcpsecd: two DISCARD policies hit in the same second are named as candidates, not guessed" {
	start_daemon
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "EPERM" ]
	[ "$(in_a "$NET" raw-send "$B_ADDR" 49)" = "EPERM" ]
	wait_record 3 '.reason == "policy-block" and (.detail | test("one of: DISCARDBNAOUT,DISCARDFTPOUT|one of: DISCARDFTPOUT,DISCARDBNAOUT")) or .policy == "DISCARDBNAOUT"'
	# Whatever the split across seconds, the totals count both packets.
	for _ in $(seq 40); do [ "$(daemon_totals | jq '.by_reason["policy-block"]')" = 2 ] && break; sleep 0.05; done
	[ "$(daemon_totals | jq '.by_reason["policy-block"]')" -eq 2 ]
}

@test "mcpsecd: ACQUIRE (a PROTECT policy without its SA) names the policy, the flow and the missing SA" {
	start_daemon --report-only
	# This kernel cannot hold ESP SAs: make DISCARDBNAOUT a PROTECT whose SA is missing, as
	# someone editing by hand would (report-only: the daemon logs the change, keeps it).
	ip -n "$NS_A" xfrm policy update src "$A_ADDR/128" dst "$B_ADDR/128" proto 49 dir out \
		priority "$DISCARDBNA_PRIO" tmpl proto esp spi 24577 reqid 0x6d637300 mode transport
	wait_record 2 '.event == "drift" and .reason == "policy-changed" and .policy == "DISCARDBNAOUT" and (.detail | test("report only"))'
	in_a "$NET" raw-send "$B_ADDR" 49
	ms=$(wait_record 2 '.event == "acquire" and .policy == "DISCARDBNAOUT" and .flow == "bip '"$A_ADDR -> $B_ADDR"'" and (.detail | test("esp spi 24577 \\(0x6001\\)"))')
	echo "# ACQUIRE reported after $ms ms"
	wait_record 2 '.event == "drop" and .reason == "no-sa" and .count == 1'
}

@test "mcpsecd: ip xfrm policy flush is repaired within 1 s and logged" {
	before=$(xfrm_canon "$NS_A")
	start_daemon
	ip -n "$NS_A" xfrm policy flush
	start=$(date +%s%N)
	for _ in $(seq 40); do
		[ "$(xfrm_canon "$NS_A")" = "$before" ] && break
		sleep 0.025
	done
	took=$((($(date +%s%N) - start) / 1000000))
	echo "# restored after $took ms"
	[ "$(xfrm_canon "$NS_A")" = "$before" ]
	[ "$took" -lt 1000 ]
	wait_record 1 '.event == "drift" and .reason == "policy-missing" and .policy == "DISCARDFTPOUT"'
	wait_record 1 '.event == "repair" and .reason == "restored"'
}

@test "mcpsecd: a flush is repaired in one pass; the daemon's own changes are never taken for drift" {
	# A link-local address finishing DAD would make the daemon look again, rightly.
	for _ in $(seq 100); do [ -z "$(ip -n "$NS_A" -6 addr show tentative)" ] && break; sleep 0.1; done
	start_daemon
	checks() { daemon_totals | jq .checks; }
	c0=$(checks)
	ip -n "$NS_A" xfrm policy flush
	wait_record 5 '.event == "repair" and .reason == "restored"' >/dev/null
	# The repair's own XFRM events (sent from the daemon's port) must not start another pass:
	# one came from the flush, none from the repair. 1.5 s is 15 times the daemon's debounce.
	sleep 1.5
	[ "$(checks)" -eq $((c0 + 1)) ]
	[ "$(jq -c 'select(.event == "repair")' "$STATE/log.jsonl" | wc -l)" -eq 1 ]
}

@test "mcpsecd --report-only logs a deleted policy and leaves it deleted; SIGHUP re-applies" {
	before=$(xfrm_canon "$NS_A")
	start_daemon --report-only
	ip -n "$NS_A" xfrm policy delete src ::/0 dst "$B_ADDR/128" proto tcp dport 20 dir out 2>/dev/null ||
		ip -n "$NS_A" xfrm policy flush
	wait_record 2 '.event == "drift" and (.detail | test("report only"))'
	sleep 0.5
	[ "$(xfrm_canon "$NS_A")" != "$before" ]
	kill -HUP "$DAEMON"
	wait_record 2 '.event == "repair" and .reason == "reapplied"'
	[ "$(xfrm_canon "$NS_A")" = "$before" ]
}

@test "mcpsecd never fights mcpsec apply: a changed site applied while it runs stays as applied" {
	start_daemon
	sed -i 's/remote-ports: 20-21/remote-ports: 20-23/' "$SITE"
	mc_a apply "$SITE"
	after=$(xfrm_canon "$NS_A")
	sleep 1.5
	[ "$(xfrm_canon "$NS_A")" = "$after" ]
	[ "$(jq -c 'select(.event == "drift" or .event == "repair")' "$STATE/log.jsonl" | wc -l)" -eq 0 ]
}

@test "mcpsecd: SIGTERM exits cleanly and leaves every policy installed (fail closed)" {
	before=$(xfrm_canon "$NS_A")
	start_daemon
	kill -TERM "$DAEMON"
	wait "$DAEMON"
	[ "$(xfrm_canon "$NS_A")" = "$before" ]
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "EPERM" ]
	jq -e 'select(.event == "daemon" and .reason == "stop")' "$STATE/log.jsonl"
	run mc_a status ipsec all
	[[ "$output" == *"no mcpsecd watches this namespace"* ]]
}

@test "mcpsecd: 10,000 distinct flows in a burst: no crash, overruns counted, exact totals" {
	# A hand-made PROTECT policy (no SA) for a /112 of remotes: each destination its own ACQUIRE.
	ip -n "$NS_A" xfrm policy add src ::/0 dst fec0::2222:a00:bff:fe3a:0/112 proto udp dir out priority 100 \
		tmpl proto esp reqid 7 mode transport
	start_daemon --netlink-buffer 4096 --burst 50
	"$PY" - "$NS_A" <<'PY'
import socket, subprocess, sys
# Inside namespace A: 10,000 datagrams to 10,000 addresses; each one is dropped for want of an SA.
code = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range(10000):
    try: s.sendto(b"x", ("fec0::2222:a00:bff:fe3a:%x" % (0x1000 + i), 9))
    except OSError: pass
"""
subprocess.run(["ip", "netns", "exec", sys.argv[1], "/usr/bin/python3", "-c", code], check=True)
PY
	want=$(xfrm_stat "$NS_A" XfrmOutNoStates)
	[ "$want" -ge 10000 ]
	for _ in $(seq 100); do [ "$(daemon_totals | jq '.by_reason["no-sa"]')" = "$want" ] && break; sleep 0.1; done
	totals=$(daemon_totals)
	echo "# $totals"
	[ "$(jq '.by_reason["no-sa"]' <<<"$totals")" -eq "$want" ]
	[ "$(jq '.overruns' <<<"$totals")" -ge 1 ]
	kill -0 "$DAEMON"
	wait_record 2 '.event == "overrun"'
	# Records past the burst (50) are suppressed. Under load the kernel can drop so many events
	# (the overruns above) that fewer than the burst arrive: then nothing is left to suppress.
	if [ "$(jq '.events' <<<"$totals")" -gt 60 ]; then
		wait_record 3 '.event == "suppressed" and .count > 0'
	else
		echo "# only $(jq '.events' <<<"$totals") events arrived (the rest overran): no suppression due" >&3
	fi
	# The log stayed bounded by the rate limit, not by the 10,000 events.
	[ "$(wc -l <"$STATE/log.jsonl")" -lt 1000 ]
}

@test "mcpsecd: the log rotates past --log-max; mcpsec log reads both files, --since and --json filter" {
	# Each flush logs about 4.4 KB (a drift record per policy, then the repair): 8 KB per file
	# rotates once over three flushes and keeps at least two repairs.
	start_daemon --log-max 8192
	for _ in 1 2 3; do
		ip -n "$NS_A" xfrm policy flush
		wait_record 2 '.event == "repair"' >/dev/null
		sleep 0.3
	done
	[ -f "$STATE/log.jsonl.1" ]
	[ "$(stat -c %s "$STATE/log.jsonl")" -lt 16384 ]
	[ "$(mc_a log | grep -c ' repair restored')" -ge 2 ]
	[ "$(mc_a log --json | jq -s 'length')" -eq "$(cat "$STATE/log.jsonl.1" "$STATE/log.jsonl" | wc -l)" ]
	[ -z "$(mc_a log --since "$(( $(date +%s) + 60 ))")" ]
	run mc_a log --since yesterday
	[ "$status" -eq 1 ]
}

@test "mcpsecd: one daemon per namespace; a second one refuses to start" {
	start_daemon
	run "$MCPSECD" --netns "$NS_A" --state-dir "$STATE" --foreground
	[ "$status" -eq 1 ]
	[[ "$output" == *"another mcpsecd already watches"* ]]
}

@test "mcpsec log --follow prints new records as the daemon writes them" {
	start_daemon
	"$MCPSEC" --netns "$NS_A" --state-dir "$STATE" log --follow >"$WORK/follow.out" 2>&1 3>&- &
	follower=$!
	sleep 0.5
	[ "$(in_a "$NET" connect "$B_ADDR" 20)" = "EPERM" ]
	for _ in $(seq 60); do grep -q "drop policy-block out policy DISCARDFTPOUT" "$WORK/follow.out" && break; sleep 0.05; done
	kill "$follower"
	wait "$follower" 2>/dev/null || true
	grep -q "daemon start" "$WORK/follow.out"
	grep -q "drop policy-block out policy DISCARDFTPOUT" "$WORK/follow.out"
}

@test "mcpsecd: a new IPv6 address gets its own-address bypass within 1 s, logged as an address change" {
	start_daemon
	ip -n "$NS_A" addr add fec0::2222:a00:bff:fe3a:200/64 dev eth0 nodad
	for _ in $(seq 40); do
		ip -n "$NS_A" xfrm policy list | grep -q "src fec0::2222:a00:bff:fe3a:200/128 dst fec0::2222:a00:bff:fe3a:200/128" && break
		sleep 0.025
	done
	ip -n "$NS_A" xfrm policy list | grep -q "src fec0::2222:a00:bff:fe3a:200/128 dst fec0::2222:a00:bff:fe3a:200/128"
	wait_record 1 '.event == "drift" and .reason == "own-addresses-changed" and (.detail | test("fe3a:200"))'
	[ "$(jq -c 'select(.reason == "policy-missing")' "$STATE/log.jsonl" | wc -l)" -eq 0 ]
}

@test "mcpsecd: a daemon too busy to accept (its backlog full) delays status by the timeout, never for ever" {
	# A socket in mcpsecd's place that never accepts, its backlog filled by clients that wait.
	"$PY" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(0)
held = []
for _ in range(4):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.setblocking(False)
    try: c.connect(sys.argv[1])
    except (BlockingIOError, OSError): pass
    held.append(c)
open(sys.argv[2], "w").close()
time.sleep(60)' "$STATE/mcpsecd.sock" "$WORK/full" &
	HOLDER=$!
	for _ in $(seq 50); do [ -e "$WORK/full" ] && break; sleep 0.1; done
	[ -e "$WORK/full" ]
	run timeout 10 "$MCPSEC" --netns "$NS_A" --state-dir "$STATE" status ipsec all
	kill "$HOLDER"
	[ "$status" -ne 124 ]
	[[ "$output" == *"BYPASS"* || "$output" == *"DISCARD"* ]]
}
