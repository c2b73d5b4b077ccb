#!/usr/bin/env bats
# mcpsec test --kernel, and a differential test: for random ordered policy lists and random
# flows, the kernel's own decision (EPERM or not), `test --kernel` and `test site.yaml` agree.
load helpers

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
	for round in 1 2 3 4; do
		f="$WORK/r$round/site.yaml"
		mkdir -p "$WORK/r$round"
		"$PY" - "$f" "$round" <<'PY'
import random, sys
path, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
remotes = ["fec0::2222:a00:bff:fe3a:127", "fec0::2222:a00:bff:fe3a:0/120", "any", "fec0::9"]
out = "ipsec:\n  default: ipv6-only\npolicies:\n"
for i in range(r.randint(4, 9)):
    proto = r.choice(["udp", "tcp", "any"])
    out += f"  - name: P{i}\n    direction: {r.choice(['out', 'out', 'in'])}\n    protocol: {proto}\n"
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
		for flow in $(seq 12); do
			rport=$((1000 + (RANDOM % 80)))
			lport=$((2000 + (RANDOM % 40)))
			args=(--ulp udp --dir out --local-ip "$A_ADDR" --remote-ip "$B_ADDR" --local-port "$lport" --remote-port "$rport" --json)
			site=$("$MCPSEC" test "$f" "${args[@]}" | jq -r '.results[0].result + " " + (.results[0].first_match // "-")')
			kern=$(mc_a test --kernel "${args[@]}" | jq -r '.results[0].result + " " + (.results[0].first_match // "-")')
			seen=$(in_a "$NET" udp-send "$B_ADDR" "$rport" "$lport")
			observed=$([ "$seen" = EPERM ] && echo DISCARD || echo BYPASS)
			echo "# round $round udp $lport -> $rport: site '$site' kernel '$kern' observed $observed ($seen)"
			[ "$site" = "$kern" ]
			[ "${site%% *}" = "$observed" ]
			echo "$observed" >>"$WORK/observed"
		done
	done
	# The lists and flows must have exercised both outcomes, or nothing was compared.
	grep -q DISCARD "$WORK/observed"
	grep -q BYPASS "$WORK/observed"
}
