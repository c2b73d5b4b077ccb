#!/usr/bin/env bats
# --help against the man pages, --version from debian/changelog, bash completion.
load helpers

# COMPREPLY for a command line as typed (a trailing space: completing a new word), one per line.
# $2: "plain" (the script alone) or "full" (after bash-completion's own library, as on a host).
comp() {
	local line=$1 mode=${2:-plain} prog
	prog=${line%% *}
	bash -c '
		if [ "$3" = full ]; then
			. /usr/share/bash-completion/bash_completion
		fi
		. "$1"
		read -ra COMP_WORDS <<<"$2"
		[[ $2 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$2
		COMP_POINT=${#2}
		"_${4}" "$4" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort
	' _ "$ROOT/completion/$prog" "$line" "$mode" "$prog"
}

# The long options a --help text lists under "options:" (as tests/help-vs-man.py reads them).
help_flags() {
	"$@" --help | awk '/^options:/ { o = 1; next } o && /^  -/ { print $1 } o && /^[^ ]/ { o = 0 }' |
		tr -d , | grep -- '^--' | sort -u
}

@test "every command's --help lists the options of its mcpsec(8) section; mcpsecd's those of OPTIONS" {
	run "$PY" "$ROOT/tests/help-vs-man.py" "$MCPSEC" "$MCPSECD" "$ROOT"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^ok ' <<<"$output")" -eq 18 ]
	# The comparison can fail: a man page that forgets test's --suite is caught, by name.
	mkdir -p "$WORK/root/doc"
	sed 's/\\-\\-suite/suite/g' "$ROOT/doc/mcpsec.8" >"$WORK/root/doc/mcpsec.8"
	cp "$ROOT/doc/mcpsecd.8" "$WORK/root/doc/"
	run "$PY" "$ROOT/tests/help-vs-man.py" "$MCPSEC" "$MCPSECD" "$WORK/root"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not ok 5 - mcpsec test: only in --help: ['--suite']"* ]]
	# And a --help that lists an option the man page lacks (mcpsecd's, one removed from OPTIONS).
	cp "$ROOT/doc/mcpsec.8" "$WORK/root/doc/"
	sed '/^\.BI \\-\\-metrics\\-interval/,+2d' "$ROOT/doc/mcpsecd.8" >"$WORK/root/doc/mcpsecd.8"
	run "$PY" "$ROOT/tests/help-vs-man.py" "$MCPSEC" "$MCPSECD" "$WORK/root"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not ok 18 - mcpsecd: only in --help: ['--metrics-interval']"* ]]
}

@test "mcpsec COMMAND --help exits 0 and prints that command's usage, wherever --help stands" {
	run "$MCPSEC" rekey A B --site x.yaml --help
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: mcpsec rekey POLICY..."* ]]
	run "$MCPSEC" key show NAME -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"--reveal"* ]]
	# help COMMAND says the same.
	[ "$("$MCPSEC" help rekey)" = "$("$MCPSEC" rekey --help)" ]
}

@test "mcpsec --version and mcpsecd --version print the version of debian/changelog" {
	want=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
	[ -n "$want" ]
	run "$MCPSEC" --version
	[ "$output" = "mcpsec $want" ]
	run "$MCPSECD" --version
	[ "$output" = "mcpsecd $want" ]
}

@test "completion: complete -p names the functions, with and without bash-completion's library" {
	run bash -c ". '$ROOT/completion/mcpsec'; . '$ROOT/completion/mcpsecd'; complete -p mcpsec mcpsecd"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "complete -F _mcpsec mcpsec" ]
	[ "${lines[1]}" = "complete -F _mcpsecd mcpsecd" ]
	run bash -c ". /usr/share/bash-completion/bash_completion; . '$ROOT/completion/mcpsec'; complete -p mcpsec"
	[ "$output" = "complete -F _mcpsec mcpsec" ]
}

@test "completion: commands, and for every command exactly the flags its --help lists" {
	for mode in plain full; do
		[ "$(comp "mcpsec st" "$mode" | tr '\n' ' ')" = "stage status " ]
		[ "$(comp "mcpsec --state-dir /tmp ch" "$mode" | tr '\n' ' ')" = "check check-peer " ]
		[ "$(comp "mcpsec status " "$mode")" = "ipsec" ]
		[ "$(comp "mcpsec key " "$mode" | tr '\n' ' ')" = "delete export generate import list set show " ]
		[ "$(comp "mcpsec test --dir " "$mode" | tr '\n' ' ')" = "in out " ]
	done
	for c in apply check test mirror rekey check-peer import status log key enable; do
		want=$( (help_flags "$MCPSEC" "$c"; echo --help) | sort -u)
		got=$(comp "mcpsec $c --" | sort -u)
		[ "$got" = "$want" ] || { echo "$c: completion offers: $got; --help lists: $want"; false; }
	done
	want=$( (help_flags "$MCPSECD"; echo --help; echo --version) | sort -u)
	[ "$(comp "mcpsecd --" | sort -u)" = "$want" ]
	[ "$(comp "mcpsecd --metrics-" | tr '\n' ' ')" = "--metrics-file --metrics-interval " ]
}

@test "completion: policy names from the committed site, key names from the key file" {
	one_ns
	f=$(site_copy "$FIX/bypass-discard.yaml")
	mc_a apply "$f" >/dev/null
	for mode in plain full; do
		run comp "mcpsec --netns $NS_A --state-dir $STATE status ipsec " "$mode"
		[ "$(tr '\n' ' ' <<<"$output")" = "ALLOWICMPV6IN ALLOWICMPV6OUT BYPASSALLIN BYPASSALLOUT DISCARDBNAOUT DISCARDFTPIN DISCARDFTPOUT all staged " ]
		[ "$(comp "mcpsec --state-dir $STATE rekey --site x.yaml DISCARDF" "$mode" | tr '\n' ' ')" = "DISCARDFTPIN DISCARDFTPOUT " ]
		[ "$(comp "mcpsec --state-dir=$STATE log --policy BYP" "$mode" | tr '\n' ' ')" = "BYPASSALLIN BYPASSALLOUT " ]
		# Another state directory holds no site: no names.
		[ -z "$(comp "mcpsec --state-dir $WORK/none rekey " "$mode")" ]
		keys="$ROOT/examples/host-a/keys.yaml"
		[ "$(comp "mcpsec key show --keys $keys " "$mode" | tr '\n' ' ')" = "BNAAHKEY DRSYSTEMKEY PRODUCTIONKEY " ]
		[ "$(comp "mcpsec key --keys $keys delete P" "$mode")" = "PRODUCTIONKEY" ]
	done
}

@test "completion: names read from a hostile state file or key file are data, never run" {
	# A state file and a key file as another user could plant them where completion reads:
	# names that are command substitutions, in both forms, and names outside the grammar.
	mkdir -p "$WORK/st/gen-1"
	ln -s gen-1 "$WORK/st/current"
	# shellcheck disable=SC2016 # the point: text that would run if it were ever expanded
	printf '%s\n' 'rule 1 out $(touch${IFS}'"$WORK"'/ran1)' 'rule 2 out `touch${IFS}'"$WORK"'/ran2`' \
		'rule 3 out GOODNAME' 'rule 4 in x;id>'"$WORK"'/ran3' 'rule 5 in SECOND.NAME-2' >"$WORK/st/gen-1/state"
	# shellcheck disable=SC2016
	printf 'keys:\n  $(touch${IFS}%s/ran4): { algorithm: sha1, hex: "0x00" }\n  GOODKEY: { algorithm: sha1, hex: "0x00" }\n' \
		"$WORK" >"$WORK/hostile-keys.yaml"
	for mode in plain full; do
		[ "$(comp "mcpsec --state-dir $WORK/st status ipsec " "$mode" | tr '\n' ' ')" = "GOODNAME SECOND.NAME-2 all staged " ]
		[ "$(comp "mcpsec --state-dir $WORK/st rekey " "$mode" | tr '\n' ' ')" = "GOODNAME SECOND.NAME-2 " ]
		[ "$(comp "mcpsec --state-dir $WORK/st log --policy " "$mode" | tr '\n' ' ')" = "GOODNAME SECOND.NAME-2 " ]
		[ "$(comp "mcpsec key show --keys $WORK/hostile-keys.yaml " "$mode")" = "GOODKEY" ]
	done
	# Nothing of what the files said ran.
	[ -z "$(find "$WORK" -name 'ran*')" ]
	# A FIFO where the state file should be is never waited on.
	rm "$WORK/st/gen-1/state"
	mkfifo "$WORK/st/gen-1/state"
	run timeout 5 bash -c "$(declare -f comp); ROOT='$ROOT'; comp 'mcpsec --state-dir $WORK/st status ipsec '"
	[ "$status" -eq 0 ]
	[ "$(tr '\n' ' ' <<<"$output")" = "all staged " ]
}
