#!/usr/bin/env bash
# Benchmark of mcpsecd's per-flow drop hook (issue 14), in two network namespaces:
#  1. a flood of discarded UDP datagrams (from 1,000 source ports) into A: packets the daemon
#     accounted per CPU-second of the daemon, its memory before and after, and whether its total
#     equals XfrmInPolBlock;
#  2. the cost on traffic that is not dropped: bypassed unconnected UDP from A to B (every
#     datagram its own route and policy lookup, where the outbound hook sits), with mcpsecd
#     running with its hooks and with --no-bpf (so that only the hooks differ), alternately,
#     5 runs each; the ratio of the medians. Delivered inbound traffic never meets the inbound
#     hook (it is on kfree_skb, which a delivered packet does not pass), so it costs nothing there.
# Runs on the host (inbound hook only where fexit is refused) and in the lab VM:
#   netns-lab/vm/run -- bench/drops.sh
# usage: bench/drops.sh [FLOOD_SECONDS] [STREAM_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOD=${1:-4}
STREAM=${2:-3}
MCPSEC=${MCPSEC:-./mcpsec}
MCPSECD=${MCPSECD:-./mcpsecd}
work=$(mktemp -d)
A=mcb-$$-a B=mcb-$$-b
AA=fec0::2222:a00:bff:fe3a:100 BA=fec0::2222:a00:bff:fe3a:127
daemon=
cleanup() {
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -o "$work/udpblast" bench/udpblast.c
ip netns add "$A"
ip netns add "$B"
ip link add "vb$$" netns "$A" type veth peer name "wb$$" netns "$B"
ip -n "$A" addr add "$AA/64" dev "vb$$" nodad
ip -n "$B" addr add "$BA/64" dev "wb$$" nodad
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set "vb$$" up
ip -n "$B" link set "wb$$" up
cat >"$work/site.yaml" <<EOF2
policies:
  - { name: DISCARDDNSIN, direction: in, protocol: udp, local-ports: 53, action: discard }
  - { name: BYPASSALLIN, direction: in, action: bypass }
  - { name: BYPASSALLOUT, direction: out, action: bypass }
EOF2
"$MCPSEC" --netns "$A" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null
start_daemon() {
	"$MCPSECD" --netns "$A" --state-dir "$work/state" --foreground "$@" >"$work/d.out" 2>&1 &
	daemon=$!
	for _ in $(seq 100); do
		"$MCPSEC" --netns "$A" --state-dir "$work/state" status ipsec all --json 2>/dev/null |
			jq -e '.daemon != null' >/dev/null 2>&1 && break
		sleep 0.1
	done
}
stop_daemon() { kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# shellcheck disable=SC2016 # $1 and $2 are awk's
stat_of() { ip netns exec "$A" awk -v k="$1" '$1 == k { print $2 }' /proc/net/xfrm_stat; }

# 1. The flood.
start_daemon
hooks=$(jq -r 'select(.event == "daemon" and (.reason | startswith("per-flow"))) | .reason' "$work/state/log.jsonl" | head -1)
rss0=$(rss_kib "$daemon")
cpu0=$(cpu_ticks "$daemon")
blocked0=$(stat_of XfrmInPolBlock)
sent=$(ip netns exec "$B" "$work/udpblast" "$AA" 53 "$FLOOD" 1000)
blocked=$(($(stat_of XfrmInPolBlock) - blocked0))
total=
for _ in $(seq 50); do
	total=$("$MCPSEC" --netns "$A" --state-dir "$work/state" status ipsec all --json | jq '.daemon.totals.by_policy.DISCARDDNSIN // 0')
	[ "$total" -ge "$blocked" ] && break
	sleep 0.2
done
cpu=$(($(cpu_ticks "$daemon") - cpu0))
rss1=$(rss_kib "$daemon")
hz=$(getconf CLK_TCK)
rate=$(awk -v n="$blocked" -v t="$cpu" -v hz="$hz" 'BEGIN { s = t / hz; if (s < 1 / hz) s = 1 / hz; printf "%.0f", n / s }')
printf 'flood: %s (%s); XfrmInPolBlock +%d, daemon total %d (%s); daemon CPU %.2f s: %s drops per CPU-second; RSS %d KiB -> %d KiB\n' \
	"$sent" "$hooks" "$blocked" "$total" "$([ "$total" -eq "$blocked" ] && echo equal || echo DIFFERENT)" \
	"$(awk -v t="$cpu" -v hz="$hz" 'BEGIN { print t / hz }')" "$rate" "$rss0" "$rss1"
stop_daemon

# 2. The cost on bypassed traffic, A to B (nothing listens on B: B's kernel drops them after
# A's route and policy lookups, which is what is measured).
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Three daemons: --no-bpf; hooks attached (the outbound one as during a drop episode); hooks
# with the outbound one detached after 1 s without outbound blocks (the steady state).
blast() { ip netns exec "$A" "$work/udpblast" "$BA" 9999 "$STREAM" | awk '{ print $2 }'; }
without=() with=() idle=()
for _ in 1 2 3 4 5; do
	start_daemon --no-bpf
	without+=("$(blast)")
	stop_daemon
	start_daemon
	hooks=$(jq -r 'select(.event == "daemon" and (.reason | startswith("per-flow"))) | .reason' "$work/state/log.jsonl" | tail -1)
	with+=("$(blast)")
	stop_daemon
	start_daemon --out-hook-idle 1
	sleep 2.5
	idle+=("$(blast)")
	stop_daemon
done
m0=$(printf '%s\n' "${without[@]}" | median)
m1=$(printf '%s\n' "${with[@]}" | median)
m2=$(printf '%s\n' "${idle[@]}" | median)
printf 'bypassed UDP A->B, %s s each (medians of 5): mcpsecd --no-bpf %s datagrams (%s); hooks attached (%s) %s (%s): ratio %.3f; outbound hook detached when idle %s (%s): ratio %.3f\n' \
	"$STREAM" "$m0" "${without[*]}" "$hooks" "$m1" "${with[*]}" "$(awk -v a="$m1" -v b="$m0" 'BEGIN { print a / b }')" \
	"$m2" "${idle[*]}" "$(awk -v a="$m2" -v b="$m0" 'BEGIN { print a / b }')"
