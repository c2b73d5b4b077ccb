#!/usr/bin/env bats
# Kernel behaviour between two namespaces: what BYPASS, DISCARD, the built-ins and the default
# discard really do to packets, observed as socket errors, deliveries and XFRM counters.
load helpers

# Site with the seed's structure where every PROTECT is a DISCARD (no ESP/AH needed).
apply_a() { mc_a apply "$(site_copy "$1")" >/dev/null; }

# A site file written from the policies given on stdin.
site_with() {
	local f="$WORK/custom/site.yaml" def=$1
	mkdir -p "$WORK/custom"
	{ printf 'ipsec:\n  default: %s\npolicies:\n' "$def"; cat; } >"$f"
	echo "$f"
}

@test "ping6 works both ways through ALLOWICMPV6 and the built-in ND bypass" {
	two_ns
	apply_a "$FIX/bypass-discard.yaml"
	run in_a ping -6 -c 2 -W 2 "$B_ADDR"
	[ "$status" -eq 0 ]
	run in_b ping -6 -c 2 -W 2 "$A_ADDR"
	[ "$status" -eq 0 ]
}

@test "an outbound DISCARD policy blocks TCP to ports 20-21 (EPERM, XfrmOutPolBlock) and BYPASS lets port 22 through" {
	two_ns
	apply_a "$FIX/bypass-discard.yaml"
	start_listener "$WORK/serve.out" in_b "$NET" serve 22 1 10
	before=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	run in_a "$NET" connect "$B_ADDR" 21
	[ "$output" = "EPERM" ]
	run in_a "$NET" connect "$B_ADDR" 20
	[ "$output" = "EPERM" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutPolBlock)" -eq $((before + 2)) ]
	run in_a "$NET" connect "$B_ADDR" 22
	[ "$output" = "ok" ]
	[ "$(listener_result "$WORK/serve.out")" = "got 1" ]
	# The policy that fired shows a last-use time; one that did not, none.
	[ "$(mc_a status ipsec DISCARDFTPOUT --json | jq -r '.policies[0].last_use != null')" = "true" ]
	[ "$(mc_a status ipsec DISCARDBNAOUT --json | jq -r '.policies[0].last_use')" = "null" ]
}

@test "an inbound DISCARD policy drops TCP from the peer's ports 20-21 (XfrmInPolBlock)" {
	two_ns
	apply_a "$FIX/bypass-discard.yaml"
	start_listener "$WORK/serve.out" in_a "$NET" serve 2000 1 4
	before=$(xfrm_stat "$NS_A" XfrmInPolBlock)
	run in_b "$NET" connect "$A_ADDR" 2000 20
	[ "$output" = "timeout" ]
	[ "$(listener_result "$WORK/serve.out")" = "got 0" ]
	[ "$(xfrm_stat "$NS_A" XfrmInPolBlock)" -gt "$before" ]
	# From another source port the same connection is accepted.
	start_listener "$WORK/serve.out" in_a "$NET" serve 2000 1 4
	run in_b "$NET" connect "$A_ADDR" 2000 2222
	[ "$output" = "ok" ]
	[ "$(listener_result "$WORK/serve.out")" = "got 1" ]
}

@test "BNA (IP protocol 49) to the backup host is discarded by DISCARDBNAOUT" {
	two_ns
	apply_a "$FIX/bypass-discard.yaml"
	before=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	run in_a "$NET" raw-send "$B_ADDR" 49
	[ "$output" = "EPERM" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutPolBlock)" -eq $((before + 1)) ]
	run in_a "$NET" raw-send "$B_ADDR" 253
	[ "$output" = "ok" ]
}

@test "without BYPASSALL the default discard drops unmatched IPv6; ND, loopback and own addresses still work" {
	two_ns
	f=$(site_with ipv6-only <<'EOF2'
  - name: UDP9OUT
    direction: out
    protocol: udp
    remote-ports: 9
    action: bypass
  - name: UDP9IN
    direction: in
    protocol: udp
    local-ports: 9
    action: bypass
EOF2
)
	mc_a apply "$f"
	mc_a status ipsec all | grep -q "DEFAULT-DISCARD-OUT6"
	# Unmatched traffic: EPERM, counted against the default discard.
	before=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	run in_a "$NET" connect "$B_ADDR" 22
	[ "$output" = "EPERM" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutPolBlock)" -eq $((before + 1)) ]
	[ "$(mc_a status ipsec DEFAULT-DISCARD-OUT6 --json | jq -r '.policies[0].last_use != null')" = "true" ]
	# UDP 9 reaches B: that needs Neighbor Discovery, which only the built-ins let through.
	start_listener "$WORK/recv.out" in_b "$NET" udp-recv 9 3
	run in_a "$NET" udp-send "$B_ADDR" 9
	[ "$output" = "ok" ]
	[ "$(listener_result "$WORK/recv.out")" = "got 3" ]
	# Loopback and the host's own address keep working under the IPv6 catch-all.
	start_listener "$WORK/serve.out" in_a "$NET" serve 7000 2 4
	[ "$(in_a "$NET" connect ::1 7000)" = "ok" ]
	[ "$(in_a "$NET" connect "$A_ADDR" 7000)" = "ok" ]
	[ "$(listener_result "$WORK/serve.out")" = "got 2" ]
}

@test "deny-all has no built-in bypasses: Neighbor Discovery fails and nothing reaches the peer" {
	two_ns
	f=$(site_with deny-all <<'EOF2'
  - name: UDP9OUT
    direction: out
    protocol: udp
    remote-ports: 9
    action: bypass
EOF2
)
	# check predicts it ...
	run "$MCPSEC" check --json "$f"
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.diagnostics[] | select(.code == "nd-discarded") | .message] | length' <<<"$output")" -eq 2 ]
	run mc_a apply "$f"
	[[ "$output" == *"deny-all installs no built-in bypasses"* ]]
	start_listener "$WORK/recv.out" in_b "$NET" udp-recv 9 3
	in_a "$NET" udp-send "$B_ADDR" 9
	[ "$(listener_result "$WORK/recv.out")" = "got 0" ]
	# ... and the kernel does it: the neighbour never resolved, ND was discarded.
	! ip -n "$NS_A" neigh show "$B_ADDR" | grep -qE 'REACHABLE|STALE|DELAY' || false
}

@test "deny-all with ND bypassed both ways: check has no ND warning and the datagram arrives" {
	two_ns
	f=$(site_with deny-all <<'EOF2'
  - name: NDOUT
    direction: out
    protocol: icmpv6
    icmp: 133-137
    action: bypass
  - name: NDIN
    direction: in
    protocol: icmpv6
    icmp: 133-137
    action: bypass
  - name: UDP9OUT
    direction: out
    protocol: udp
    remote-ports: 9
    action: bypass
EOF2
)
	run "$MCPSEC" check --json "$f"
	[ "$status" -eq 0 ]
	[ "$(jq '[.diagnostics[] | select(.code == "nd-discarded")] | length' <<<"$output")" -eq 0 ]
	mc_a apply "$f"
	# B's side has no policies: only A's deny-all list decides.
	start_listener "$WORK/recv.out" in_b "$NET" udp-recv 9 3
	in_a "$NET" udp-send "$B_ADDR" 9
	[ "$(listener_result "$WORK/recv.out")" = "got 3" ]
	ip -n "$NS_A" neigh show "$B_ADDR" | grep -qE 'REACHABLE|STALE|DELAY'
}

@test "IPv4: default deny discards unmatched IPv4, default bypass lets it pass" {
	two_ns
	f=$(site_with deny <<'EOF2'
  - name: V6ALLOUT
    direction: out
    remote: ::/0
    action: bypass
  - name: V6ALLIN
    direction: in
    remote: ::/0
    action: bypass
EOF2
)
	mc_a apply "$f"
	before=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	run in_a "$NET" connect "$B4" 22
	[ "$output" = "EPERM" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutPolBlock)" -eq $((before + 1)) ]
	sed -i 's/default: deny/default: bypass/' "$f"
	run mc_a apply "$f"
	[[ "$output" == *"removed"* ]]
	start_listener "$WORK/serve.out" in_b "$NET" serve 22 1 5
	run in_a "$NET" connect "$B4" 22
	[ "$output" = "ok" ]
	[ "$(listener_result "$WORK/serve.out")" = "got 1" ]
}

@test "a DISCARD placed before a BYPASS for the same traffic wins, and the other way round" {
	two_ns
	f=$(site_with ipv6-only <<'EOF2'
  - name: FIRSTDISCARD
    direction: out
    protocol: tcp
    remote-ports: 22
    action: discard
  - name: THENBYPASS
    direction: out
    protocol: tcp
    action: bypass
  - name: INALL
    direction: in
    action: bypass
EOF2
)
	mc_a apply "$f"
	[ "$(in_a "$NET" connect "$B_ADDR" 22)" = "EPERM" ]
	# Swap the two: now the bypass comes first.
	"$PY" - "$f" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
a = s.index("  - name: FIRSTDISCARD"); b = s.index("  - name: THENBYPASS"); c = s.index("  - name: INALL")
open(p, "w").write(s[:a] + s[b:c] + s[a:b] + s[c:])
PY
	mc_a apply "$f"
	start_listener "$WORK/serve.out" in_b "$NET" serve 22 1 5
	[ "$(in_a "$NET" connect "$B_ADDR" 22)" = "ok" ]
	[ "$(listener_result "$WORK/serve.out")" = "got 1" ]
}
