# shellcheck shell=bash
# Shared by the benchmarks: the site they measure.

# A site of N outbound DISCARD policies to distinct hosts fec0::G:H (P0, P1, ...; each one
# kernel policy; G starts at $2, default 0), then one BYPASS (REST) for everything else.
discard_site() {
	local n=$1 g0=${2:-0} i
	printf 'ipsec:\n  default: ipv6-only\npolicies:\n'
	for ((i = 0; i < n; i++)); do
		printf '  - name: P%d\n    direction: out\n    remote: fec0::%x:%x\n    protocol: tcp\n    action: discard\n' \
			"$i" $((i / 65536 + g0)) $((i % 65536))
	done
	printf '  - name: REST\n    direction: out\n    action: bypass\n'
}

# A scratch directory ($work) and a namespace name ($ns), both gone when the benchmark exits.
bench_scratch() {
	work=$(mktemp -d)
	ns="mcbench-$$"
	trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT
}
