#!/usr/bin/env bats
# mcpsec key: generation, typed values, permissions, export/import, and that no key byte ever
# shows up where it should not. (Generated keys on the wire between two hosts: tests/lab.)
load helpers

key() { "$MCPSEC" --state-dir "$STATE" key "$@"; }

@test "key generate: mode 0600, listed with type, length and fingerprint, never the value" {
	key generate AHKEY --alg sha1 --keys "$WORK/keys.yaml"
	key generate ESPKEY --alg aes256 --keys "$WORK/keys.yaml"
	[ "$(stat -c %a "$WORK/keys.yaml")" = 600 ]
	run key list --keys "$WORK/keys.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" =~ AHKEY\ +sha1\ +20\ +[0-9a-f]{8} ]]
	[[ "$output" =~ ESPKEY\ +aes\ +32\ +[0-9a-f]{8} ]]
	for k in AHKEY ESPKEY; do
		hex=$(key show "$k" --reveal --keys "$WORK/keys.yaml")
		[[ "$hex" =~ ^0x[0-9a-f]+$ ]]
		[[ "$output" != *"${hex#0x}"* ]]
	done
	[ "$(key list --keys "$WORK/keys.yaml" --json | jq -r '[.keys[] | "\(.name)/\(.algorithm)/\(.bytes)"] | join(" ")')" = \
	  "AHKEY/sha1/20 ESPKEY/aes/32" ]
	run key generate AHKEY --alg sha1 --keys "$WORK/keys.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"already has a key 'AHKEY'"* ]]
	[ -z "$(find "$WORK" -name '*tmp*')" ]
}

@test "key set reads the value from stdin (hex with 0x, colons, spaces; ASCII of exact length), never from argv" {
	echo "0x00:11:22:33 44:55:66:77 88:99:aa:bb cc:dd:ee:ff" | key set HEXKEY --alg aes128 --hex --keys "$WORK/k.yaml"
	echo "sixteen-chars-ok" | key set ASCIIKEY --alg aes128 --ascii --keys "$WORK/k.yaml"
	[ "$(key show HEXKEY --reveal --keys "$WORK/k.yaml")" = 0x00112233445566778899aabbccddeeff ]
	[ "$(key show ASCIIKEY --reveal --keys "$WORK/k.yaml")" = "0x$(printf sixteen-chars-ok | od -An -tx1 | tr -d ' \n')" ]
	run bash -c "echo 'fifteen-chars-x' | '$MCPSEC' key set SHORT --alg aes128 --ascii --keys '$WORK/k.yaml'"
	[ "$status" -eq 1 ]
	[[ "$output" == *"exactly the algorithm's length"* ]]
	[[ "$output" != *fifteen* ]]
	run key set ARGV --alg aes128 --hex 00112233445566778899aabbccddeeff --keys "$WORK/k.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"unexpected argument"* || "$output" == *"give one key name"* ]]
	run key show HEXKEY --keys "$WORK/k.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"--reveal"* ]]
}

@test "key: weak 3DES keys are refused; tdes warns as legacy" {
	run bash -c "echo '0101010101010101 23456789abcdef01 3456789abcdef012' | '$MCPSEC' key set WEAK --alg tdes --hex --keys '$WORK/k.yaml'"
	[ "$status" -eq 1 ]
	[[ "$output" == *"weak or degenerate 3DES key"* ]]
	run key generate T --alg tdes --keys "$WORK/k.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == *"legacy"* ]]
}

@test "key: a key file others can read, or someone else's, is refused and left alone" {
	key generate K --alg sha256 --keys "$WORK/k.yaml"
	chmod 644 "$WORK/k.yaml"
	before=$(md5sum <"$WORK/k.yaml")
	run key generate K2 --alg sha256 --keys "$WORK/k.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"mode is 0644"* ]]
	run key list --keys "$WORK/k.yaml"
	[ "$status" -eq 1 ]
	chmod 600 "$WORK/k.yaml"
	chown nobody "$WORK/k.yaml"
	run key generate K2 --alg sha256 --keys "$WORK/k.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"owned by uid"* ]]
	[ "$(md5sum <"$WORK/k.yaml")" = "$before" ]
}

# Two keys A1, A2 in a.yaml, exported with the passphrase in pass to export.txt.
export_a1_a2() {
	key generate A1 --alg sha256 --keys "$WORK/a.yaml"
	key generate A2 --alg aes128 --keys "$WORK/a.yaml"
	echo "a long enough passphrase" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	key export A1 A2 --out "$WORK/export.txt" --keys "$WORK/a.yaml" --passphrase-file "$WORK/pass"
}

@test "key export/import: round trip; wrong passphrase, a changed byte, a conflicting value refused" {
	export_a1_a2
	[ "$(stat -c %a "$WORK/export.txt")" = 600 ]
	for k in A1 A2; do refute_in_file "$(key show $k --reveal --keys "$WORK/a.yaml" | cut -c3-)" "$WORK/export.txt"; done
	refute_in_file "A1 sha256" "$WORK/export.txt" # with a space: base64 cannot contain it by chance
	printf '# B keys\nkeys:\n  OTHER: { algorithm: sha1, ascii: "twenty-byte-ascii-ok" }\n' >"$WORK/b.yaml"
	chmod 600 "$WORK/b.yaml"
	run key import "$WORK/export.txt" --keys "$WORK/b.yaml" --passphrase-file "$WORK/pass"
	[ "$status" -eq 0 ]
	[[ "$output" == *"2 new, 0 replaced, 0 already there"* ]]
	for k in A1 A2; do
		[ "$(key show $k --reveal --keys "$WORK/a.yaml")" = "$(key show $k --reveal --keys "$WORK/b.yaml")" ]
	done
	head -1 "$WORK/b.yaml" | grep -qx '# B keys'
	grep -q 'OTHER: { algorithm: sha1' "$WORK/b.yaml"
	run key import "$WORK/export.txt" --keys "$WORK/b.yaml" --passphrase-file "$WORK/pass"
	[[ "$output" == *"0 new, 0 replaced, 2 already there"* ]]
	echo "not the passphrase" >"$WORK/wrong"
	chmod 600 "$WORK/wrong"
	run key import "$WORK/export.txt" --keys "$WORK/c.yaml" --passphrase-file "$WORK/wrong"
	[ "$status" -eq 1 ]
	[[ "$output" == *"wrong passphrase, or the file was changed"* ]]
	[ ! -e "$WORK/c.yaml" ]
	# One character of the ciphertext changed, whatever it was (A becomes B, anything else A).
	sed '4{s/^A/#/;s/^[^#]/A/;s/^#/B/}' "$WORK/export.txt" >"$WORK/tampered.txt"
	! cmp -s "$WORK/export.txt" "$WORK/tampered.txt" || false
	run key import "$WORK/tampered.txt" --keys "$WORK/c.yaml" --passphrase-file "$WORK/pass"
	[ "$status" -eq 1 ]
	[[ "$output" == *"wrong passphrase, or the file was changed"* ]]
	key generate A1 --alg sha256 --keys "$WORK/d.yaml"
	run key import "$WORK/export.txt" --keys "$WORK/d.yaml" --passphrase-file "$WORK/pass"
	[ "$status" -eq 1 ]
	[[ "$output" == *"different key 'A1' (use --replace)"* ]]
	run key import "$WORK/export.txt" --keys "$WORK/d.yaml" --passphrase-file "$WORK/pass" --replace
	[[ "$output" == *"1 new, 1 replaced"* ]]
	[ "$(key show A1 --reveal --keys "$WORK/a.yaml")" = "$(key show A1 --reveal --keys "$WORK/d.yaml")" ]
	[ "$(grep -c '^  A1:' "$WORK/d.yaml")" -eq 1 ]
}

@test "key import --json and --dry-run: names only, idempotent, nothing written by a dry run" {
	export_a1_a2
	run key import "$WORK/export.txt" --keys "$WORK/b.yaml" --passphrase-file "$WORK/pass" --json --dry-run
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.dry_run, .changed, .new, .replaced, .unchanged]' <<<"$output")" = '[true,true,["A1","A2"],[],[]]' ]
	[ ! -e "$WORK/b.yaml" ]
	run key import "$WORK/export.txt" --keys "$WORK/b.yaml" --passphrase-file "$WORK/pass" --json
	[ "$(jq -c '[.dry_run, .changed, .new]' <<<"$output")" = '[false,true,["A1","A2"]]' ]
	sum=$(sha256sum <"$WORK/b.yaml")
	run key import "$WORK/export.txt" --keys "$WORK/b.yaml" --passphrase-file "$WORK/pass" --json
	[ "$(jq -c '[.changed, .new, .unchanged]' <<<"$output")" = '[false,[],["A1","A2"]]' ]
	[ "$(sha256sum <"$WORK/b.yaml")" = "$sum" ]
	# Another value under the same name: refused (exit 1, no JSON) unless --replace, which names it.
	key generate A1 --alg sha256 --keys "$WORK/c.yaml"
	run key import "$WORK/export.txt" --keys "$WORK/c.yaml" --passphrase-file "$WORK/pass" --json --replace --dry-run
	[ "$(jq -c '[.changed, .new, .replaced]' <<<"$output")" = '[true,["A2"],["A1"]]' ]
	# Never a value or a fingerprint in the answer.
	for k in A1 A2; do
		refute_in_file "$(key show $k --reveal --keys "$WORK/a.yaml" | cut -c3-)" <(printf '%s' "$output")
	done
	fp=$(key list --keys "$WORK/c.yaml" --json | jq -r '.keys[0].fingerprint')
	[[ "$output" != *"$fp"* ]]
}

@test "key delete refuses while a policy uses the key; list shows who uses it" {
	d=$(dirname "$(site_copy "$ROOT/examples/host-a/site.yaml")")
	run key list --keys "$d/keys.yaml" --site "$d/site.yaml"
	[[ "$output" =~ BNAAHKEY\ +sha1\ +20\ +[0-9a-f]{8}\ +PROTECTBNAOUT,PROTECTBNAIN ]]
	run key delete BNAAHKEY --keys "$d/keys.yaml" --site "$d/site.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'BNAAHKEY' is used by PROTECTBNAOUT,PROTECTBNAIN"* ]]
	grep -q BNAAHKEY "$d/keys.yaml"
	echo "0x00112233445566778899aabbccddeeff" | key set SPARE --alg aes128 --hex --keys "$d/keys.yaml"
	key delete SPARE --keys "$d/keys.yaml" --site "$d/site.yaml"
	refute_in_file SPARE "$d/keys.yaml"
	# The comments of the file are still there.
	grep -q "TEST KEYS for the examples" "$d/keys.yaml"
	"$MCPSEC" check "$d/site.yaml"
}

@test "no key byte in key list, check, apply --dry-run (with --ip-xfrm), mirror or check-peer output" {
	a=$(site_copy "$ROOT/examples/host-a/site.yaml")
	b=$(site_copy "$ROOT/examples/host-b/site.yaml")
	out="$WORK/all-output"
	{
		key list --keys "$(dirname "$a")/keys.yaml" --site "$a"
		key list --keys "$(dirname "$a")/keys.yaml" --json
		"$MCPSEC" check --plan "$a"
		"$MCPSEC" --state-dir "$STATE" apply --dry-run --ip-xfrm "$a"
		"$MCPSEC" mirror "$a" --peer "$B_ADDR" --self "$A_ADDR"
		"$MCPSEC" check-peer "$a" "$b"
	} >"$out" 2>&1 || true
	[ -s "$out" ]
	for k in BNAAHKEY PRODUCTIONKEY DRSYSTEMKEY; do
		hex=$(key show "$k" --reveal --keys "$(dirname "$a")/keys.yaml" | cut -c3-)
		[ ${#hex} -ge 32 ]
		refute_in_file "$hex" "$out"
		refute_in_file "${hex:0:16}" "$out"
	done
	refute_in_file "mcpsec-test-drsystem" "$out"
}
