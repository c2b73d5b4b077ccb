#!/usr/bin/python3
"""Tiny traffic probes for the bats suites. Each prints one word: what happened.

  net.py connect ADDR PORT [SRCPORT]   -> ok | EPERM | refused | timeout | error:<errno>
  net.py serve PORT [COUNT] [SECONDS]  -> prints "ready" once listening, accepts up to COUNT TCP
                                          connections, then prints got N
  net.py connect-many ADDR PORT N      -> N connections one after the other; prints ok K (K succeeded)
  net.py udp-send ADDR PORT [SRCPORT]  -> ok | EPERM | error:<errno>
  net.py udp-burst ADDR PORT COUNT [GAP_MS] -> sent N errors E [first error]
  net.py udp-flood ADDR N PER_SECOND    -> N datagrams, each its own flow (two unbound sockets, to
                                          ports 10000-59999 in turn), at most PER_SECOND a second;
                                          sent N errors E
  net.py udp-stream ADDR PORT STOPFILE [GAP_MS] -> numbered datagrams until STOPFILE exists;
                                          sent N errors E [first error]
  net.py udp-seq-recv PORT IDLE        -> ready; counts numbered datagrams until IDLE seconds pass
                                          without one: got N unique U max M (M + 1 were sent)
  net.py tcp-stream ADDR PORT STOPFILE -> one TCP connection, 1 KiB writes until STOPFILE: sent N
  net.py tcp-sink PORT SECONDS         -> ready; one connection's bytes: got N | reset | none
  net.py udp-recv PORT SECONDS [MAX]   -> ready, then got N (datagrams received; stops at MAX)
  net.py raw-send ADDR PROTO [PAYLOAD] -> ok | EPERM | error:<errno> (PAYLOAD "" sends a bare header)
  net.py eth-mark IFACE TOKEN          -> ok: one Ethernet frame of type 0x88b5 (local
                                          experimental) carrying TOKEN out of IFACE, below IP and
                                          so below XFRM: a capture's end marker
  net.py raw-recv PROTO SECONDS [MAX]  -> ready, then got N (marker packets of that next header)
  net.py echo-serve PORT SECONDS       -> ready; echoes every line of every TCP connection
  net.py hold-serve PORT SECONDS       -> ready; accepts TCP connections and keeps them open,
                                          never closing its side (a peer that half-closes leaves
                                          this host's socket in CLOSE-WAIT)
  net.py half-close ADDR PORT SECONDS  -> connected: one TCP connection, one line sent, then its
                                          sending side shut (FIN); held open SECONDS
  net.py hold ADDR PORT SECONDS        -> a held "management" connection: sends a numbered line
                                          every 0.2 s and prints "echo N" for each echo that comes
                                          back (flushed), "connected" first, "closed" at the end
  net.py client-flows                 -> reads "KIND FAMILY ADDR PORT BINDPORT" lines on stdin
                                          (KIND tcp: connect; udp: sendto; udpc: connected UDP;
                                          FAMILY v4 | v6 | dual, dual being an IPv6 socket to the
                                          IPv4-mapped ADDR; BINDPORT 0: no bind()); prints
                                          "EPERM LPORT" or "pass LPORT" per line, LPORT the local
                                          port the socket had (0: none was chosen)
Only ever used inside the project's own network namespaces.
"""
import errno, os, socket, sys, time

def family(addr):
    return socket.AF_INET6 if ':' in addr else socket.AF_INET

def listen_dual(port):
    """A TCP listener on port for IPv6 and IPv4 (mapped)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(64)
    return s

def outcome(e):
    if e.errno == errno.EPERM:
        return "EPERM"
    if e.errno == errno.ECONNREFUSED:
        return "refused"
    return "error:%s" % errno.errorcode.get(e.errno, e.errno)

def udp_listen(port, timeout):
    """A dual-stack UDP socket on port, bound, with a receive timeout; says "ready"."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.settimeout(timeout)
    print("ready", flush=True)
    return s

def udp_numbered(addr, port, gap, more):
    """Numbered datagrams while more(i); prints sent N errors E [the first error]."""
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    sent, errors, first, i = 0, 0, "", 0
    while more(i):
        try:
            s.sendto(b"mcpsec-marker %d\n" % i, (addr, port))
            sent += 1
        except OSError as e:
            errors += 1
            first = first or outcome(e)
        i += 1
        time.sleep(gap)
    print("sent %d errors %d %s" % (sent, errors, first))

def client_flow(kind, fam, addr, port, bindport):
    """One client the way applications make them; the kernel's verdict and the port it had."""
    f = socket.AF_INET if fam == "v4" else socket.AF_INET6
    if fam == "dual":
        addr = "::ffff:" + addr
    s = socket.socket(f, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(3)
    if bindport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0" if f == socket.AF_INET else "::", bindport))
    verdict = "pass"
    try:
        if kind == "tcp":
            # The policy decides inside connect() (EPERM at once); the port, once picked, is
            # read before the peer answers (a refused connection gives its port back).
            s.setblocking(False)
            e = s.connect_ex((addr, port))
            if e == errno.EPERM:
                raise PermissionError(e, "EPERM")
            if e not in (0, errno.EINPROGRESS):
                raise OSError(e, os.strerror(e))
        elif kind == "udpc":
            s.connect((addr, port))
            s.send(b"mcpsec-marker\n")
        else:
            s.sendto(b"mcpsec-marker\n", (addr, port))
    except PermissionError:
        verdict = "EPERM"
    except (ConnectionRefusedError, socket.timeout):
        pass  # sent: the peer refused, or did not answer
    lport = s.getsockname()[1]
    s.close()
    return "%s %d" % (verdict, lport)

def main(a):
    cmd = a[0]
    if cmd == "client-flows":
        for line in sys.stdin:
            k, fam, addr, port, bindport = line.split()
            print(client_flow(k, fam, addr, int(port), int(bindport)), flush=True)
        return
    if cmd == "connect":
        s = socket.socket(family(a[1]), socket.SOCK_STREAM)
        s.settimeout(3)
        if len(a) > 3:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if family(a[1]) == socket.AF_INET6 else "0.0.0.0", int(a[3])))
        try:
            s.connect((a[1], int(a[2])))
            s.sendall(b"mcpsec-marker\n")
            print("ok")
        except socket.timeout:
            print("timeout")
        except OSError as e:
            print(outcome(e))
    elif cmd == "connect-many":
        ok = 0
        for _ in range(int(a[3])):
            s = socket.socket(family(a[1]), socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect((a[1], int(a[2])))
                s.sendall(b"mcpsec-marker\n")
                ok += 1
            except OSError:
                pass
            s.close()
        print("ok %d" % ok)
    elif cmd == "serve":
        s = listen_dual(int(a[1]))
        print("ready", flush=True)
        s.settimeout(float(a[3]) if len(a) > 3 else 20)
        n = 0
        try:
            for _ in range(int(a[2]) if len(a) > 2 else 1):
                c, _ = s.accept()
                c.close()
                n += 1
        except socket.timeout:
            pass
        print("got %d" % n)
    elif cmd == "udp-send":
        s = socket.socket(family(a[1]), socket.SOCK_DGRAM)
        if len(a) > 3:
            s.bind(("::" if family(a[1]) == socket.AF_INET6 else "0.0.0.0", int(a[3])))
        try:
            for _ in range(3):
                s.sendto(b"mcpsec-marker\n", (a[1], int(a[2])))
            print("ok")
        except OSError as e:
            print(outcome(e))
    elif cmd == "udp-burst":
        # COUNT datagrams, GAP_MS apart (default 1).
        count = int(a[3])
        udp_numbered(a[1], int(a[2]), float(a[4]) / 1000 if len(a) > 4 else 0.001, lambda i: i < count)
    elif cmd == "udp-flood":
        socks = [socket.socket(family(a[1]), socket.SOCK_DGRAM) for _ in range(2)]
        n, rate, sent, errors = int(a[2]), int(a[3]), 0, 0
        start = time.monotonic()
        for i in range(n):
            if i and i % rate == 0:
                time.sleep(max(0, start + i / rate - time.monotonic()))
            try:
                socks[i // 50000 % 2].sendto(b"f", (a[1], 10000 + i % 50000))
                sent += 1
            except OSError:
                errors += 1
        print("sent %d errors %d" % (sent, errors))
    elif cmd == "udp-stream":
        udp_numbered(a[1], int(a[2]), float(a[4]) / 1000 if len(a) > 4 else 0.005,
                     lambda i: not os.path.exists(a[3]))
    elif cmd == "udp-seq-recv":
        s = udp_listen(int(a[1]), float(a[2]))
        seen, n, most = set(), 0, -1
        try:
            while True:
                d, _ = s.recvfrom(2048)
                n += 1
                k = int(d.split()[1])
                seen.add(k)
                most = max(most, k)
        except socket.timeout:
            pass
        print("got %d unique %d max %d" % (n, len(seen), most))
    elif cmd == "tcp-stream":
        s = socket.socket(family(a[1]), socket.SOCK_STREAM)
        s.settimeout(30)
        sent = 0
        try:
            s.connect((a[1], int(a[2])))
            chunk = b"mcpsec-marker " + b"x" * 1009 + b"\n"  # 1 KiB
            while not os.path.exists(a[3]):
                s.sendall(chunk)
                sent += len(chunk)
                time.sleep(0.01)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
            print("sent %d" % sent)
        except OSError as e:
            print(outcome(e))
    elif cmd == "tcp-sink":
        s = listen_dual(int(a[1]))
        print("ready", flush=True)
        s.settimeout(float(a[2]))
        try:
            c, _ = s.accept()
            c.settimeout(float(a[2]))
            n = 0
            while True:
                d = c.recv(65536)
                if not d:
                    break
                n += len(d)
            c.close()
            print("got %d" % n)
        except ConnectionResetError:
            print("reset")
        except socket.timeout:
            print("none")
    elif cmd == "udp-recv":
        s = udp_listen(int(a[1]), float(a[2]))
        n, most = 0, int(a[3]) if len(a) > 3 else 1 << 30
        try:
            while n < most:
                s.recvfrom(2048)
                n += 1
        except socket.timeout:
            pass
        print("got %d" % n)
    elif cmd == "raw-send":
        s = socket.socket(family(a[1]), socket.SOCK_RAW, int(a[2]))
        try:
            s.sendto(a[3].encode() if len(a) > 3 else b"mcpsec-bna-marker", (a[1], 0))
            print("ok")
        except OSError as e:
            print(outcome(e))
    elif cmd == "eth-mark":
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((a[1], 0))
        mac = s.getsockname()[4]
        s.send(b"\xff" * 6 + mac + b"\x88\xb5" + b"mcpsec-capture-end " + a[2].encode())
        print("ok")
    elif cmd == "raw-recv":
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, int(a[1]))
        s.settimeout(float(a[2]))
        print("ready", flush=True)
        n, most = 0, int(a[3]) if len(a) > 3 else 1 << 30
        try:
            while n < most:
                data = s.recv(2048)
                n += b"mcpsec-bna-marker" in data
        except socket.timeout:
            pass
        print("got %d" % n)
    elif cmd == "echo-serve":
        import selectors
        s = listen_dual(int(a[1]))
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ)
        print("ready", flush=True)
        end = time.time() + float(a[2])
        while time.time() < end:
            for key, _ in sel.select(0.2):
                if key.fileobj is s:
                    c, _ = s.accept()
                    sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                try:
                    key.fileobj.sendall(data)
                except OSError:
                    pass
    elif cmd == "hold-serve":
        s = listen_dual(int(a[1]))
        s.settimeout(0.2)
        print("ready", flush=True)
        end, held = time.time() + float(a[2]), []
        while time.time() < end:
            try:
                c, _ = s.accept()
                held.append(c)
            except socket.timeout:
                pass
    elif cmd == "half-close":
        s = socket.socket(family(a[1]), socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((a[1], int(a[2])))
        s.sendall(b"1\n")
        s.shutdown(socket.SHUT_WR)
        print("connected", flush=True)
        time.sleep(float(a[3]))
    elif cmd == "hold":
        s = socket.socket(family(a[1]), socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((a[1], int(a[2])))
        s.setblocking(False)
        print("connected", flush=True)
        end, n, buf = time.time() + float(a[3]), 0, b""
        while time.time() < end:
            n += 1
            try:
                s.send(b"%d\n" % n)
            except OSError:
                pass
            time.sleep(0.2)
            try:
                buf += s.recv(65536)
            except BlockingIOError:
                pass
            except OSError as e:
                print("error " + outcome(e), flush=True)
                break
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                print("echo %s" % line.decode(), flush=True)
        print("closed", flush=True)
    else:
        sys.exit("unknown command " + cmd)

if __name__ == "__main__":
    main(sys.argv[1:])
