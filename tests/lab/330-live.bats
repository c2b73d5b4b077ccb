#!/usr/bin/env bats
# Fail-closed start with real SAs (issue 11): host A's committed key file is broken when it is
# enabled. Every packet of the PROTECT flows must stay off the wire; the BYPASS flow works.
load helpers

setup() {
	lab_setup
	mc_b apply "$SITE_B" >/dev/null 2>&1
	# A commits without enforcing, then its committed key file is damaged.
	sed -i 's/enabled: true/enabled: false/' "$SITE_A"
	mc_a apply "$SITE_A" >/dev/null 2>&1
	cp "$STATE/$(readlink "$STATE/current")/keys.yaml" "$WORK/good-keys.yaml"
	echo 'PRODUCTIONKEY: [broken' >"$STATE/$(readlink "$STATE/current")/keys.yaml"
}
teardown() {
	stop_daemon
	basic_teardown
}

# FTP control and BNA from A to B, and a ping; B counts what it receives.
probe_flows() {
	serve_b 21 1 4
	in_a "$NET" connect "$B_ADDR" 21 >"$WORK/ftp.out"
	start_listener "$WORK/bna.out" in_b "$NET" raw-recv 49 3 1
	in_a "$NET" raw-send "$B_ADDR" 49 >/dev/null
	in_a ping -6 -c 2 -W 3 "$B_ADDR" >"$WORK/ping.out" 2>&1
}

@test "lab live: a corrupted key file at enable: no packet of a PROTECT flow is on the wire, BYPASS works, exit 5" {
	run mc_a enable
	[ "$status" -eq 5 ]
	[[ "$output" == *"NOT ENFORCED: no SAs installed, PROTECT traffic is dropped: "*"keys.yaml"* ]]
	[ "$(ip -n "$NS_A" xfrm state list | grep -c '^src')" -eq 0 ]
	capture_start
	probe_flows
	capture_stop
	[ "$(cat "$WORK/ftp.out")" != "ok" ]
	[ "$(served 21)" = "got 0" ]
	[ "$(listener_result "$WORK/bna.out")" = "got 0" ]
	grep -q '2 received' "$WORK/ping.out"
	# On the wire: the ping (the capture works), and nothing at all of FTP or BNA.
	[ "$(cap_text "icmp6 and ip6[40] == 128" | wc -l)" -ge 2 ]
	[ "$(cap_text 'tcp port 20 or tcp port 21' | wc -l)" -eq 0 ]
	[ "$(cap_text 'ip6 proto 49 or ip6 proto 51 or ip6 proto 50' | wc -l)" -eq 0 ]
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	refute_in_file "mcpsec-bna-marker" "$WORK/cap.pcap"
	run mc_a status ipsec all
	[[ "$output" == *"NOT ENFORCED: no SAs installed"* ]]

	# The same checks fail where IPsec is off on both hosts: they can see a leak.
	mc_a disable 2>/dev/null
	mc_b disable 2>/dev/null
	capture_start
	probe_flows
	capture_stop
	[ "$(cat "$WORK/ftp.out")" = "ok" ]
	[ "$(cap_text 'tcp port 21' | wc -l)" -gt 0 ]
	[ "$(cap_text 'ip6 proto 49' | wc -l)" -gt 0 ]
	run refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	[ "$status" -eq 1 ]
	run refute_in_file "mcpsec-bna-marker" "$WORK/cap.pcap"
	[ "$status" -eq 1 ]
}

@test "lab live: mcpsecd enforces in full once the key file is repaired: FTP is ESP again" {
	run mc_a enable
	[ "$status" -eq 5 ]
	start_daemon
	wait_record 5 '.reason == "not-enforced"' >/dev/null
	cp "$WORK/good-keys.yaml" "$STATE/$(readlink "$STATE/current")/keys.yaml"
	wait_record 5 '.reason == "enforced"' >/dev/null
	[ "$(mc_a status ipsec all --json | jq '.enforced')" = "true" ]
	ftp_captured
	cap_text | grep -q "$A_ADDR > $B_ADDR: ESP(spi=0x00006001"
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
}
