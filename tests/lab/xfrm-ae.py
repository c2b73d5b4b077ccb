#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Test helper for the lab VM: moves an SA's counters the way only a long-running host would.

  xfrm-ae.py set-oseq SPI VALUE      the SA's outbound sequence number (XFRM_MSG_NEWAE,
                                     XFRMA_REPLAY_VAL), e.g. just below 2^32
  xfrm-ae.py set-bytes SPI VALUE     the SA's byte counter (XFRMA_LTIME_VAL)
  xfrm-ae.py strip-wrap SPI          re-installs the SA without XFRM_SA_XFLAG_OSEQ_MAY_WRAP, as a
                                     tool that never sets it would (the SA's keys go from the
                                     kernel's dump straight back to the kernel: never printed)
  xfrm-ae.py show SPI                oseq=N flags=N bytes=N (no key material)

Runs in the current network namespace (use ip netns exec). Exit 1 with the kernel's error.
"""
import os
import socket
import struct
import sys

NETLINK_XFRM = 6
XFRM_MSG_NEWSA, XFRM_MSG_DELSA, XFRM_MSG_GETSA, XFRM_MSG_NEWAE = 0x10, 0x11, 0x12, 0x1e
XFRMA_ALG_AUTH, XFRMA_ALG_CRYPT, XFRMA_REPLAY_VAL, XFRMA_LTIME_VAL = 1, 2, 10, 9
XFRMA_ALG_AEAD, XFRMA_ALG_AUTH_TRUNC, XFRMA_SA_EXTRA_FLAGS = 18, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP, NLM_F_REPLACE = 1, 4, 0x300, 0x100
NLM_F_CREATE, NLM_F_EXCL = 0x400, 0x200
NLMSG_ERROR, NLMSG_DONE = 2, 3
USERSA_INFO_LEN = 224  # struct xfrm_usersa_info on x86-64
KEEP = (XFRMA_ALG_AUTH, XFRMA_ALG_CRYPT, XFRMA_ALG_AEAD, XFRMA_ALG_AUTH_TRUNC)


def align(n):
    return (n + 3) & ~3


def attr(t, payload):
    return struct.pack("=HH", 4 + len(payload), t) + payload + b"\0" * (align(len(payload)) - len(payload))


def attrs_of(body):
    out, off = [], 0
    while off + 4 <= len(body):
        ln, t = struct.unpack_from("=HH", body, off)
        if ln < 4:
            break
        out.append((t & 0x3fff, body[off + 4:off + ln]))
        off += align(ln)
    return out


class Nl:
    def __init__(self):
        self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
        self.s.bind((0, 0))
        self.seq = 0

    def send(self, mtype, flags, body):
        self.seq += 1
        self.s.send(struct.pack("=IHHII", 16 + len(body), mtype, flags, self.seq, 0) + body)

    def replies(self):
        while True:
            data = self.s.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                ln, t, _, _, _ = struct.unpack_from("=IHHII", data, off)
                yield t, data[off + 16:off + ln]
                off += align(ln)

    def ack(self, what):
        for t, body in self.replies():
            if t == NLMSG_ERROR:
                err = -struct.unpack_from("=i", body)[0]
                if err:
                    sys.exit("%s: %s" % (what, os.strerror(err)))
                return

    def find(self, spi):
        self.send(XFRM_MSG_GETSA, NLM_F_REQUEST | NLM_F_DUMP, b"")
        found = None
        for t, body in self.replies():
            if t == NLMSG_DONE:
                break
            if t == XFRM_MSG_NEWSA:
                if struct.unpack_from("!I", body, 72)[0] == spi:  # id.spi
                    found = body
        if found is None:
            sys.exit("no SA with spi %d" % spi)
        return found


def sa_id(body):
    # struct xfrm_usersa_info (x86-64): sel 0-55, id (daddr 56, spi 72, proto 76), saddr 80,
    # lft 96, curlft 160 (bytes, packets, add_time, use_time), stats 192, seq 204, reqid 208,
    # family 212.
    daddr, spi, proto = body[56:72], body[72:76], body[76]
    saddr = body[80:96]
    reqid, family = struct.unpack_from("=IH", body, 208)
    return daddr, spi, proto, saddr, family, reqid


def newae(nl, body, attrs):
    daddr, spi, proto, saddr, family, reqid = sa_id(body)
    usersa_id = daddr + spi + struct.pack("=HB", family, proto) + b"\0"
    aevent = usersa_id + saddr + struct.pack("=II", 0, reqid)
    nl.send(XFRM_MSG_NEWAE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE, aevent + b"".join(attrs))
    nl.ack("NEWAE")


def main(a):
    nl = Nl()
    cmd, spi = a[0], int(a[1], 0)
    body = nl.find(spi)
    at = attrs_of(body[USERSA_INFO_LEN:])
    if cmd == "show":
        oseq = flags = 0
        for t, p in at:
            if t == XFRMA_REPLAY_VAL:
                oseq = struct.unpack_from("=I", p, 0)[0]
            if t == XFRMA_SA_EXTRA_FLAGS:
                flags = struct.unpack_from("=I", p, 0)[0]
        nbytes = struct.unpack_from("=Q", body, 160)[0]
        print("oseq=%d flags=%d bytes=%d" % (oseq, flags, nbytes))
    elif cmd == "set-oseq":
        newae(nl, body, [attr(XFRMA_REPLAY_VAL, struct.pack("=III", int(a[2], 0), 0, 0))])
    elif cmd == "set-bytes":
        packets = struct.unpack_from("=Q", body, 168)[0]
        newae(nl, body, [attr(XFRMA_LTIME_VAL, struct.pack("=QQQQ", int(a[2], 0), packets, 0, 0))])
    elif cmd == "strip-wrap":
        daddr, spi_b, proto, saddr, family, reqid = sa_id(body)
        nl.send(XFRM_MSG_DELSA, NLM_F_REQUEST | NLM_F_ACK, daddr + spi_b + struct.pack("=HB", family, proto) + b"\0")
        nl.ack("DELSA")
        kept = b"".join(attr(t, p) for t, p in at if t in KEEP)
        nl.send(XFRM_MSG_NEWSA, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body[:USERSA_INFO_LEN] + kept)
        nl.ack("NEWSA")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
