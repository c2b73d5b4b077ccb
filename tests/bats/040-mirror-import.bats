#!/usr/bin/env bats
# mirror, check-peer and import from the command line: output, exit codes, round trips.
# (Their logic is unit-tested; the lab runs the imported and mirrored sites with real SAs.)
load helpers

A=fec0::2222:a00:bff:fe3a:100
B=fec0::2222:a00:bff:fe3a:127

@test "mirror writes host B's site.yaml; it passes check and agrees with host A" {
	a=$(site_copy "$ROOT/examples/host-a/site.yaml")
	run --separate-stderr "$MCPSEC" mirror "$a" --peer "$B" --self "$A"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	printf '%s\n' "$output" >"$(dirname "$a")/mirror.yaml"
	[[ "$output" == *"- name: PROTECTFTPIN  # mirrors PROTECTFTPOUT"*"spi: 24577"* ]]
	run "$MCPSEC" check "$(dirname "$a")/mirror.yaml"
	[ "$status" -eq 0 ]
	run "$MCPSEC" check-peer "$a" "$(dirname "$a")/mirror.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == *"($A) and "*"($B) agree on all traffic between them"* ]]
}

@test "mirror: PROTECT with local any needs --self; bad addresses and missing --peer are usage errors" {
	a=$(site_copy "$ROOT/examples/host-a/site.yaml")
	run "$MCPSEC" mirror "$a" --peer "$B"
	[ "$status" -eq 1 ]
	[[ "$output" == *"site.yaml:40:11: error: policy 'PROTECTFTPOUT' has local 'any'"*"give --self ADDR"* ]]
	run "$MCPSEC" mirror "$a" --peer nowhere
	[ "$status" -eq 1 ]
	[[ "$output" == *"--peer needs an IPv4 or IPv6 address, not nowhere"* ]]
	run "$MCPSEC" mirror "$a"
	[ "$status" -eq 1 ]
	[[ "$output" == *"usage: mcpsec mirror"* ]]
}

@test "mirror --out writes the file; policies not towards the peer are left out and counted" {
	a=$(site_copy "$ROOT/examples/host-a/site.yaml")
	"$MCPSEC" mirror "$a" --peer fec0::55 --self "$A" --out "$WORK/other.yaml"
	grep -q "^# 4 policies not towards fec0::55 left out" "$WORK/other.yaml"
	[ "$(grep -c '^  - name:' "$WORK/other.yaml")" -eq 4 ]
	refute_in_file PROTECT "$WORK/other.yaml"
}

@test "check-peer: the seed's hosts agree; a changed SPI and key name on B are reported, exit 1" {
	a=$(site_copy "$ROOT/examples/host-a/site.yaml")
	b=$(site_copy "$ROOT/examples/host-b/site.yaml")
	run "$MCPSEC" check-peer "$a" "$b"
	[ "$status" -eq 0 ]
	sed -i 's/spi: 24578/spi: 24579/; 0,/confidentiality-key: DRSYSTEMKEY/s//confidentiality-key: PRODUCTIONKEY/' "$b"
	run "$MCPSEC" check-peer "$a" "$b"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'PROTECTFTPOUT' (sending) and "*"'PROTECTFTPIN' (receiving) disagree on tcp $B port 20-21 -> $A port any: spi 24579 vs 24578"* ]]
	[[ "$output" == *"spi 24579 vs 24578; confidentiality key 'PRODUCTIONKEY' vs 'DRSYSTEMKEY'"* ]]
	[[ "$output" == *"1 mismatch between"* ]]
}

@test "check-peer never shows key bytes, even when values differ" {
	a=$(site_copy "$ROOT/examples/host-a/site.yaml")
	b=$(site_copy "$ROOT/examples/host-b/site.yaml")
	sed -i 's/2d:70:72:6f:64"/2d:70:72:6f:65"/' "$(dirname "$b")/keys.yaml"
	run "$MCPSEC" check-peer "$a" "$b"
	[ "$status" -eq 1 ]
	[[ "$output" == *"key 'PRODUCTIONKEY' has different values in the two key files"* ]]
	for hex in 6d63707365632d746573742d70726f64 6d63707365632d746573742d70726f65 6d:63:70:73; do
		[[ "$output" != *"$hex"* ]]
	done
}

@test "check-peer asks for the addresses when PROTECT policies do not name one peer" {
	run "$MCPSEC" check-peer "$ROOT/tests/unit/fixtures/lint/shadow.yaml" "$ROOT/tests/unit/fixtures/lint/shadow.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot tell the peer's address (it has no PROTECT policy to one host); give --addr-a ADDR"* ]]
	run "$MCPSEC" check-peer "$ROOT/tests/unit/fixtures/lint/shadow.yaml" "$ROOT/tests/unit/fixtures/lint/shadow.yaml" \
		--addr-a fec0::1 --addr-b fec0::2
	[ "$status" -eq 0 ]
}

@test "import: the seed's example listing becomes a site that check accepts; stdin works too" {
	d=$(dirname "$(site_copy "$ROOT/examples/host-a/site.yaml")")
	run --separate-stderr "$MCPSEC" import "$ROOT/examples/mcp-listing/policies.txt"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$d/imported.yaml"
	[ "$(grep -c '^  - name:' "$d/imported.yaml")" -eq 8 ]
	run "$MCPSEC" check "$d/imported.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok (8 policies"* ]]
	"$MCPSEC" import - --keys /etc/mcpsec/keys.yaml --default deny <"$ROOT/examples/mcp-listing/policies.txt" >"$WORK/stdin.yaml"
	grep -q '^  keys: /etc/mcpsec/keys.yaml$' "$WORK/stdin.yaml"
	grep -q '^  default: deny$' "$WORK/stdin.yaml"
}

@test "import: errors carry line and column, all in one run, exit 1 and nothing on stdout" {
	run --separate-stderr "$MCPSEC" import "$ROOT/tests/unit/fixtures/import/bad.txt"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(grep -cE '^[^:]+bad\.txt:[0-9]+:[0-9]+: error: ' <<<"$stderr")" -eq 19 ]
	[[ "$stderr" == *"bad.txt:5:1: error: unknown field 'Colour'"* ]]
	[[ "$stderr" == *"19 errors; nothing written"* ]]
}

@test "import never writes a file that check refuses: errors at the listing's own lines" {
	run --separate-stderr "$MCPSEC" import "$ROOT/tests/unit/fixtures/import/meaning.txt"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"meaning.txt:5:15: error: Local Ports '135': ICMPv6 has no ports"* ]]
	[[ "$stderr" == *"meaning.txt:11:16: error: Remote Ports '1000': ports are only for TCP or UDP"* ]]
	[[ "$stderr" == *"meaning.txt:22:16: error: Remote Ports '22' needs a Next Layer Protocol of TCP or UDP"* ]]
	[[ "$stderr" == *"meaning.txt:27:21: error: IPv4 address '192.0.2.7': IPSECDefault IPv6Only"* ]]
	[[ "$stderr" == *"meaning.txt:38:23: error: Next Layer Protocol ICMP is IPv4"* ]]
	[[ "$stderr" == *"meaning.txt: 8 errors; nothing written"* ]]
	# Each block that check refuses is refused by import, whatever else the listing holds.
	awk -v RS= -v d="$WORK" '/Policy Name/ { f = d "/block" ++n ".txt"; print > f; close(f) }' \
		"$ROOT/tests/unit/fixtures/import/meaning.txt"
	for f in "$WORK"/block[1-7].txt; do
		if "$MCPSEC" import "$f" >"$WORK/out.yaml" 2>/dev/null; then
			echo "import wrote $f" >&2
			"$MCPSEC" check "$WORK/out.yaml" >&2 || true
			false
		fi
	done
}

@test "import: what MCP meant is written when it is known, and then it checks" {
	d=$(dirname "$(site_copy "$ROOT/examples/host-a/site.yaml")")
	# IPv4 with the host's IPSECDefault given: accepted, and check agrees.
	printf 'Policy Name = V4\nRemote IP Address = 192.0.2.7\nDirection = IN\nDisposition = DISCARD\n' >"$WORK/v4.txt"
	"$MCPSEC" import --default bypass --keys keys.yaml "$WORK/v4.txt" >"$d/v4.yaml"
	run "$MCPSEC" check "$d/v4.yaml"
	[ "$status" -eq 0 ]
	# A key length in the algorithm's name is kept, so check still holds the key to it.
	printf '%s\n' 'Policy Name = P' "Remote IP Address = $B" 'Next Layer Protocol = TCP' 'Direction = OUT' \
		'Disposition = PROTECT' 'Security Policy Index = 300' 'Protocol = ESP Confidentiality' \
		'Confidentiality Key Name = PRODUCTIONKEY' 'Confidentiality Algorithm = AES_CBC_256' >"$WORK/p.txt"
	"$MCPSEC" import --keys keys.yaml "$WORK/p.txt" >"$d/p.yaml"
	grep -q '^      confidentiality: aes-cbc-256$' "$d/p.yaml"
	run "$MCPSEC" check "$d/p.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the algorithm's name says a 256-bit key, but key 'PRODUCTIONKEY' has 128 bits"* ]]
}
