#!/usr/bin/env bash
# Benchmark: what mcpsecd spends deciding one new flow of a staged list (both plans, lib/stage.c
# through mcpsec test's evaluator), for lists of N policies to distinct hosts (a hub's peers),
# by whole address and by /64, and a flow that reaches the last policy; then what keeping a
# full table for a restart costs. No kernel, no root.
# usage: bench/stage-hub.sh [FLOWS]   (uses build/stagedecide: make build/stagedecide)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
FLOWS=${1:-20000}
STAGEDECIDE=${STAGEDECIDE:-build/stagedecide}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# N outbound DISCARD policies to distinct /64 networks, then one BYPASS for everything else.
net_site() {
	local n=$1 i
	printf 'ipsec:\n  default: ipv6-only\npolicies:\n'
	for ((i = 0; i < n; i++)); do
		printf '  - name: P%d\n    direction: out\n    remote: fec0:%x:%x::/64\n    protocol: tcp\n    action: discard\n' \
			"$i" $((i / 65536)) $((i % 65536))
	done
	printf '  - name: REST\n    direction: out\n    action: bypass\n'
}

echo "| policies | remote of each | µs a new flow (both plans) | new flows a second |"
echo "|---|---|---|---|"
for n in 10 1000 10000; do
	discard_site "$n" >"$work/host.yaml"
	net_site "$n" >"$work/net.yaml"
	for kind in host net; do
		out=$("$STAGEDECIDE" "$work/$kind.yaml" "$FLOWS" | head -1)
		us=$(sed -E 's/.*: ([0-9.]+) us a new flow.*/\1/' <<<"$out")
		rate=$(sed -E 's/.*, ([0-9]+) new flows a second.*/\1/' <<<"$out")
		printf '| %s | %s | %s | %s |\n' "$n" "$([ "$kind" = host ] && echo "one address" || echo "a /64")" "$us" "$rate"
	done
done
# What keeping the table for a restart costs (--staged-save), with the smallest list.
discard_site 10 >"$work/small.yaml"
echo
"$STAGEDECIDE" "$work/small.yaml" 1000 | tail -n +2
