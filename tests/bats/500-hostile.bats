#!/usr/bin/env bats
# Hostile and clumsy input: what an adversarial pass found, each kept as a test.
load helpers

site_with_keys() { # site_with_keys KEYPATH OUT
	sed "s|^  keys: .*|  keys: $1|" "$ROOT/examples/host-a/site.yaml" >"$2"
}

@test "hostile: a FIFO as site, key or passphrase file is refused at once, never waited on" {
	mkfifo "$WORK/fifo.yaml"
	run timeout 5 "$MCPSEC" check "$WORK/fifo.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fifo.yaml: error: cannot read: not a regular file"* ]]
	site_with_keys "$WORK/fifo.yaml" "$WORK/site.yaml"
	run timeout 5 "$MCPSEC" check "$WORK/site.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a regular file"* ]]
	key() { "$MCPSEC" key "$@"; }
	key generate A1 --alg sha1 --keys "$WORK/k.yaml"
	run timeout 5 "$MCPSEC" key export A1 --out "$WORK/x" --keys "$WORK/k.yaml" --passphrase-file "$WORK/fifo.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a regular file"* ]]
}

@test "hostile: a FIFO as the state file neither hangs status nor mcpsecd (SIGTERM stops it)" {
	one_ns
	mkdir -p "$STATE/gen-1"
	chmod 700 "$STATE"
	ln -s gen-1 "$STATE/current"
	mkfifo "$STATE/gen-1/state"
	run timeout 5 "$MCPSEC" --netns "$NS_A" --state-dir "$STATE" status ipsec all
	[ "$status" -ne 124 ]
	start_daemon
	kill -TERM "$DAEMON"
	for _ in $(seq 40); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.05; done
	run ! kill -0 "$DAEMON" 2>/dev/null
}

@test "hostile: a key path that is a symlink is refused, and a key file's text is never quoted" {
	# shellcheck disable=SC2016 # the dollars are the file's text
	printf 'root:$y$j9T$SECRETHASHMARKER:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n' >"$WORK/shadow"
	chmod 600 "$WORK/shadow"
	ln -s "$WORK/shadow" "$WORK/sh.yaml"
	site_with_keys "$WORK/sh.yaml" "$WORK/site.yaml"
	run "$MCPSEC" check "$WORK/site.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the key file is a symbolic link"* ]]
	refute_in_file SECRETHASHMARKER <(printf '%s' "$output")
	# The file itself, named directly: errors, none of them quoting its lines.
	site_with_keys "$WORK/shadow" "$WORK/site2.yaml"
	run "$MCPSEC" check "$WORK/site2.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"shadow"*"error"* ]]
	refute_in_file SECRETHASHMARKER <(printf '%s' "$output")
	refute_in_file 'daemon:*' <(printf '%s' "$output")
	# Valid YAML whose keys and values are not names: the messages say where, never what.
	# shellcheck disable=SC2016 # the dollars are the file's text
	printf 'root:$y$SECRETHASHMARKER$x: 1\nkeys:\n  "bad SECRETHASHMARKER": {algorithm: SECRETHASHMARKER, hex: "00"}\n' >"$WORK/k3.yaml"
	chmod 600 "$WORK/k3.yaml"
	site_with_keys "$WORK/k3.yaml" "$WORK/site3.yaml"
	run "$MCPSEC" check "$WORK/site3.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"k3.yaml:1:1: error: unknown key '(not shown: text of a key file)'"* ]]
	[[ "$output" == *"k3.yaml:3:3: error: bad key name"* ]]
	refute_in_file SECRETHASHMARKER <(printf '%s' "$output")
}

@test "hostile: a shared state directory (1777) is refused and keeps its mode" {
	one_ns
	mkdir -p "$WORK/shared"
	chmod 1777 "$WORK/shared"
	run "$MCPSEC" --netns "$NS_A" --state-dir "$WORK/shared" apply "$ROOT/tests/bats/fixtures/bypass-discard.yaml"
	[ "$status" -eq 3 ]
	[[ "$output" == *"writable by others"* ]]
	[ "$(stat -c %a "$WORK/shared")" = 1777 ]
	[ -z "$(ip -n "$NS_A" xfrm policy list)" ]
}

@test "hostile: key export refuses a name given twice; a passphrase file others can read is refused" {
	"$MCPSEC" key generate K1 --alg sha1 --keys "$WORK/k.yaml"
	echo "a long enough passphrase" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	run "$MCPSEC" key export K1 K1 --out "$WORK/x" --keys "$WORK/k.yaml" --passphrase-file "$WORK/pass"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'K1' is named twice"* ]]
	[ ! -e "$WORK/x" ]
	chmod 644 "$WORK/pass"
	run "$MCPSEC" key export K1 --out "$WORK/x" --keys "$WORK/k.yaml" --passphrase-file "$WORK/pass"
	[ "$status" -eq 1 ]
	[[ "$output" == *"must not have access to a passphrase file"* ]]
}

@test "hostile: a NUL inside a YAML string is an error, not a shorter name; bad UTF-8 is placed" {
	printf 'policies:\n  - name: "AB\\0CD"\n    direction: out\n    action: bypass\n' >"$WORK/nul.yaml"
	run "$MCPSEC" check "$WORK/nul.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"nul.yaml:2:11: error: "*"NUL"* ]]
	printf 'policies:\n  - name: OK\n    direction: out\n    description: "caf\xe9 \xff"\n    action: bypass\n' >"$WORK/utf.yaml"
	run "$MCPSEC" check "$WORK/utf.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"utf.yaml:4:"*"error: YAML syntax"* ]]
}

@test "hostile: mcpsecd refuses --rate nan and --log-max inf, and every number past what its option holds" {
	run "$MCPSECD" --rate nan --foreground
	[ "$status" -ne 0 ]
	[[ "$output" == *"--rate needs a number from 0.1 to"* ]]
	run "$MCPSECD" --log-max inf --foreground
	[ "$status" -ne 0 ]
	[[ "$output" == *"--log-max needs a number from 4096 to"* ]]
	# An int holds the socket buffer: 1e12 would overflow the conversion (undefined behaviour,
	# which the sanitizer build reports), and is refused before it.
	run "$MCPSECD" --netlink-buffer 1e12 --foreground
	[ "$status" -eq 1 ]
	[[ "$output" == *"--netlink-buffer needs a number from 4096 to 1.07374e+09"* ]]
	for o in --metrics-interval --out-hook-idle; do
		run "$MCPSECD" "$o" 1e9 --foreground
		[ "$status" -eq 1 ]
		[[ "$output" == *"$o needs a number from 1 to 86400"* ]]
	done
	run "$MCPSEC" rollback --token t --after 99999999999
	[ "$status" -eq 1 ]
	[[ "$output" == *"--after needs a process id"* ]]
}

@test "hostile: a killed writer's temporary key file is removed by the next write; a live one's is kept" {
	"$MCPSEC" key generate K1 --alg sha1 --keys "$WORK/k.yaml"
	# A PID that cannot exist (above pid_max), and this shell's own (alive).
	cp "$WORK/k.yaml" "$WORK/k.yaml.tmp.99999999"
	cp "$WORK/k.yaml" "$WORK/k.yaml.tmp.$$"
	"$MCPSEC" key generate K2 --alg sha1 --keys "$WORK/k.yaml"
	[ ! -e "$WORK/k.yaml.tmp.99999999" ]
	[ -e "$WORK/k.yaml.tmp.$$" ]
}

@test "hostile: YAML nested deeper than 32 levels is refused where it gets too deep, at once" {
	awk 'BEGIN { printf "policies: "; for (i = 0; i < 100000; i++) printf "["; for (i = 0; i < 100000; i++) printf "]"; print "" }' >"$WORK/deep.yaml"
	run timeout 10 "$MCPSEC" check "$WORK/deep.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"deep.yaml:1:42: error: nested deeper than 32 levels"* ]]
}

@test "hostile: 3,000 unnamed imported policies get distinct names; 2,000 copies of one name are each reported once" {
	awk 'BEGIN { for (i = 0; i < 3000; i++) printf "Direction = OUT\nDisposition = BYPASS\nNext Layer Protocol = TCP\nRemote Port = %d\n\n", 1 + i }' >"$WORK/l.txt"
	"$MCPSEC" import "$WORK/l.txt" --out "$WORK/imported.yaml"
	[ "$(grep -c '^  - name: BYPASS-TCP-OUT' "$WORK/imported.yaml")" -eq 3000 ]
	[ "$(grep '^  - name:' "$WORK/imported.yaml" | sort -u | wc -l)" -eq 3000 ]
	grep -q '^  - name: BYPASS-TCP-OUT-3000$' "$WORK/imported.yaml"
	awk 'BEGIN { print "policies:"; for (i = 0; i < 2000; i++) printf "  - name: SAME\n    direction: out\n    action: bypass\n" }' >"$WORK/dup.yaml"
	run "$MCPSEC" check "$WORK/dup.yaml"
	[ "$(grep -c "duplicate policy name 'SAME' (first at line 2)" <<<"$output")" -eq 1999 ]
}

@test "hostile: outputs (mirror --out, import --out, rekey --peer-out) never follow a link another user planted" {
	cp "$ROOT/examples/host-a/site.yaml" "$ROOT/examples/host-a/keys.yaml" "$WORK/"
	chmod 600 "$WORK/keys.yaml"
	echo "precious" >"$WORK/victim"
	chmod 644 "$WORK/victim"
	for out in m i r; do ln -s "$WORK/victim" "$WORK/$out.yaml"; chown -h nobody "$WORK/$out.yaml"; done
	run "$MCPSEC" mirror "$WORK/site.yaml" --peer fec0::2222:a00:bff:fe3a:127 --self fec0::2222:a00:bff:fe3a:100 --out "$WORK/m.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot write $WORK/m.yaml: it is a symbolic link"* ]]
	run "$MCPSEC" import "$ROOT/examples/mcp-listing/policies.txt" --out "$WORK/i.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot write $WORK/i.yaml: it is a symbolic link"* ]]
	cp "$WORK/site.yaml" "$WORK/site.before"
	run "$MCPSEC" rekey PROTECTFTPOUT --force --site "$WORK/site.yaml" --peer fec0::2222:a00:bff:fe3a:127 \
		--self fec0::2222:a00:bff:fe3a:100 --peer-out "$WORK/r.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot write $WORK/r.yaml: it is a symbolic link"* ]]
	cmp "$WORK/site.yaml" "$WORK/site.before" # the step is not half taken
	[ "$(cat "$WORK/victim")" = precious ]
	# A regular file is replaced whole, keeping its mode; nothing temporary is left.
	rm "$WORK/m.yaml" && : >"$WORK/m.yaml" && chmod 640 "$WORK/m.yaml"
	"$MCPSEC" mirror "$WORK/site.yaml" --peer fec0::2222:a00:bff:fe3a:127 --self fec0::2222:a00:bff:fe3a:100 --out "$WORK/m.yaml"
	[ "$(stat -c %a "$WORK/m.yaml")" = 640 ]
	"$MCPSEC" check "$WORK/m.yaml" >/dev/null 2>&1
	[ -z "$(find "$WORK" -name '*.tmp.*')" ]
}

@test "hostile: a second YAML document in a site, key or suite file is an error at its '---', never ignored" {
	printf 'policies:\n  - {name: A, direction: out, action: bypass}\n---\npolicies:\n  - {name: B, direction: out, action: discard}\n' >"$WORK/two.yaml"
	run "$MCPSEC" check "$WORK/two.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"two.yaml:3:1: error: a second YAML document ('---')"* ]]
	printf -- '---\npolicies:\n  - {name: A, direction: out, action: bypass}\n...\n' >"$WORK/one.yaml"
	run "$MCPSEC" check "$WORK/one.yaml"
	[ "$status" -eq 0 ] # one document, with its own markers
	printf 'keys:\n  K1: {algorithm: sha1, hex: "0x%s"}\n---\nkeys:\n  K2: {algorithm: sha1, hex: "0x%s"}\n' \
		"$(printf 'ab%.0s' $(seq 20))" "$(printf 'cd%.0s' $(seq 20))" >"$WORK/k.yaml"
	chmod 600 "$WORK/k.yaml"
	run "$MCPSEC" key list --keys "$WORK/k.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"k.yaml:3:1: error: a second YAML document"* ]]
	printf 'tests:\n  - {name: T1, ulp: tcp, direction: in, local-ip: any, remote-ip: any}\n---\ntests: []\n' >"$WORK/suite.yaml"
	run "$MCPSEC" test "$WORK/one.yaml" --suite "$WORK/suite.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"suite.yaml:3:1: error: a second YAML document"* ]]
}

@test "hostile: a site path that leads to someone's private file quotes nothing of it but names" {
	printf 'root pass: SECRETMARKER!1\nnobody: "x SECRETMARKER"\n' >"$WORK/private"
	chmod 600 "$WORK/private"
	ln -s "$WORK/private" "$WORK/site.yaml"
	run "$MCPSEC" check "$WORK/site.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"site.yaml:1:1: error: unknown key '(not shown: not a name)'"* ]]
	[[ "$output" == *"site.yaml:2:1: error: unknown key 'nobody'"* ]]
	refute_in_file SECRETMARKER <(printf '%s' "$output")
	refute_in_file 'root pass' <(printf '%s' "$output")
}

@test "hostile: import writes a newline in its input's name as \\n, inside the comment" {
	cp "$ROOT/examples/mcp-listing/policies.txt" "$WORK/$(printf 'list\ninjected:\n  X: ::1\n.txt')"
	run "$MCPSEC" import "$WORK/$(printf 'list\ninjected:\n  X: ::1\n.txt')" --out "$WORK/imported.yaml"
	[ "$status" -eq 0 ]
	grep -qF 'list\ninjected:\n  X: ::1\n.txt (' "$WORK/imported.yaml"
	run ! grep -q '^injected:' "$WORK/imported.yaml"
	"$MCPSEC" check "$WORK/imported.yaml" >/dev/null 2>&1
}

@test "hostile: key import takes an export without its last newline (Ansible's lookup strips it) or with CRLF" {
	"$MCPSEC" key generate K1 --alg sha256 --keys "$WORK/k1.yaml" >/dev/null
	printf 'a passphrase of some length\n' >"$WORK/pass"
	chmod 600 "$WORK/pass"
	"$MCPSEC" key export K1 --keys "$WORK/k1.yaml" --passphrase-file "$WORK/pass" --out "$WORK/exp" >/dev/null
	head -c -1 "$WORK/exp" >"$WORK/exp-nonl"
	sed 's/$/\r/' "$WORK/exp" >"$WORK/exp-crlf"
	for e in exp-nonl exp-crlf; do
		run "$MCPSEC" key import "$WORK/$e" --keys "$WORK/$e.yaml" --passphrase-file "$WORK/pass"
		[ "$status" -eq 0 ]
		[[ "$output" == *"1 new"* ]]
		[ "$("$MCPSEC" key list --keys "$WORK/$e.yaml" | grep -c K1)" -eq 1 ]
	done
}
