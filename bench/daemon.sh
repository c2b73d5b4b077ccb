#!/usr/bin/env bash
# Benchmark: mcpsecd's memory with 10,000 policies installed, and how many XFRM events per
# second it handles (a burst of ACQUIREs, one per destination). Needs root; uses ./mcpsecd.
# usage: bench/daemon.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
N=${1:-10000}
work=$(mktemp -d)
ns="mcbenchd-$$"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip link add "bd0-$$" netns "$ns" type veth peer name "bd1-$$" netns "$ns"
ip -n "$ns" addr add fec0::1/64 dev "bd0-$$" nodad
ip -n "$ns" link set "bd0-$$" up
ip -n "$ns" link set "bd1-$$" up

discard_site 10000 1 >"$work/site.yaml"
./mcpsec --netns "$ns" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null
# A PROTECT policy without SAs for fec0::ffff:0/112: every destination is its own ACQUIRE.
ip -n "$ns" xfrm policy add src ::/0 dst fec0::ffff:0/112 proto udp dir out priority 100 tmpl proto esp reqid 9 mode transport

./mcpsecd --netns "$ns" --state-dir "$work/state" --foreground >"$work/d.out" 2>&1 &
pid=$!
sock() { /usr/bin/python3 -c "
import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.send(b'totals\n')
d=b''
while True:
    c=s.recv(65536)
    if not c: break
    d+=c
print(d.decode())" "$work/state/mcpsecd.sock"; }
for _ in $(seq 100); do [ -S "$work/state/mcpsecd.sock" ] && sock >/dev/null 2>&1 && break; sleep 0.1; done
sleep 2
rss=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)
hwm=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status)
cpu() { awk '{ print $14 + $15 }' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
e0=$(sock | jq '.totals.events')
c0=$(cpu)
t0=$(date +%s.%N)
ip netns exec "$ns" /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range($N):
    try: s.sendto(b'x', ('fec0::ffff:%x' % i, 9))
    except OSError: pass
"
t1=$(date +%s.%N)
for _ in $(seq 200); do
	e=$(sock | jq '.totals.events')
	[ $((e - e0)) -ge "$N" ] && break
	sleep 0.05
done
t2=$(date +%s.%N)
c1=$(cpu)
totals=$(sock | jq -c '.totals | {events, records, suppressed, overruns}')
events=$(( $(sock | jq '.totals.events') - e0 ))
cpus=$(echo "scale=3; ($c1 - $c0) / $hz" | bc)
rss2=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)
echo "mcpsecd with 10,016 kernel policies installed: RSS ${rss} kB idle (peak ${hwm} kB)"
echo "burst: $N ACQUIREs sent in $(echo "$t1 - $t0" | bc) s; $events handled, all by $(echo "$t2 - $t0" | bc) s after the first"
echo "daemon CPU for them: ${cpus} s = $(echo "scale=0; $events / ($cpus + 0.001)" | bc) events per CPU-second; RSS after: ${rss2} kB"
echo "totals: $totals"
