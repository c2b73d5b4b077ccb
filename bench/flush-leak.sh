#!/usr/bin/env bash
# Benchmark: what leaks while `ip xfrm policy flush` has removed mcpsec's policies and mcpsecd
# has not yet restored them. Host A discards UDP to port 9999 of host B; A sends datagrams
# there as fast as it can (each refused with EPERM while the DISCARD policy is in); ROUNDS
# times, the policies are flushed and mcpsecd repairs them. B counts what arrives.
# Needs root. usage: bench/flush-leak.sh [ROUNDS] [DIR_WITH_mcpsec_AND_mcpsecd]
# To compare with a build from before the kernel default policy was set (issue 11):
#   git worktree add /tmp/old 175f654 && make -C /tmp/old mcpsec mcpsecd
#   bench/flush-leak.sh 50 /tmp/old
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-50}
BIN=${2:-.}
work=$(mktemp -d)
a="mcleak-$$-a" b="mcleak-$$-b"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$a" 2>/dev/null || true
	ip netns del "$b" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip -n "$a" link set lo up
ip -n "$b" link set lo up
ip link add "la$$" netns "$a" type veth peer name "lb$$" netns "$b"
ip -n "$a" addr add fec0::1/64 dev "la$$" nodad
ip -n "$b" addr add fec0::2/64 dev "lb$$" nodad
ip -n "$a" link set "la$$" up
ip -n "$b" link set "lb$$" up

cat >"$work/site.yaml" <<'EOF'
ipsec:
  default: ipv6-only
policies:
  - {name: ICMPOUT, direction: out, protocol: icmpv6, action: bypass}
  - {name: ICMPIN, direction: in, protocol: icmpv6, action: bypass}
  - {name: NOLEAKOUT, direction: out, remote: fec0::2, protocol: udp, remote-ports: 9999, action: discard}
  - {name: ALLOUT, direction: out, action: bypass}
  - {name: ALLIN, direction: in, action: bypass}
EOF
"$BIN/mcpsec" --netns "$a" --state-dir "$work/state" apply "$work/site.yaml" >/dev/null
want=$(ip -n "$a" xfrm policy list | grep -c '^src')
"$BIN/mcpsecd" --netns "$a" --state-dir "$work/state" --foreground >"$work/d.out" 2>&1 &
pids+=("$!")
sleep 1

ip netns exec "$b" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 9999)); s.settimeout(3)
print("ready", flush=True)
n = 0
try:
    while True:
        s.recv(64); n += 1
except socket.timeout:
    pass
print(n, flush=True)' >"$work/recv.out" &
pids+=("$!")
until grep -q ready "$work/recv.out"; do sleep 0.05; done
ip netns exec "$a" /usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
ok = tried = 0
end = time.time() + 3600
while time.time() < end:
    tried += 1
    try:
        s.sendto(b"x", ("fec0::2", 9999)); ok += 1
    except OSError:
        pass' &
sender=$!
pids+=("$sender")
sleep 0.5

windows=()
for ((i = 0; i < ROUNDS; i++)); do
	t0=$(date +%s%N)
	ip -n "$a" xfrm policy flush
	until [ "$(ip -n "$a" xfrm policy list | grep -c '^src')" -ge "$want" ]; do sleep 0.005; done
	windows+=("$((($(date +%s%N) - t0) / 1000000))")
	sleep 0.2
done
kill "$sender"
wait "$sender" 2>/dev/null || true
got=$(tail -n 1 "$work/recv.out")
until [ "$got" != ready ] && [ -n "$got" ]; do sleep 0.2; got=$(tail -n 1 "$work/recv.out"); done
sorted=$(printf '%s\n' "${windows[@]}" | sort -n)
median=$(sed -n "$(((ROUNDS + 1) / 2))p" <<<"$sorted")
max=$(tail -n 1 <<<"$sorted")
in_default=$(ip -n "$a" xfrm policy getdefault 2>/dev/null | tr '\n' ' ' || echo "unknown")
echo "flush-leak: $ROUNDS flushes repaired by mcpsecd ($BIN), window median ${median} ms, max ${max} ms;" \
	"datagrams to the DISCARDed port received by the peer: $got; kernel default: $in_default"
