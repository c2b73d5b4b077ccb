#!/usr/bin/env bats
# The damage matrix (issue 25): every file and link of a configured state directory, damaged in
# every way a test can make, and for each what `enable` and a freshly started mcpsecd leave in a
# kernel that starts empty (as at boot). Each must leave the host closed (the lockdown set) or
# enforcing the committed configuration in full: never open. Every case is named with both
# outcomes (doc/guide.md, "Damage and interruptions", says the rule).
load helpers

# A site with a key file (so that the key file is committed too) and policies of each action
# the host kernel can hold (no ESP/AH here: no PROTECT).
site() {
	mkdir -p "$WORK/site"
	cat >"$WORK/site/site.yaml" <<-EOF
	ipsec:
	  default: deny
	  keys: keys.yaml
	policies:
	  - {name: ICMPV6OUT, direction: out, protocol: icmpv6, action: bypass}
	  - {name: ICMPV6IN, direction: in, protocol: icmpv6, action: bypass}
	  - {name: WEBIN, direction: in, protocol: tcp, local-ports: 80, action: bypass}
	  - {name: TELNETOUT, direction: out, protocol: tcp, remote-ports: 23, action: discard}
	  - {name: CLIENTSOUT, direction: out, protocol: tcp, remote-ports: 1-1023, action: bypass}
	EOF
	"$MCPSEC" key generate K1 --alg sha256 --keys "$WORK/site/keys.yaml" >/dev/null
}

setup() {
	basic_setup
	one_ns
	site
}
teardown() {
	[ -z "${DAEMON:-}" ] || kill "$DAEMON" 2>/dev/null
	basic_teardown
}

# An empty kernel, as at boot: no policy, the default accept.
boot() {
	ip -n "$NS_A" xfrm policy flush
	ip -n "$NS_A" xfrm policy setdefault in accept fwd accept out accept
}
kernel() {
	xfrm_canon "$NS_A"
	ip -n "$NS_A" xfrm policy getdefault
}
# enforced, lockdown, or OPEN with what the kernel holds.
outcome() {
	local k
	k=$(kernel)
	if [ "$k" = "$ENFORCED" ]; then
		echo enforced
	elif [ "$k" = "$LOCKDOWN" ]; then
		echo lockdown
	else
		echo "OPEN($(ip -n "$NS_A" xfrm policy list | grep -c '^src') policies, $(ip -n "$NS_A" xfrm policy getdefault | tr -s '\n ' ' '))"
	fi
}

# One case: the state directory restored, damaged, then enable on an empty kernel, then again
# restored, damaged and mcpsecd started on an empty kernel. Prints "enable=OUTCOME/exit
# mcpsecd=OUTCOME".
one_case() {
	local entry=$1 kind=$2 e_out e_rc d_out
	rm -rf "$STATE" && cp -a "$WORK/pristine" "$STATE"
	damage "$STATE/$entry" "$kind"
	boot
	e_rc=0
	"$MCPSEC" --netns "$NS_A" --state-dir "$STATE" enable >"$WORK/enable.out" 2>&1 || e_rc=$?
	e_out=$(outcome)
	rm -rf "$STATE" && cp -a "$WORK/pristine" "$STATE"
	damage "$STATE/$entry" "$kind"
	boot
	"$MCPSECD" --netns "$NS_A" --state-dir "$STATE" --foreground --no-bpf >"$WORK/mcpsecd.out" 2>&1 3>&- &
	DAEMON=$!
	d_out=$(outcome)
	for _ in $(seq 100); do
		d_out=$(outcome)
		[ "$d_out" = enforced ] || [ "$d_out" = lockdown ] && break
		kill -0 "$DAEMON" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$DAEMON" 2>/dev/null || d_out="$d_out, mcpsecd exited"
	kill "$DAEMON" 2>/dev/null
	wait "$DAEMON" 2>/dev/null || true
	DAEMON=
	echo "enable=$e_out/$e_rc mcpsecd=$d_out"
}

# The two kernels that are allowed: the committed configuration, and the lockdown set.
references() {
	mc_a apply "$WORK/site/site.yaml" >/dev/null
	ENFORCED=$(kernel)
	cp -a "$STATE" "$WORK/pristine"
	ln -sfn gen-999 "$STATE/current"
	boot
	run mc_a enable
	[ "$status" -eq 5 ]
	LOCKDOWN=$(kernel)
	[ "$ENFORCED" != "$LOCKDOWN" ]
	[[ "$LOCKDOWN" == *"block"* ]]
}

# Runs the matrix over the entries given; fails on any open kernel, after printing every case.
matrix() {
	local entry kind r bad=0
	for entry in "$@"; do
		for kind in missing empty garbage truncated directory fifo dangling mode000; do
			[ -e "$WORK/pristine/$entry" ] || [ -L "$WORK/pristine/$entry" ] || [ "$kind" != mode000 ] || continue
			r=$(one_case "$entry" "$kind")
			echo "# ${entry//$(readlink "$WORK/pristine/current")/gen-N} $kind: $r" >&3
			[[ $r != *OPEN* ]] || bad=$((bad + 1))
		done
	done
	[ "$bad" -eq 0 ]
}

@test "damage: every entry of a committed state directory, damaged every way: closed or enforced, never open" {
	references
	g=$(readlink "$WORK/pristine/current")
	matrix current "$g" "$g/site.yaml" "$g/keys.yaml" "$g/state" on-failure lock enforcement log.jsonl mcpsecd.pid mcpsecd.sock
}

@test "damage: a trial's files (trial, confirmed, the reserved rollback link), damaged every way: never open" {
	references
	# A trial on top: the allowed kernels are then either generation's, or the lockdown set.
	cp -a "$WORK/pristine" "$STATE.base" && rm -rf "$STATE" && mv "$STATE.base" "$STATE"
	boot
	mc_a enable >/dev/null
	sed 's/remote-ports: 23,/remote-ports: 23,/; s/name: WEBIN, direction: in, protocol: tcp, local-ports: 80/name: WEBIN, direction: in, protocol: tcp, local-ports: 8080/' \
		"$WORK/site/site.yaml" >"$WORK/site/trial.yaml"
	mc_a apply --confirm 600 "$WORK/site/trial.yaml" >/dev/null
	pkill -KILL -f -- "--state-dir $(realpath "$STATE") rollback --token" || true
	TRIAL=$(kernel)
	rm -rf "$WORK/pristine" && cp -a "$STATE" "$WORK/pristine"
	outcome() {
		local k
		k=$(kernel)
		if [ "$k" = "$ENFORCED" ] || [ "$k" = "$TRIAL" ]; then echo enforced; elif [ "$k" = "$LOCKDOWN" ]; then echo lockdown
		else echo "OPEN($(ip -n "$NS_A" xfrm policy list | grep -c '^src') policies)"; fi
	}
	matrix trial confirmed current.rollback
}

@test "damage: the three ways a damaged directory passed for 'nothing committed' now lock down and say so everywhere" {
	references
	for c in state-garbage current-missing onfailure-garbage; do
		rm -rf "$STATE" && cp -a "$WORK/pristine" "$STATE"
		g=$(readlink "$STATE/current")
		case $c in
		state-garbage) printf 'not a state file\n' >"$STATE/$g/state" ;;
		current-missing) rm "$STATE/current" ;;
		onfailure-garbage) printf '\x01\x02garbage' >"$STATE/on-failure" && : >"$STATE/$g/state" ;;
		esac
		boot
		run mc_a enable
		echo "# $c: enable exit $status" >&3
		[ "$status" -eq 5 ]
		[[ "$output" == *"NOT ENFORCED: lockdown"*"damaged"* ]]
		[ "$(outcome)" = lockdown ]
		run mc_a status ipsec all
		[[ "${lines[0]}" == "IPsec configured, but its state directory is damaged"* ]]
		[[ "$output" == *"NOT ENFORCED: lockdown"* ]]
		[ "$(mc_a status ipsec all --json | jq -r '.configured, .enforced')" = "$(printf 'true\nfalse')" ]
		# mcpsecd: the record, and systemd's STATUS (a datagram listener plays the notify socket).
		boot
		notify_listen
		NOTIFY_SOCKET="$WORK/notify.sock" start_daemon --no-bpf
		wait_record 5 '.event == "daemon" and .reason == "not-enforced" and (.detail | test("NOT ENFORCED: lockdown.*damaged"))' >/dev/null
		notify_wait '^READY=1$'
		notify_wait '^STATUS=NOT ENFORCED: lockdown'
		[ "$(outcome)" = lockdown ]
		kill "$DAEMON"
		wait "$DAEMON" || true
		DAEMON=
	done
}
