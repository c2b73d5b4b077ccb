#!/usr/bin/env bash
# Benchmark: apply a 10,000-policy plan with mcpsec, and the same kernel policies with
# `ip -batch`, each into a fresh network namespace. Prints wall times (best of 3).
# Also the raw-netlink floors (bench/nlfloor.c: the same policies sent as prebuilt messages in
# large batches, and dumped without decoding), and apply and re-apply against them.
# usage: bench/apply-10k.sh [N]   (needs root; uses the optimized ./mcpsec and build/nlfloor)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
N=${1:-10000}
MCPSEC=${MCPSEC:-./mcpsec}
NLFLOOR=${NLFLOOR:-build/nlfloor}
bench_scratch

# N outbound DISCARD policies to distinct hosts, then one BYPASS for everything else.
discard_site "$N" >"$work/site.yaml"

# The same N policies as ip commands, at the priorities mcpsec gives them.
base=$(( 0x20001000 ))
{
	for ((i = 0; i < N; i++)); do
		printf 'xfrm policy add src ::/0 dst fec0::%x:%x/128 proto tcp dir out priority %d action block\n' \
			$((i / 65536)) $((i % 65536)) $((base + 256 * (i + 1)))
	done
} >"$work/batch"

now() { date +%s.%N; }
best() { sort -n | head -1; }
fresh_ns() { ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; }

t_check=() t_apply=() t_noop=() t_ip=() t_send=() t_dump=() t_ipdump=()
for _ in 1 2 3; do
	s=$(now); "$MCPSEC" check "$work/site.yaml" >/dev/null; e=$(now)
	t_check+=("$(echo "$e - $s" | bc)")
	fresh_ns
	s=$(now); "$MCPSEC" --netns "$ns" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null; e=$(now)
	t_apply+=("$(echo "$e - $s" | bc)")
	s=$(now); "$MCPSEC" --netns "$ns" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null; e=$(now)
	t_noop+=("$(echo "$e - $s" | bc)")
	s=$(now); ip -n "$ns" xfrm policy list >/dev/null; e=$(now)
	t_ipdump+=("$(echo "$e - $s" | bc)")
	rm -rf "$work/state"
	fresh_ns
	s=$(now); ip -n "$ns" -batch "$work/batch"; e=$(now)
	t_ip+=("$(echo "$e - $s" | bc)")
	fresh_ns
	floor=$(ip netns exec "$ns" "$NLFLOOR" "$work/site.yaml")
	t_send+=("$(awk '/^raw send/ { print $(NF-1) }' <<<"$floor")")
	t_dump+=("$(awk '/^raw dump/ { print $(NF-1) }' <<<"$floor")")
done
installed=$(ip -n "$ns" xfrm policy list | grep -c '^src')
printf 'policies: %d user policies (+ built-ins), ip -batch installed %d\n' "$N" "$installed"
printf 'mcpsec check (parse+validate+compile, no kernel): %.3f s\n' "$(printf '%s\n' "${t_check[@]}" | best)"
printf 'mcpsec apply into an empty namespace:             %.3f s\n' "$(printf '%s\n' "${t_apply[@]}" | best)"
printf 'mcpsec apply again (dump + diff, no change):      %.3f s\n' "$(printf '%s\n' "${t_noop[@]}" | best)"
printf 'ip -batch of the same %d policies:             %.3f s\n' "$N" "$(printf '%s\n' "${t_ip[@]}" | best)"
send=$(printf '%s\n' "${t_send[@]}" | best) dump=$(printf '%s\n' "${t_dump[@]}" | best)
apply=$(printf '%s\n' "${t_apply[@]}" | best) noop=$(printf '%s\n' "${t_noop[@]}" | best)
printf 'raw send of the compiled policies (floor):       %.3f s\n' "$send"
printf 'raw dump of them (floor):                        %.3f s\n' "$dump"
ipdump=$(printf '%s\n' "${t_ipdump[@]}" | best)
printf 'ip xfrm policy list of them (decoded, printed):  %.3f s\n' "$ipdump"
printf 'apply / raw send:    %.1fx (goal: at most 2x)\n' "$(echo "$apply / $send" | bc -l)"
printf 're-apply / raw dump: %.1fx (goal: at most 5x)\n' "$(echo "$noop / $dump" | bc -l)"
printf 're-apply / ip xfrm policy list: %.1fx\n' "$(echo "$noop / $ipdump" | bc -l)"
