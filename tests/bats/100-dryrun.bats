#!/usr/bin/env bats
# apply --dry-run: the plan and the operations, readable, touching nothing, never showing keys.
load helpers

@test "dry-run prints the plan with expansion counts and the operations, and changes nothing" {
	two_ns
	site=$(site_copy "$ROOT/examples/host-a/site.yaml")
	before=$(xfrm_snapshot "$NS_A")
	run mc_a apply --dry-run "$site"
	[ "$status" -eq 0 ]
	[[ "$output" == *"PROTECTFTPOUT            protect priority"*"1 kernel policy"* ]]
	[[ "$output" == *"BUILTIN-ND-OUT           bypass  priority"*"3 kernel policies"* ]]
	[[ "$output" == *"add SA         PROTECTFTPOUT            spi 24577 (0x00006001) esp aes-cbc-128"* ]]
	# The operations add exactly the plan's kernel policies and its four SAs.
	planned=$(grep -oE '[0-9]+ kernel policies, 4 SAs' <<<"$output" | awk '{print $1}')
	[[ "$output" == *"policies $planned add, 0 update, 0 delete, 0 unchanged; SAs 4 add"* ]]
	[ "$(xfrm_snapshot "$NS_A")" = "$before" ]
	[ ! -e "$STATE/current" ]
}

@test "dry-run --ip-xfrm prints ip commands with key placeholders" {
	two_ns
	site=$(site_copy "$ROOT/examples/host-a/site.yaml")
	run mc_a apply --dry-run --ip-xfrm "$site"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ip xfrm state add src"*"proto esp spi 0x00006001"*"enc 'cbc(aes)' <confidentiality-key, 16 bytes>"* ]]
	[[ "$output" == *"ip xfrm policy add src ::/0 dst fec0::2222:a00:bff:fe3a:127/128 proto tcp dport 20 dir out"* ]]
}

@test "no key byte appears in check, dry-run or status output" {
	two_ns
	site=$(site_copy "$ROOT/examples/host-a/site.yaml")
	out="$BATS_TEST_TMPDIR/all-output"
	{ "$MCPSEC" check --plan "$site"; mc_a apply --dry-run --ip-xfrm "$site"; mc_a status ipsec all;
	  mc_a status ipsec all --json; } >"$out" 2>&1
	[ -s "$out" ]
	# Every test key, as hex (with and without separators) and as ASCII.
	for k in 6d63707365632d746573742d626e612d61682d31 6d63707365632d746573742d70726f64 \
		 6d63707365632d746573742d647273797374656d2d6b65792d32353662697421; do
		refute_in_file "$k" "$out"
		refute_in_file "${k:0:16}" "$out"
	done
	refute_in_file "mcpsec-test-drsystem-key" "$out"
	refute_in_file "6d:63:70:73" "$out"
}
