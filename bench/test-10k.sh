#!/usr/bin/env bash
# Benchmark: `mcpsec test` with full port ranges (1-65535 both sides) against a 10,000-policy
# list whose policies all share one address pair (the worst case: every policy is a candidate
# and cuts the ranges), then the same number of policies each on its own remote host, tested over
# a /112 of remotes (the address dimension is split as the ports are). Prints the wall times
# (best of 3). usage: bench/test-10k.sh [N]
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
{
	printf 'policies:\n'
	for ((i = 0; i < N; i++)); do
		printf '  - name: H%d\n    direction: out\n    remote: fec0::%x\n    protocol: tcp\n    remote-ports: %d\n    action: %s\n' \
			"$i" $((0x100 + i)) $((1 + i % 6000)) "$([ $((i % 2)) = 0 ] && echo discard || echo bypass)"
	done
	printf '  - name: REST\n    direction: out\n    action: bypass\n'
} >"$work/hosts.yaml"
# best_of SITE ARGS...: the best wall time of 3 runs in $best, the last output in $out.
best_of() {
	local site=$1 s e t
	shift
	best=
	for _ in 1 2 3; do
		s=$(date +%s.%N)
		out=$("$MCPSEC" test "$site" "$@" --json)
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
	done
}
best_of "$work/site.yaml" --ulp tcp --dir out --local-ip fec0::1 --remote-ip fec0::2
printf 'mcpsec test, %d policies on one address pair, ports 1-65535 x 1-65535: %.3f s, %d result ranges\n' \
	"$N" "$best" "$(jq '.results | length' <<<"$out")"
best_of "$work/hosts.yaml" --ulp tcp --dir out --local-ip fec0::1 --remote-ip fec0::/112
printf 'mcpsec test, %d policies on %d remote hosts, remote fec0::/112, ports 1-65535 x 1-65535: %.3f s, %d result ranges\n' \
	"$N" "$N" "$best" "$(jq '.results | length' <<<"$out")"
