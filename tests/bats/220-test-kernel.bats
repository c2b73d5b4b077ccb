#!/usr/bin/env bats
# mcpsec test --kernel, and a differential test: for random ordered policy lists and random
# flows both ways, the kernel's own decision (EPERM out; XfrmInPolBlock or delivery in),
# `test --kernel` and `test site.yaml` agree.
load helpers

# shellcheck disable=SC2016 # $1 and $2 are awk's, not the shell's
udp6_noports() { ip netns exec "$1" awk '$1 == "Udp6NoPorts" { print $2 }' /proc/net/snmp6; }
# IPv4's: the NoPorts column of the second "Udp:" line of /proc/net/snmp.
# shellcheck disable=SC2016
udp4_noports() { ip netns exec "$1" awk '$1 == "Udp:" && $3 ~ /^[0-9]+$/ { print $3 }' /proc/net/snmp; }

@test "test --kernel answers from the installed policies, by name" {
	one_ns
	mc_a apply "$(site_copy "$FIX/bypass-discard.yaml")" >/dev/null
	run mc_a test --kernel --ulp tcp --dir out --local-ip "$A_ADDR" --remote-ip "$B_ADDR" --remote-port 18-23 --json
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.results[] | [.result, .remote_port, .first_match]]' <<<"$output")" = \
	  '[["BYPASS",[18,19],"BYPASSALLOUT"],["DISCARD",[20,21],"DISCARDFTPOUT"],["BYPASS",[22,23],"BYPASSALLOUT"]]' ]
	run mc_a test --kernel --ulp icmpv6 --dir in --icmp 136/0 --local-ip "$A_ADDR" --remote-ip "$B_ADDR" --json
	[ "$(jq -r '.results[0].first_match' <<<"$output")" = "BUILTIN-ND-IN" ]
}

@test "differential: the kernel, test --kernel and test site.yaml agree on random policy lists and flows" {
	two_ns
	RANDOM=20261126 # fixed flows too (the lists have fixed seeds): every outcome below is covered
	for round in 1 2 3 4; do
		f="$WORK/r$round/site.yaml"
		mkdir -p "$WORK/r$round"
		"$PY" - "$f" "$round" <<'PY'
import random, sys
path, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
# IPv4 remotes too: flows to IPv4-mapped addresses (::ffff:192.0.2.127) are decided by them.
remotes = ["fec0::2222:a00:bff:fe3a:127", "fec0::2222:a00:bff:fe3a:0/120", "any", "fec0::9",
           "192.0.2.127", "192.0.2.0/24"]
out = "ipsec:\n  default: bypass\npolicies:\n"  # bypass: lists may name IPv4
for i in range(r.randint(4, 9)):
    proto = r.choice(["udp", "tcp", "any"])
    out += f"  - name: P{i}\n    direction: {r.choice(['out', 'in'])}\n    protocol: {proto}\n"
    out += f"    remote: {r.choice(remotes)}\n"
    if proto != "any" and r.random() < 0.7:
        a = r.randint(1000, 1060); out += f"    remote-ports: {a}-{a + r.randint(0, 20)}\n"
    if proto != "any" and r.random() < 0.3:
        a = r.randint(2000, 2030); out += f"    local-ports: {a}-{a + r.randint(0, 10)}\n"
    out += f"    action: {r.choice(['bypass', 'discard'])}\n"
if r.random() < 0.5:
    out += "  - name: RESTOUT\n    direction: out\n    action: bypass\n  - name: RESTIN\n    direction: in\n    action: bypass\n"
open(path, "w").write(out)
PY
		mc_a apply "$f" >/dev/null 2>&1
		for _ in $(seq 16); do
			rport=$((1000 + (RANDOM % 80)))
			lport=$((2000 + (RANDOM % 40)))
			dir=$([ $((RANDOM % 2)) -eq 0 ] && echo out || echo in)
			# A third of the flows go to IPv4-mapped addresses from IPv6 sockets: the kernel
			# sends them as IPv4, and test must decide them as IPv4 too.
			if [ $((RANDOM % 3)) -eq 0 ]; then
				fam=mapped la="::ffff:$A4" ra="::ffff:$B4" noports=udp4_noports
			else
				fam=v6 la=$A_ADDR ra=$B_ADDR noports=udp6_noports
			fi
			args=(--ulp udp --dir "$dir" --local-ip "$la" --remote-ip "$ra" --local-port "$lport" --remote-port "$rport" --json)
			site=$("$MCPSEC" test "$f" "${args[@]}" 2>/dev/null | jq -r '.results[0].result + " " + (.results[0].first_match // "-")')
			kern=$(mc_a test --kernel "${args[@]}" 2>/dev/null | jq -r '.results[0].result + " " + (.results[0].first_match // "-")')
			if [ "$dir" = out ]; then
				seen=$(in_a "$NET" udp-send "$ra" "$rport" "$lport")
				observed=$([ "$seen" = EPERM ] && echo DISCARD || echo BYPASS)
			else
				# B (no policies) sends 3 datagrams from rport to A's lport, where nothing
				# listens: A either blocks them by policy (XfrmInPolBlock) or passes the
				# policy check and counts them as sent to no port (Udp6NoPorts, or Udp
				# NoPorts for IPv4).
				blocked=$(xfrm_stat "$NS_A" XfrmInPolBlock)
				noport=$($noports "$NS_A")
				seen=$(in_b "$NET" udp-send "$la" "$lport" "$rport")
				observed=
				for _ in $(seq 40); do
					if [ "$(xfrm_stat "$NS_A" XfrmInPolBlock)" -ge $((blocked + 3)) ]; then observed=DISCARD; break; fi
					if [ "$($noports "$NS_A")" -ge $((noport + 3)) ]; then observed=BYPASS; break; fi
					sleep 0.05
				done
			fi
			echo "# round $round udp $fam $dir local $lport remote $rport: site '$site' kernel '$kern' observed $observed ($seen)"
			[ "$site" = "$kern" ]
			[ "${site%% *}" = "$observed" ]
			echo "$dir $observed" >>"$WORK/observed"
			echo "$fam $dir $observed" >>"$WORK/observed-family"
		done
	done
	# The lists and flows must have exercised both outcomes, or nothing was compared.
	for want in "out DISCARD" "out BYPASS" "in DISCARD" "in BYPASS"; do
		grep -qx "$want" "$WORK/observed"
	done
	# Mapped flows were compared in both directions, and some were discarded by an IPv4 policy.
	grep -q "^mapped out" "$WORK/observed-family"
	grep -q "^mapped in" "$WORK/observed-family"
	grep -q "^mapped .* DISCARD" "$WORK/observed-family"
}
