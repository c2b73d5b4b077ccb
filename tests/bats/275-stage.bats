#!/usr/bin/env bats
# Staged lists (issue 29) on the host kernel: mcpsec stage keeps a candidate list beside the
# enforced one, mcpsecd sees every flow of the namespace (tp_btf at the devices) and decides it
# by both lists, status ipsec staged and log --staged say what would change. Nothing staged is
# ever enforced. tests/lab/357-stage.bats runs the same core in the VM (Debian's 6.1), with SAs.
load helpers

setup() {
	basic_setup
	two_ns
	# Enforced: everything passes but telnet in.
	cat >"$WORK/enforced.yaml" <<-EOF
	policies:
	  - { name: DISCARDTELNETIN, direction: in, protocol: tcp, local-ports: 23, action: discard }
	  - { name: BYPASSALLIN, direction: in, action: bypass }
	  - { name: BYPASSALLOUT, direction: out, action: bypass }
	EOF
	# Staged: syslog in (514) discarded, telnet in allowed, the peer's web port protected.
	cat >"$WORK/staged.yaml" <<-EOF
	ipsec:
	  keys: keys.yaml
	policies:
	  - { name: DISCARDSYSLOGIN, direction: in, protocol: udp, local-ports: 514, action: discard }
	  - { name: ALLOWTELNETIN, direction: in, protocol: tcp, local-ports: 23, action: bypass }
	  - name: PROTECTWEBOUT
	    direction: out
	    remote: $B_ADDR
	    protocol: tcp
	    remote-ports: 8080
	    action: protect
	    spi: 30001
	    esp: { integrity: hmac-sha256, integrity-key: WEBKEY }
	  - name: PROTECTWEBIN
	    direction: in
	    remote: $B_ADDR
	    protocol: tcp
	    local-ports: 1024-65535
	    remote-ports: 8080
	    action: protect
	    spi: 30002
	    esp: { integrity: hmac-sha256, integrity-key: WEBKEY }
	  - { name: BYPASSALLIN, direction: in, action: bypass }
	  - { name: BYPASSALLOUT, direction: out, action: bypass }
	EOF
	"$MCPSEC" key generate WEBKEY --alg sha256 --keys "$WORK/keys.yaml" >/dev/null
	mc_a apply "$WORK/enforced.yaml" >/dev/null
}
teardown() {
	stop_daemon
	basic_teardown
}

records() { jq -c "select($1)" "$STATE/log.jsonl" 2>/dev/null; }
staged_json() { mc_a status ipsec staged --json; }
# Waits up to $1 seconds for the staged table to hold a flow matching jq filter $2.
wait_flow() {
	for _ in $(seq $(($1 * 10))); do
		staged_json | jq -e ".daemon.table.flows[] | select($2)" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "no staged flow matching $2; status:" >&2
	staged_json >&2
	tail -5 "$WORK/mcpsecd.out" >&2
	return 1
}
# B sends numbered datagrams to A's port 514 until $WORK/stop exists; A counts them.
syslog_start() {
	start_listener "$WORK/recv" in_a "$PY" "$NET" udp-seq-recv 514 3
	in_b "$PY" "$NET" udp-stream "$A_ADDR" 514 "$WORK/stop" 20 >"$WORK/sent" &
	SENDER=$!
}
# The syslog flow's packets in the staged table, and a wait (3 s at most) for them to reach $1.
syslog_packets() { staged_json | jq '.daemon.table.flows[] | select(.dst_port == 514) | .packets'; }
syslog_packets_reach() {
	for _ in $(seq 30); do [ "$(syslog_packets)" -eq "$1" ] && return 0; sleep 0.1; done
	return 0
}
syslog_stop() {
	touch "$WORK/stop"
	wait "$SENDER"
	rm -f "$WORK/stop"
}

@test "stage: a list that discards a port in use changes nothing; status names the flow with both policies" {
	start_daemon
	before=$(xfrm_snapshot "$NS_A")
	run mc_a stage "$WORK/staged.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == "staged $WORK/staged.yaml (staged-1): nothing changed in the kernel"* ]]
	[ "$(xfrm_snapshot "$NS_A")" = "$before" ]
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	syslog_start
	sleep 2.5
	syslog_stop
	# Traffic kept flowing: every datagram sent arrived.
	sent=$(awk '{ print $2 }' "$WORK/sent")
	[ "$sent" -gt 50 ]
	[ "$(listener_result "$WORK/recv")" = "got $sent unique $sent max $((sent - 1))" ]
	# The flow, named with both policies, its counts the datagrams that arrived.
	wait_flow 3 '.change == "would-discard" and .dst_port == 514'
	f=$(staged_json | jq -c '.daemon.table.flows[] | select(.dst_port == 514)')
	[ "$(jq -r '[.direction, .protocol, .src, .dst, .enforced_action, .enforced_policy, .staged_action, .staged_policy] | join(" ")' <<<"$f")" = \
	  "in udp $B_ADDR $A_ADDR bypass BYPASSALLIN discard DISCARDSYSLOGIN" ]
	syslog_packets_reach "$sent"
	[ "$(syslog_packets)" -eq "$sent" ]
	[ "$(staged_json | jq -r '.staged.file')" = "$WORK/staged.yaml" ]
	# The text form: the counts and the flow under would-discard.
	run mc_a status ipsec staged
	[ "$status" -eq 0 ]
	[[ "$output" == "Staged: $WORK/staged.yaml (staged-1), since "* ]]
	[[ "$output" == *"would-discard:    1"* ]]
	[[ "$output" == *"would-discard:"*"in  udp $B_ADDR port "*" -> $A_ADDR port 514"*"enforced: BYPASSALLIN (bypass); staged: DISCARDSYSLOGIN (discard)"* ]]
	# One record for it in log --staged, none in the drop log.
	[ "$(records '.event == "staged" and .reason == "would-discard" and .dst_port == 514' | wc -l)" -eq 1 ]
	run mc_a log --staged
	[[ "$output" == *"staged would-discard in policy DISCARDSYSLOGIN"*"-> $A_ADDR port 514"* ]]
	run mc_a log
	[[ "$output" != *"would-discard"* ]]
	# Nothing staged is enforced: the kernel is as it was.
	[ "$(xfrm_snapshot "$NS_A")" = "$before" ]
}

@test "stage: applied, the flow is dropped and mcpsecd's drop records name the same policy; the staged list is gone" {
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	syslog_start
	sleep 1.5
	syslog_stop
	[[ "$(listener_result "$WORK/recv")" == "got "* ]]
	wait_flow 3 '.change == "would-discard" and .dst_port == 514'
	staged_policy=$(staged_json | jq -r '.daemon.table.flows[] | select(.dst_port == 514) | .staged_policy')
	# This kernel has no ESP: the file applied is the staged one without its PROTECT policies,
	# staged again first (the same file applied drops it).
	sed '/- name: PROTECTWEBOUT/,/esp:/d; /- name: PROTECTWEBIN/,/esp:/d' "$WORK/staged.yaml" >"$WORK/noesp.yaml"
	mc_a stage "$WORK/noesp.yaml" >/dev/null
	run mc_a apply "$WORK/noesp.yaml"
	[ "$status" -eq 0 ]
	run mc_a status ipsec staged
	[ "$output" = "nothing is staged ('mcpsec stage SITE.yaml' stages a list)" ]
	[ "$(staged_json | jq -c .)" = '{"staged":null,"daemon":null}' ]
	wait_record 3 '.event == "staged" and .reason == "cleared"' >/dev/null
	syslog_start
	sleep 1.5
	syslog_stop
	[ "$(listener_result "$WORK/recv")" = "got 0 unique 0 max -1" ]
	[ ! -e "$STATE/staged" ]
	wait_record 5 '.event == "drop" and .dst_port == 514' >/dev/null
	[ "$(records '.event == "drop" and .dst_port == 514' | jq -r .policy | sort -u)" = "$staged_policy" ]
	[ "$staged_policy" = DISCARDSYSLOGIN ]
}

@test "stage: would-protect (the peer must be ready), would-bypass, other-policy; unbound clients, both families" {
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	# A's web client, unbound, to the peer's 8080: protected by the staged list.
	start_listener "$WORK/web" in_b "$PY" "$NET" serve 8080 1 5
	[ "$(in_a "$PY" "$NET" connect "$B_ADDR" 8080)" = ok ]
	# Telnet from B: discarded now, allowed by the staged list (no SYN gets an answer).
	[ "$(in_b "$PY" "$NET" connect "$A_ADDR" 23 41023)" = timeout ]
	# IPv4, unbound: unchanged.
	start_listener "$WORK/web4" in_b "$PY" "$NET" serve 8081 1 5
	[ "$(in_a "$PY" "$NET" connect "$B4" 8081)" = ok ]
	wait_flow 3 '.change == "would-protect" and .dst_port == 8080'
	f=$(staged_json | jq -c '[.daemon.table.flows[] | select(.dst_port == 8080)][0]')
	[ "$(jq -r '[.direction, .src, .dst, .enforced_policy, .staged_policy, .staged_spi] | join(" ")' <<<"$f")" = \
	  "out $A_ADDR $B_ADDR BYPASSALLOUT PROTECTWEBOUT 30001" ]
	# The replies to it, inbound from 8080: would-protect by PROTECTWEBIN.
	wait_flow 3 '.change == "would-protect" and .src_port == 8080 and .direction == "in" and .staged_policy == "PROTECTWEBIN"'
	r=$(records '.event == "staged" and .reason == "would-protect" and .dst_port == 8080' | head -1)
	[[ "$(jq -r .detail <<<"$r")" == *"the peer must be ready for it too"* ]]
	wait_flow 3 '.change == "would-bypass" and .dst_port == 23 and .src_port == 41023 and .enforced_policy == "DISCARDTELNETIN"'
	# IPv4 under ipv6-only passes outside IPsec in both lists: no policy decides it.
	wait_flow 3 '.change == "unchanged" and .dst == "'"$B4"'" and .dst_port == 8081 and .enforced_action == "bypass" and .enforced_policy == null'
	run mc_a status ipsec staged
	[[ "$output" == *"would-protect (the peer must be ready for it too):"* ]]
	[[ "$output" == *"would-bypass:"*"port 41023 -> $A_ADDR port 23"* ]]
}

@test "stage --clear stops the reports; a broken list is refused with every error and nothing staged" {
	start_daemon
	printf 'policies:\n  - { name: X, direction: sideways, action: bypass }\n  - { name: Y, direction: in, action: maybe }\n' \
		>"$WORK/broken.yaml"
	run mc_a stage "$WORK/broken.yaml"
	[ "$status" -eq 1 ]
	[ "$(grep -c "^$WORK/broken.yaml:[0-9]*:[0-9]*: error: " <<<"$output")" -eq 2 ]
	[[ "$output" == *"has errors; nothing was staged"* ]]
	[ ! -e "$STATE/staged" ]
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	run mc_a stage --clear
	[ "$status" -eq 0 ]
	[ "$output" = "the staged list from $WORK/staged.yaml is dropped; nothing changed in the kernel" ]
	wait_record 3 '.event == "staged" and .reason == "cleared"' >/dev/null
	syslog_start
	sleep 2
	syslog_stop
	sleep 1.2
	[ -z "$(records '.event == "staged" and .dst_port == 514')" ]
	[ -z "$(find "$STATE" -maxdepth 1 -name 'staged*')" ]
	run mc_a stage --clear
	[ "$output" = "nothing was staged" ]
}

@test "stage: a host with a staged list and no mcpsecd says so; SIGKILL and a restart keep the staged list" {
	run mc_a stage "$WORK/staged.yaml"
	[ "$status" -eq 0 ]
	# each hint names the mcpsecd these options talk to, its state directory too
	start="start 'mcpsecd --netns $NS_A --state-dir $STATE'"
	[[ "$output" == *"warning: no mcpsecd watches this namespace: no traffic is observed until it runs ($start)"* ]]
	run mc_a status ipsec staged
	[[ "$output" == *"no mcpsecd watches this namespace"*"no traffic is observed; $start"* ]]
	run mc_a status ipsec all
	[[ "$output" == *"Staged: $WORK/staged.yaml; no mcpsecd observes traffic for it"* ]]
	[[ "$output" == *"$start for drop records"* ]]
	# without --state-dir, the default one: mcpsecd finds it by itself
	run "$MCPSEC" --netns "$NS_A" status ipsec all
	[[ "$output" == *"(/var/lib/mcpsec/netns/$NS_A/mcpsecd.sock): start 'mcpsecd --netns $NS_A' for drop records"* ]]
	start_daemon
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	kill -KILL "$DAEMON"
	wait "$DAEMON" 2>/dev/null || true
	start_daemon
	for _ in $(seq 30); do [ "$(records '.event == "staged" and .reason == "start"' | wc -l)" -eq 2 ] && break; sleep 0.1; done
	[ "$(records '.event == "staged" and .reason == "start"' | wc -l)" -eq 2 ]
	syslog_start
	sleep 1.5
	syslog_stop
	wait_flow 3 '.change == "would-discard" and .dst_port == 514'
	[ "$(staged_json | jq -r .staged.generation)" = staged-1 ]
	# (A killed mcpsecd's counting sets, which need an SA: tests/lab/357-stage.bats.)
}

@test "stage: a restart goes on from the table the last mcpsecd kept (SIGTERM, SIGKILL); a damaged one is said, and the comparison starts afresh" {
	local tbl="$STATE/mcpsecd.staged-table" n
	# Three datagrams from B's port 40514 to A's 514 (discarded by the staged list): one flow.
	send3() { [ "$(in_b "$PY" "$NET" udp-send "$A_ADDR" 514 40514)" = ok ]; }
	flow_packets() { staged_json | jq '[.daemon.table.flows[] | select(.dst_port == 514 and .src_port == 40514) | .packets] | add // 0'; }
	flows() { staged_json | jq '[.daemon.table.flows[] | select(.dst_port == 514 and .src_port == 40514)] | length'; }
	packets_reach() { for _ in $(seq 30); do [ "$(flow_packets)" -eq "$1" ] && return 0; sleep 0.1; done; }
	# Kept at exit only (a day between keepings).
	start_daemon --staged-save 86400
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	send3
	packets_reach 3
	[ "$(flow_packets)" -eq 3 ]
	# SIGTERM: kept at exit (root's alone), and read back whole.
	t0=$(staged_json | jq -c .daemon.table)
	stop_daemon
	[ "$(stat -c '%a %U' "$tbl")" = "600 root" ]
	start_daemon --staged-save 1
	wait_record 3 '.event == "staged" and .reason == "table-restored"' >/dev/null
	[ "$(staged_json | jq -c .daemon.table)" = "$t0" ]
	# Seen again, the flow counts on: the same flow, its change said once in all.
	send3
	packets_reach 6
	[ "$(flow_packets)" -eq 6 ]
	[ "$(flows)" -eq 1 ]
	[ "$(records '.event == "staged" and .reason == "would-discard" and (.flow | test("port 40514"))' | wc -l)" -eq 1 ]
	# SIGKILL: what the last keeping held (at most a second old here).
	sleep 2.5
	t1=$(staged_json | jq -c .daemon.table)
	kill -KILL "$DAEMON"
	wait "$DAEMON" 2>/dev/null || true
	start_daemon --staged-save 1
	for _ in $(seq 30); do [ "$(records '.reason == "table-restored"' | wc -l)" -eq 2 ] && break; sleep 0.1; done
	[ "$(records '.reason == "table-restored"' | wc -l)" -eq 2 ]
	[ "$(staged_json | jq -c '.daemon.table | [.since, .totals["would-discard"]]')" = "$(jq -c '[.since, .totals["would-discard"]]' <<<"$t1")" ]
	[ "$(flow_packets)" -eq 6 ]
	# Damaged every way a file can be: said, never waited on or followed, and afresh.
	n=0
	for kind in empty garbage truncated directory fifo dangling; do
		stop_daemon
		rm -rf "$WORK/kept"
		cp -a "$tbl" "$WORK/kept"
		damage "$tbl" "$kind"
		start_daemon --staged-save 1
		n=$((n + 1))
		for _ in $(seq 30); do [ "$(records '.reason == "table-unreadable"' | wc -l)" -eq "$n" ] && break; sleep 0.1; done
		[ "$(records '.reason == "table-unreadable"' | wc -l)" -eq "$n" ] || { echo "$kind: not said"; false; }
		why=$(records '.reason == "table-unreadable"' | tail -1 | jq -r .detail)
		echo "# $kind: $why" >&3
		case $kind in
		empty) [[ "$why" == *": not a staged table"* ]] ;;
		garbage) [[ "$why" == *": a NUL byte)"* ]] ;;
		truncated) [[ "$why" == *": line "* ]] ;;
		directory | fifo) [[ "$why" == *": not a regular file)"* ]] ;;
		dangling) [[ "$why" == *": Too many levels of symbolic links)"* ]] ;;
		esac
		[ "$(flows)" -eq 0 ] || { echo "$kind: read anyway"; false; }
		# the way back: the whole table again, for the next case
		stop_daemon
		rm -rf "$tbl"
		cp -a "$WORK/kept" "$tbl"
		start_daemon --staged-save 1
		[ "$(flows)" -eq 1 ]
	done
	[ "$(records '.reason == "table-restored"' | wc -l)" -eq 8 ]
	# Dropping the list drops its table.
	mc_a stage --clear >/dev/null
	wait_record 3 '.event == "staged" and .reason == "cleared"' >/dev/null
	[ ! -e "$tbl" ]
}

# The daemon's tcx links, as its file descriptors show them: "ifindex attach-type link-id" lines.
tcx_links() {
	local f
	for f in /proc/"$DAEMON"/fdinfo/*; do
		awk '$1 == "link_type:" { t = $2 } $1 == "link_id:" { id = $2 } $1 == "ifindex:" { i = $2 }
			$1 == "attach_type:" { a = $2 } END { if (t == "tcx") print i, a, id }' "$f" 2>/dev/null
	done | sort
}
ifindex_a() { ip -n "$NS_A" -j link show dev "$1" | jq -r '.[0].ifindex'; }
# Whether the observer is at device $1's egress: by a tcx link, or by a clsact filter.
tcx_at() { tcx_links | grep -q "^$(ifindex_a "$1") 47"; }
clsact_at() { [[ "$(tc -n "$NS_A" filter show dev "$1" egress)" == *"seen_tc_out"* ]]; }
# A datagram from A to B on a new veth pair, fd01::1 → fd01::2, added while staged, once the
# observer is at the new device ($1: tcx_at or clsact_at).
new_veth_flow() {
	ip link add "vc$$" netns "$NS_A" type veth peer name "vd$$" netns "$NS_B"
	ip -n "$NS_A" addr add fd01::1/64 dev "vc$$" nodad
	ip -n "$NS_B" addr add fd01::2/64 dev "vd$$" nodad
	ip -n "$NS_A" link set "vc$$" up
	ip -n "$NS_B" link set "vd$$" up
	for _ in $(seq 30); do "$1" "vc$$" && break; sleep 0.1; done
	"$1" "vc$$"
	[ "$(in_a "$PY" "$NET" udp-send fd01::2 514)" = ok ]
	wait_flow 3 '.dst == "fd01::2" and .dst_port == 514 and .direction == "out"'
}

@test "stage: the observer is a tcx link at every interface, a new one's too; --clear and SIGKILL leave none" {
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("seen by tcx on each interface"))' >/dev/null
	[ "$(staged_json | jq -r .daemon.observer)" = "tcx on each interface" ]
	# Two links (46 ingress, 47 egress) for each of lo and eth0, and no qdisc made.
	lo=$(ifindex_a lo) eth0=$(ifindex_a eth0)
	[ "$(tcx_links | awk '{ print $1, $2 }')" = "$(printf '%s 46\n%s 47\n' "$lo" "$lo" "$eth0" "$eth0" | sort)" ]
	[[ "$(tc -n "$NS_A" qdisc show dev eth0)" != *clsact* ]]
	# An interface added while staged is observed within a second or two, by its own links.
	new_veth_flow tcx_at
	mc_a stage --clear >/dev/null
	wait_record 3 '.event == "staged" and .reason == "cleared"' >/dev/null
	[ -z "$(tcx_links)" ]
	# A killed mcpsecd's links go with its file descriptors: nothing stays attached.
	mc_a stage "$WORK/staged.yaml" >/dev/null
	for _ in $(seq 30); do [ "$(tcx_links | wc -l)" -eq 6 ] && break; sleep 0.1; done
	ids=$(tcx_links | awk '{ print $3 }')
	[ "$(echo "$ids" | wc -w)" -eq 6 ]
	kill -KILL "$DAEMON"
	wait "$DAEMON" 2>/dev/null || true
	for _ in $(seq 30); do
		left=$(bpftool link show -j | jq --argjson ids "[$(echo "$ids" | paste -sd,)]" '[.[] | select(.id as $i | $ids | index($i))] | length')
		[ "$left" -eq 0 ] && break
		sleep 0.1
	done
	[ "$left" -eq 0 ]
}

# B sends A a bare IPv4 header (20 bytes, protocol 253) and a bare IPv6 one (40, no next header),
# and A sends B the same: each a flow of its own, its bytes counted with the link layer (14).
bare_headers_seen() {
	[ "$(in_b "$PY" "$NET" raw-send "$A4" 253 "")" = ok ]
	[ "$(in_b "$PY" "$NET" raw-send "$A_ADDR" 59 "")" = ok ]
	[ "$(in_a "$PY" "$NET" raw-send "$B4" 253 "")" = ok ]
	[ "$(in_a "$PY" "$NET" raw-send "$B_ADDR" 59 "")" = ok ]
	wait_flow 3 '.src == "'"$B4"'" and .protocol == "253" and .direction == "in" and .packets == 1 and .bytes == 34'
	wait_flow 3 '.src == "'"$B_ADDR"'" and .protocol == "59" and .direction == "in" and .packets == 1 and .bytes == 54'
	wait_flow 3 '.dst == "'"$B4"'" and .protocol == "253" and .direction == "out" and .packets == 1 and .bytes == 34'
	wait_flow 3 '.dst == "'"$B_ADDR"'" and .protocol == "59" and .direction == "out" and .packets == 1 and .bytes == 54'
}

@test "stage: a bare IP header (too short for a transport word) is a flow of its own, both families and directions" {
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	bare_headers_seen
}

@test "stage: the tracepoint observer counts the same bytes as tc, the link layer included" {
	MCPSECD_OBSERVER=tracepoints start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("tp_btf"))' >/dev/null
	bare_headers_seen
}

@test "stage: with MCPSECD_OBSERVER=clsact (Debian's 6.1 has no tcx) the observer is clsact filters, and --clear removes them" {
	# lo has a clsact qdisc of someone else's, empty; eth0 has none.
	tc -n "$NS_A" qdisc add dev lo clsact
	MCPSECD_OBSERVER=clsact start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("tc (clsact)"))' >/dev/null
	[ "$(staged_json | jq -r .daemon.observer)" = "tc (clsact) on each interface (tcx: not tried (MCPSECD_OBSERVER=clsact))" ]
	for dev in lo eth0; do
		[[ "$(tc -n "$NS_A" filter show dev "$dev" ingress)" == *"seen_tc_in"* ]]
		[[ "$(tc -n "$NS_A" filter show dev "$dev" egress)" == *"seen_tc_out"* ]]
	done
	[ -z "$(tcx_links)" ]
	new_veth_flow clsact_at
	# Someone adds a filter of their own to the clsact qdisc mcpsecd made on eth0.
	tc -n "$NS_A" filter add dev eth0 egress prio 7 protocol all bpf bytecode '1,6 0 0 0,'
	mc_a stage --clear >/dev/null
	wait_record 3 '.event == "staged" and .reason == "cleared"' >/dev/null
	for dev in lo eth0 "vc$$"; do
		[[ "$(tc -n "$NS_A" filter show dev "$dev" ingress; tc -n "$NS_A" filter show dev "$dev" egress)" != *seen_tc* ]]
	done
	# The qdisc mcpsecd made and left empty is gone; the one it found, and the one another
	# filter joined, stay (with that filter).
	[[ "$(tc -n "$NS_A" qdisc show dev "vc$$")" != *clsact* ]]
	[[ "$(tc -n "$NS_A" qdisc show dev lo)" == *clsact* ]]
	[[ "$(tc -n "$NS_A" qdisc show dev eth0)" == *clsact* ]]
	[[ "$(tc -n "$NS_A" filter show dev eth0 egress)" == *"pref 7 bpf"* ]]
}

@test "stage: the clsact filters a killed mcpsecd left are removed by the next one, which says so; others' stay" {
	MCPSECD_OBSERVER=clsact start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("tc (clsact)"))' >/dev/null
	kill -KILL "$DAEMON"
	wait "$DAEMON" || true
	# Nothing held them: they stay, and go on running.
	for dev in lo eth0; do
		[[ "$(tc -n "$NS_A" filter show dev "$dev" ingress)" == *"seen_tc_in"* ]]
		[[ "$(tc -n "$NS_A" filter show dev "$dev" egress)" == *"seen_tc_out"* ]]
	done
	mc_a stage --clear >/dev/null
	tc -n "$NS_A" filter add dev eth0 egress prio 7 protocol all bpf bytecode '1,6 0 0 0,'
	start_daemon
	wait_record 3 '.event == "staged" and .reason == "leftover"' >/dev/null
	[[ "$(records '.event == "staged" and .reason == "leftover"' | jq -r .detail)" == *"at 2 interfaces ("*"lo"*"eth0"*")"* ]]
	for dev in lo eth0; do
		[[ "$(tc -n "$NS_A" filter show dev "$dev" ingress; tc -n "$NS_A" filter show dev "$dev" egress)" != *seen_tc* ]]
	done
	[[ "$(tc -n "$NS_A" filter show dev eth0 egress)" == *"pref 7 bpf"* ]]
	# The next start finds nothing to remove, and says nothing.
	stop_daemon
	start_daemon
	sleep 1
	[ "$(records '.event == "staged" and .reason == "leftover"' | wc -l)" -eq 1 ]
}

@test "stage: an interface the observer cannot attach to is said once, and the ones after it are still watched" {
	MCPSECD_OBSERVER=clsact start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	# Every tc change in the namespace, as the kernel announces it.
	tc -n "$NS_A" monitor >"$WORK/tcmon" 2>&1 3>&- &
	local mon=$!
	# An ingress qdisc excludes clsact, and would take both of mcpsecd's filters, the egress
	# one replacing the ingress one.
	ip link add "vx$$" netns "$NS_A" type veth peer name "vy$$" netns "$NS_B"
	tc -n "$NS_A" qdisc add dev "vx$$" ingress
	ip -n "$NS_A" link set "vx$$" up
	# An interface after it is still watched, its flow seen.
	new_veth_flow clsact_at
	wait_record 3 '.event == "staged" and .reason == "unwatched"' >/dev/null
	sleep 2.5 # more drains: tried again each, said once
	[ "$(records '.event == "staged" and .reason == "unwatched"' | wc -l)" -eq 1 ]
	kill "$mon"
	# Tried without touching it: no filter of mcpsecd's ever came and went there (the egress
	# program would have run at its ingress meanwhile), while the monitor saw those on vc.
	grep -q "filter dev vc$$" "$WORK/tcmon"
	run grep -c "filter dev vx$$" "$WORK/tcmon"
	[ "$output" -eq 0 ]
	[[ "$(records '.event == "staged" and .reason == "unwatched"' | jq -r .detail)" == *"attaching to vx$$'s clsact hooks: an ingress qdisc is there, and clsact cannot be added beside it" ]]
	# Nothing of mcpsecd's stays on it.
	[[ "$(tc -n "$NS_A" filter show dev "vx$$" ingress)" != *seen_tc* ]]
	# Once it can be, it is attached to.
	tc -n "$NS_A" qdisc del dev "vx$$" ingress
	for _ in $(seq 30); do clsact_at "vx$$" && break; sleep 0.1; done
	clsact_at "vx$$"
}

@test "stage: the fallback observer (tracepoints, MCPSECD_OBSERVER=tracepoints) sees the same, and touches no interface" {
	export MCPSECD_OBSERVER=tracepoints
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("tp_btf/netif_receive_skb and tp_btf/net_dev_queue"))' >/dev/null
	[[ "$(tc -n "$NS_A" qdisc show dev eth0)" != *clsact* ]]
	syslog_start
	sleep 1.5
	syslog_stop
	sent=$(awk '{ print $2 }' "$WORK/sent")
	[[ "$(listener_result "$WORK/recv")" == "got $sent "* ]]
	wait_flow 3 '.change == "would-discard" and .dst_port == 514 and .staged_policy == "DISCARDSYSLOGIN"'
	syslog_packets_reach "$sent"
	[ "$(syslog_packets)" -eq "$sent" ]
	[ "$(staged_json | jq -r .daemon.observer)" = "tp_btf/netif_receive_skb and tp_btf/net_dev_queue (tc: not tried (MCPSECD_OBSERVER=tracepoints))" ]
}

# Nothing in the namespace is tracked: conntrack's count.
ct_count() { ip netns exec "$NS_A" cat /proc/sys/net/netfilter/nf_conntrack_count; }

@test "stage: with no SA in the namespace nothing watches inside IPsec, though the staged list protects" {
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	# This kernel has no ESP or AH: no SA can be here, so nothing can be inside IPsec, and the
	# view there (whose hooks cost bypassed traffic) is not started. Status says what it would
	# be: the sets, since this kernel refuses trampolines.
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("inner flows of protected traffic by nothing while this namespace holds no SA (nothing can be inside IPsec)"))' >/dev/null
	[ -z "$(ip -n "$NS_A" xfrm state)" ]
	[ "$(staged_json | jq -r .daemon.inner_observer)" = "nothing while this namespace holds no SA (nothing can be inside IPsec); with one: nftables sets, protected traffic only (fentry: refused at load: Operation not permitted (no BPF trampolines here))" ]
	run ip netns exec "$NS_A" nft list table inet mcpsecd_staging
	[ "$status" -ne 0 ]
	# The traffic the staged list would protect is clear, and seen at the devices: UDP, and
	# unbound TCP over both families; nothing tracks it.
	syslog_start
	sleep 1
	syslog_stop
	start_listener "$WORK/web" in_b "$PY" "$NET" serve 8080 1 5
	[ "$(in_a "$PY" "$NET" connect "$B_ADDR" 8080)" = ok ]
	start_listener "$WORK/web4" in_b "$PY" "$NET" serve 8081 1 5
	[ "$(in_a "$PY" "$NET" connect "$B4" 8081)" = ok ]
	wait_flow 3 '.change == "would-discard" and .dst_port == 514'
	wait_flow 3 '.change == "would-protect" and .dst_port == 8080 and .staged_policy == "PROTECTWEBOUT"'
	wait_flow 3 '.dst == "'"$B4"'" and .dst_port == 8081'
	[ -z "$(staged_json | jq -c '.daemon.table.flows[] | select(.inner)')" ]
	[ "$(ct_count)" -eq 0 ]
	# No record says the view started or stopped: nothing changed.
	[ -z "$(jq -c 'select(.reason == "inner-start" or .reason == "inner-stop" or .reason == "no-inner")' "$STATE/log.jsonl")" ]
	# The operator may turn it off altogether (its hooks cost bypassed traffic a rule each:
	# bench/README.md); then status says only that.
	stop_daemon
	MCPSECD_INNER=off start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("by nothing (MCPSECD_INNER=off)"))' >/dev/null
	[ "$(staged_json | jq -r .daemon.inner_observer)" = "nothing (MCPSECD_INNER=off)" ]
	run ip netns exec "$NS_A" nft list table inet mcpsecd_staging
	[ "$status" -ne 0 ]
}

# The counting sets beside a firewall need an SA: tests/lab/357-stage.bats.
@test "stage: a namespace with its own firewall keeps it as it is, and its decisions (the device observer)" {
	own_firewall
	before=$(own_ruleset)
	start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("seen by tcx"))' >/dev/null
	[ "$(own_ruleset)" = "$before" ]
	syslog_start
	sleep 1
	syslog_stop
	wait_flow 3 '.change == "would-discard" and .dst_port == 514'
	own_firewall_decides
	[ -z "$(staged_json | jq -c '.daemon.table.flows[] | select(.inner)')" ]
	mc_a stage --clear >/dev/null
	wait_record 3 '.event == "staged" and .reason == "cleared"' >/dev/null
	[ "$(own_ruleset)" = "$before" ]
}

@test "stage: a damaged staged list is said, never followed, and stage --clear repairs it" {
	mc_a stage "$WORK/staged.yaml" >/dev/null
	mv "$STATE/staged" "$STATE/staged.saved"
	ln -s /etc "$STATE/staged"
	run mc_a status ipsec staged
	[ "$status" -eq 3 ]
	[[ "$output" == *"the staged list in $STATE cannot be read: 'staged' is not a link to a staged list"* ]]
	rm "$STATE/staged"
	mv "$STATE/staged.saved" "$STATE/staged"
	echo garbage >>"$STATE/staged-1/state"
	run mc_a status ipsec staged
	[ "$status" -eq 3 ]
	[[ "$output" == *"staged-1/state is damaged"* ]]
	start_daemon
	wait_record 3 '.event == "staged" and .reason == "error"' >/dev/null
	[[ "$(records '.event == "staged" and .reason == "error"' | jq -r .detail)" == *"damaged"* ]]
	# The enforced list is untouched by it.
	run mc_a status ipsec all
	[[ "$output" != *"NOT ENFORCED"* ]]
	mc_a stage --clear >/dev/null
	[ ! -e "$STATE/staged-1" ]
	run mc_a status ipsec staged
	[ "$output" = "nothing is staged ('mcpsec stage SITE.yaml' stages a list)" ]
}

@test "stage: on a full disk a new list is refused whole, the one staged before stays, and --clear still works" {
	small_fs 2m 200
	mc_a apply "$WORK/enforced.yaml" >/dev/null
	mc_a stage "$WORK/staged.yaml" >/dev/null
	before=$(readlink "$STATE/staged")
	sed 's/local-ports: 514/local-ports: 515/' "$WORK/staged.yaml" >"$WORK/staged2.yaml"
	fill_fs "$WORK/fs"
	# No inode left (nothing can be made), then inodes but no block (the list's directory can
	# be made, its files cannot).
	for free_inodes in no yes; do
		[ "$free_inodes" = no ] || rm -f "$WORK/fs"/empty.*
		run mc_a stage "$WORK/staged2.yaml"
		[ "$status" -eq 3 ]
		[[ "$output" == *"No space left on device"* ]]
		[[ "$output" == *"nothing was staged"* ]]
		# The staged list before it is whole, and the only one: no half-written staged-N.
		[ "$(readlink "$STATE/staged")" = "$before" ]
		[ "$(find "$STATE" -maxdepth 1 -name 'staged*' | sort | xargs -n1 basename | tr '\n' ' ')" = "staged $before " ]
	done
	run mc_a status ipsec staged
	[ "$status" -eq 0 ]
	[[ "$output" == *"$WORK/staged.yaml"* ]]
	# Dropping needs no room.
	run mc_a stage --clear
	[ "$status" -eq 0 ]
	[ -z "$(find "$STATE" -maxdepth 1 -name 'staged*')" ]
	# With room again, the new list stages.
	rm -f "$WORK/fs"/fill.* "$WORK/fs"/empty.*
	mc_a stage "$WORK/staged2.yaml" >/dev/null
	[[ "$(mc_a status ipsec staged)" == *"$WORK/staged2.yaml"* ]]
}

@test "stage: a flood of 200,000 distinct flows: the table stays bounded, the memory too, the totals exact" {
	# The release daemon: ASan's quarantine keeps freed memory, so its RSS says nothing here.
	MCPSECD="$ROOT/mcpsecd" start_daemon
	mc_a stage "$WORK/staged.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start"' >/dev/null
	# The namespace's packets as its devices count them, against the observer's totals (flows and
	# packets without one), each read in a quiet moment: the devices counted nothing meanwhile.
	in_a sysctl -qw net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.eth0.router_solicitations=0
	# Received and sent, and sent but dropped by the driver (a veth whose peer's queue is full):
	# the observer sees those before the driver does.
	# shellcheck disable=SC2016 # awk's own $0
	dev_packets() { in_a awk 'NR > 2 { sub(/.*:/, ""); split($0, f); n += f[2] + f[10] + f[12] } END { print n }' /proc/net/dev; }
	observed() {
		mc_a status ipsec staged | awk '/flows seen:/ { sub(/\(/, "", $4); n += $4 } /without a flow:/ { n += $4 } END { print n + 0 }'
	}
	quiet() {
		local p q o a same
		for _ in $(seq 20); do
			p=$(dev_packets)
			a=$(observed)
			# Settled: the same three times, 1.2 s apart (the daemon drains once a second, later
			# when a tick is busy with thousands of new flows).
			same=0
			for _ in $(seq 60); do
				sleep 1.2
				o=$(observed)
				if [ "$o" = "$a" ]; then same=$((same + 1)); else same=0; fi
				a=$o
				[ "$same" -ge 2 ] && break
			done
			q=$(dev_packets)
			[ "$p" = "$q" ] && { echo "$p $o"; return 0; }
		done
		return 1
	}
	read -r p0 o0 < <(quiet)
	[ "$(in_a "$PY" "$NET" udp-flood "$B_ADDR" 100000 12000)" = "sent 100000 errors 0" ]
	read -r p1 o1 < <(quiet)
	rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON/status")
	[ "$(in_a "$PY" "$NET" udp-flood "$B4" 100000 12000)" = "sent 100000 errors 0" ]
	read -r p2 o2 < <(quiet)
	rss2=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON/status")
	t=$(staged_json | jq -c .daemon.table.totals)
	echo "devices $p0 $p1 $p2, observed $o0 $o1 $o2, RSS $rss1 $rss2 kB, totals $t" >&3
	# Every packet counted, whatever the tables kept: equal to the devices' counters when run
	# alone; beside the lab VM, two CI runs found the observer one or two packets short of
	# them (not explained yet), so up to 2 apart. Counting IP packets only is 4 short.
	in_a cat /proc/net/dev
	d1=$(((o1 - o0) - (p1 - p0)))
	d2=$(((o2 - o1) - (p2 - p1)))
	[ "$d1" -ge -2 ] && [ "$d1" -le 2 ]
	[ "$d2" -ge -2 ] && [ "$d2" -le 2 ]
	[ $((p2 - p0)) -ge 200000 ]
	# The table keeps at most 65,536 flows; the rest made room, each counted. A flow the kernel's
	# own table (16,384) made room for before a drain (a busy machine drains late) is counted
	# in packets without a flow, at least one each.
	[ "$(jq .flows_kept <<<"$t")" -eq 65536 ]
	[ $(($(jq .flows <<<"$t") + $(jq .unattributed_packets <<<"$t"))) -ge 200000 ]
	[ "$(jq .flows_evicted <<<"$t")" -eq $(($(jq .flows <<<"$t") - 65536)) ]
	# Bounded: the second 100,000 flows did not grow the daemon by more than 4 MiB.
	[ $((rss2 - rss1)) -lt 4096 ]
}

# Five services in use between A and B: A's client of B's TCP 8080, B's client of A's TCP 2222,
# UDP 5353 from B to A, UDP 5300 from A to B over IPv4, ICMPv6 echo from A.
five_services() {
	start_listener "$WORK/s8080" in_b "$PY" "$NET" serve 8080 1 10
	[ "$(in_a "$PY" "$NET" connect "$B_ADDR" 8080)" = ok ]
	start_listener "$WORK/s2222" in_a "$PY" "$NET" serve 2222 1 10
	[ "$(in_b "$PY" "$NET" connect "$A_ADDR" 2222)" = ok ]
	[ "$(in_b "$PY" "$NET" udp-send "$A_ADDR" 5353)" = ok ]
	[ "$(in_a "$PY" "$NET" udp-send "$B4" 5300)" = ok ]
	in_a ping -6 -c 2 -i 0.2 "$B_ADDR" >/dev/null
	[ "$(listener_result "$WORK/s8080")" = "got 1" ]
	[ "$(listener_result "$WORK/s2222")" = "got 1" ]
}

@test "stage --learn: five services in use give a site that passes check, covers all five, and staged against the same traffic reports 0 would-discard" {
	start_daemon
	run mc_a stage --learn 2 --out "$WORK/x.yaml" --clear
	[ "$status" -eq 1 ]
	( sleep 1.5; five_services ) 3>&- &
	traffic=$!
	run mc_a stage --learn 6 --out "$WORK/learned.yaml"
	wait "$traffic"
	[ "$status" -eq 0 ]
	[[ "$output" == *"learning from this namespace's traffic for 6 s"* ]]
	[[ "$output" == *"a list to edit, not a list to trust"* ]]
	# Nothing stays staged, and the file says what it is.
	[ "$(mc_a status ipsec staged)" = "nothing is staged ('mcpsec stage SITE.yaml' stages a list)" ]
	grep -q '^# A list to edit, not a list to trust' "$WORK/learned.yaml"
	run "$MCPSEC" check "$WORK/learned.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" != *"warning:"* ]]
	# All five, each by its service port (or protocol), with the peer as a named selector.
	grep -q "^  PEER[0-9]*: $B_ADDR$" "$WORK/learned.yaml"
	grep -q "^  PEER[0-9]*: $B4$" "$WORK/learned.yaml"
	for svc in "TCP8080-ON-PEER[0-9]*-OUT" "TCP2222-FROM-PEER[0-9]*-IN" "UDP5353-FROM-PEER[0-9]*-IN" \
		"UDP5300-ON-PEER[0-9]*-OUT" "ICMPV6-PEER[0-9]*-OUT"; do
		grep -q "^  - name: BYPASS-$svc$" "$WORK/learned.yaml"
	done
	# Staged against the same traffic: nothing would be discarded.
	mc_a stage "$WORK/learned.yaml" >/dev/null
	wait_record 3 '.event == "staged" and .reason == "start" and (.detail | contains("learned.yaml"))' >/dev/null
	five_services
	wait_flow 3 '.dst_port == 2222 and .staged_policy != null'
	sleep 1.2
	t=$(staged_json | jq -c .daemon.table)
	[ "$(jq '.totals["would-discard"].flows' <<<"$t")" -eq 0 ]
	[ "$(jq '[.flows[] | select(.dst_port == 8080 or .dst_port == 2222 or .dst_port == 5353 or .dst_port == 5300 or .icmp_type == 128)] | length' <<<"$t")" -ge 5 ]
	[ "$(jq '[.flows[] | select(.staged_action == "discard")] | length' <<<"$t")" -eq 0 ]
	# Enforced, the same five still work: ping -6 too, whose first step (a UDP connect to port
	# 1025, asked of the policy, no packet sent) no observer sees.
	run mc_a apply "$WORK/learned.yaml"
	[ "$status" -eq 0 ]
	five_services
	# IPv4 ping, never seen while learning: the ICMP MCP advises, and ping's probe, pass
	in_a ping -c 1 -W 2 "$B4" >/dev/null
}
