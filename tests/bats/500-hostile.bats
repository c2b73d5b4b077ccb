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

@test "hostile: mcpsecd refuses --rate nan and --log-max inf" {
	run "$MCPSECD" --rate nan --foreground
	[ "$status" -ne 0 ]
	[[ "$output" == *"--rate needs a finite number"* ]]
	run "$MCPSECD" --log-max inf --foreground
	[ "$status" -ne 0 ]
	[[ "$output" == *"--log-max needs a finite number"* ]]
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
