#!/usr/bin/env bats
# IPsec turned on without loss (issue 28), with real SAs: two hosts talk in clear (numbered UDP
# both ways and a TCP transfer), then protection is phased in, accept, protect, require, each
# step on both hosts before the next. Every datagram arrives exactly once, every byte arrives,
# and after the last phase nothing of those flows is in clear. Then the wrong order (require
# before the peer protects): check-peer names it beforehand, and the traffic is lost.
load helpers

STOP="$BATS_TEST_TMPDIR/stop"
POLICIES=(PROTECTUDPOUT PROTECTUDPIN PROTECTTCPOUT PROTECTTCPIN)

setup() {
	lab_setup
	BDIR=$(dirname "$SITE_B")
	KEYS_B="$BDIR/keys.yaml"
	echo "a long enough passphrase" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	"$MCPSEC" key generate PHASEI --alg sha256 --keys "$KEYS" >/dev/null
	"$MCPSEC" key generate PHASEC --alg aes256 --keys "$KEYS" >/dev/null
	"$MCPSEC" key export PHASEI PHASEC --keys "$KEYS" --out "$WORK/export" --passphrase-file "$WORK/pass" >/dev/null
	"$MCPSEC" key import "$WORK/export" --keys "$KEYS_B" --passphrase-file "$WORK/pass" --replace >/dev/null
	# Before: everything bypasses both ways (the pair talks in clear).
	pair_with_rest </dev/null
}
teardown() {
	touch "$STOP"
	basic_teardown
}

# A's protected flows, at phase accept: UDP to B's port 5000, from B to A's port 5001, TCP to
# B's port 5002; everything else bypasses. B's file is A's mirror.
write_accept() {
	local esp='esp: { integrity: hmac-sha256-128, integrity-key: PHASEI, confidentiality: aes-cbc, confidentiality-key: PHASEC }'
	{
		cat <<EOF2
  - name: PROTECTUDPOUT
    direction: out
    remote: $B_ADDR
    protocol: udp
    remote-ports: 5000
    action: protect
    spi: 28673
    $esp
    enforce: accept
  - name: PROTECTUDPIN
    direction: in
    remote: $B_ADDR
    protocol: udp
    local-ports: 5001
    action: protect
    spi: 28674
    $esp
    enforce: accept
  - name: PROTECTTCPOUT
    direction: out
    remote: $B_ADDR
    protocol: tcp
    remote-ports: 5002
    action: protect
    spi: 28675
    $esp
    enforce: accept
  - name: PROTECTTCPIN
    direction: in
    remote: $B_ADDR
    protocol: tcp
    remote-ports: 5002
    action: protect
    spi: 28676
    $esp
    enforce: accept
EOF2
		printf '  - name: RESTOUT\n    direction: out\n    action: bypass\n'
		printf '  - name: RESTIN\n    direction: in\n    action: bypass\n'
	} | with_policies "$SITE_A"
	mc_a mirror "$SITE_A" --peer "$B_ADDR" --self "$A_ADDR" --out "$SITE_B"
}

# One phase-in step on A's file; B's file is A's mirror.
phase_step() {
	mc_a phase-in "${POLICIES[@]}" --site "$SITE_A" --peer "$B_ADDR" --self "$A_ADDR" --peer-out "$SITE_B" "$@" \
		>"$WORK/phase.out"
}

# UDP both ways and (unless "udp") a TCP transfer A -> B, until $STOP exists.
traffic_start() {
	TCP=$([ "${1:-}" = udp ] && echo no || echo yes)
	rm -f "$STOP"
	start_listener "$WORK/udp-b.out" in_b "$PY" "$NET" udp-seq-recv 5000 6
	start_listener "$WORK/udp-a.out" in_a "$PY" "$NET" udp-seq-recv 5001 6
	in_a "$PY" "$NET" udp-stream "$B_ADDR" 5000 "$STOP" 5 >"$WORK/send-a.out" 3>&- &
	in_b "$PY" "$NET" udp-stream "$A_ADDR" 5001 "$STOP" 5 >"$WORK/send-b.out" 3>&- &
	if [ "$TCP" = yes ]; then
		start_listener "$WORK/tcp-b.out" in_b "$PY" "$NET" tcp-sink 5002 60
		in_a "$PY" "$NET" tcp-stream "$B_ADDR" 5002 "$STOP" >"$WORK/tcp-a.out" 3>&- &
	fi
	sleep 2
}
traffic_stop() {
	touch "$STOP"
	local f
	for f in send-a send-b $([ "$TCP" = yes ] && echo tcp-a); do
		for _ in $(seq 300); do [ -s "$WORK/$f.out" ] && break; sleep 0.1; done
	done
	listener_result "$WORK/udp-b.out" >"$WORK/udp-b.res"
	listener_result "$WORK/udp-a.out" >"$WORK/udp-a.res"
	[ "$TCP" = no ] || listener_result "$WORK/tcp-b.out" >"$WORK/tcp-b.res"
}
sent() { awk '{ print $2 }' "$WORK/$1.out"; }
errors() { awk '{ print $4 }' "$WORK/$1.out"; }
got() { awk '{ print $2 }' "$WORK/$1.res"; }
unique() { awk '{ print $4 }' "$WORK/$1.res"; }
# Packets of the three flows in a capture: in clear, and ESP (either way).
clear_count() { cap_text 'udp port 5000 or udp port 5001 or tcp port 5002' | wc -l; }
esp_count() { cap_text "esp" | wc -l; }

# UDP datagrams of one direction in the capture: in clear (to PORT) and under SPI.
udp_clear() { cap_text "udp dst port $1" | wc -l; }
udp_esp() { cap_text esp | grep -c "$(printf 'spi=0x%08x' "$1")"; }
# A two-second window of the wire, named after the phase: "PHASE clear N esp M", then the
# datagrams each way, in clear and under their SA.
window() {
	capture_start
	sleep 2
	capture_stop
	cp "$WORK/cap.pcap" "$WORK/cap-$1.pcap"
	echo "$1 clear $(clear_count) esp $(esp_count) udp A->B clear $(udp_clear 5000) esp $(udp_esp 28673)," \
		"B->A clear $(udp_clear 5001) esp $(udp_esp 28674)" >>"$WORK/windows"
}

@test "lab phase-in: protection turned on in three phases under traffic: no datagram lost or doubled, every byte arrives, nothing in clear after" {
	traffic_start
	window before
	# accept: written by hand (or by the fleet playbook), applied on A, then on B.
	cp "$SITE_B" "$BDIR/b-prev.yaml"
	write_accept
	quiet "$MCPSEC" check-peer "$SITE_A" "$BDIR/b-prev.yaml" --addr-a "$A_ADDR" --addr-b "$B_ADDR"
	quiet mc_a apply "$SITE_A"
	quiet mc_b apply "$SITE_B"
	window accept
	for step in protect require; do
		cp "$SITE_B" "$BDIR/b-prev.yaml"
		phase_step
		[[ "$(cat "$WORK/phase.out")" == *"PROTECTUDPOUT (out): $step"* ]]
		# The pair about to run is clean: A's new step against what B runs (the step before).
		quiet "$MCPSEC" check-peer "$SITE_A" "$BDIR/b-prev.yaml" --addr-a "$A_ADDR" --addr-b "$B_ADDR"
		quiet mc_a apply "$SITE_A"
		sleep 1
		quiet mc_b apply "$SITE_B"
		window "$step"
	done
	traffic_stop

	{
		echo "# measured: A->B $(sent send-a) datagrams sent, $(got udp-b) received ($(unique udp-b) distinct);" \
			"B->A $(sent send-b) sent, $(got udp-a) received; TCP $(sent tcp-a) bytes sent, $(cat "$WORK/tcp-b.res")"
		sed 's/^/# window: /' "$WORK/windows"
	} >&3
	# Every datagram sent both ways arrived, each exactly once; the senders never saw an error.
	[ "$(errors send-a)" -eq 0 ]
	[ "$(errors send-b)" -eq 0 ]
	[ "$(sent send-a)" -gt 200 ]
	[ "$(got udp-b)" -eq "$(sent send-a)" ]
	[ "$(unique udp-b)" -eq "$(sent send-a)" ]
	[ "$(got udp-a)" -eq "$(sent send-b)" ]
	[ "$(unique udp-a)" -eq "$(sent send-b)" ]
	# The TCP transfer: every byte arrived, no reset.
	[ "$(sent tcp-a)" -gt 0 ]
	[ "$(cat "$WORK/tcp-b.res")" = "got $(sent tcp-a)" ]
	# On the wire: clear before and in accept, ESP only from protect on.
	grep -Eq '^before clear [1-9][0-9]* esp 0 ' "$WORK/windows"
	grep -Eq '^accept clear [1-9][0-9]* esp 0 ' "$WORK/windows"
	grep -Eq '^protect clear 0 esp [1-9][0-9]* ' "$WORK/windows"
	grep -Eq '^require clear 0 esp [1-9][0-9]* ' "$WORK/windows"
	# Each direction under its own SA.
	for spi in 28673 28674 28675; do
		[ "$(tcpdump -nr "$WORK/cap-require.pcap" esp 2>/dev/null | grep -c "$(printf 'spi=0x%08x' "$spi")")" -gt 0 ]
	done
	[ "$(xfrm_stat "$NS_A" XfrmInTmplMismatch)" -eq 0 ]
	[ "$(xfrm_stat "$NS_B" XfrmInTmplMismatch)" -eq 0 ]
}

@test "lab phase-in: require before the peer protects: check-peer names it, and the peer's clear datagrams are lost" {
	write_accept
	apply_both "$SITE_A" "$SITE_B"
	cp "$SITE_B" "$BDIR/b-accept.yaml"
	phase_step                    # A: protect (not applied)
	phase_step --force            # A: require, skipping its own protect
	run "$MCPSEC" check-peer "$SITE_A" "$BDIR/b-accept.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'PROTECTUDPIN' (receiving) disagree on udp"*"the receiver is at phase require while the sender is at accept"* ]]

	traffic_start udp
	quiet mc_a apply "$SITE_A"    # the wrong order, applied anyway; B still sends in clear
	sleep 3
	traffic_stop
	echo "# measured: B->A $(sent send-b) sent in clear, $(got udp-a) received by A at phase require" >&3
	[ "$(got udp-a)" -lt "$(sent send-b)" ]
	[ "$(xfrm_stat "$NS_A" XfrmInTmplMismatch)" -gt 0 ]
}
