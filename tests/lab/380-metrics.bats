#!/usr/bin/env bats
# Prometheus metrics with real SAs (issue 16): per-SA bytes, packets and integrity failures as
# the kernel counts them, the dashboard's SA panels fed, and never a key or a fingerprint.
load helpers

setup() { lab_setup; }
teardown() {
	stop_daemon
	basic_teardown
}

# One series of a metrics file whose name is $2 and whose labels contain every one of $3...
series() {
	local f=$1 name=$2
	shift 2
	awk -v n="$name" -v want="$*" '
		index($1, n "{") == 1 { ok = 1; k = split(want, w, " "); for (i = 1; i <= k; i++) if (!index($1, w[i])) ok = 0; if (ok) print $2 }' "$f"
}
# The kernel's own byte and packet counters of SA $2 in namespace $1: "BYTES PACKETS" (ip -s
# prints "spi 0x00006001(24577)" and, under "lifetime current:", "52(bytes), 1(packets)").
kernel_sa_counters() {
	ip -n "$1" -s xfrm state | awk -v spi="$2" '
		/^src / { s = 0 } $0 ~ "spi " spi "[ (]" { s = 1 } s && /lifetime current:/ { c = 1; next }
		s && c { gsub(/\(bytes\),|\(packets\)/, ""); print $1, $2; exit }'
}
# Fails when a metrics file holds any key's value (hex, either case) or fingerprint from $2.
no_secrets() {
	local f=$1 keyfile=$2 n hex fp
	while read -r n; do
		hex=$("$MCPSEC" key show "$n" --reveal --keys "$keyfile" | tr -dc '0-9a-fA-F' | tail -c 16)
		fp=$("$MCPSEC" key list --keys "$keyfile" --json | jq -r --arg n "$n" '.keys[] | select(.name == $n) | .fingerprint')
		if [ -z "$hex" ] || [ -z "$fp" ]; then
			echo "no value or fingerprint for $n"
			return 1
		fi
		if grep -qi -e "$hex" -e "$fp" "$f"; then
			echo "$f holds key $n (its value or fingerprint)"
			return 1
		fi
	done < <("$MCPSEC" key list --keys "$keyfile" --json | jq -r '.keys[].name')
}

@test "lab metrics: SA bytes and packets follow ESP traffic exactly as the kernel counts them; promtool; no key or fingerprint" {
	apply_both
	start_daemon --metrics-file "$WORK/a.prom" --metrics-interval 1
	serve_b 21 3
	for _ in 1 2 3; do [ "$(in_a "$NET" connect "$B_ADDR" 21)" = "ok" ]; done
	[ "$(served 21)" = "got 3" ]
	# Traffic stopped: the next file written holds what the kernel holds now.
	read -r kb kp < <(kernel_sa_counters "$NS_A" 0x00006001)
	[ "$kp" -gt 0 ]
	for _ in $(seq 50); do
		[ "$(series "$WORK/a.prom" mcpsec_sa_packets_total 'spi="0x00006001"')" = "$kp" ] && break
		sleep 0.2
	done
	[ "$(series "$WORK/a.prom" mcpsec_sa_packets_total 'policy="PROTECTFTPOUT"' 'direction="out"' 'spi="0x00006001"' 'protocol="esp"')" = "$kp" ]
	[ "$(series "$WORK/a.prom" mcpsec_sa_bytes_total 'policy="PROTECTFTPOUT"' 'spi="0x00006001"')" = "$kb" ]
	# Inbound too: what came back on SPI 0x6002.
	read -r ib ip < <(kernel_sa_counters "$NS_A" 0x00006002)
	[ "$ip" -gt 0 ]
	[ "$(series "$WORK/a.prom" mcpsec_sa_packets_total 'policy="PROTECTFTPIN"' 'direction="in"' 'spi="0x00006002"')" = "$ip" ]
	[ "$(series "$WORK/a.prom" mcpsec_sa_bytes_total 'spi="0x00006002"')" = "$ib" ]
	run promtool check metrics <"$WORK/a.prom"
	[ "$status" -eq 0 ]
	# Every SA and policy metric of the dashboard has samples here.
	run "$PY" "$ROOT/tests/dashboard-check.py" "$ROOT/contrib/grafana-dashboard.json" "$WORK/a.prom" \
		--samples mcpsec_sa_ mcpsec_policy_kernel mcpsec_policy_last mcpsec_daemon_up mcpsec_enforced
	echo "$output"
	[ "$status" -eq 0 ]
	# No key value and no fingerprint, in the file or in status --prometheus.
	mc_a status ipsec all --prometheus >"$WORK/status.prom"
	no_secrets "$WORK/a.prom" "$KEYS"
	no_secrets "$WORK/status.prom" "$KEYS"
	# The check can fail: a file with one key's fingerprint in it.
	cp "$WORK/a.prom" "$WORK/doctored.prom"
	"$MCPSEC" key list --keys "$KEYS" --json | jq -r '.keys[0].fingerprint' >>"$WORK/doctored.prom"
	run no_secrets "$WORK/doctored.prom" "$KEYS"
	[ "$status" -eq 1 ]
	[[ "$output" == *"holds key"* ]]
}

@test "lab metrics: a wrong key shows as the SA's integrity failures and as icv-failure drops of its policy" {
	"$PY" "$BATS_TEST_DIRNAME/gen-algorithms.py" "$WORK/alg" wrong-key K_SHA256 >/dev/null
	apply_both "$WORK/alg/a/site.yaml" "$WORK/alg/b/site.yaml"
	D_NS=$NS_B D_STATE=$STATE-b start_daemon --metrics-file "$WORK/b.prom" --metrics-interval 1
	serve_b 5008 1 12
	[ "$(in_a "$NET" connect "$B_ADDR" 5008)" = "timeout" ]
	served 5008
	want=$(mc_b status ipsec IN5008 --json | jq '.policies[0].sa.integrity_failed')
	[ "$want" -gt 0 ]
	for _ in $(seq 50); do
		[ "$(series "$WORK/b.prom" mcpsec_sa_integrity_failures_total 'policy="IN5008"')" = "$want" ] && break
		sleep 0.2
	done
	[ "$(series "$WORK/b.prom" mcpsec_sa_integrity_failures_total 'policy="IN5008"' 'direction="in"')" = "$want" ]
	for _ in $(seq 50); do
		[ -n "$(series "$WORK/b.prom" mcpsec_policy_drops_total 'policy="IN5008"' 'reason="icv-failure"')" ] && break
		sleep 0.2
	done
	[ "$(series "$WORK/b.prom" mcpsec_policy_drops_total 'policy="IN5008"' 'reason="icv-failure"')" -gt 0 ]
	promtool check metrics <"$WORK/b.prom"
}
