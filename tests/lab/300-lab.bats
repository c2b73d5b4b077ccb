#!/usr/bin/env bats
# Two hosts with the seed's examples 1-8 (A) and their mirror (B), real SAs: every result is
# observed on the wire (tcpdump, scapy) or in the kernel's counters.
load helpers

setup() { lab_setup; }
teardown() {
	stop_daemon
	basic_teardown
}

@test "lab: ping6 works both ways (ICMPv6 bypass, Neighbor Discovery)" {
	apply_both
	run in_a ping -6 -c 2 -W 3 "$B_ADDR"
	[ "$status" -eq 0 ]
	run in_b ping -6 -c 2 -W 3 "$A_ADDR"
	[ "$status" -eq 0 ]
}

@test "lab: TCP to ports 20 and 21 is ESP with SPI 24577 (0x6001) out and 24578 back; the payload is never in clear" {
	apply_both
	capture_start
	serve_b 21
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "ok" ]
	[ "$(served 21)" = "got 1" ]
	serve_b 20
	[ "$(in_a "$NET" connect "$B_ADDR" 20)" = "ok" ]
	[ "$(served 20)" = "got 1" ]
	capture_stop
	cap_text >"$WORK/cap.txt"
	grep -q "$A_ADDR > $B_ADDR: ESP(spi=0x00006001" "$WORK/cap.txt"
	grep -q "$B_ADDR > $A_ADDR: ESP(spi=0x00006002" "$WORK/cap.txt"
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	[ "$(cap_text 'tcp port 20 or tcp port 21' | wc -l)" -eq 0 ]
	# And the SA counters moved on both sides.
	[ "$(mc_a status ipsec PROTECTFTPOUT --json | jq '.policies[0].sa.packets')" -gt 0 ]
	[ "$(mc_b status ipsec PROTECTFTPIN --json | jq '.policies[0].sa.packets')" -gt 0 ]
}

@test "lab: BNA (IP protocol 49) is AH with SPI 2001 from A and 2002 from B, and is delivered" {
	apply_both
	capture_start
	start_listener "$WORK/recv-b.out" in_b "$NET" raw-recv 49 20 1
	[ "$(in_a "$NET" raw-send "$B_ADDR" 49)" = "ok" ]
	[ "$(listener_result "$WORK/recv-b.out")" = "got 1" ]
	start_listener "$WORK/recv-a.out" in_a "$NET" raw-recv 49 20 1
	[ "$(in_b "$NET" raw-send "$A_ADDR" 49)" = "ok" ]
	[ "$(listener_result "$WORK/recv-a.out")" = "got 1" ]
	capture_stop
	cap_text | grep -q "$A_ADDR > $B_ADDR: AH(spi=0x000007d1"
	cap_text | grep -q "$B_ADDR > $A_ADDR: AH(spi=0x000007d2"
}

@test "lab: host A from the imported MCP listing, host B from mcpsec mirror of it: FTP is ESP, BNA is AH" {
	imported="$(dirname "$SITE_A")/imported.yaml"
	mirrored="$(dirname "$SITE_B")/mirrored.yaml"
	"$MCPSEC" import "$ROOT/examples/mcp-listing/policies.txt" --out "$imported"
	"$MCPSEC" mirror "$imported" --peer "$B_ADDR" --self "$A_ADDR" --out "$mirrored"
	"$MCPSEC" check-peer "$imported" "$mirrored"
	apply_both "$imported" "$mirrored"
	capture_start
	serve_b 21
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "ok" ]
	[ "$(served 21)" = "got 1" ]
	start_listener "$WORK/recv-b.out" in_b "$NET" raw-recv 49 20 1
	[ "$(in_a "$NET" raw-send "$B_ADDR" 49)" = "ok" ]
	[ "$(listener_result "$WORK/recv-b.out")" = "got 1" ]
	capture_stop
	cap_text >"$WORK/cap.txt"
	grep -q "$A_ADDR > $B_ADDR: ESP(spi=0x00006001" "$WORK/cap.txt"
	grep -q "$B_ADDR > $A_ADDR: ESP(spi=0x00006002" "$WORK/cap.txt"
	grep -q "$A_ADDR > $B_ADDR: AH(spi=0x000007d1" "$WORK/cap.txt"
	[ "$(cap_text 'tcp port 20 or tcp port 21' | wc -l)" -eq 0 ]
}

@test "lab: mcpsecd --report-only: A's outbound FTP SA deleted, the ACQUIRE names PROTECTFTPOUT and SPI 24577" {
	apply_both
	start_daemon --report-only
	ip -n "$NS_A" xfrm state delete src "$A_ADDR" dst "$B_ADDR" proto esp spi 24577
	wait_record 3 '.event == "drift" and .reason == "sa-missing" and .policy == "PROTECTFTPOUT"'
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" != "ok" ]
	ms=$(wait_record 2 '.event == "acquire" and .policy == "PROTECTFTPOUT" and (.flow | test("^tcp '"$A_ADDR"' port [0-9]+ -> '"$B_ADDR"' port 21$")) and (.detail | test("esp spi 24577 \\(0x6001\\)"))')
	echo "# ACQUIRE reported after $ms ms"
	wait_record 3 '.event == "drop" and .reason == "no-sa" and .count > 0'
	# Report only: the SA stays missing (the kernel's larval ACQUIRE state is no SA).
	[ "$(mc_a status ipsec PROTECTFTPOUT --json | jq -c '.policies[0].sa')" = null ]
}

@test "lab: keys generated on A, exported and imported on B with a passphrase, protect FTP both ways" {
	ka="$(dirname "$SITE_A")/gen-keys.yaml"
	kb="$(dirname "$SITE_B")/gen-keys.yaml"
	"$MCPSEC" key generate GENINT --alg sha256 --keys "$ka"
	"$MCPSEC" key generate GENENC --alg aes256 --keys "$ka"
	echo "lab passphrase, long enough" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	"$MCPSEC" key export GENINT GENENC --out "$WORK/keys.export" --keys "$ka" --passphrase-file "$WORK/pass"
	"$MCPSEC" key import "$WORK/keys.export" --keys "$kb" --passphrase-file "$WORK/pass"
	site="$(dirname "$SITE_A")/gen.yaml"
	cp "$SITE_A" "$site"
	sed -i 's/^  keys: keys.yaml.*/  keys: gen-keys.yaml/' "$site"
	with_policies "$site" <<'YAML'
  - name: FTPOUT
    direction: out
    remote: fec0::2222:a00:bff:fe3a:127
    protocol: tcp
    remote-ports: 20-21
    action: protect
    spi: 4660
    esp: { confidentiality: aes-cbc, confidentiality-key: GENENC, integrity: hmac-sha256-128, integrity-key: GENINT }
  - name: FTPIN
    direction: in
    remote: fec0::2222:a00:bff:fe3a:127
    protocol: tcp
    remote-ports: 20-21
    action: protect
    spi: 4661
    esp: { confidentiality: aes-cbc, confidentiality-key: GENENC, integrity: hmac-sha256-128, integrity-key: GENINT }
YAML
	mirrored="$(dirname "$SITE_B")/gen.yaml"
	"$MCPSEC" mirror "$site" --peer "$B_ADDR" --self "$A_ADDR" --out "$mirrored"
	"$MCPSEC" check-peer "$site" "$mirrored"
	apply_both "$site" "$mirrored"
	ftp_captured
	cap_text | grep -q "$A_ADDR > $B_ADDR: ESP(spi=0x00001234"
	cap_text | grep -q "$B_ADDR > $A_ADDR: ESP(spi=0x00001235"
	refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	# No byte of the generated keys in status, on either host.
	{ mc_a status ipsec all; mc_a status ipsec all --json; mc_b status ipsec all; } >"$WORK/status.txt"
	for k in GENINT GENENC; do
		hex=$("$MCPSEC" key show "$k" --reveal --keys "$ka" | cut -c3-)
		refute_in_file "${hex:0:16}" "$WORK/status.txt"
	done
}

@test "lab: TCP to other ports bypasses IPsec: the marker is visible on the wire" {
	apply_both
	capture_start
	serve_b 2222
	[ "$(in_a "$NET" connect "$B_ADDR" 2222)" = "ok" ]
	served 2222
	capture_stop
	# The check every "never in clear" test uses fails on this capture: it can see a leak.
	run refute_in_file "mcpsec-marker" "$WORK/cap.pcap"
	[ "$status" -eq 1 ]
	[ "$(cap_text | grep -c ESP)" -eq 0 ]
}

@test "lab: without BYPASSALLIN/OUT unmatched IPv6 is discarded, while ND and FTP still work" {
	for f in "$SITE_A" "$SITE_B"; do
		"$PY" - "$f" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
open(p, "w").write(s[:s.index("  - name: BYPASSALLOUT")])
PY
	done
	apply_both
	ip -n "$NS_A" neigh flush all
	ip -n "$NS_B" neigh flush all
	before=$(xfrm_stat "$NS_A" XfrmOutPolBlock)
	[ "$(in_a "$NET" connect "$B_ADDR" 2222)" = "EPERM" ]
	[ "$(xfrm_stat "$NS_A" XfrmOutPolBlock)" -eq $((before + 1)) ]
	# FTP needs the neighbour resolved first: ND passes through the built-in bypasses.
	serve_b 21
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "ok" ]
	[ "$(served 21)" = "got 1" ]
	ip -n "$NS_A" neigh show "$B_ADDR" | grep -qE 'REACHABLE|STALE|DELAY'
}

@test "lab: a plaintext packet that matches an inbound PROTECT policy is dropped (XfrmInTmplMismatch)" {
	mc_a apply "$SITE_A" >/dev/null
	# B has no IPsec at all: its packets from port 20 arrive in clear at A.
	before=$(xfrm_stat "$NS_A" XfrmInTmplMismatch)
	serve_a 5000 1 5
	[ "$(in_b "$NET" connect "$A_ADDR" 5000 20)" = "timeout" ]
	[ "$(served 5000)" = "got 0" ]
	[ "$(xfrm_stat "$NS_A" XfrmInTmplMismatch)" -gt "$before" ]
}

@test "lab: the first match decides: DISCARD before PROTECT discards, PROTECT before DISCARD protects" {
	discard='  - name: NOFTP
    direction: out
    protocol: tcp
    remote-ports: 21
    action: discard
'
	"$PY" - "$SITE_A" "$discard" <<'PY'
import sys
p, block = sys.argv[1], sys.argv[2]; s = open(p).read()
i = s.index("  - name: PROTECTFTPOUT")
open(p, "w").write(s[:i] + block + s[i:])
PY
	apply_both
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "EPERM" ]
	# Move the discard after the PROTECT policies: now FTP is protected.
	"$PY" - "$SITE_A" "$discard" <<'PY'
import sys
p, block = sys.argv[1], sys.argv[2]; s = open(p).read().replace(block, "")
i = s.index("  - name: BYPASSALLOUT")
open(p, "w").write(s[:i] + block + s[i:])
PY
	mc_a apply "$SITE_A" >/dev/null
	capture_start
	serve_b 21
	[ "$(in_a "$NET" connect "$B_ADDR" 21)" = "ok" ]
	served 21
	capture_stop
	cap_text | grep -q "ESP(spi=0x00006001"
}

@test "lab: a foreign SA and policy survive apply, disable and enable, and are listed apart" {
	ip -n "$NS_A" xfrm state add src "$A_ADDR" dst fec0::99 proto esp spi 0x999 mode transport \
		enc 'cbc(aes)' 0x000102030405060708090a0b0c0d0e0f
	ip -n "$NS_A" xfrm policy add src "$A_ADDR" dst fec0::99 dir out priority 100 \
		tmpl proto esp spi 0x999 mode transport
	foreign_before=$(ip -n "$NS_A" xfrm state list spi 0x999; ip -n "$NS_A" xfrm policy list priority 100)
	mc_a apply "$SITE_A" >/dev/null 2>&1
	mc_a disable 2>/dev/null
	mc_a enable >/dev/null
	[ "$(ip -n "$NS_A" xfrm state list spi 0x999; ip -n "$NS_A" xfrm policy list priority 100)" = "$foreign_before" ]
	run mc_a status ipsec all --json
	[ "$(jq '.foreign.sas | length' <<<"$output")" -eq 1 ]
	[ "$(jq '.foreign.sas[0].spi' <<<"$output")" -eq 2457 ]
	[ "$(jq '.foreign.policies[0].priority' <<<"$output")" -eq 100 ]
	[ "$(jq '[.sas[] | select(.policy != null)] | length' <<<"$output")" -eq 4 ]
}
