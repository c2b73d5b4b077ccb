#!/usr/bin/env bash
# Benchmark: what one metrics scrape costs with N policies: `mcpsec status ipsec all
# --prometheus` (a kernel dump, the names, the rendering) in a namespace holding N outbound
# DISCARD policies (each one kernel policy), and the size of the text. mcpsecd pays the same
# dump and rendering once per --metrics-interval. Prints best of 5 and the peak RSS.
# usage: bench/metrics.sh [N]   (needs root; uses the optimized ./mcpsec)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
N=${1:-10000}
MCPSEC=${MCPSEC:-./mcpsec}
bench_scratch
discard_site "$N" >"$work/site.yaml"
ip netns add "$ns"
ip -n "$ns" link set lo up
"$MCPSEC" --netns "$ns" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null
times=()
for _ in 1 2 3 4 5; do
	s=$(date +%s.%N)
	"$MCPSEC" --netns "$ns" --state-dir "$work/state" status ipsec all --prometheus >"$work/m.prom"
	e=$(date +%s.%N)
	times+=("$(echo "$e - $s" | bc)")
done
rss=$(/usr/bin/time -f %M "$MCPSEC" --netns "$ns" --state-dir "$work/state" status ipsec all --prometheus 2>&1 >/dev/null)
printf 'policies %d: status --prometheus best %.3f s, %d lines, %d bytes, peak RSS %d KiB; promtool: %s\n' \
	"$N" "$(printf '%s\n' "${times[@]}" | sort -n | head -1)" "$(wc -l <"$work/m.prom")" "$(wc -c <"$work/m.prom")" "$rss" \
	"$(promtool check metrics <"$work/m.prom" >/dev/null 2>&1 && echo ok || echo FAILED)"
