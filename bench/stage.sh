#!/bin/bash
# What seeing every flow costs (issue 29): bypassed UDP and TCP throughput from namespace A to B
# over a veth pair, with nothing staged, with a list staged, and, for comparison, the two other
# candidates the observer was chosen against: conntrack (a "ct state new" rule makes the
# namespace track every packet) and a clsact program doing the observer's work at the device
# (bench/tcflow.bpf.c). The modes take turns, round after round, so that a busy moment of the
# machine spreads over all of them, in the opposite order every other round (a mode's place in
# a round moved its figure by up to 7 %: the order must not favour one); each figure is the
# median of ROUNDS runs of SECONDS, and each ratio the median of the rounds' ratios to nothing
# staged in the same round (a round's runs are seconds apart: they share the machine's mood).
# The sender runs on CPU 0 and the receivers on CPU 1 (on a 2-core machine, the least noise
# there is).
# "staged" is mcpsecd's observer as it picks it; a suffix names the observer it is told to use
# (MCPSECD_OBSERVER): "staged-tcx", "staged-clsact", "staged-tp" (tracepoints). "staged-ipsec"
# (with the same suffixes) stages a list that protects traffic to another peer, on a host with
# no SA: a first list with IPsec, whose traffic is still clear, so that mcpsecd watches nothing
# inside IPsec. "staged-sa" does the same while A enforces that PROTECT, with its SA: then
# mcpsecd also watches inside IPsec (fentry where trampolines load, else its nftables counting
# sets, which bypassed packets pass by one rule at each hook; "staged-sa-sets" asks for the
# sets). A kernel that takes no SA (no ESP) leaves the staged-sa modes out, and says so;
# "hooks" is the floor of any netfilter design: two empty accepting base chains, no mcpsecd;
# "tc-pass" the floor of any observer at the device: clsact filters that only pass
# (bench/tcpass.bpf.c), no mcpsecd.
#
# MODES="none staged" picks the modes ("none" must be one: the ratios are to it), LOADS="udp1
# udp1400 tcp" the workloads, and RESULTS=FILE keeps the raw runs.
#
# usage: bench/stage.sh [ROUNDS [SECONDS]]   (root; release binaries: make mcpsec mcpsecd)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${1:-7}
SECONDS_EACH=${2:-2}
[ "$(id -u)" -eq 0 ] || { echo "bench/stage.sh: run as root" >&2; exit 1; }
if [ ! -x ./mcpsec ] || [ ! -x ./mcpsecd ]; then
	echo "bench/stage.sh: make mcpsec mcpsecd first" >&2
	exit 1
fi

bench_scratch
A="$ns-a" B="$ns-b"
trap 'kill $(jobs -p) 2>/dev/null; ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; rm -rf "$work"' EXIT
cc -O2 -o "$work/udpblast" bench/udpblast.c
cc -O2 -o "$work/tcpblast" bench/tcpblast.c
modes="none staged staged-ipsec staged-sa staged-tp"
command -v nft >/dev/null && modes="$modes conntrack"
# the clsact modes' programs, each as $work/MODE.o
for m in tc:tcflow tc-pass:tcpass; do
	command -v clang >/dev/null && clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
		-c "bench/${m#*:}.bpf.c" -o "$work/${m%%:*}.o" 2>/dev/null && modes="$modes ${m%%:*}"
done
modes=${MODES:-$modes}

ip netns add "$A"
ip netns add "$B"
ip link add va netns "$A" type veth peer name vb netns "$B"
ip -n "$A" addr add fd00:5::1/64 dev va nodad
ip -n "$B" addr add fd00:5::2/64 dev vb nodad
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set va up
ip -n "$B" link set vb up
printf 'policies:\n  - { name: ALLIN, direction: in, action: bypass }\n  - { name: ALLOUT, direction: out, action: bypass }\n' \
	>"$work/site.yaml"
# The staged list discards a port nobody uses: the measured traffic is bypassed by both.
printf 'policies:\n  - { name: NOTELNET, direction: in, protocol: tcp, local-ports: 23, action: discard }\n  - { name: ALLIN, direction: in, action: bypass }\n  - { name: ALLOUT, direction: out, action: bypass }\n' \
	>"$work/staged.yaml"
# The same with a PROTECT for a peer the measured traffic never goes to: a list with IPsec in it;
# and the enforced list with that PROTECT (its SA) for the staged-sa modes.
./mcpsec key generate BENCHKEY --alg sha256 --keys "$work/keys.yaml" >/dev/null
peer9='  - { name: PEER9, direction: out, local: "fd00:5::1", remote: "fd00:9::9", action: protect, spi: 4096, esp: { integrity: hmac-sha256, integrity-key: BENCHKEY } }\n'
printf 'ipsec:\n  keys: keys.yaml\npolicies:\n  - { name: NOTELNET, direction: in, protocol: tcp, local-ports: 23, action: discard }\n%b  - { name: ALLIN, direction: in, action: bypass }\n  - { name: ALLOUT, direction: out, action: bypass }\n' "$peer9" \
	>"$work/staged-ipsec.yaml"
printf 'ipsec:\n  keys: keys.yaml\npolicies:\n%b  - { name: ALLIN, direction: in, action: bypass }\n  - { name: ALLOUT, direction: out, action: bypass }\n' "$peer9" \
	>"$work/site-sa.yaml"
mc() { ./mcpsec --netns "$A" --state-dir "$work/state" "$@"; }
if [[ " $modes " == *" staged-sa"* ]] && ! mc apply "$work/site-sa.yaml" >"$work/sa.out" 2>&1; then
	echo "bench/stage.sh: this kernel takes no SA, so nothing can be inside IPsec here: the staged-sa modes are left out ($(grep -m1 -o 'error: .*' "$work/sa.out" || head -c 200 "$work/sa.out"))" >&2
	modes=$(echo "$modes" | tr ' ' '\n' | grep -v '^staged-sa' | tr '\n' ' ')
fi
mc apply "$work/site.yaml" >/dev/null
# mcpsecd with MCPSECD_OBSERVER=$1 ("" for the observer it picks) and MCPSECD_INNER=$2 (""
# for its own choice), restarted only for a change.
running="(none yet)"
daemon() {
	[ "$1/$2" != "$running" ] || return 0
	if [ -n "${DAEMON:-}" ]; then
		kill "$DAEMON"
		wait "$DAEMON" 2>/dev/null || true
	fi
	MCPSECD_OBSERVER=$1 MCPSECD_INNER=$2 ./mcpsecd --netns "$A" --state-dir "$work/state" --foreground \
		>>"$work/mcpsecd.out" 2>&1 &
	DAEMON=$! running="$1/$2"
	for _ in $(seq 100); do mc status ipsec all --json 2>/dev/null | grep -q '"daemon":{' && break; sleep 0.1; done
}
daemon "" ""
ip netns exec "$B" taskset -c 1 "$work/tcpblast" sink 5001 &
ip netns exec "$B" taskset -c 1 python3 -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::", 9)); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
while True: s.recv(65536)' &
sleep 0.5

wait_for() { for _ in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }
started() { [ "$(log_has start)" -gt "$1" ]; }
inner_on() { ! mc status ipsec staged --json | jq -r .daemon.inner_observer | grep -q '^nothing'; }
log_has() { grep -c "\"event\":\"staged\",\"reason\":\"$1\"" "$work/state/log.jsonl" 2>/dev/null || true; }
# A staged mode's observer, from its name's last part, and its view inside IPsec ("-sets" in
# its name: the nftables sets, even where fentry loads).
observer_of() {
	case $1 in
	*-tp) echo tracepoints ;; *-tcx) echo tcx ;; *-clsact) echo clsact ;; *) echo "" ;;
	esac
}
inner_of() { case $1 in *-sets*) echo nftables ;; *) echo "" ;; esac; }
mode_on() {
	case $1 in
	staged*) local n; n=$(log_has start)
		daemon "$(observer_of "$1")" "$(inner_of "$1")"
		case $1 in
		staged-ipsec*) mc stage "$work/staged-ipsec.yaml" >/dev/null ;;
		staged-sa*) mc apply "$work/site-sa.yaml" >/dev/null
			mc stage "$work/staged-ipsec.yaml" >/dev/null ;;
		*) mc stage "$work/staged.yaml" >/dev/null ;;
		esac
		# with an SA, the view inside IPsec too (it follows the SA's events within a tick)
		if wait_for started "$n" && { [[ $1 != staged-sa* ]] || wait_for inner_on; }; then return; fi
		echo "bench/stage.sh: mcpsecd did not start observing:" >&2; cat "$work/state/log.jsonl" >&2; exit 1 ;;
	conntrack) ip netns exec "$A" nft -f - <<-'NFT'
		table inet bench { chain p { type filter hook prerouting priority -300; ct state new counter; }; chain o { type filter hook output priority -300; ct state new counter; }; }
		NFT
		;;
	hooks) ip netns exec "$A" nft -f - <<-'NFT'
		table inet bench { chain p { type filter hook prerouting priority -300; }; chain o { type filter hook output priority -300; }; }
		NFT
		;;
	tc | tc-pass) tc -n "$A" qdisc replace dev va clsact
		tc -n "$A" filter add dev va ingress bpf da obj "$work/$1.o" sec tc
		tc -n "$A" filter add dev va egress bpf da obj "$work/$1.o" sec tc ;;
	esac
}
mode_off() {
	case $1 in
	staged*) local n; n=$(log_has cleared); mc stage --clear >/dev/null
		for _ in $(seq 50); do [ "$(log_has cleared)" -gt "$n" ] && break; sleep 0.1; done
		case $1 in staged-sa*) mc apply "$work/site.yaml" >/dev/null ;; esac ;;
	conntrack | hooks) ip netns exec "$A" nft delete table inet bench ;;
	tc | tc-pass) tc -n "$A" qdisc del dev va clsact ;;
	esac
}
measure() {
	case $1 in
	udp1) ip netns exec "$A" taskset -c 0 "$work/udpblast" fd00:5::2 9 "$SECONDS_EACH" 1 1 | awk '{ print $2 }' ;;
	udp1400) ip netns exec "$A" taskset -c 0 "$work/udpblast" fd00:5::2 9 "$SECONDS_EACH" 1 1400 | awk '{ print $2 }' ;;
	tcp) ip netns exec "$A" taskset -c 0 "$work/tcpblast" send fd00:5::2 5001 "$SECONDS_EACH" | awk '{ print $2 }' ;;
	esac
}
loads=${LOADS:-udp1 udp1400 tcp}
measure udp1 >/dev/null # warm-up: the first run also resolves B's address (it once sent 1 % of a run)
reversed=$(echo "$modes" | tr ' ' '\n' | tac | tr '\n' ' ')
for ((r = 0; r < ROUNDS; r++)); do
	order=$modes
	[ $((r % 2)) -eq 0 ] || order=$reversed
	for m in $order; do
		mode_on "$m"
		for l in $loads; do echo "$m $l $(measure "$l") $r" >>"$work/results"; done
		mode_off "$m"
	done
done
[ -z "${RESULTS:-}" ] || cp "$work/results" "$RESULTS" # the raw runs: mode load value round
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%s, %s rounds of %s s, kernel %s\n' "$(date -u +%Y-%m-%d)" "$ROUNDS" "$SECONDS_EACH" "$(uname -r)"
printf '%-17s' mode
for l in $loads; do printf ' %14s %6s' "$l" ratio; done
echo
for m in $modes; do
	printf '%-17s' "$m"
	for l in $loads; do
		v=$(awk -v m="$m" -v l="$l" '$1 == m && $2 == l { print $3 }' "$work/results" | median)
		ratio=$(awk -v m="$m" -v l="$l" '$2 == l && $1 == "none" { b[$4] = $3 } $2 == l && $1 == m { v[$4] = $3 }
			END { for (r in v) if (b[r]) print v[r] / b[r] }' "$work/results" | median)
		printf ' %14s %6.3f' "$v" "$ratio"
	done
	echo
done
echo "(udp1, udp1400: datagrams sent; tcp: bytes sent; one sender, $SECONDS_EACH s a run)"
# The observer's own time a packet, from the kernel's BPF statistics, in one more run of 1-byte
# datagrams with a list staged (the statistics' two clock reads a run are included; they are off
# during the rounds above).
case " $modes " in *" staged "*)
	mode_on staged
	sysctl -q kernel.bpf_stats_enabled=1
	measure udp1 >/dev/null
	sysctl -q kernel.bpf_stats_enabled=0
	for prog in seen_tc_out seen_out; do
		bpftool prog show -j | jq -r --arg p "$prog" '.[] | select(.name == $p and .run_cnt > 0)
			| "observer \(.name): \(.run_time_ns / .run_cnt | floor) ns a packet over \(.run_cnt) packets"'
	done
	mode_off staged ;;
esac
