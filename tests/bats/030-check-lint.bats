#!/usr/bin/env bats
# mcpsec check's lint: warnings name the policies, --json for tools, exit 0 with warnings and 1
# with errors. The analyses themselves are unit-tested (test_lint, test_flowspace).
load helpers

LINT="$ROOT/tests/unit/fixtures/lint"

@test "check warns about shadowed policies, naming the policies that take their traffic" {
	f=$(site_copy "$LINT/shadow.yaml")
	run "$MCPSEC" check "$f"
	[ "$status" -eq 0 ]
	[[ "$output" == *"shadow.yaml:19:11: warning: policy 'ALLTCP' can never be the first match: all of its traffic is decided earlier by 'WEBLOW', 'PARTLY', 'WEBHIGH'"* ]]
	[[ "$output" == *"policy 'NS' can never be the first match"*"'BUILTIN-ND-IN' (built-in)"* ]]
	[[ "$output" != *"'PARTLY' can never"* ]]
	[[ "$output" != *"'UDPNOT' can never"* ]]
	[[ "$output" == *"ok (10 policies"*"3 warnings)"* ]]
}

@test "check --json: one object, every diagnostic with file, line, col, severity and code" {
	f=$(site_copy "$LINT/protect.yaml")
	run "$MCPSEC" check --json "$f"
	[ "$status" -eq 0 ]
	jq -e '.ok == true and .errors == 0 and .warnings == 5 and .policies == 8' <<<"$output"
	jq -e 'all(.diagnostics[]; .file != null and .line > 0 and .col > 0 and .severity == "warning")' <<<"$output"
	[ "$(jq -r '[.diagnostics[].code] | sort | unique | join(",")' <<<"$output")" = "no-counterpart,tls-port" ]
	[ "$(jq -r '.diagnostics[] | select(.code == "no-counterpart") | .message' <<<"$output" | grep -c "TELNETOUT\|ALLTOHOST")" -eq 3 ]
}

@test "check --json with errors: ok false, exit 1, the errors as diagnostics, nothing on stderr" {
	f=$(site_copy "$ROOT/tests/unit/fixtures/bad/protect.yaml")
	run --separate-stderr "$MCPSEC" check --json "$f"
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	jq -e '.ok == false and .errors == 8 and ([.diagnostics[] | select(.severity == "error")] | length) == 8' <<<"$output"
}

@test "check: the lint codes of each fixture" {
	for f in shadow nd clear-traffic; do
		g=$(site_copy "$LINT/$f.yaml")
		"$MCPSEC" check --json "$g" | jq -r '.diagnostics[].code' | sort | uniq -c | tr -s ' ' >"$WORK/$f.codes"
	done
	grep -qx ' 3 shadowed' "$WORK/shadow.codes"
	grep -qx ' 3 nd-discarded' "$WORK/nd.codes"
	grep -qx ' 2 pmtu-discarded' "$WORK/nd.codes"
	grep -qx ' 2 icmp4-discarded' "$WORK/clear-traffic.codes"
	grep -qx ' 1 pmtu-discarded' "$WORK/clear-traffic.codes"
}

@test "check --plan and --json together are a usage error" {
	run "$MCPSEC" check --plan --json "$ROOT/examples/host-a/site.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"usage: mcpsec check"* ]]
}
