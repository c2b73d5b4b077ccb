#!/usr/bin/env bats
# Prometheus metrics (issue 16): mcpsecd --metrics-file and mcpsec status ipsec all --prometheus,
# on the host kernel in two namespaces: drops by policy and reason, kernel policies, xfrm_stat,
# the daemon's totals; promtool; the Grafana dashboard's metrics. SA metrics with real SAs:
# tests/lab/380-metrics.bats.
load helpers

setup() {
	basic_setup
	two_ns
	cat >"$WORK/site.yaml" <<-EOF
	policies:
	  - { name: DISCARDDNSIN, direction: in, protocol: udp, local-ports: 53, action: discard }
	  - { name: DISCARDFTPOUT, direction: out, protocol: tcp, remote-ports: 21, action: discard }
	  - { name: BYPASSICMPIN, direction: in, protocol: icmpv6, action: bypass }
	  - { name: BYPASSALLIN, direction: in, action: bypass }
	  - { name: BYPASSALLOUT, direction: out, action: bypass }
	EOF
	mc_a apply "$WORK/site.yaml" >/dev/null
	PROM="$WORK/textfile/mcpsec.prom"
	mkdir -p "$WORK/textfile"
}
teardown() {
	stop_daemon
	basic_teardown
}

# The value of one series of a metrics file: metric name and labels after namespace, exactly.
value() { awk -v k="$2{namespace=\"$NS_A\"${3:+,$3}}" '$1 == k { print $2 }' "$1"; }
# Waits up to $1 s for series $3 (labels $4) of file $2 to equal $5.
wait_value() {
	for _ in $(seq $(($1 * 10))); do
		[ -f "$2" ] && [ "$(value "$2" "$3" "$4")" = "$5" ] && return 0
		sleep 0.1
	done
	echo "$3{$4} is '$(value "$2" "$3" "$4")', not $5:" >&2
	cat "$2" >&2
	return 1
}

@test "metrics: mcpsecd --metrics-file counts drops by policy and reason, as the kernel's counter does, and promtool accepts it" {
	start_daemon --metrics-file "$PROM" --metrics-interval 1
	in_b "$NET" udp-send "$A_ADDR" 53 45353 >/dev/null # 3 datagrams
	wait_value 10 "$PROM" mcpsec_policy_drops_total 'policy="DISCARDDNSIN",direction="in",reason="policy-block"' 3
	# The kernel's own counter, read apart, says the same; so does the file's xfrm_stat series.
	[ "$(xfrm_stat "$NS_A" XfrmInPolBlock)" -eq 3 ]
	wait_value 5 "$PROM" mcpsec_xfrm_stat_total 'counter="XfrmInPolBlock"' 3
	[ "$(value "$PROM" mcpsec_drops_total 'reason="policy-block"')" -eq 3 ]
	# Kernel policies per policy: what status --json counts (another code path), > 0.
	for p in DISCARDDNSIN BYPASSALLOUT; do
		want=$(mc_a status ipsec all --json | jq --arg p "$p" '[.policies[] | select(.name == $p) | .kernel_policies] | add')
		[ "$want" -gt 0 ]
		[ "$(awk -v p="policy=\"$p\"" '$1 ~ /^mcpsec_policy_kernel_policies\{/ && index($1, p) { s += $2 } END { print s }' "$PROM")" -eq "$want" ]
	done
	# The policy that refused the datagrams was used within the last minute.
	used=$(value "$PROM" mcpsec_policy_last_use_timestamp_seconds 'policy="DISCARDDNSIN",direction="in"')
	[ "$used" -gt $(($(date +%s) - 60)) ]
	[ "$(value "$PROM" mcpsec_daemon_up)" = 1 ]
	[ "$(value "$PROM" mcpsec_daemon_enforced)" = 1 ]
	[ "$(value "$PROM" mcpsec_enabled)" = 1 ]
	[ "$(value "$PROM" mcpsec_daemon_records_written_total)" -ge 1 ]
	run promtool check metrics <"$PROM"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# The file is mode 0644 (the collector runs as another user) and no temporary is left.
	[ "$(stat -c %a "$PROM")" = 644 ]
	[ ! -e "$PROM.tmp" ]
}

@test "metrics: status ipsec all --prometheus shows the same, with the daemon's part from the daemon, or up 0 without one" {
	run mc_a status ipsec all --prometheus
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$WORK/nodaemon.prom"
	[ "$(value "$WORK/nodaemon.prom" mcpsec_daemon_up)" = 0 ]
	promtool check metrics <"$WORK/nodaemon.prom"
	start_daemon --metrics-file "$PROM" --metrics-interval 1
	in_b "$NET" udp-send "$A_ADDR" 53 45353 >/dev/null
	wait_value 10 "$PROM" mcpsec_policy_drops_total 'policy="DISCARDDNSIN",direction="in",reason="policy-block"' 3
	mc_a status ipsec all --prometheus >"$WORK/status.prom"
	promtool check metrics <"$WORK/status.prom"
	[ "$(value "$WORK/status.prom" mcpsec_daemon_up)" = 1 ]
	[ "$(value "$WORK/status.prom" mcpsec_policy_drops_total 'policy="DISCARDDNSIN",direction="in",reason="policy-block"')" = 3 ]
	# The same families in the same order, whoever wrote them.
	diff <(grep '^# TYPE' "$PROM") <(grep '^# TYPE' "$WORK/status.prom")
	# --prometheus shows every policy, alone.
	run mc_a status ipsec DISCARDDNSIN --prometheus
	[ "$status" -eq 1 ]
	run mc_a status ipsec all --json --prometheus
	[ "$status" -eq 1 ]
}

@test "metrics: the file is replaced atomically: every read while mcpsecd rewrites it is whole" {
	start_daemon --metrics-file "$PROM" --metrics-interval 1
	wait_value 10 "$PROM" mcpsec_daemon_up "" 1
	families=$(grep -c '^# TYPE' "$PROM")
	last=$(tail -1 "$PROM")
	[ "${last%%\{*}" = mcpsec_daemon_events_total ]
	# Read as fast as the shell can until mcpsecd has rewritten the file 3 times (a new inode
	# each time: rename), at most 15 s: every read ends with the last family's sample and
	# declares every family.
	ino=$(stat -c %i "$PROM")
	rewrites=0 reads=0
	end=$((SECONDS + 15))
	while [ "$rewrites" -lt 3 ] && [ "$SECONDS" -lt "$end" ]; do
		t=$(<"$PROM")
		last=${t##*$'\n'}
		[ "${last%%\{*}" = mcpsec_daemon_events_total ]
		types=${t//[!#]/}
		[ "${#types}" -eq $((2 * families)) ]
		reads=$((reads + 1))
		now=$(stat -c %i "$PROM")
		[ "$now" = "$ino" ] || { rewrites=$((rewrites + 1)); ino=$now; }
	done
	[ "$rewrites" -eq 3 ]
	[ "$reads" -gt 3 ]
}

@test "metrics: a directory that cannot take the file is said once and retried; a relative path is refused" {
	run "$MCPSECD" --netns "$NS_A" --state-dir "$STATE" --metrics-file rel.prom --foreground
	[ "$status" -eq 1 ]
	[[ "$output" == *"--metrics-file needs an absolute path"* ]]
	start_daemon --metrics-file "$WORK/missing/mcpsec.prom" --metrics-interval 1
	wait_record 5 '.reason == "metrics-failed"' >/dev/null
	sleep 2.5
	[ "$(jq -c 'select(.reason == "metrics-failed")' "$STATE/log.jsonl" | wc -l)" -eq 1 ]
	[[ "$(jq -r 'select(.reason == "metrics-failed") | .detail' "$STATE/log.jsonl")" == *"writing $WORK/missing/mcpsec.prom: No such file or directory"* ]]
	mkdir "$WORK/missing"
	wait_value 5 "$WORK/missing/mcpsec.prom" mcpsec_daemon_up "" 1
}

@test "metrics: the Grafana dashboard is valid JSON and every metric it names is in the output" {
	run mc_a status ipsec all --prometheus
	printf '%s\n' "$output" >"$WORK/m.prom"
	run "$PY" "$ROOT/tests/dashboard-check.py" "$ROOT/contrib/grafana-dashboard.json" "$WORK/m.prom"
	[ "$status" -eq 0 ]
	[[ "$output" == *"panels,"*"metrics, all in"* ]]
	# The check can fail: a dashboard naming a metric that does not exist.
	sed 's/mcpsec_sa_bytes_total/mcpsec_sa_byte_total/' "$ROOT/contrib/grafana-dashboard.json" >"$WORK/typo.json"
	run "$PY" "$ROOT/tests/dashboard-check.py" "$WORK/typo.json" "$WORK/m.prom"
	[ "$status" -eq 1 ]
	[[ "$output" == *"mcpsec_sa_byte_total: not in"* ]]
	# Drops by policy and SA traffic have panels.
	jq -e '[.panels[].targets[].expr] | (any(test("mcpsec_policy_drops_total")) and any(test("mcpsec_sa_bytes_total")))' \
		"$ROOT/contrib/grafana-dashboard.json"
}
