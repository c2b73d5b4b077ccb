#!/usr/bin/env bash
# Benchmark: the input shapes that were super-linear (issue 10): `check` of N policies of
# protocol any to distinct hosts, of N tcp policies, of N duplicate names, of deeply nested
# YAML, and `import` of N unnamed MCP policies. Prints one line per shape (best of 3 wall
# times). usage: bench/shapes.sh [N]   (default 20000; import uses N/5 unless IMPORT_N is set)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
IN=${IMPORT_N:-$((N / 5))}
MCPSEC=${MCPSEC:-./mcpsec}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

best_of_3() { # best_of_3 CMD... -> seconds
	local best="" s e t
	for _ in 1 2 3; do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || true
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
	done
	printf '%.3f' "$best"
}

# Policies of protocol any, each to its own host (the lint's worst case before).
awk -v n="$N" 'BEGIN { print "policies:"; for (i = 0; i < n; i++)
	printf "  - name: P%d\n    direction: %s\n    remote: fec0::%x:%x\n    action: %s\n", i, (i % 2 ? "in" : "out"), int(i / 65536) + 1, i % 65536, (i % 3 ? "bypass" : "discard") }' >"$work/any.yaml"
# TCP policies with distinct ports on one host.
awk -v n="$N" 'BEGIN { print "policies:"; for (i = 0; i < n; i++)
	printf "  - name: P%d\n    direction: out\n    remote: fec0::2\n    protocol: tcp\n    remote-ports: %d\n    action: %s\n", i, 1 + (i * 3) % 65000, (i % 2 ? "bypass" : "discard") }' >"$work/tcp.yaml"
# Every policy with the same name.
awk -v n="$N" 'BEGIN { print "policies:"; for (i = 0; i < n; i++)
	printf "  - name: SAME\n    direction: out\n    action: bypass\n" }' >"$work/dup.yaml"
# A mapping N deep.
awk -v n="$N" 'BEGIN { printf "policies: "; for (i = 0; i < n; i++) printf "["; for (i = 0; i < n; i++) printf "]"; print "" }' >"$work/deep.yaml"
# MCP listing of IN unnamed policies.
awk -v n="$IN" 'BEGIN { for (i = 0; i < n; i++)
	printf "Direction = OUT\nDisposition = BYPASS\nNext Layer Protocol = TCP\nRemote Port = %d\n\n", 1 + i }' >"$work/listing.txt"

printf 'check, %d policies of protocol any to distinct hosts: %s s\n' "$N" "$(best_of_3 "$MCPSEC" check "$work/any.yaml")"
printf 'check, %d tcp policies to one host:                  %s s\n' "$N" "$(best_of_3 "$MCPSEC" check "$work/tcp.yaml")"
printf 'check, %d policies with one duplicated name:        %s s\n' "$N" "$(best_of_3 "$MCPSEC" check "$work/dup.yaml")"
printf 'check, YAML nested %d deep:                         %s s\n' "$N" "$(best_of_3 "$MCPSEC" check "$work/deep.yaml")"
printf 'import, %d unnamed policies:                         %s s\n' "$IN" "$(best_of_3 "$MCPSEC" import "$work/listing.txt")"
