#!/usr/bin/python3
"""Writes a two-host configuration that uses every algorithm once, one TCP port per combination.

  gen-algorithms.py DIR [wrong-key NAME]
Creates DIR/a/site.yaml, DIR/b/site.yaml and the same DIR/{a,b}/keys.yaml (mode 0600); with
"wrong-key NAME", B's copy of key NAME differs in its last byte. Prints one line per combination:
  PORT PROTO INTEG CONF SPI_A_TO_B SPI_B_TO_A INTEG_KEY CONF_KEY
"""
import os, sys

A, B = "fec0::2222:a00:bff:fe3a:100", "fec0::2222:a00:bff:fe3a:127"
KEYS = {
    "K_SHA1": ("sha1", 20), "K_SHA256": ("sha256", 32), "K_SHA512": ("sha512", 64),
    "K_AES128": ("aes", 16), "K_AES256": ("aes", 32), "K_TDES": ("tdes", 24),
}
COMBOS = [  # proto, integrity, confidentiality
    ("ah", "hmac-sha1-96", None), ("ah", "hmac-sha256-128", None), ("ah", "hmac-sha512-256", None),
    ("esp", "hmac-sha256-128", None), ("esp", None, "aes128"), ("esp", "hmac-sha512-256", "aes256"),
    ("esp", "hmac-sha1-96", "tdes"), ("esp", "hmac-sha256-128", "aes128"),
]
IKEY = {"hmac-sha1-96": "K_SHA1", "hmac-sha256-128": "K_SHA256", "hmac-sha512-256": "K_SHA512"}
CKEY = {"aes128": ("aes-cbc", "K_AES128"), "aes256": ("aes-cbc", "K_AES256"), "tdes": ("tdes-cbc", "K_TDES")}

def key_hex(name, wrong):
    kind, n = KEYS[name]
    b = bytes((i * 7 + len(name) * 13 + 1) % 256 for i in range(n))
    if wrong:
        b = b[:-1] + bytes([b[-1] ^ 0xff])
    return "0x" + b.hex()

def policy(name, direction, remote, lport, rport, proto, integ, conf, spi):
    s = f"  - name: {name}\n    direction: {direction}\n    remote: {remote}\n    protocol: tcp\n"
    if lport: s += f"    local-ports: {lport}\n"
    if rport: s += f"    remote-ports: {rport}\n"
    s += f"    action: protect\n    spi: {spi}\n"
    if proto == "ah":
        s += f"    ah: {{ integrity: {integ}, key: {IKEY[integ]} }}\n"
    else:
        s += "    esp:\n"
        if integ: s += f"      integrity: {integ}\n      integrity-key: {IKEY[integ]}\n"
        if conf: s += f"      confidentiality: {CKEY[conf][0]}\n      confidentiality-key: {CKEY[conf][1]}\n"
    return s

def main():
    d = sys.argv[1]
    wrong = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "wrong-key" else None
    pa = pb = ""
    for i, (proto, integ, conf) in enumerate(COMBOS):
        port, s_ab, s_ba = 5001 + i, 0x1000 + 2 * i, 0x1001 + 2 * i
        pa += policy(f"OUT{port}", "out", B, None, port, proto, integ, conf, s_ab)
        pa += policy(f"IN{port}", "in", B, None, port, proto, integ, conf, s_ba)
        pb += policy(f"OUT{port}", "out", A, port, None, proto, integ, conf, s_ba)
        pb += policy(f"IN{port}", "in", A, port, None, proto, integ, conf, s_ab)
        print(port, proto, integ or "none", conf or "none", hex(s_ab), hex(s_ba),
              IKEY.get(integ, "-"), CKEY[conf][1] if conf else "-")
    tail = "  - name: RESTOUT\n    direction: out\n    action: bypass\n  - name: RESTIN\n    direction: in\n    action: bypass\n"
    for host, pols in (("a", pa), ("b", pb)):
        os.makedirs(f"{d}/{host}", exist_ok=True)
        with open(f"{d}/{host}/site.yaml", "w") as f:
            f.write("ipsec:\n  default: ipv6-only\n  keys: keys.yaml\npolicies:\n" + pols + tail)
        with open(f"{d}/{host}/keys.yaml", "w") as f:
            f.write("# TEST KEYS\nkeys:\n")
            for name, (kind, n) in KEYS.items():
                f.write(f"  {name}: {{ algorithm: {kind}, hex: \"{key_hex(name, host == 'b' and name == wrong)}\" }}\n")
        os.chmod(f"{d}/{host}/keys.yaml", 0o600)

main()
