#!/usr/bin/env bats
# SAs that keep working (issue 12): an outbound SA's sequence number crosses 2^32 and traffic
# goes on; the same steps on an SA without XFRM_SA_XFLAG_OSEQ_MAY_WRAP stop at the wrap; apply
# puts the flag on such an SA without resetting its counter; 3DES SAs warn before Sweet32.
load helpers

AE="$BATS_TEST_DIRNAME/xfrm-ae.py"
SPI=5001

setup() {
	lab_setup
	# A sends UDP to B's port 5000 under ESP; everything else bypasses. B is A's mirror.
	pair_with_rest <<EOF2
  - name: PROTECTUDPOUT
    direction: out
    remote: $B_ADDR
    protocol: udp
    remote-ports: 5000
    action: protect
    spi: $SPI
    esp: { integrity: hmac-sha1-96, integrity-key: BNAAHKEY, confidentiality: aes-cbc, confidentiality-key: PRODUCTIONKEY }
EOF2
}
teardown() {
	stop_daemon
	basic_teardown
}

# COUNT datagrams from A to B's port 5000, 1 ms apart; prints what B received ("got N").
burst() {
	start_listener "$WORK/recv.out" in_b "$PY" "$NET" udp-recv 5000 20 "$1"
	in_a "$PY" "$NET" udp-burst "$B_ADDR" 5000 "$1" 1 >"$WORK/burst.out"
	listener_result "$WORK/recv.out"
}

@test "lab SA life: 1000 datagrams across the 2^32 wrap all arrive with OSEQ_MAY_WRAP; without it they stop at the wrap" {
	[[ "$(in_a "$PY" "$AE" show $SPI)" == *"flags=2"* ]]
	[[ "$(in_b "$PY" "$AE" show $SPI)" == *"flags=0"* ]] # inbound: never the flag

	in_a "$PY" "$AE" set-oseq $SPI $((2 ** 32 - 500))
	capture_start
	[ "$(burst 1000)" = "got 1000" ]
	capture_stop
	[ "$(xfrm_stat "$NS_A" XfrmOutStateSeqError)" -eq 0 ]
	# On the wire: the last sequence numbers before the wrap and the first after it.
	[ "$(cap_text 'esp' | grep -c 'seq=0xffffffff')" -eq 1 ]
	[ "$(cap_text 'esp' | grep -c 'seq=0x1f4)')" -eq 1 ]
	[ "$(cap_text 'udp port 5000' | wc -l)" -eq 0 ]
	run mc_a status ipsec PROTECTUDPOUT
	[[ "$output" == *"sending: "*" packets, sequence 500 (may wrap)"* ]]

	# The same steps on the SA as a tool without the flag installs it: the kernel stops it.
	in_a "$PY" "$AE" strip-wrap $SPI
	[[ "$(in_a "$PY" "$AE" show $SPI)" == *"flags=0"* ]]
	in_a "$PY" "$AE" set-oseq $SPI $((2 ** 32 - 500))
	# 499 numbers are left before the wrap (2^32 - 499 .. 2^32 - 1); the other 501 are refused.
	[ "$(burst 1000)" = "got 499" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutStateSeqError)" -eq 501 ]
	run mc_a status ipsec PROTECTUDPOUT
	[[ "$output" == *"STOPS AT 4294967295: reapply"* ]]
}

@test "lab SA life: apply puts the flag on a running SA that lacks it, and its counter goes on, never reset" {
	in_a "$PY" "$AE" strip-wrap $SPI
	in_a "$PY" "$AE" set-oseq $SPI 3000000000
	run mc_a apply "$SITE_A" --dry-run
	[[ "$output" == *"SAs 0 add, 1 replace, 0 delete"* ]]
	[[ "$output" == *"delete SA      PROTECTUDPOUT"* ]]
	mc_a apply "$SITE_A"
	run in_a "$PY" "$AE" show $SPI
	[[ "$output" == *"flags=2"* ]]
	oseq=${output#oseq=}
	oseq=${oseq%% *}
	[ "$oseq" -ge 3000000000 ]
	[ "$oseq" -le $((3000000000 + 2 ** 24 + 1000)) ]
	[ "$(burst 50)" = "got 50" ]
	# A second apply finds nothing to change: the counter runs on.
	run mc_a apply "$SITE_A" --dry-run
	[[ "$output" == *"SAs 0 add, 0 replace, 0 delete, 1 unchanged"* ]]
}

@test "lab SA life: a 3DES SA warns before the Sweet32 block limit, an AES SA never does" {
	"$MCPSEC" key generate TDESKEY --alg tdes --keys "$KEYS" >/dev/null
	sed -i 's/confidentiality: aes-cbc, confidentiality-key: PRODUCTIONKEY/confidentiality: tdes-cbc, confidentiality-key: TDESKEY/' "$SITE_A"
	mc_a apply "$SITE_A" 2>/dev/null
	run mc_a status ipsec PROTECTUDPOUT
	[[ "$output" != *"Sweet32"* ]]
	in_a "$PY" "$AE" set-bytes $SPI $((3 * 2 ** 30))
	run mc_a status ipsec PROTECTUDPOUT
	[[ "$output" == *"WARNING: tdes-cbc (64-bit blocks) has carried 3.0 GiB"*"Sweet32"* ]]
	run mc_a status ipsec PROTECTUDPOUT --json
	[ "$(jq -r '.policies[0].sa.warning' <<<"$output")" != null ]
	# The same byte count on an AES SA is no warning.
	sed -i 's/confidentiality: tdes-cbc, confidentiality-key: TDESKEY/confidentiality: aes-cbc, confidentiality-key: PRODUCTIONKEY/' "$SITE_A"
	mc_a apply "$SITE_A"
	in_a "$PY" "$AE" set-bytes $SPI $((3 * 2 ** 30))
	run mc_a status ipsec PROTECTUDPOUT --json
	[ "$(jq -r '.policies[0].sa.bytes' <<<"$output")" -ge $((3 * 2 ** 30)) ]
	[ "$(jq -r '.policies[0].sa.warning' <<<"$output")" = null ]
}

@test "lab SA life: a soft lifetime logs rekey-due with the policy; a hard one removes the SA and mcpsecd never puts it back" {
	sed -i "s/^    spi: $SPI$/    spi: $SPI\n    lifetime: { packets: { soft: 50, hard: 100 } }/" "$SITE_A"
	quiet mc_a apply "$SITE_A"
	run mc_a status ipsec PROTECTUDPOUT
	[[ "$output" == *"lifetime: soft 50 packets, hard 100 packets"* ]]
	start_daemon
	[ "$(burst 60)" = "got 60" ]
	wait_record 5 '.event == "rekey-due" and .policy == "PROTECTUDPOUT"' >/dev/null
	run ! jq -e 'select(.event == "sa-expire")' "$STATE/log.jsonl"
	# Past the hard limit the kernel removes the SA: the rest of the datagrams are dropped.
	got=$(burst 60)
	[ "${got#got }" -le 40 ]
	wait_record 5 '.event == "sa-expire" and .reason == "hard-lifetime" and .policy == "PROTECTUDPOUT"' >/dev/null
	# mcpsecd's repair, even forced, leaves it out; the policy still drops, never sends in clear.
	# (The kernel's ACQUIRE leaves a larval state with the template's SPI and no keys: not an SA.)
	kill -HUP "$DAEMON"
	wait_record 5 '.event == "daemon" and .reason == "reload"' >/dev/null
	sleep 2
	[ "$(mc_a status ipsec PROTECTUDPOUT --json | jq '.policies[0].sas | length')" -eq 0 ]
	run ! jq -e 'select(.event == "repair")' "$STATE/log.jsonl"
	run mc_a status ipsec PROTECTUDPOUT
	[[ "$output" == *"MISSING - matching traffic is dropped"* ]]
	capture_start
	[ "$(burst 20)" = "got 0" ]
	capture_stop
	[ "$(cap_text 'udp port 5000' | wc -l)" -eq 0 ]
	stop_daemon
}
