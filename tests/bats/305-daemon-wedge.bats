#!/usr/bin/env bats
# mcpsecd cannot be wedged (issue 25): it enforces first and sets up its extras after, each a
# degradation when it cannot be had; only a second mcpsecd stops it; nothing another user can
# put in a shared directory (a FIFO, a link) stops its loop; a slow client cannot stall it.
load helpers

setup() {
	basic_setup
	one_ns
	mkdir -p "$WORK/site"
	cat >"$WORK/site/site.yaml" <<-EOF
	ipsec: {default: deny}
	policies:
	  - {name: ICMPV6OUT, direction: out, protocol: icmpv6, action: bypass}
	  - {name: TELNETOUT, direction: out, protocol: tcp, remote-ports: 23, action: discard}
	  - {name: ALLOUT, direction: out, action: bypass}
	  - {name: ALLIN, direction: in, action: bypass}
	EOF
	SITE=$WORK/site/site.yaml
}
teardown() {
	stop_daemon
	basic_teardown
}
kernel_pols() { ip -n "$NS_A" xfrm policy list | grep -c '^src'; }
# Starts mcpsecd without waiting for its control socket (it may have none).
start_bare() {
	"$MCPSECD" --netns "$NS_A" --state-dir "$STATE" --foreground --no-bpf "$@" >"$WORK/mcpsecd.out" 2>&1 3>&- &
	DAEMON=$!
}
# Waits until the kernel holds exactly what was committed (apply's count), the daemon alive.
wait_enforced() {
	for _ in $(seq 100); do
		[ "$(kernel_pols)" -eq "$WANT" ] && kill -0 "$DAEMON" && return 0
		sleep 0.1
	done
	echo "not enforced: $(kernel_pols) policies, want $WANT; mcpsecd said:" >&2
	cat "$WORK/mcpsecd.out" >&2
	return 1
}
# SIGTERM ends the daemon (within a generous 30 s: a wedged daemon never ends).
term_ends_it() {
	local start=$SECONDS
	kill -TERM "$DAEMON"
	for _ in $(seq 300); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
	echo "# SIGTERM answered within $((SECONDS - start + 1)) s" >&3
	! kill -0 "$DAEMON" 2>/dev/null || return 1
	wait "$DAEMON" || true
	DAEMON=
}
commit() {
	mc_a apply "$SITE" >/dev/null
	WANT=$(kernel_pols)
	ip -n "$NS_A" xfrm policy flush # as at boot
}

@test "wedge: a pid file and a control socket that cannot be made are degradations; mcpsecd enforces anyway" {
	commit
	mkdir "$STATE/mcpsecd.pid" "$STATE/mcpsecd.sock" # directories in the way
	touch "$STATE/mcpsecd.pid/x" "$STATE/mcpsecd.sock/x"
	start_bare
	wait_enforced
	grep -q "degraded.*no pid file.*mcpsecd.pid" "$WORK/mcpsecd.out"
	grep -q "degraded.*no control socket.*mcpsecd.sock" "$WORK/mcpsecd.out"
	# Still the daemon: a flush is repaired.
	ip -n "$NS_A" xfrm policy flush
	wait_enforced
}

@test "wedge: a full disk and exhausted inodes do not stop mcpsecd from starting and enforcing" {
	for limits in "1m 10000" "10m 64"; do
		read -r size inodes <<<"$limits"
		small_fs "$size" "$inodes"
		commit
		fill_fs "$WORK/fs"
		start_bare
		wait_enforced
		echo "# tmpfs of $size with $inodes inodes, full: $(kernel_pols) policies enforced" >&3
		stop_daemon
		drop_small_fs
	done
}

@test "wedge: only a real second mcpsecd stops one; the first keeps running" {
	commit
	start_bare
	wait_enforced
	run "$MCPSECD" --netns "$NS_A" --state-dir "$STATE" --foreground --no-bpf
	[ "$status" -eq 1 ]
	[[ "$output" == *"another mcpsecd already watches"* ]]
	kill -0 "$DAEMON"
	# A stale pid file (of a daemon that died) is no second daemon.
	stop_daemon
	echo 99999999 >"$STATE/mcpsecd.pid"
	start_bare
	wait_enforced
}

@test "wedge: a trial past its deadline is rolled back on a full disk with no free inode (the rollback was reserved)" {
	small_fs 2m 200
	commit
	ip -n "$NS_A" xfrm policy flush
	mc_a enable >/dev/null
	base=$(xfrm_canon "$NS_A")
	base_gen=$(readlink "$STATE/current")
	sed 's/remote-ports: 23/remote-ports: 23-24/' "$SITE" >"$WORK/site/trial.yaml"
	mc_a apply --confirm 3 "$WORK/site/trial.yaml" >/dev/null
	pkill -KILL -f -- "--state-dir $(realpath "$STATE") rollback --token" || true
	[ "$(xfrm_canon "$NS_A")" != "$base" ]
	fill_fs "$WORK/fs"
	start_bare
	for _ in $(seq 100); do [ "$(xfrm_canon "$NS_A")" = "$base" ] && [ "$(readlink "$STATE/current")" = "$base_gen" ] && break; sleep 0.1; done
	[ "$(xfrm_canon "$NS_A")" = "$base" ]
	[ "$(readlink "$STATE/current")" = "$base_gen" ]
}

@test "wedge: FIFOs planted where the metrics file's temporary goes never stop mcpsecd's loop" {
	commit
	mkdir -m 1777 "$WORK/textfile" # a node-exporter textfile directory, shared
	for name in m.prom.tmp m.prom.tmp.1 "m.prom.tmp.$$"; do mkfifo "$WORK/textfile/$name"; done
	start_bare --metrics-file "$WORK/textfile/m.prom" --metrics-interval 1
	wait_enforced
	for _ in $(seq 100); do [ -s "$WORK/textfile/m.prom" ] && break; sleep 0.1; done
	grep -q "^mcpsec_daemon_up[{ ].* 1$" "$WORK/textfile/m.prom"
	# The loop still turns: a flush is repaired, and SIGTERM ends the daemon at once.
	ip -n "$NS_A" xfrm policy flush
	wait_enforced
	term_ends_it
	[ -p "$WORK/textfile/m.prom.tmp" ]
}

@test "wedge: a client that connects and says nothing stalls neither status nor the daemon's loop" {
	commit
	start_daemon --no-bpf
	# Eight silent clients (more than the daemon serves at once) hold their connections open.
	for _ in $(seq 8); do
		"$PY" -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(30)' \
			"$STATE/mcpsecd.sock" 3>&- &
	done
	sleep 0.3
	start=$(date +%s%N)
	mc_a status ipsec all --json | jq -e '.daemon.totals != null' >/dev/null
	took=$((($(date +%s%N) - start) / 1000000))
	echo "# status with eight silent clients connected: ${took} ms" >&3
	ip -n "$NS_A" xfrm policy flush
	wait_enforced
	term_ends_it
	pkill -f 'time.sleep\(30\)' || true
}
