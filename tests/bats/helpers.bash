# shellcheck shell=bash disable=SC2034 # variables here are used by the .bats files that load it
# Shared setup for the bats suites. Every test gets its own namespaces and state directory;
# teardown always removes them.
bats_require_minimum_version 1.5.0
# Every test has a deadline, so that a hang fails that test and the run goes on (bats kills
# it and says "timeout"). The slowest host test takes about 80 s on a busy machine.
: "${BATS_TEST_TIMEOUT:=300}"

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
# Debian's python3, whatever PATH says: the tests use its packages (yaml, scapy), and a pyenv
# shim first on PATH costs seconds per start under the lab VM's emulation.
PY=/usr/bin/python3
MCPSEC=${MCPSEC:-$ROOT/build/san/mcpsec}
NET="$ROOT/tests/bats/net.py"
FIX="$ROOT/tests/bats/fixtures"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"

A_ADDR=fec0::2222:a00:bff:fe3a:100
B_ADDR=fec0::2222:a00:bff:fe3a:127
A4=192.0.2.100
B4=192.0.2.127

basic_setup() {
	NS_A="mct-$$-${BATS_TEST_NUMBER}-a"
	NS_B="mct-$$-${BATS_TEST_NUMBER}-b"
	STATE="$BATS_TEST_TMPDIR/state"
	WORK="$BATS_TEST_TMPDIR/work"
	mkdir -p "$WORK"
}

basic_teardown() {
	# Kill anything still running in our namespaces, then remove them.
	for ns in "$NS_A" "$NS_B"; do
		if [ -e "/run/netns/$ns" ]; then
			ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
			ip netns del "$ns" 2>/dev/null
		fi
	done
	[ -n "${NOTIFY_PID:-}" ] && kill "$NOTIFY_PID" 2>/dev/null
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
	MOUNTS=()
	return 0
}
MOUNTS=()

# A small tmpfs as the state directory's parent: $1 = size, $2 = inodes. basic_teardown
# unmounts it.
small_fs() {
	mkdir -p "$WORK/fs"
	mount -t tmpfs -o "size=$1,nr_inodes=$2,mode=0755" mcpsec-test "$WORK/fs"
	MOUNTS+=("$WORK/fs")
	STATE="$WORK/fs/state"
}
drop_small_fs() {
	umount "$WORK/fs"
	MOUNTS=()
}
# Fills the file system that holds $1 until no block or no inode is left.
fill_fs() {
	local i=0
	while printf 'x%.0s' $(seq 2000) >"$1/fill.$i" 2>/dev/null; do i=$((i + 1)); done
	while : >"$1/empty.$i" 2>/dev/null; do i=$((i + 1)); done
	return 0
}

setup() { basic_setup; }
teardown() { basic_teardown; }

require_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
}

# One namespace with loopback up.
one_ns() {
	require_root
	ip netns add "$NS_A"
	ip -n "$NS_A" link set lo up
}

# Two namespaces joined by a veth pair with the seed's addresses (and an IPv4 pair).
two_ns() {
	require_root
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip -n "$NS_A" link set lo up
	ip -n "$NS_B" link set lo up
	ip link add "va$$" netns "$NS_A" type veth peer name "vb$$" netns "$NS_B"
	ip -n "$NS_A" link set "va$$" name eth0
	ip -n "$NS_B" link set "vb$$" name eth0
	ip -n "$NS_A" addr add "$A_ADDR/64" dev eth0 nodad
	ip -n "$NS_B" addr add "$B_ADDR/64" dev eth0 nodad
	ip -n "$NS_A" addr add "$A4/24" dev eth0
	ip -n "$NS_B" addr add "$B4/24" dev eth0
	ip -n "$NS_A" link set eth0 up
	ip -n "$NS_B" link set eth0 up
}

# Starts a listener from net.py in the background and waits until it says "ready".
# usage: start_listener OUTFILE ip netns exec NS net.py serve|udp-recv|raw-recv ...
start_listener() {
	local out=$1; shift
	"$@" >"$out" 3>&- &
	LISTENER=$!
	for _ in $(seq 200); do grep -q '^ready' "$out" 2>/dev/null && return 0; sleep 0.05; done
	echo "listener did not start: $*" >&2
	return 1
}
# Waits for a listener's result (the line after "ready") and prints it. Polls the file: it is
# often called inside $(...), a subshell that cannot wait for the listener.
listener_result() {
	for _ in $(seq 600); do
		grep -q '^got' "$1" 2>/dev/null && break
		sleep 0.1
	done
	grep -v '^ready' "$1"
}

# A namespace's own firewall beside mcpsecd (A's): it tracks connections and drops, counting,
# UDP to port 515. own_firewall_decides: it still does, after the clear syslog flow to 514
# (conntrack has it) and three datagrams from B to 515 (none received, three counted).
# own_ruleset: A's rules without their counters.
own_firewall() {
	ip netns exec "$NS_A" nft -f - <<-'EOF'
	table inet fw {
		chain input { type filter hook input priority 0; policy accept; ct state established,related accept; udp dport 515 counter drop; }
	}
	EOF
}
own_firewall_decides() {
	[[ "$(ip netns exec "$NS_A" conntrack -L 2>/dev/null)" == *"dport=514 "* ]] || { echo "conntrack lost the flow to 514" >&2; return 1; }
	start_listener "$WORK/r515" in_a "$NET" udp-recv 515 3
	in_b "$NET" udp-burst "$A_ADDR" 515 3 20 >/dev/null
	[ "$(listener_result "$WORK/r515")" = "got 0" ] || { echo "the firewall's drop did not hold" >&2; return 1; }
	[[ "$(ip netns exec "$NS_A" nft list chain inet fw input)" == *"udp dport 515 counter packets 3 "* ]] ||
		{ echo "the firewall did not count three drops" >&2; return 1; }
}
own_ruleset() { ip netns exec "$NS_A" nft list ruleset | sed '/counter packets/d'; }

# The "never in clear / never in output" check: fails when FILE (text or a capture) holds
# STRING, case-insensitively. It never prints the string (it may be key material).
# 005-selftest.bats and the lab's bypass test show that it fails when the thing does leak.
refute_in_file() {
	if grep -aqiF -- "$1" "$2"; then
		echo "refute_in_file: a forbidden string (${#1} characters) is in $2" >&2
		return 1
	fi
}

# mcpsec against namespace A with this test's state directory.
mc_a() { "$MCPSEC" --netns "$NS_A" --state-dir "$STATE" "$@"; }

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# Value of one /proc/net/xfrm_stat counter in a namespace.
# shellcheck disable=SC2016 # $1 and $2 are awk's
xfrm_stat() { ip netns exec "$1" awk -v k="$2" '$1 == k { print $2 }' /proc/net/xfrm_stat; }

# The kernel's XFRM state as text, for byte-for-byte comparisons.
xfrm_snapshot() { ip -n "$1" xfrm policy list; ip -n "$1" xfrm state list; }
# The same as a sorted set of objects: equal when the kernel holds the same policies and SAs,
# whatever order its lists are in (a policy deleted and re-added moves in the dump).
xfrm_canon() {
	{ ip -n "$1" xfrm policy list; ip -n "$1" xfrm state list; } |
		awk '/^src/ { if (o) print o; o = $0; next } { o = o " | " $0 } END { if (o) print o }' | sort
}

# A copy of a fixture or example in the work directory (key files 0600, as apply requires).
site_copy() {
	local src=$1 dst
	dst="$WORK/$(basename "$(dirname "$1")")"
	mkdir -p "$dst"
	cp "$(dirname "$src")"/*.yaml "$dst"/ 2>/dev/null
	cp "$(dirname "$src")"/*.keys "$dst"/ 2>/dev/null
	chmod 600 "$dst"/*
	echo "$dst/$(basename "$src")"
}

# The lab library: lab_has_esp probes whether this kernel can install an ESP SA.
. "$ROOT/netns-lab/lib.sh"

# mcpsecd for namespace A (or $D_NS with state $D_STATE), in the background (output in
# $WORK/mcpsecd.out), ready when its control socket answers. Extra arguments go to mcpsecd.
MCPSECD=${MCPSECD:-$ROOT/build/san/mcpsecd}
mc_d() { "$MCPSEC" --netns "${D_NS:-$NS_A}" --state-dir "${D_STATE:-$STATE}" "$@"; }
start_daemon() {
	"$MCPSECD" --netns "${D_NS:-$NS_A}" --state-dir "${D_STATE:-$STATE}" --foreground "$@" >"$WORK/mcpsecd.out" 2>&1 3>&- &
	DAEMON=$!
	for _ in $(seq 200); do
		mc_d status ipsec all --json 2>/dev/null | jq -e '.daemon != null' >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "mcpsecd did not start:" >&2
	cat "$WORK/mcpsecd.out" >&2
	return 1
}
stop_daemon() {
	[ -n "${DAEMON:-}" ] || return 0
	kill -TERM "$DAEMON" 2>/dev/null || true
	wait "$DAEMON" 2>/dev/null || true
}
# damage PATH KIND: what happens to a file, a directory or a link.
damage() {
	local p=$1 kind=$2 half
	case $kind in
	missing) rm -rf "$p" ;;
	empty) rm -rf "$p" && : >"$p" ;;
	garbage) rm -rf "$p" && { printf 'enabled yes\nrule 1 out X\n\x00\xff\xfe'; head -c 200 /dev/urandom; } >"$p" ;;
	truncated)
		if [ -L "$p" ]; then
			ln -sfn "$(readlink "$p" | cut -c1-4)" "$p" # gen-12 -> gen-
		elif [ -d "$p" ]; then
			rm -f "$p/state" # a generation without its last file
		elif [ -e "$p" ]; then
			half=$(($(stat -c %s "$p") / 2))
			truncate -s "$half" "$p"
		else
			printf '{"time":"2026-12-0' >"$p" # a file that only the daemon writes: a line cut short
		fi ;;
	directory) rm -rf "$p" && mkdir "$p" ;;
	fifo) rm -rf "$p" && mkfifo "$p" ;;
	dangling) rm -rf "$p" && ln -s "$(dirname "$p")/nowhere" "$p" ;;
	mode000) chmod 000 "$p" ;;
	esac
}

# systemd's notify socket, played by a datagram listener at $WORK/notify.sock: each datagram
# is a line of $WORK/notify.out (NOTIFY_SOCKET for start_daemon). Ready when it says so: the
# files go first, so that an earlier listener's "ready" cannot pass for this one's.
notify_listen() {
	[ -n "${NOTIFY_PID:-}" ] && kill "$NOTIFY_PID" 2>/dev/null
	rm -f "$WORK/notify.sock" "$WORK/notify.out"
	"$PY" -c 'import socket,sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
print("ready", flush=True)
try:
    while True:
        print(s.recv(4096).decode(errors="replace"), flush=True)
except socket.timeout:
    pass' "$WORK/notify.sock" >"$WORK/notify.out" 3>&- &
	NOTIFY_PID=$!
	for _ in $(seq 600); do grep -qx ready "$WORK/notify.out" 2>/dev/null && return 0; sleep 0.05; done
	echo "the notify listener did not start" >&2
	return 1
}
# Waits up to 10 s for a notify datagram line matching the extended regex $1.
notify_wait() {
	for _ in $(seq 200); do grep -qE -- "$1" "$WORK/notify.out" && return 0; sleep 0.05; done
	echo "mcpsecd never told systemd '$1'; it said:" >&2
	cat "$WORK/notify.out" >&2
	return 1
}
# Waits up to $1 seconds for a log record matching the jq filter $2; prints how long it took (ms).
wait_record() {
	local limit=$1 filter=$2 start end
	start=$(date +%s%N)
	end=$((start + limit * 1000000000))
	while [ "$(date +%s%N)" -lt "$end" ]; do
		if [ -f "${D_STATE:-$STATE}/log.jsonl" ] && jq -e "select($filter)" "${D_STATE:-$STATE}/log.jsonl" 2>/dev/null | grep -q .; then
			echo $((($(date +%s%N) - start) / 1000000))
			return 0
		fi
		sleep 0.05
	done
	echo "no record matching $filter within ${limit}s; log:" >&2
	cat "${D_STATE:-$STATE}/log.jsonl" >&2 2>/dev/null
	return 1
}
# The daemon's totals (retried: a daemon busy resynchronising answers a moment later).
daemon_totals() {
	local t
	for _ in $(seq 20); do
		t=$(mc_d status ipsec all --json 2>/dev/null | jq -c '.daemon.totals // empty' 2>/dev/null)
		[ -n "$t" ] && { echo "$t"; return 0; }
		sleep 0.1
	done
	return 1
}

# The spi of policy NAME in a site file (block style, as the examples write it).
yq_spi() { awk -v n="$2" '$0 ~ "name: " n "$" { p = 1 } p && /^    spi:/ { print $2; exit }' "$1"; }
