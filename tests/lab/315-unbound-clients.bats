#!/usr/bin/env bats
# Issue 26 on the wire: a TCP client that does not bind() is decided at local port 0, before
# its port is chosen, and over IPv6 the connection keeps that decision. A PROTECT whose local
# ports cover the whole ephemeral range has port 0 compiled in, so not one packet of such a
# client leaves in clear, bound or not. The capture check is shown failing once, on purpose:
# with A's ephemeral range moved outside the policy's ports, port 0 is no longer the policy's,
# and the first SYNs go out in clear.
load helpers

setup() {
	lab_setup
	pair_with_rest <<-EOF
	  - name: CLIENTOUT
	    direction: out
	    remote: $B_ADDR
	    protocol: tcp
	    local-ports: 1024-65535
	    remote-ports: 2323
	    action: protect
	    spi: 31001
	    esp:
	      integrity: hmac-sha256-128
	      integrity-key: PRODUCTIONKEY
	  - name: CLIENTIN
	    direction: in
	    remote: $B_ADDR
	    protocol: tcp
	    local-ports: 1024-65535
	    remote-ports: 2323
	    action: protect
	    spi: 31002
	    esp:
	      integrity: hmac-sha256-128
	      integrity-key: PRODUCTIONKEY
	EOF
}
teardown() { basic_teardown; }

# Connects from A to B's port 2323 (bound to BINDPORT unless 0) inside a capture; prints what
# the connect said. The capture is left in $WORK/cap.pcap.
client_captured() {
	capture_start
	serve_b 2323 1 10
	in_a "$PY" "$NET" connect "$B_ADDR" 2323 ${1:+"$1"} >"$WORK/connect.out"
	served 2323 >/dev/null
	capture_stop
	cat "$WORK/connect.out"
}

@test "lab unbound clients: a PROTECT over the whole ephemeral range: bound and unbound connects are ESP from the first SYN" {
	mc_a check "$SITE_A" >"$WORK/check.out" 2>&1
	run ! grep -q "unbound-client\|cover some of the ports" "$WORK/check.out"
	for bind in "" 40000; do
		[ "$(client_captured $bind)" = ok ]
		cap_text 'esp' | grep -q "ESP(spi=0x00007919"
		if cap_text 'tcp port 2323' | grep -q .; then
			echo "a packet of the ${bind:-unbound} client was in clear:" >&2
			cap_text 'tcp port 2323' >&2
			return 1
		fi
	done
}

@test "lab unbound clients: the capture check fails when port 0 is not the policy's (A's ephemeral range moved to 1000-60999)" {
	echo "1000 60999" | in_a tee /proc/sys/net/ipv4/ip_local_port_range >/dev/null
	mc_a apply "$SITE_A" >/dev/null # port 0 is no longer compiled in: 1000-60999 is not inside 1024-65535
	client_captured >/dev/null || true
	# The first SYN was decided at port 0: RESTOUT, in clear. B drops it (its inbound policy
	# wants ESP), so the client retries; in clear until the kernel looks again.
	cap_text 'tcp port 2323' | grep -q 'Flags \[S\]'
}
