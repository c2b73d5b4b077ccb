#!/usr/bin/env bats
# Every algorithm once, checked by an independent implementation; IPv4; interoperability with
# hand-written `ip xfrm`; applying while traffic flows; a wrong key seen as integrity failures.
load helpers

setup() { lab_setup; }
teardown() {
	stop_daemon
	basic_teardown
}

@test "lab: every algorithm works between two hosts, and scapy verifies and decrypts the captured packets" {
	"$PY" "$BATS_TEST_DIRNAME/gen-algorithms.py" "$WORK/alg" >"$WORK/combos"
	apply_both "$WORK/alg/a/site.yaml" "$WORK/alg/b/site.yaml"
	capture_start
	while read -r port proto integ conf sab sba ikey ckey; do
		serve_b "$port"
		[ "$(in_a "$NET" connect "$B_ADDR" "$port")" = "ok" ]
		[ "$(served "$port")" = "got 1" ]
	done <"$WORK/combos"
	capture_stop
	specs=()
	while read -r port proto integ conf sab sba ikey ckey; do
		i=${integ#hmac-}; i=${i%%-*}            # sha1 | sha256 | sha512 | none
		c=none
		case $conf in aes128|aes256) c=aes ;; tdes) c=tdes ;; esac
		spec="$sab:$proto:$i"; [ "$i" = none ] || spec="$spec:$ikey"
		[ "$proto" = ah ] || { spec="$spec:$c"; [ "$c" = none ] || spec="$spec:$ckey"; }
		specs+=("$spec")
		# The right protocol and SPI on the wire, in both directions.
		want=$([ "$proto" = ah ] && echo AH || echo ESP)
		cap_text | grep -q "$A_ADDR > $B_ADDR: $want(spi=0x0000${sab#0x}"
		cap_text | grep -q "$B_ADDR > $A_ADDR: $want(spi=0x0000${sba#0x}"
	done <"$WORK/combos"
	run "$PY" "$VERIFY" "$WORK/cap.pcap" "$WORK/alg/a/keys.yaml" "${specs[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	# Every A->B SA: packets seen, all verified, the marker found after decryption.
	[ "$(grep -c '^spi ' <<<"$output")" -eq 8 ]
	! grep -E '^spi ' <<<"$output" | grep -E 'packets 0 |marker 0$' || false
	while read -r _ _ pk _ vf _ _; do [ "$pk" = "$vf" ]; done < <(grep '^spi ' <<<"$output" | awk '{print $3, $4, $5, $6, $7, $8, $9}')
}

@test "lab: a wrong key on one side shows up as integrity failures in status and in mcpsecd's drop report" {
	"$PY" "$BATS_TEST_DIRNAME/gen-algorithms.py" "$WORK/alg" wrong-key K_SHA256 >/dev/null
	apply_both "$WORK/alg/a/site.yaml" "$WORK/alg/b/site.yaml"
	D_NS=$NS_B D_STATE=$STATE-b start_daemon
	before=$(xfrm_stat "$NS_B" XfrmInStateProtoError)
	serve_b 5008 1 12
	[ "$(in_a "$NET" connect "$B_ADDR" 5008)" = "timeout" ]
	served 5008
	[ "$(mc_b status ipsec IN5008 --json | jq '.policies[0].sa.integrity_failed')" -gt 0 ]
	[ "$(xfrm_stat "$NS_B" XfrmInStateProtoError)" -gt "$before" ]
	run mc_b status ipsec IN5008
	[[ "$output" == *"integrity failures "[1-9]* ]]
	# The daemon attributes them to the SA's policy on B.
	D_NS=$NS_B D_STATE=$STATE-b wait_record 3 '.event == "drop" and .reason == "icv-failure" and .policy == "IN5008" and .count > 0'
	stop_daemon
}

@test "lab: IPv4 under default deny: PROTECT is ESP on the wire and unmatched IPv4 is discarded; under bypass it passes" {
	for side in a b; do
		if [ $side = a ]; then f=$SITE_A l=$A4 r=$B4 so=24577 si=24578 ko=PRODUCTIONKEY ki=DRSYSTEMKEY
		else f=$SITE_B l=$B4 r=$A4 so=24578 si=24577 ko=DRSYSTEMKEY ki=PRODUCTIONKEY; fi
		sed -i 's/default: ipv6-only/default: deny/' "$f"
		with_policies "$f" <<EOF2
  - name: ICMP4
    direction: out
    protocol: icmp
    action: bypass
  - name: ICMP4IN
    direction: in
    protocol: icmp
    action: bypass
  - name: V4OUT
    direction: out
    local: $l
    remote: $r
    protocol: tcp
    action: protect
    spi: $so
    esp: { confidentiality: aes-cbc, confidentiality-key: $ko, integrity: hmac-sha1-96, integrity-key: BNAAHKEY }
  - name: V4IN
    direction: in
    local: $l
    remote: $r
    protocol: tcp
    action: protect
    spi: $si
    esp: { confidentiality: aes-cbc, confidentiality-key: $ki, integrity: hmac-sha1-96, integrity-key: BNAAHKEY }
  - name: V6OUT
    direction: out
    remote: ::/0
    action: bypass
  - name: V6IN
    direction: in
    remote: ::/0
    action: bypass
EOF2
	done
	apply_both
	capture_start
	serve_b 6000
	[ "$(in_a "$NET" connect "$B4" 6000)" = "ok" ]
	served 6000
	capture_stop
	cap_text | grep -q "IP $A4 > $B4: ESP(spi=0x00006001"
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	# Unmatched IPv4 (UDP) is discarded by DEFAULT-DISCARD-OUT4.
	before=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	[ "$(in_a "$NET" udp-send "$B4" 9)" = "EPERM" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutPolBlock)" -gt "$before" ]
	[ "$(mc_a status ipsec DEFAULT-DISCARD-OUT4 --json | jq -r '.policies[0].last_use != null')" = "true" ]
	# default bypass: unmatched IPv4 passes in clear.
	sed -i 's/default: deny/default: bypass/' "$SITE_A" "$SITE_B"
	apply_both
	start_listener "$WORK/udp.out" in_b "$NET" udp-recv 9 20 1
	[ "$(in_a "$NET" udp-send "$B4" 9)" = "ok" ]
	[ "$(listener_result "$WORK/udp.out")" = "got 1" ]
}

@test "lab: host B configured by hand with ip xfrm from the same keys interoperates with mcpsec on A" {
	mc_a apply "$SITE_A" >/dev/null
	prod=6d63707365632d746573742d70726f64                                   # PRODUCTIONKEY
	drs=6d63707365632d746573742d647273797374656d2d6b65792d32353662697421   # DRSYSTEMKEY (ASCII)
	ip -n "$NS_B" xfrm state add src "$A_ADDR" dst "$B_ADDR" proto esp spi 24577 mode transport enc 'cbc(aes)' "0x$prod"
	ip -n "$NS_B" xfrm state add src "$B_ADDR" dst "$A_ADDR" proto esp spi 24578 mode transport enc 'cbc(aes)' "0x$drs"
	for p in 20 21; do
		ip -n "$NS_B" xfrm policy add src "$A_ADDR" dst "$B_ADDR" proto tcp dport $p dir in tmpl proto esp mode transport
		ip -n "$NS_B" xfrm policy add src "$B_ADDR" dst "$A_ADDR" proto tcp sport $p dir out tmpl proto esp spi 24578 mode transport
	done
	ftp_captured
	cap_text | grep -q "$A_ADDR > $B_ADDR: ESP(spi=0x00006001"
	cap_text | grep -q "$B_ADDR > $A_ADDR: ESP(spi=0x00006002"
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
}

@test "lab: apply of a changed file while FTP traffic flows never lets a protected port out in clear" {
	apply_both
	capture_start
	serve_b 21 30 90
	in_a "$NET" connect-many "$B_ADDR" 21 30 >"$WORK/conns" 3>&- &
	client=$!
	extra='  - name: EXTRA
    direction: out
    protocol: udp
    remote-ports: 7
    action: discard
'
	for round in 1 2 3 4; do
		"$PY" - "$SITE_A" "$extra" "$round" <<'PY'
import sys
p, block, r = sys.argv[1], sys.argv[2], int(sys.argv[3]); s = open(p).read()
if r % 2:   # insert at the top: ahead of every policy
    i = s.index("  - name: ALLOWICMPV6OUT"); s = s[:i] + block + s[i:]
else:
    s = s.replace(block, "")
open(p, "w").write(s)
PY
		mc_a apply "$SITE_A" >/dev/null
		sleep 0.3
	done
	wait "$client"
	served 21 >/dev/null
	capture_stop
	[ "$(cat "$WORK/conns")" = "ok 30" ]
	[ "$(cap_text 'tcp port 21' | wc -l)" -eq 0 ]
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	[ "$(cap_text | grep -c 'ESP(spi=0x00006001')" -gt 30 ]
}
