#!/usr/bin/env bats
# shellcheck disable=SC2153 # NS_A and NS_B are set by basic_setup (helpers)
# A hub and two spokes with real SAs (issue 28): one host in two pairs, each pair with its own
# keys and SPIs, in one site (the hub's), each spoke's site its mirror. Every spoke-hub flow is
# ESP on the wire under its own pair's SPIs; a spoke cannot use the other spoke's SA: without the
# other pair's keys, what it sends under that SPI is refused by the hub.
load helpers

H1=fec0:1::1
S1=fec0:1::2
H2=fec0:2::1
S2=fec0:2::2

setup() {
	basic_setup
	require_root
	NS_C="mct-$$-${BATS_TEST_NUMBER}-c"
	# The hub (A) has a link to each spoke (B, C).
	for ns in "$NS_A" "$NS_B" "$NS_C"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	ip link add "ha$$" netns "$NS_A" type veth peer name "sb$$" netns "$NS_B"
	ip link add "hc$$" netns "$NS_A" type veth peer name "sc$$" netns "$NS_C"
	ip -n "$NS_A" link set "ha$$" name eth0
	ip -n "$NS_A" link set "hc$$" name eth1
	ip -n "$NS_B" link set "sb$$" name eth0
	ip -n "$NS_C" link set "sc$$" name eth0
	ip -n "$NS_A" addr add "$H1/64" dev eth0 nodad
	ip -n "$NS_A" addr add "$H2/64" dev eth1 nodad
	ip -n "$NS_B" addr add "$S1/64" dev eth0 nodad
	ip -n "$NS_C" addr add "$S2/64" dev eth0 nodad
	for l in "$NS_A eth0" "$NS_A eth1" "$NS_B eth0" "$NS_C eth0"; do
		# shellcheck disable=SC2086 # namespace and device
		ip -n ${l% *} link set ${l#* } up
	done
	mkdir -p "$WORK/hub" "$WORK/s1" "$WORK/s2"
	echo "a long enough passphrase" >"$WORK/pass"
	chmod 600 "$WORK/pass"
	# Each pair's own keys, generated on the hub; each spoke gets only its pair's.
	for k in S1I:sha256 S1C:aes256 S2I:sha256 S2C:aes256; do
		"$MCPSEC" key generate "${k%:*}" --alg "${k#*:}" --keys "$WORK/hub/keys.yaml" >/dev/null
	done
	give_keys s1 S1I S1C
	give_keys s2 S2I S2C
	{
		printf 'ipsec: { default: deny, keys: keys.yaml }\npolicies:\n'
		pair_policies S1 "$H1" "$S1" 30001
		pair_policies S2 "$H2" "$S2" 30011
		printf '  - { name: ICMPOUT, direction: out, protocol: icmpv6, action: bypass }\n'
		printf '  - { name: ICMPIN, direction: in, protocol: icmpv6, action: bypass }\n'
	} >"$WORK/hub/site.yaml"
	"$MCPSEC" check "$WORK/hub/site.yaml" >/dev/null
	"$MCPSEC" mirror "$WORK/hub/site.yaml" --peer "$S1" --self "$H1" --out "$WORK/s1/site.yaml"
	"$MCPSEC" mirror "$WORK/hub/site.yaml" --peer "$S2" --self "$H2" --out "$WORK/s2/site.yaml"
	quiet "$MCPSEC" --netns "$NS_A" --state-dir "$STATE-a" apply "$WORK/hub/site.yaml"
	quiet "$MCPSEC" --netns "$NS_B" --state-dir "$STATE-b" apply "$WORK/s1/site.yaml"
	quiet "$MCPSEC" --netns "$NS_C" --state-dir "$STATE-c" apply "$WORK/s2/site.yaml"
}
teardown() {
	ip netns pids "$NS_C" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$NS_C" 2>/dev/null
	basic_teardown
}

in_c() { ip netns exec "$NS_C" "$@"; }

# Copies the named keys from the hub's key file into a spoke's (export, encrypted, import).
give_keys() {
	local to=$1; shift
	"$MCPSEC" key export "$@" --keys "$WORK/hub/keys.yaml" --out "$WORK/export" --passphrase-file "$WORK/pass" >/dev/null
	"$MCPSEC" key import "$WORK/export" --keys "$WORK/$to/keys.yaml" --passphrase-file "$WORK/pass" >/dev/null
}

# The hub's two policies towards one spoke: UDP to the spoke's port 5000 and from it to the
# hub's port 5001, each under its own SPI (spi, spi + 1) and the pair's keys.
pair_policies() {
	local tag=$1 hub=$2 spoke=$3 spi=$4
	local esp="esp: { integrity: hmac-sha256-128, integrity-key: ${tag}I, confidentiality: aes-cbc, confidentiality-key: ${tag}C }"
	cat <<EOF2
  - name: ${tag}OUT
    direction: out
    local: $hub
    remote: $spoke
    protocol: udp
    remote-ports: 5000
    action: protect
    spi: $spi
    $esp
  - name: ${tag}IN
    direction: in
    local: $hub
    remote: $spoke
    protocol: udp
    local-ports: 5001
    action: protect
    spi: $((spi + 1))
    $esp
EOF2
}

# Capture on one of the hub's links into $WORK/cap-DEV.pcap, until hub_cap_stop.
hub_cap_start() {
	rm -f "$WORK/cap-$1.pcap"
	ip netns exec "$NS_A" tcpdump -i "$1" --immediate-mode -U -n -w "$WORK/cap-$1.pcap" 2>/dev/null 3>&- &
	HCAP=$!
	for _ in $(seq 300); do [ -s "$WORK/cap-$1.pcap" ] && return 0; sleep 0.1; done
	return 1
}
hub_cap_stop() { sleep 1; kill "$HCAP" 2>/dev/null; wait "$HCAP" 2>/dev/null || true; }
spis_on() { tcpdump -nr "$WORK/cap-$1.pcap" esp 2>/dev/null | grep -o 'spi=0x[0-9a-f]*' | sort -u | tr '\n' ' '; }
hexspi() { printf 'spi=0x%08x' "$1"; }

@test "lab hub: each spoke's flows with the hub are ESP under its own pair's SPIs, both ways" {
	hub_cap_start eth0
	start_listener "$WORK/r1.out" in_a "$PY" "$NET" udp-recv 5001 5 20
	[ "$(in_b "$PY" "$NET" udp-burst "$H1" 5001 20 5)" = "sent 20 errors 0 " ]
	[ "$(listener_result "$WORK/r1.out")" = "got 20" ]
	start_listener "$WORK/r2.out" in_b "$PY" "$NET" udp-recv 5000 5 20
	[ "$(in_a "$PY" "$NET" udp-burst "$S1" 5000 20 5)" = "sent 20 errors 0 " ]
	[ "$(listener_result "$WORK/r2.out")" = "got 20" ]
	hub_cap_stop
	hub_cap_start eth1
	start_listener "$WORK/r3.out" in_a "$PY" "$NET" udp-recv 5001 5 20
	[ "$(in_c "$PY" "$NET" udp-burst "$H2" 5001 20 5)" = "sent 20 errors 0 " ]
	[ "$(listener_result "$WORK/r3.out")" = "got 20" ]
	start_listener "$WORK/r4.out" in_c "$PY" "$NET" udp-recv 5000 5 20
	[ "$(in_a "$PY" "$NET" udp-burst "$S2" 5000 20 5)" = "sent 20 errors 0 " ]
	[ "$(listener_result "$WORK/r4.out")" = "got 20" ]
	hub_cap_stop
	echo "# measured: spoke 1 link $(spis_on eth0); spoke 2 link $(spis_on eth1)" >&3
	# Each link carries its own pair's two SPIs, and nothing of the flows in clear.
	[ "$(spis_on eth0)" = "$(hexspi 30001) $(hexspi 30002) " ]
	[ "$(spis_on eth1)" = "$(hexspi 30011) $(hexspi 30012) " ]
	for dev in eth0 eth1; do
		[ "$(tcpdump -nr "$WORK/cap-$dev.pcap" 'udp port 5000 or udp port 5001' 2>/dev/null | wc -l)" -eq 0 ]
	done
	# Each spoke holds only its own pair's keys.
	"$MCPSEC" key list --keys "$WORK/s1/keys.yaml" >"$WORK/s1.keys"
	grep -q S1I "$WORK/s1.keys" && ! grep -q S2 "$WORK/s1.keys"
}

@test "lab hub: a spoke sending under the other spoke's SPI, without that pair's keys, is refused by the hub" {
	# Control: spoke 2's own datagrams to the hub arrive.
	start_listener "$WORK/r.out" in_a "$PY" "$NET" udp-recv 5001 5 10
	in_c "$PY" "$NET" udp-burst "$H2" 5001 10 5 >/dev/null
	[ "$(listener_result "$WORK/r.out")" = "got 10" ]
	# Spoke 2 now sends to the hub under spoke 1's SPI (30002, what the hub accepts from spoke 1)
	# with the keys it has: its own pair's. Its file is edited, checked and applied as usual.
	sed -i 's/spi: 30012$/spi: 30002/' "$WORK/s2/site.yaml"
	sed -i "s/$H2/$H1/g" "$WORK/s2/site.yaml"
	# The hub answers Neighbor Discovery only for eth1's own address: spoke 2 is told eth1's MAC.
	ip -n "$NS_C" route add "$H1/128" dev eth0
	ip -n "$NS_C" neigh add "$H1" lladdr "$(ip -n "$NS_A" -br link show eth1 | awk '{ print $3 }')" dev eth0
	quiet "$MCPSEC" --netns "$NS_C" --state-dir "$STATE-c" apply "$WORK/s2/site.yaml"
	before=$(xfrm_stat "$NS_A" XfrmInStateProtoError)
	hub_cap_start eth1
	start_listener "$WORK/r.out" in_a "$PY" "$NET" udp-recv 5001 5 10
	in_c "$PY" "$NET" udp-burst "$H1" 5001 10 5 >/dev/null
	[ "$(listener_result "$WORK/r.out")" = "got 0" ]
	hub_cap_stop
	echo "# measured: hub's XfrmInStateProtoError $before -> $(xfrm_stat "$NS_A" XfrmInStateProtoError)" >&3
	# It went out as ESP under spoke 1's SPI, and the hub's SA for it refused every packet.
	[ "$(tcpdump -nr "$WORK/cap-eth1.pcap" esp 2>/dev/null | grep -c "$(hexspi 30002)")" -ge 10 ]
	[ "$(xfrm_stat "$NS_A" XfrmInStateProtoError)" -ge $((before + 10)) ]
}
