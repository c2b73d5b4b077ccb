#!/usr/bin/env bash
# Benchmark: `mcpsec test` with full port ranges (1-65535 both sides) against a 10,000-policy
# list whose policies all share one address pair (the worst case: every policy is a candidate
# and cuts the ranges). Prints the wall time (best of 3). usage: bench/test-10k.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
MCPSEC=${MCPSEC:-./mcpsec}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
	printf 'policies:\n'
	for ((i = 0; i < N; i++)); do
		printf '  - name: P%d\n    direction: out\n    remote: fec0::2\n    protocol: tcp\n    remote-ports: %d\n    action: %s\n' \
			"$i" $((1 + i * 6)) "$([ $((i % 2)) = 0 ] && echo discard || echo bypass)"
	done
} >"$work/site.yaml"
best=
for _ in 1 2 3; do
	s=$(date +%s.%N)
	out=$("$MCPSEC" test "$work/site.yaml" --ulp tcp --dir out --local-ip fec0::1 --remote-ip fec0::2 --json)
	e=$(date +%s.%N)
	t=$(echo "$e - $s" | bc)
	[ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ] && best=$t
done
printf 'mcpsec test, %d policies on one address pair, ports 1-65535 x 1-65535: %.3f s, %d result ranges\n' \
	"$N" "$best" "$(jq '.results | length' <<<"$out")"
