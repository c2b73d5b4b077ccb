# shellcheck shell=bash
# netns-lab/lib.sh: build labs of N hosts as network namespaces joined by veth pairs.
# Source it; every function works on names given to it, so several labs can coexist.
#
#   lab_host NS                          create namespace NS with loopback up
#   lab_link NS1 ADDRS1 NS2 ADDRS2       veth pair between them, "eth-<peer>" on each side,
#                                        ADDRS: space-separated CIDRs (v6 get nodad)
#   lab_destroy NS...                    kill what runs in them and delete them (idempotent)
#   lab_has_esp                          0 when this kernel can install an ESP SA
#
# The default two-host lab (netns-lab/lab up) uses the MCP documentation's addresses.
LAB_A_ADDR6=fec0::2222:a00:bff:fe3a:100
LAB_B_ADDR6=fec0::2222:a00:bff:fe3a:127
LAB_A_ADDR4=192.0.2.100
LAB_B_ADDR4=192.0.2.127

lab_host() {
	ip netns add "$1" && ip -n "$1" link set lo up
}

lab_link() {
	local n1=$1 a1=$2 n2=$3 a2=$4 tmp1 tmp2 a
	# veth names are global while both ends are created: use unique temporary names.
	tmp1="lv$$${RANDOM}a"
	tmp2="lv$$${RANDOM}b"
	ip link add "${tmp1:0:15}" netns "$n1" type veth peer name "${tmp2:0:15}" netns "$n2"
	ip -n "$n1" link set "${tmp1:0:15}" name "eth-${n2: -1}"
	ip -n "$n2" link set "${tmp2:0:15}" name "eth-${n1: -1}"
	for a in $a1; do
		if [[ $a == *:* ]]; then ip -n "$n1" addr add "$a" dev "eth-${n2: -1}" nodad
		else ip -n "$n1" addr add "$a" dev "eth-${n2: -1}"; fi
	done
	for a in $a2; do
		if [[ $a == *:* ]]; then ip -n "$n2" addr add "$a" dev "eth-${n1: -1}" nodad
		else ip -n "$n2" addr add "$a" dev "eth-${n1: -1}"; fi
	done
	ip -n "$n1" link set "eth-${n2: -1}" up
	ip -n "$n2" link set "eth-${n1: -1}" up
}

lab_destroy() {
	local ns
	for ns in "$@"; do
		[ -e "/run/netns/$ns" ] || continue
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

lab_has_esp() {
	local ns="mclab-probe-$$" rc
	ip netns add "$ns" 2>/dev/null || return 1
	ip -n "$ns" xfrm state add src ::1 dst ::1 proto esp spi 0x100 mode transport \
		enc 'cbc(aes)' 0x00112233445566778899aabbccddeeff >/dev/null 2>&1
	rc=$?
	ip netns del "$ns"
	return $rc
}

# The two-host lab: PREFIX-A and PREFIX-B.
lab_two_hosts() {
	local p=$1
	lab_host "$p-A" && lab_host "$p-B" &&
		lab_link "$p-A" "$LAB_A_ADDR6/64 $LAB_A_ADDR4/24" "$p-B" "$LAB_B_ADDR6/64 $LAB_B_ADDR4/24"
}
