#!/usr/bin/env bash
# Wall time of the Ansible collection's pairs playbook on a fleet of 20 hosts (10 pairs of
# network namespaces, ansible_connection local, tests/ansible/fleet.py): the first run (keys
# generated, every host changed) and a run that changes nothing, for batches of SERIAL hosts.
#   bench/ansible-fleet.sh [SERIAL...]      (default: 4 20; needs root)
# Uses the release binary ./mcpsec (make mcpsec), not the sanitized one the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/ansible-fleet.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x ./mcpsec ] || make -s mcpsec
serials=("$@")
[ ${#serials[@]} -gt 0 ] || serials=(4 20)
export MCPSEC="$PWD/mcpsec"
echo "machine: $(nproc) cores, $(uname -r), ansible-core $(ansible --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p')"
for serial in "${serials[@]}"; do
	dir=$(mktemp -d)
	prefix="mcb-$$-$serial"
	/usr/bin/python3 tests/ansible/fleet.py up "$dir" "$prefix" 10 >/dev/null
	export ANSIBLE_CONFIG="$dir/ansible.cfg"
	for run in first no-change; do
		start=$(date +%s.%N)
		(cd "$dir" && ansible-playbook mcpsec.ipsec.pairs -e "mcpsec_serial=$serial") >"$dir/$run.log" 2>&1 ||
			{ tail -20 "$dir/$run.log"; exit 1; }
		end=$(date +%s.%N)
		changed=$(awk '$2 == ":" && $1 ~ /^h[0-9]+$/ { for (i = 3; i <= NF; i++) if ($i ~ /^changed=[1-9]/) n++ } END { print n + 0 }' "$dir/$run.log")
		printf '20 hosts, serial %2d, %-9s run: %6.1f s (%d hosts changed)\n' "$serial" "$run" \
			"$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$changed"
	done
	/usr/bin/python3 tests/ansible/fleet.py down "$prefix" 10
	rm -rf "$dir"
done
