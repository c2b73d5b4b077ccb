#!/usr/bin/env bash
# Benchmark: how long mcpsecd takes to restore N committed policies after
# `ip xfrm policy flush`, and how soon it ends when SIGTERM arrives in the middle of such a
# repair. Prints, for each N, the repair time (flush started -> every policy back, best and
# worst of ROUNDS) and the SIGTERM latency (signal sent -> process gone).
# usage: bench/repair.sh [N...]   (default 10000 100000; needs root; uses ./mcpsec, ./mcpsecd)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
MCPSEC=${MCPSEC:-./mcpsec}
MCPSECD=${MCPSECD:-./mcpsecd}
ROUNDS=${ROUNDS:-3}
[ $# -gt 0 ] || set -- 10000 100000
bench_scratch
daemon=
trap 'kill "$daemon" 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Policies in the namespace, from the kernel's own counts (cheap at any size).
count() { ip -n "$ns" xfrm policy count | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i } END { print n + 0 }'; }
wait_count() {
	local want=$1 limit=$(($(now_ms) + 600000))
	while [ "$(count)" -lt "$want" ]; do
		[ "$(now_ms)" -lt "$limit" ] || { echo "repair: not back after 600 s" >&2; exit 1; }
	done
}

for n in "$@"; do
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	rm -rf "$work/state"
	discard_site "$n" >"$work/site.yaml"
	"$MCPSEC" --netns "$ns" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null
	want=$(count)
	"$MCPSECD" --netns "$ns" --state-dir "$work/state" --foreground --no-bpf >"$work/mcpsecd.log" 2>&1 &
	daemon=$!
	for _ in $(seq 600); do [ -S "$work/state/mcpsecd.sock" ] && break; sleep 0.1; done
	times=()
	for _ in $(seq "$ROUNDS"); do
		start=$(now_ms)
		ip -n "$ns" xfrm policy flush
		wait_count "$want"
		times+=($(($(now_ms) - start)))
		sleep 1
	done
	sorted=$(printf '%s\n' "${times[@]}" | sort -n)
	# SIGTERM 0.3 s into a repair.
	ip -n "$ns" xfrm policy flush
	sleep 0.3
	start=$(now_ms)
	kill -TERM "$daemon"
	wait "$daemon" || true
	term=$(($(now_ms) - start))
	daemon=
	printf '%7d policies: repaired in %s ms (best) to %s ms (worst) of %d flushes; SIGTERM mid-repair: gone in %d ms (%d of %d policies back)\n' \
		"$n" "$(head -1 <<<"$sorted")" "$(tail -1 <<<"$sorted")" "$ROUNDS" "$term" "$(count)" "$want"
done
