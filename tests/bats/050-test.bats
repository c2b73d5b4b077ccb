#!/usr/bin/env bats
# mcpsec test: MCP's policy test, against a site file. No privileges needed.
load helpers

# The seed's test case, as the MCP documentation writes it.
seed_test() {
	"$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --name TEST_PROTECTFTP --ulp tcp --dir in \
		--local-ip FEC0::2222:A00:BFF:FE3A:100 --local-port 500 \
		--remote-ip FEC0::2222:A00:BFF:FE3A:127 --remote-port any "$@"
}

@test "test: the seed's worked example gives exactly its three results" {
	# The expected text is the documentation's (tests/bats/fixtures), with "Policies" spelled out.
	run seed_test
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat "$FIX/seed-test-protectftp.txt")" ]
}

@test "test --json: the same three results as a documented object" {
	run seed_test --json
	[ "$status" -eq 0 ]
	jq -e '.test == "TEST_PROTECTFTP" and .ulp == "tcp" and .direction == "in" and (.results | length) == 3
	       and .results[1].result == "PROTECT" and .results[1].remote_port == [20, 21]
	       and .results[1].local_port == [500, 500] and .results[1].first_match == "PROTECTFTPIN"
	       and .results[1].matching.bypass == ["BYPASSALLIN"] and .results[1].matching.protect == ["PROTECTFTPIN"]
	       and .results[0].remote_port == [1, 19] and .results[2].remote_port == [22, 65535]' <<<"$output"
}

@test "test: ICMPv6 neighbour solicitation is decided by the built-in ND bypass" {
	run "$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --ulp icmpv6 --dir out --icmp 135/0 \
		--local-ip fec0::2222:a00:bff:fe3a:100 --remote-ip ff02::1:ff3a:127 --json
	[ "$(jq -r '.results[0].first_match' <<<"$output")" = "BUILTIN-ND-OUT" ]
	[ "$(jq -r '.results[0].matching.bypass | join(",")' <<<"$output")" = "BUILTIN-ND-OUT,ALLOWICMPV6OUT,BYPASSALLOUT" ]
}

@test "test: with nothing matching, the default discard decides; IPv4 under ipv6-only is outside IPsec" {
	f=$(site_copy "$FIX/bypass-discard.yaml")
	sed -i '/name: BYPASSALLOUT/,$d' "$f"
	run "$MCPSEC" test "$f" --ulp udp --dir out --local-ip fec0::1 --remote-ip fec0::2 --remote-port 53 --json
	[ "$(jq -r '.results[0].result + " " + .results[0].first_match' <<<"$output")" = "DISCARD DEFAULT-DISCARD-OUT6" ]
	run "$MCPSEC" test "$f" --ulp tcp --dir out --local-ip 10.0.0.1 --remote-ip 10.0.0.2 --json
	[ "$(jq -r '.results[0].result' <<<"$output")" = "BYPASS" ]
	[[ "$(jq -r '.results[0].reason' <<<"$output")" == *"outside IPsec"* ]]
}

@test "test: local and remote port ranges are split in two dimensions" {
	run "$MCPSEC" test "$FIX/bypass-discard.yaml" --ulp tcp --dir out --local-ip fec0::2222:a00:bff:fe3a:100 \
		--remote-ip fec0::2222:a00:bff:fe3a:127 --local-port 1000-1001 --remote-port 19-23 --json
	[ "$(jq -c '[.results[] | [.result, .remote_port, .local_port]]' <<<"$output")" = \
	  '[["BYPASS",[19,19],[1000,1001]],["DISCARD",[20,21],[1000,1001]],["BYPASS",[22,23],[1000,1001]]]' ]
}

@test "test: usage errors exit 1" {
	run "$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --ulp tcp --dir sideways --local-ip ::1 --remote-ip ::2
	[ "$status" -eq 1 ]
	run "$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --ulp tcp --dir in --local-ip ::1 --remote-ip 10.0.0.1
	[ "$status" -eq 1 ]
	[[ "$output" == *"no address family in common"* ]]
}

@test "test: a flow that cannot exist (ICMP between IPv6 addresses, ICMPv6 between IPv4 ones) is refused, not answered" {
	run "$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --ulp icmp --dir out --local-ip fec0::1 --remote-ip fec0::2
	[ "$status" -eq 1 ]
	[[ "$output" == *"icmp travels over IPv4 only"*"test icmpv6 for IPv6"* ]]
	run "$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --ulp icmpv6 --dir in --local-ip 192.0.2.1 --remote-ip 192.0.2.2
	[ "$status" -eq 1 ]
	[[ "$output" == *"icmpv6 travels over IPv6 only"*"test icmp for IPv4"* ]]
	# With 'any' only the family the protocol travels over is answered.
	run "$MCPSEC" test "$ROOT/examples/host-a/site.yaml" --ulp icmpv6 --dir out --local-ip any --remote-ip any --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.results[].remote_ip_range[0]] | map(test(":")) | all' <<<"$output")" = true ]
}
