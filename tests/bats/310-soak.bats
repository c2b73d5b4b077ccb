#!/usr/bin/env bats
# mcpsecd under steady DISCARD traffic for over a minute, with 2,000+ kernel policies: every
# second the counters move, so the daemon dumps every policy to attribute the drops. Its
# resident memory must stay flat (a dump that leaked per policy grew it by ~200 kB/s here).
# The release build is measured: ASan's quarantine would hide a leak and add growth of its own.
load helpers

setup() {
	basic_setup
	one_ns
	ip -n "$NS_A" addr add fec0::1/64 dev lo nodad
	{
		printf 'ipsec:\n  default: ipv6-only\npolicies:\n'
		for ((i = 0; i < 2000; i++)); do
			printf '  - name: P%d\n    direction: out\n    remote: fec0::%x:%x\n    protocol: tcp\n    action: discard\n' \
				"$i" $((i / 65536 + 1)) $((i % 65536))
		done
		printf '  - name: DROPUDP\n    direction: out\n    protocol: udp\n    remote: fec0::99\n    action: discard\n'
		printf '  - name: REST\n    direction: out\n    action: bypass\n'
	} >"$WORK/site.yaml"
	mc_a apply "$WORK/site.yaml" >/dev/null
}

teardown() {
	stop_daemon
	basic_teardown
}

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$DAEMON/status"; }

@test "soak: mcpsecd's memory stays flat under 65 s of drops with 2,000+ policies" {
	[ "$(ip -n "$NS_A" xfrm policy list | grep -c '^src')" -ge 2000 ]
	MCPSECD="$ROOT/mcpsecd" start_daemon
	# ~100 discarded datagrams a second for 65 s.
	in_a /usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
end = time.time() + 65
while time.time() < end:
    for _ in range(10):
        try: s.sendto(b"x", ("fec0::99", 9))
        except OSError: pass
    time.sleep(0.1)
' &
	sender=$!
	sleep 10
	first=$(rss_kb)
	sleep 55
	last=$(rss_kb)
	wait "$sender"
	blocked=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	echo "# rss after 10 s: $first kB, after 65 s: $last kB; $blocked drops" >&3
	[ "$blocked" -ge 5000 ]
	# The daemon saw them: drop records name the policy.
	jq -e 'select(.event == "drop" and .policy == "DROPUDP")' "$STATE/log.jsonl" >/dev/null
	[ $((last - first)) -le 512 ]
}
