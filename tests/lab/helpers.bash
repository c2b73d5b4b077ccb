# shellcheck shell=bash disable=SC2034 # variables here are used by the .bats files that load it
# Lab helpers: two hosts with real SAs. Runs where the kernel has ESP/AH (the lab VM).
load ../bats/helpers
# Under the lab VM's emulation a test takes up to 3 minutes (an Ansible rollover): each gets 15.
BATS_TEST_TIMEOUT=${LAB_TEST_TIMEOUT:-900}

VERIFY="$BATS_TEST_DIRNAME/ipsec-verify.py"

mc_b() { "$MCPSEC" --netns "$NS_B" --state-dir "$STATE-b" "$@"; }

lab_setup() {
	basic_setup
	two_ns
	SITE_A=$(site_copy "$ROOT/examples/host-a/site.yaml")
	SITE_B=$(site_copy "$ROOT/examples/host-b/site.yaml")
	KEYS="$(dirname "$SITE_A")/keys.yaml"
}

apply_both() {
	mc_a apply "${1:-$SITE_A}" >/dev/null 2>&1 || { mc_a apply "${1:-$SITE_A}"; return 1; }
	mc_b apply "${2:-$SITE_B}" >/dev/null 2>&1 || { mc_b apply "${2:-$SITE_B}"; return 1; }
}

# Capture on B's interface (everything between A and B) into $WORK/cap.pcap. tcpdump has written
# the file's header once its socket captures; --immediate-mode hands it each packet at once
# (not a ring block a second later), and -U writes each one out.
capture_start() {
	rm -f "$WORK/cap.pcap"
	in_b tcpdump -i eth0 --immediate-mode -U -n -w "$WORK/cap.pcap" 2>/dev/null 3>&- &
	CAP=$!
	for _ in $(seq 300); do [ -s "$WORK/cap.pcap" ] && return 0; sleep 0.1; done
	echo "capture_start: tcpdump did not start" >&2
	return 1
}
# Stops the capture once it holds everything sent before: an end marker frame goes out of B's
# interface last, and tcpdump handles packets in order, so when the marker is in the file so is
# every packet before it. (A fixed wait before the kill lost a packet now and then on a busy
# machine.)
capture_stop() {
	local token=$RANDOM$RANDOM
	in_b "$PY" "$NET" eth-mark eth0 "$token" >/dev/null
	for _ in $(seq 300); do
		tcpdump -r "$WORK/cap.pcap" -A 'ether proto 0x88b5' 2>/dev/null | grep -q "mcpsec-capture-end $token" && break
		sleep 0.1
	done
	kill "$CAP" 2>/dev/null
	wait "$CAP" 2>/dev/null || true
}
cap_text() { tcpdump -nr "$WORK/cap.pcap" "$@" 2>/dev/null; }

# A TCP server on B (or A) for COUNT connections, listening before it returns.
serve_b() { start_listener "$WORK/serve-$1.out" in_b "$NET" serve "$1" "${2:-1}" "${3:-30}"; }
serve_a() { start_listener "$WORK/serve-$1.out" in_a "$NET" serve "$1" "${2:-1}" "${3:-30}"; }
served() { listener_result "$WORK/serve-$1.out"; }

# One FTP control connection from A to B, which must be delivered, captured on B's side into
# $WORK/cap.pcap (what it looked like on the wire is the caller's to check).
ftp_captured() {
	capture_start
	serve_b 21
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "ok" ] || return 1
	[ "$(served 21)" = "got 1" ] || return 1
	capture_stop
}

# Replaces the policy list of a site file (keeps its ipsec: and selectors: header).
with_policies() {
	local f=$1
	cat >"$WORK/policies.txt"
	"$PY" - "$f" "$WORK/policies.txt" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
head = s[:s.index("policies:")]
open(p, "w").write(head + "policies:\n" + open(sys.argv[2]).read())
PY
}

# A's policies from stdin, then everything else bypassing both ways; B is A's mirror; both applied.
pair_with_rest() {
	{
		cat
		printf '  - name: RESTOUT\n    direction: out\n    action: bypass\n'
		printf '  - name: RESTIN\n    direction: in\n    action: bypass\n'
	} | with_policies "$SITE_A"
	mc_a mirror "$SITE_A" --peer "$B_ADDR" --self "$A_ADDR" --out "$SITE_B"
	apply_both "$SITE_A" "$SITE_B"
}

# Runs a command silently; on failure shows what it said (so that a failing step explains itself).
quiet() { "$@" >"$WORK/quiet.out" 2>&1 || { local rc=$?; cat "$WORK/quiet.out"; return "$rc"; }; }
