#!/usr/bin/python3
"""Records real kernel netlink messages as fuzz_netlink seeds: the policy dump of a namespace
that mcpsec configured, and the XFRM events (policy add/delete/flush, ACQUIRE) seen while it
happens. Run as root: record-netlink.py NETNS OUTDIR [events SECONDS]. Each file is one message behind the
selector byte fuzz_netlink reads (0 event, 2 policy dump)."""
import os
import socket
import struct
import sys

NETLINK_XFRM = 6
XFRM_MSG_GETPOLICY = 0x15
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_DONE = 3


def messages(data):
    off = 0
    while off + 16 <= len(data):
        ln, typ = struct.unpack_from("=IH", data, off)
        if ln < 16 or off + ln > len(data):
            break
        yield typ, data[off:off + ln]
        off += (ln + 3) & ~3


def main():
    ns, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if ns != "-":  # run inside the namespace: ip netns exec NS record-netlink.py - OUTDIR
        os.execvp("ip", ["ip", "netns", "exec", ns, "/usr/bin/python3", sys.argv[0], "-"] + sys.argv[2:])
    # Events first: the caller changes the namespace while we listen.
    if len(sys.argv) > 3 and sys.argv[3] == "events":
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
        groups = (1 << (1 - 1)) | (1 << (3 - 1)) | (1 << (2 - 1)) | (1 << (4 - 1))
        s.bind((0, groups))
        s.settimeout(float(sys.argv[4]) if len(sys.argv) > 4 else 3.0)
        print("ready", flush=True)
        n = 0
        try:
            while True:
                for typ, m in messages(s.recv(1 << 16)):
                    with open(f"{out}/event-{typ}-{n}.bin", "wb") as f:
                        f.write(b"\x00" + m)
                    n += 1
        except socket.timeout:
            pass
        print(f"{n} events")
        return
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
    s.sendmsg([struct.pack("=IHHII", 16, XFRM_MSG_GETPOLICY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)])
    n = 0
    done = False
    while not done:
        for typ, m in messages(s.recv(1 << 16)):
            if typ == NLMSG_DONE:
                done = True
                break
            if n < 24:  # a handful is enough: the fuzzer mutates them
                with open(f"{out}/policy-{n}.bin", "wb") as f:
                    f.write(b"\x02" + m)
            n += 1
    print(f"{n} policies")


main()
