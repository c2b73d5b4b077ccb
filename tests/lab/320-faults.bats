#!/usr/bin/env bats
# The fault-injection sweep with real SAs (the kernel here has ESP/AH): a change of 30+ kernel
# operations that adds, replaces and removes SAs as well as policies, refused or killed at every
# SA operation in turn, and at the policy operations where a batch starts and ends (SWEEP=sa in
# sweep.bash). The host suite (250-faults) sweeps every policy operation, and mcpsecd's repair.
load helpers
load ../bats/sweep

# PROTECT policies P<i> to hosts fec0::1:<i>, with SPIs from $3, plus BYPASS/DISCARD ones on
# ports from $4.
gen_sa_site() {
	local from=$1 to=$2 spi=$3 port=$4 out=$5
	{
		printf 'ipsec:\n  default: ipv6-only\n  keys: %s\npolicies:\n' "$WORK/keys.yaml"
		for ((p = from; p <= to; p++)); do
			printf '  - name: P%d\n    direction: out\n    local: fec0::1\n    remote: fec0::1:%x\n    protocol: tcp\n' "$p" "$p"
			printf '    action: protect\n    spi: %d\n    esp: { integrity: hmac-sha256-128, integrity-key: I1, confidentiality: aes-cbc, confidentiality-key: C1 }\n' $((spi + p))
			printf '  - name: Q%d\n    direction: in\n    local: fec0::1\n    remote: fec0::1:%x\n    protocol: tcp\n' "$p" "$p"
			printf '    action: protect\n    spi: %d\n    ah: { integrity: hmac-sha1-96, key: A1 }\n' $((spi + 1000 + p))
			printf '  - name: B%d\n    direction: out\n    protocol: udp\n    remote-ports: %d\n    action: %s\n' "$p" $((port + p)) "$([ $((p % 2)) = 0 ] && echo discard || echo bypass)"
		done
		printf '  - name: REST\n    direction: out\n    action: bypass\n'
	} >"$out"
}

setup() {
	basic_setup
	one_ns
	ip -n "$NS_A" addr add fec0::1/64 dev lo nodad
	"$MCPSEC" key generate I1 --alg sha256 --keys "$WORK/keys.yaml" >/dev/null
	"$MCPSEC" key generate C1 --alg aes128 --keys "$WORK/keys.yaml" >/dev/null
	"$MCPSEC" key generate A1 --alg sha1 --keys "$WORK/keys.yaml" >/dev/null
	# P1-P3 kept (B1-B3 moved to other ports), P4-P6 re-keyed under new SPIs (SAs replaced),
	# P7-P8 added: 34 kernel operations.
	gen_sa_site 1 6 4096 2000 "$WORK/before.yaml"
	gen_sa_site 1 3 4096 2500 "$WORK/after.yaml.head"
	gen_sa_site 4 8 8192 2000 "$WORK/after.yaml.tail"
	{ sed '/^  - name: REST/,$d' "$WORK/after.yaml.head"; sed -n '/^policies:/,$p' "$WORK/after.yaml.tail" | sed 1d; } >"$WORK/after.yaml"
}

@test "lab faults: a refusal at every operation of a change with SAs restores kernel and state, exits 2 naming the object" {
	r=$(SWEEP=sa sweep_fail "$WORK/before.yaml" "$WORK/after.yaml")
	echo "# swept $r operations (every SA operation, and the policies' first and last)" >&3
	read -r swept _ total <<<"$r"
	[ "$total" -ge 30 ] && [ "$swept" -ge 10 ]
	# The change really adds and removes SAs, and the kernel holds the 12 of before.
	ops=$(mc_a apply --dry-run "$WORK/after.yaml" | grep '^operations')
	[[ "$ops" =~ SAs\ ([0-9]+)\ add.*\ ([0-9]+)\ delete ]]
	[ "${BASH_REMATCH[1]}" -ge 6 ] && [ "${BASH_REMATCH[2]}" -ge 4 ]
	[ "$(ip -n "$NS_A" xfrm state list | grep -c '^src')" -eq 12 ]
}

@test "lab faults: a kill at every operation of a change with SAs: apply converges to the new, enable to the committed" {
	r=$(SWEEP=sa sweep_kill "$WORK/before.yaml" "$WORK/after.yaml")
	echo "# swept $r operations (every SA operation, and the policies' first and last)" >&3
	read -r swept _ total <<<"$r"
	[ "$total" -ge 30 ] && [ "$swept" -ge 10 ]
}
