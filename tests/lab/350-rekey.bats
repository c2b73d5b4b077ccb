#!/usr/bin/env bats
# Key rollover, make before break (issue 12), with real SAs: UDP streams both ways and a TCP
# transfer run while both hosts roll over in the worst order the steps allow (each host steps as
# soon as its peer has applied the step before). Nothing is lost, nothing is in clear, the new
# SPIs are on the wire afterwards. Then the order is broken (switch before accept): check-peer
# and the receiver both see it.
load helpers

STOP="$BATS_TEST_TMPDIR/stop"
POLICIES=(PROTECTUDPOUT PROTECTUDPIN PROTECTTCPOUT PROTECTTCPIN)

setup() {
	lab_setup
	KEYS_B="$(dirname "$SITE_B")/keys.yaml"
	echo "a long enough passphrase" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	"$MCPSEC" key generate ROLLI --alg sha256 --keys "$KEYS" >/dev/null
	"$MCPSEC" key generate ROLLC --alg aes256 --keys "$KEYS" >/dev/null
	carry_keys ROLLI ROLLC
	# A: UDP to B's port 5000 and from B to A's port 5001, TCP to B's port 5002, each way under
	# its own ESP SA; everything else bypasses. B is A's mirror.
	esp='esp: { integrity: hmac-sha256-128, integrity-key: ROLLI, confidentiality: aes-cbc, confidentiality-key: ROLLC }'
	pair_with_rest <<EOF2
  - name: PROTECTUDPOUT
    direction: out
    remote: $B_ADDR
    protocol: udp
    remote-ports: 5000
    action: protect
    spi: 20481
    $esp
  - name: PROTECTUDPIN
    direction: in
    remote: $B_ADDR
    protocol: udp
    local-ports: 5001
    action: protect
    spi: 20482
    $esp
  - name: PROTECTTCPOUT
    direction: out
    remote: $B_ADDR
    protocol: tcp
    remote-ports: 5002
    action: protect
    spi: 20483
    $esp
  - name: PROTECTTCPIN
    direction: in
    remote: $B_ADDR
    protocol: tcp
    remote-ports: 5002
    action: protect
    spi: 20484
    $esp
EOF2
}
teardown() {
	touch "$STOP"
	basic_teardown
}

# Copies keys from A's key file to B's (export, encrypted, and import).
carry_keys() {
	"$MCPSEC" key export "$@" --keys "$KEYS" --out "$WORK/export" --passphrase-file "$WORK/pass" >/dev/null
	"$MCPSEC" key import "$WORK/export" --keys "$KEYS_B" --passphrase-file "$WORK/pass" --replace >/dev/null
}

# One step on A's file; B's file is A's mirror; the new keys go to B.
rekey_step() {
	mc_a rekey "${POLICIES[@]}" --site "$SITE_A" --peer "$B_ADDR" --self "$A_ADDR" --peer-out "$SITE_B" \
		>"$WORK/rekey.out"
	local new
	new=$(sed -n 's/^new key \([^ ]*\) .*/\1/p' "$WORK/rekey.out")
	# shellcheck disable=SC2086 # one name per word
	[ -z "$new" ] || carry_keys $new
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
# The SPIs of the ESP packets A sent to B in the capture (hex, as tcpdump prints them).
spis_a_to_b() { cap_text "esp and src $A_ADDR" | grep -o 'spi=0x[0-9a-f]*' | sort -u; }
hexspi() { printf 'spi=0x%08x' "$1"; }

@test "lab rekey: rolled over on both hosts in the worst allowed order, under traffic: no datagram lost, nothing in clear, new SPIs on the wire" {
	capture_start
	traffic_start
	for step in accept switch retire; do
		cp "$SITE_B" "$(dirname "$SITE_B")/b-prev.yaml"
		rekey_step
		[[ "$(cat "$WORK/rekey.out")" == *"PROTECTUDPOUT (out): $step"* ]]
		# Before each apply, the pair of files about to run is clean: A's new step against what
		# B runs (the step before).
		quiet "$MCPSEC" check-peer "$SITE_A" "$(dirname "$SITE_B")/b-prev.yaml"
		quiet mc_a apply "$SITE_A"
		sleep 1
		quiet mc_b apply "$SITE_B"
		sleep 1
	done
	traffic_stop
	capture_stop

	echo "# measured: A->B $(sent send-a) datagrams, B->A $(sent send-b), TCP $(sent tcp-a) bytes, over the rollover" >&3
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
	# Nothing of the three flows in clear; the marker never in the capture.
	[ "$(cap_text 'udp port 5000 or udp port 5001 or tcp port 5002' | wc -l)" -eq 0 ]
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	# Old and new SPIs both carried A's UDP to B; afterwards only the new one is installed.
	new_spi=$(yq_spi "$SITE_A" PROTECTUDPOUT)
	[ "$new_spi" != 20481 ]
	spis_a_to_b >"$WORK/spis"
	grep -qx "$(hexspi 20481)" "$WORK/spis"
	grep -qx "$(hexspi "$new_spi")" "$WORK/spis"
	[ "$(ip -n "$NS_A" xfrm state list | grep -c "spi $(printf '0x%08x' 20481)")" -eq 0 ]
	# Afterwards: the new SPI alone on the wire.
	capture_start
	[ "$(in_a "$PY" "$NET" udp-burst "$B_ADDR" 5000 20 5)" = "sent 20 errors 0 " ]
	capture_stop
	[ "$(spis_a_to_b)" = "$(hexspi "$new_spi")" ]
	[ "$(xfrm_stat "$NS_B" XfrmInNoStates)" -eq 0 ]
	[ "$(xfrm_stat "$NS_B" XfrmInTmplMismatch)" -eq 0 ]
}

@test "lab rekey: switch before the peer accepts: check-peer names it, and the receiver loses the datagrams" {
	cp "$SITE_B" "$WORK/b-none.yaml"
	cp "$KEYS_B" "$WORK/keys.yaml.b" 2>/dev/null || true
	rekey_step
	quiet mc_a apply "$SITE_A" # A accepts; B never does
	rekey_step                           # A switches
	cp "$WORK/b-none.yaml" "$(dirname "$SITE_B")/b-none.yaml"
	run "$MCPSEC" check-peer "$SITE_A" "$(dirname "$SITE_B")/b-none.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'PROTECTUDPOUT' (sending) and "*"'PROTECTUDPIN' (receiving) disagree on udp"*"the sender switched before the receiver accepted"* ]]

	traffic_start udp
	quiet mc_a apply "$SITE_A" # the broken order, applied anyway
	sleep 3
	traffic_stop
	# A's datagrams after the switch never arrive: B has no SA for the new SPI.
	[ "$(got udp-b)" -lt "$(sent send-a)" ]
	[ "$(xfrm_stat "$NS_B" XfrmInNoStates)" -gt 0 ]
}

@test "lab rekey: an inbound policy accepts only its own SAs: another policy's SA between the same hosts is refused" {
	# Control: B's UDP to A's port 5001, under the SA of PROTECTUDPIN, arrives.
	start_listener "$WORK/udp-a.out" in_a "$PY" "$NET" udp-recv 5001 5 20
	in_b "$PY" "$NET" udp-burst "$A_ADDR" 5001 20 5 >/dev/null
	[ "$(listener_result "$WORK/udp-a.out")" = "got 20" ]
	# B now sends that UDP with the SA A's PROTECTTCPIN accepts (SPI 20484, the same keys): A
	# decrypts it, and PROTECTUDPIN refuses it (another reqid), counted as a template mismatch.
	sed -i 's/spi: 20484$/spi: 20499/; s/spi: 20482$/spi: 20484/' "$SITE_B"
	quiet mc_b apply "$SITE_B"
	before=$(xfrm_stat "$NS_A" XfrmInTmplMismatch)
	capture_start
	start_listener "$WORK/udp-a.out" in_a "$PY" "$NET" udp-recv 5001 5 20
	in_b "$PY" "$NET" udp-burst "$A_ADDR" 5001 20 5 >/dev/null
	[ "$(listener_result "$WORK/udp-a.out")" = "got 0" ]
	capture_stop
	[ "$(cap_text "esp and src $B_ADDR" | grep -c "$(hexspi 20484)")" -ge 20 ]
	[ "$(xfrm_stat "$NS_A" XfrmInTmplMismatch)" -ge $((before + 20)) ]
	[ "$(cap_text 'udp port 5001' | wc -l)" -eq 0 ]
}
