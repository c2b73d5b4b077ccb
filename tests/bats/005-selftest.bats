#!/usr/bin/env bats
# Tests of the tests: the checks that guard "never happens" promises must fail when it happens.
load helpers

@test "selftest: refute_in_file fails on a key byte string in output, in any case, and says nothing of it" {
	key=6d63707365632d746573742d626e612d61682d31
	printf 'some output\nkey %s in clear\n' "${key^^}" >"$WORK/leak.txt"
	run refute_in_file "$key" "$WORK/leak.txt"
	[ "$status" -eq 1 ]
	[[ "$output" != *"${key:0:8}"* ]]
	run refute_in_file "${key:0:16}" "$WORK/leak.txt"
	[ "$status" -eq 1 ]
	printf 'nothing here\n' >"$WORK/clean.txt"
	refute_in_file "$key" "$WORK/clean.txt"
}

@test "selftest: refute_in_file sees a marker inside binary data (a capture)" {
	{ head -c 200 /dev/zero; printf 'xx mcpsec-marker yy'; head -c 200 /dev/zero; } >"$WORK/cap.bin"
	run refute_in_file mcpsec-marker "$WORK/cap.bin"
	[ "$status" -eq 1 ]
}

@test "selftest: the installed-unit check fails on an unsubstituted @BINDIR@" {
	printf '[Service]\nExecStart=@BINDIR@/mcpsecd --foreground\n' >"$WORK/unit"
	run refute_in_file '@BINDIR@' "$WORK/unit"
	[ "$status" -eq 1 ]
}

@test "selftest: a negated command that is not last fails the test only with || false" {
	# bash ignores set -e for '! cmd'; this suite writes 'run ! cmd' or '! cmd || false'.
	run bash -ec '! true; echo reached'
	[ "$output" = reached ]
	run bash -ec '! true || false; echo reached'
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}
