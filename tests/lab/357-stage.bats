#!/usr/bin/env bats
# Staged lists (issue 29) on Debian's 6.1 kernel with real SAs: the tracepoint observer loads
# and attaches there too, a staged DISCARD of a port in use is named while its traffic flows,
# protected traffic is seen as its SA and compared by SA, and by its inner flows (fentry on
# the functions only IPsec traffic reaches, which 6.1 allows; else mcpsecd's nftables sets,
# which count protected traffic only, leave a firewall alone, and run only while the namespace
# holds an SA, any owner's), and the list applied drops the flow under the policy the staged
# table named. tests/bats/275-stage.bats has the host cases (6.18: no SA can be there).
load helpers

setup() {
	lab_setup
	"$MCPSEC" key generate STAGEI --alg sha256 --keys "$KEYS" >/dev/null
	chmod 600 "$KEYS"
	cp "$KEYS" "$(dirname "$SITE_B")/keys.yaml"
	esp='esp: { integrity: hmac-sha256-128, integrity-key: STAGEI }'
	pair_with_rest <<EOF2
  - name: PROTECTUDPOUT
    direction: out
    remote: $B_ADDR
    protocol: udp
    remote-ports: 5000
    action: protect
    spi: 20737
    $esp
  - name: PROTECTUDPIN
    direction: in
    remote: $B_ADDR
    protocol: udp
    local-ports: 5001
    action: protect
    spi: 20738
    $esp
EOF2
	# The staged list: syslog in discarded, and A's outbound SA replaced (SPI 20993).
	cp "$SITE_A" "$WORK/staged.yaml"
	"$PY" - "$WORK/staged.yaml" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
s = s.replace("policies:\n", "policies:\n  - { name: DISCARDSYSLOGIN, direction: in, protocol: udp, local-ports: 514, action: discard }\n", 1)
s = s.replace("spi: 20737", "spi: 20993")
open(p, "w").write(s)
PY
	cp "$KEYS" "$WORK/keys.yaml"
}
teardown() {
	sysctl -qw kernel.bpf_stats_enabled=0 2>/dev/null || true
	stop_daemon
	basic_teardown
}

records() { jq -c "select($1)" "$STATE/log.jsonl" 2>/dev/null; }
flows() { mc_a status ipsec staged --json | jq -c ".daemon.table.flows[] | select($1)"; }
# The named fields of the flows matching filter $1, on one line: fields FILTER FIELD...
fields() {
	local filter=$1 picks
	shift
	picks=$(printf '.%s, ' "$@")
	flows "$filter" | jq -r "[${picks%, }] | join(\" \")"
}
# Runs of the fentry programs of the inner view, all three, since the kernel's BPF statistics
# were turned on.
inner_runs() {
	bpftool prog show -j | jq '[.[] | select(.name == "inner_out" or .name == "inner_in4" or .name == "inner_in6")
		| .run_cnt // 0] | add // 0'
}
# B's syslog to A in clear, then A's protected datagrams to B's 5000: 20 each, all received.
clear_burst() {
	start_listener "$WORK/syslog" in_a "$NET" udp-recv 514 6 40
	in_b "$NET" udp-burst "$A_ADDR" 514 20 20 >/dev/null
	[ "$(listener_result "$WORK/syslog")" = "got 20" ]
}
protected_burst() {
	start_listener "$WORK/prot" in_b "$NET" udp-recv 5000 6 40
	in_a "$NET" udp-burst "$B_ADDR" 5000 20 20 >/dev/null
	[ "$(listener_result "$WORK/prot")" = "got 20" ]
}
# The same datagrams inside IPsec, by their inner addresses and ports, decided by the lists'
# selectors; and B's 10 protected datagrams to A's 5001, after decryption. Exact counts.
inner_flows() {
	start_listener "$WORK/prot2" in_a "$NET" udp-recv 5001 6 40
	in_b "$NET" udp-burst "$A_ADDR" 5001 10 20 >/dev/null
	[ "$(listener_result "$WORK/prot2")" = "got 10" ]
	wait_flow 30 '.inner and .protocol == "udp" and .dst_port == 5000'
	[ "$(fields '.inner and .dst_port == 5000' direction src dst packets change enforced_policy enforced_spi staged_policy staged_spi)" = \
	  "out $A_ADDR $B_ADDR 20 other-sa PROTECTUDPOUT 20737 PROTECTUDPOUT 20993" ]
	wait_flow 30 '.inner and .dst_port == 5001'
	[ "$(fields '.inner and .dst_port == 5001' direction protocol src dst packets change enforced_policy)" = \
	  "in udp $B_ADDR $A_ADDR 10 unchanged PROTECTUDPIN" ]
	# The clear flow is never inside IPsec.
	[ -z "$(flows '.inner and .dst_port == 514')" ]
}

wait_flow() {
	for _ in $(seq $(($1 * 4))); do [ -n "$(flows "$2")" ] && return 0; sleep 0.25; done
	echo "no staged flow matching $2:" >&2
	mc_a status ipsec staged >&2
	return 1
}

@test "lab stage: a staged DISCARD of a port in use and a replaced SA, named while traffic flows; applied, the drops name the same policy" {
	start_daemon
	wait_record 60 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	quiet mc_a stage "$WORK/staged.yaml"
	# 6.1 has no tcx: the observer falls back to clsact filters, and says why.
	wait_record 60 '.event == "staged" and .reason == "start" and (.detail | contains("tc (clsact) on each interface (tcx: attaching to lo'"'"'s tcx hooks: Invalid argument)"))' >/dev/null
	# 6.1 allows trampolines: the inner view is the fentry programs, and no nftables table.
	[ "$(mc_a status ipsec staged --json | jq -r .daemon.inner_observer)" = \
	  "fentry on xfrm_output and xfrm4/xfrm6_transport_finish, protected traffic only" ]
	run ! ip netns exec "$NS_A" nft list table inet mcpsecd_staging
	# Syslog from B in clear, and protected UDP from A to B's 5000, both received. Clear
	# traffic never runs the inner view (the kernel's BPF statistics count its runs).
	sysctl -qw kernel.bpf_stats_enabled=1
	runs=$(inner_runs)
	clear_burst
	[ "$(inner_runs)" -eq "$runs" ]
	protected_burst
	[ "$(inner_runs)" -ge $((runs + 20)) ]
	sysctl -qw kernel.bpf_stats_enabled=0
	wait_flow 30 '.change == "would-discard" and .dst_port == 514'
	[ "$(fields '.dst_port == 514' direction src dst packets enforced_action enforced_policy staged_policy)" = \
	  "in $B_ADDR $A_ADDR 20 bypass RESTIN DISCARDSYSLOGIN" ]
	# The protected datagrams, seen as their SA: ESP under 20737 to B, which the staged list
	# replaces with 20993.
	wait_flow 30 '.protocol == "esp" and .spi == 20737'
	[ "$(fields '.protocol == "esp" and .spi == 20737' direction change packets enforced_policy enforced_spi staged_policy staged_spi)" = \
	  "out other-sa 20 PROTECTUDPOUT 20737 PROTECTUDPOUT 20993" ]
	run mc_a status ipsec staged
	[[ "$output" == *"other-sa (the peer must be ready for it too):"*"esp $A_ADDR -> $B_ADDR spi 0x5101"* ]]
	inner_flows
	# Applied: syslog from B is dropped under the policy the staged table named.
	quiet mc_a apply "$WORK/staged.yaml"
	start_listener "$WORK/syslog2" in_a "$NET" udp-recv 514 4 40
	in_b "$NET" udp-burst "$A_ADDR" 514 5 20 >/dev/null
	[ "$(listener_result "$WORK/syslog2")" = "got 0" ]
	wait_record 60 '.event == "drop" and .dst_port == 514' >/dev/null
	[ "$(records '.event == "drop" and .dst_port == 514' | jq -r .policy | sort -u)" = DISCARDSYSLOGIN ]
	run mc_a status ipsec staged
	[ "$output" = "nothing is staged ('mcpsec stage SITE.yaml' stages a list)" ]
	# The clsact qdiscs mcpsecd made (6.1 has no tcx) went with the staged list.
	wait_record 30 '.event == "staged" and .reason == "cleared"' >/dev/null
	[[ "$(ip netns exec "$NS_A" tc qdisc show)" != *clsact* ]]
	# A killed mcpsecd leaves its clsact filters (nothing holds them on 6.1), running; the next
	# one removes them as it starts, says where, and attaches its own for the list staged.
	quiet mc_a stage "$SITE_A"
	wait_record 60 '.event == "staged" and .reason == "start" and (.detail | contains("'"$SITE_A"'"))' >/dev/null
	old=$(ip netns exec "$NS_A" tc filter show dev eth0 ingress | grep -o 'seen_tc_in.* id [0-9]*')
	[ -n "$old" ]
	kill -KILL "$DAEMON"
	wait "$DAEMON" 2>/dev/null || true
	[ "$(ip netns exec "$NS_A" tc filter show dev eth0 ingress | grep -o 'seen_tc_in.* id [0-9]*')" = "$old" ]
	start_daemon
	wait_record 60 '.event == "staged" and .reason == "leftover" and (.detail | contains("eth0"))' >/dev/null
	for _ in $(seq 60); do [ "$(records '.event == "staged" and .reason == "start"' | wc -l)" -eq 3 ] && break; sleep 0.5; done
	new=$(ip netns exec "$NS_A" tc filter show dev eth0 ingress | grep -o 'seen_tc_in.* id [0-9]*')
	[ -n "$new" ] && [ "$new" != "$old" ]
	echo "# $(records '.reason == "leftover"' | jq -r .detail); eth0 ingress: $old, then $new" >&3
}

@test "lab stage: with MCPSECD_INNER=nftables the counting sets see the same inner flows, protected traffic only, while an SA is there" {
	MCPSECD_INNER=nftables start_daemon
	wait_record 60 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	quiet mc_a stage "$WORK/staged.yaml"
	wait_record 60 '.event == "staged" and .reason == "start"' >/dev/null
	[ "$(mc_a status ipsec staged --json | jq -r .daemon.inner_observer)" = \
	  "nftables sets, protected traffic only (fentry: not tried (MCPSECD_INNER=nftables))" ]
	clear_burst
	protected_burst
	inner_flows
	# Only protected traffic is counted, all of it: the clear syslog flow is in no set, the
	# totals are the 20 datagrams out and the 10 in; conntrack never ran.
	sets=$(ip netns exec "$NS_A" nft list table inet mcpsecd_staging)
	[[ "$sets" == *". 5000 counter packets 20 "* && "$sets" == *". 5001 counter packets 10 "* ]]
	[[ "$sets" != *". 514 "* ]]
	[[ "$(ip netns exec "$NS_A" nft list counter inet mcpsecd_staging out_all)" == *"packets 20 "* ]]
	[[ "$(ip netns exec "$NS_A" nft list counter inet mcpsecd_staging in_all)" == *"packets 10 "* ]]
	[ "$(ip netns exec "$NS_A" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0)" -eq 0 ]
	# What the sets hold is read back as inner flows whatever it is: an IPv4 ICMP echo, put there.
	ip netns exec "$NS_A" nft add element inet mcpsecd_staging in4 "{ $B4 . $A4 . icmp . 2048 . 0 counter packets 3 bytes 252 }"
	wait_flow 30 '.inner and .protocol == "icmp"'
	[ "$(fields '.inner and .protocol == "icmp"' direction src dst icmp_type icmp_code packets bytes)" = "in $B4 $A4 8 0 3 252" ]
	# Removed by another program, the table is said lost and made again.
	ip netns exec "$NS_A" nft delete table inet mcpsecd_staging
	wait_record 30 '.event == "staged" and .reason == "inner-lost"' >/dev/null
	for _ in $(seq 40); do ip netns exec "$NS_A" nft list set inet mcpsecd_staging out6 >/dev/null 2>&1 && break; sleep 0.25; done
	ip netns exec "$NS_A" nft list set inet mcpsecd_staging out6 >/dev/null
	# A enforces a list without IPsec: no SA is left, nothing can be inside IPsec, and the table
	# goes (its hooks would cost bypassed traffic for nothing), though the staged list protects.
	cp "$SITE_A" "$WORK/clear.yaml"
	printf '  - name: RESTOUT\n    direction: out\n    action: bypass\n  - name: RESTIN\n    direction: in\n    action: bypass\n' |
		with_policies "$WORK/clear.yaml"
	quiet mc_a apply "$WORK/clear.yaml"
	[ -z "$(ip -n "$NS_A" xfrm state)" ]
	wait_record 30 '.event == "staged" and .reason == "inner-stop"' >/dev/null
	run ! ip netns exec "$NS_A" nft list table inet mcpsecd_staging
	[ "$(mc_a status ipsec staged --json | jq -r .daemon.inner_observer)" = \
	  "nothing while this namespace holds no SA (nothing can be inside IPsec); with one: nftables sets, protected traffic only (fentry: not tried (MCPSECD_INNER=nftables))" ]
	# Any owner's SA counts: one another program adds (its key from stdin, not argv) starts the
	# view, and removed, stops it again.
	ip -n "$NS_A" -batch - <<<"xfrm state add src $A_ADDR dst 2001:db8:99::9 proto ah spi 0x9999 mode transport auth hmac(sha256) 0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
	wait_record 30 '.event == "staged" and .reason == "inner-start"' >/dev/null
	ip netns exec "$NS_A" nft list set inet mcpsecd_staging out6 >/dev/null
	ip -n "$NS_A" xfrm state flush
	for _ in $(seq 40); do [ "$(records '.event == "staged" and .reason == "inner-stop"' | wc -l)" -eq 2 ] && break; sleep 0.25; done
	run ! ip netns exec "$NS_A" nft list table inet mcpsecd_staging
	# SAs again (A's list with IPsec): the sets are back within a tick of them, and count.
	quiet mc_a apply "$SITE_A"
	for _ in $(seq 40); do [ "$(records '.event == "staged" and .reason == "inner-start"' | wc -l)" -eq 2 ] && break; sleep 0.25; done
	[ "$(records '.event == "staged" and (.reason == "inner-start" or .reason == "inner-stop")' | jq -r .reason | paste -sd' ')" = "inner-stop inner-start inner-stop inner-start" ]
	[[ "$(records '.event == "staged" and .reason == "inner-start"' | tail -1 | jq -r .detail)" == *"nftables sets"* ]]
	ip netns exec "$NS_A" nft list set inet mcpsecd_staging out6 >/dev/null
	for _ in $(seq 40); do [ "$(records '.event == "staged" and .reason == "restart"' | wc -l)" -eq 2 ] && break; sleep 0.25; done
	[ "$(records '.event == "staged" and .reason == "restart"' | wc -l)" -eq 2 ]
	protected_burst
	wait_flow 30 '.inner and .dst_port == 5000'
	[ "$(fields '.inner and .dst_port == 5000' direction src dst packets)" = "out $A_ADDR $B_ADDR 20" ]
	# --clear takes the table away.
	quiet mc_a stage --clear
	wait_record 30 '.event == "staged" and .reason == "cleared"' >/dev/null
	run ! ip netns exec "$NS_A" nft list table inet mcpsecd_staging
}

@test "lab stage: the counting sets leave a namespace's own firewall as it is, and its decisions; a killed mcpsecd's sets are replaced" {
	own_firewall
	before=$(own_ruleset)
	MCPSECD_INNER=nftables start_daemon
	wait_record 60 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	quiet mc_a stage "$WORK/staged.yaml"
	wait_record 60 '.event == "staged" and .reason == "start" and (.detail | contains("by nftables sets"))' >/dev/null
	[ "$(ip netns exec "$NS_A" nft list table inet fw | sed '/counter packets/d')" = "$before" ]
	clear_burst
	protected_burst
	wait_flow 30 '.inner and .dst_port == 5000'
	[ "$(fields '.inner and .dst_port == 5000' direction packets)" = "out 20" ]
	# The firewall still tracks and decides beside mcpsecd's accepting chains.
	own_firewall_decides
	# A killed mcpsecd's table stays, and goes on counting (here, a flow put in it); the next
	# mcpsecd makes its own, which does not take that flow as seen, and removes it as it stops.
	kill -KILL "$DAEMON"
	wait "$DAEMON" 2>/dev/null || true
	ip netns exec "$NS_A" nft add element inet mcpsecd_staging out4 "{ $A4 . $B4 . udp . 5000 . 5000 counter packets 7 bytes 700 }"
	MCPSECD_INNER=nftables start_daemon
	for _ in $(seq 120); do [ "$(records '.event == "staged" and .reason == "start"' | wc -l)" -eq 2 ] && break; sleep 0.5; done
	[[ "$(records '.event == "staged" and .reason == "start"' | tail -1 | jq -r .detail)" == *"by nftables sets"* ]]
	sets=$(ip netns exec "$NS_A" nft list set inet mcpsecd_staging out4)
	[[ "$sets" == *"set out4"* && "$sets" != *"5000"* ]]
	sleep 1.5
	[ -z "$(flows '.dst == "'"$B4"'" and .dst_port == 5000')" ]
	stop_daemon
	run ! ip netns exec "$NS_A" nft list table inet mcpsecd_staging
	[ "$(own_ruleset)" = "$before" ]
}

@test "lab stage: IPv4 inside IPsec: protected UDP both ways (ESP out, AH in) is seen by its inner flow, exactly" {
	sed -i 's/default: ipv6-only/default: deny/' "$SITE_A"
	esp='esp: { integrity: hmac-sha256-128, integrity-key: STAGEI }'
	with_policies "$SITE_A" <<EOF2
  - name: V4UDPOUT
    direction: out
    local: $A4
    remote: $B4
    protocol: udp
    remote-ports: 5000
    action: protect
    spi: 20801
    $esp
  - name: V4UDPIN
    direction: in
    local: $A4
    remote: $B4
    protocol: udp
    local-ports: 5001
    action: protect
    spi: 20802
    ah: { integrity: hmac-sha256-128, key: STAGEI }
  - name: RESTOUT
    direction: out
    action: bypass
  - name: RESTIN
    direction: in
    action: bypass
EOF2
	# B mirrors A's IPv4 policies (the pair's usual mirror is by their IPv6 addresses).
	quiet mc_a mirror "$SITE_A" --peer "$B4" --self "$A4" --out "$SITE_B"
	apply_both "$SITE_A" "$SITE_B"
	start_daemon
	wait_record 60 '.event == "daemon" and .reason == "per-flow"' >/dev/null
	quiet mc_a stage "$SITE_A"
	wait_record 60 '.event == "staged" and .reason == "start"' >/dev/null
	[ "$(mc_a status ipsec staged --json | jq -r .daemon.inner_observer)" = \
	  "fentry on xfrm_output and xfrm4/xfrm6_transport_finish, protected traffic only" ]
	start_listener "$WORK/p4" in_b "$NET" udp-recv 5000 6 40
	in_a "$NET" udp-burst "$B4" 5000 20 20 >/dev/null
	[ "$(listener_result "$WORK/p4")" = "got 20" ]
	start_listener "$WORK/p4in" in_a "$NET" udp-recv 5001 6 40
	in_b "$NET" udp-burst "$A4" 5001 10 20 >/dev/null
	[ "$(listener_result "$WORK/p4in")" = "got 10" ]
	# On the wire, ESP out and AH in, under their SPIs; inside, the datagrams by their IPv4
	# flows, the inbound one's protocol taken back from IPsec's control block (its header
	# said AH).
	wait_flow 30 '.protocol == "esp" and .spi == 20801'
	wait_flow 30 '.protocol == "ah" and .spi == 20802'
	wait_flow 30 '.inner and .dst_port == 5000'
	[ "$(fields '.inner and .dst_port == 5000' direction protocol src dst packets change enforced_policy)" = \
	  "out udp $A4 $B4 20 unchanged V4UDPOUT" ]
	wait_flow 30 '.inner and .dst_port == 5001'
	[ "$(fields '.inner and .dst_port == 5001' direction protocol src dst packets change enforced_policy)" = \
	  "in udp $B4 $A4 10 unchanged V4UDPIN" ]
}
