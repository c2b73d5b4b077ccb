#!/usr/bin/python3
"""Independent check of captured ESP/AH packets with scapy's own IPsec implementation.

  ipsec-verify.py PCAP KEYS.yaml SPEC...
  SPEC = SPI:PROTO:INTEG[:INTEG_KEY]:CONF[:CONF_KEY]   e.g. 0x6001:esp:sha256:FTPAUTH:aes:FTPKEY
         INTEG/CONF "none" when absent; key names refer to KEYS.yaml

For every captured packet of a listed SPI it verifies the ICV (when there is integrity) and
decrypts (when there is confidentiality) with the keys from the key file, then counts the
packets that verified and those that carry the payload marker. Prints one line per SPI:
  spi 0x6001 esp packets 5 verified 5 marker 1
and exits 1 if any packet failed verification.
"""
import sys, yaml
from scapy.all import rdpcap, IPv6, IP
from scapy.layers.ipsec import SecurityAssociation, ESP, AH

INTEG = {"sha1": "HMAC-SHA1-96", "sha256": "SHA2-256-128", "sha512": "SHA2-512-256", "none": None}
CONF = {"aes": "AES-CBC", "tdes": "3DES", "none": "NULL"}

def key_bytes(keys, name):
    k = keys[name]
    if "hex" in k:
        h = k["hex"].lower().replace("0x", "").replace(":", "").replace(" ", "")
        return bytes.fromhex(h)
    return k["ascii"].encode()

def main():
    pcap, keyfile, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    keys = yaml.safe_load(open(keyfile))["keys"]
    pkts = rdpcap(pcap)
    bad = 0
    for spec in specs:
        f = spec.split(":")
        spi, proto = int(f[0], 0), f[1]
        rest = f[2:]
        integ = rest.pop(0)
        ikey = key_bytes(keys, rest.pop(0)) if integ != "none" else None
        conf = rest.pop(0) if rest else "none"
        ckey = key_bytes(keys, rest.pop(0)) if conf != "none" else None
        if proto == "esp":
            sa = SecurityAssociation(ESP, spi=spi, crypt_algo=CONF[conf], crypt_key=ckey,
                                     auth_algo=INTEG[integ], auth_key=ikey)
        else:
            sa = SecurityAssociation(AH, spi=spi, auth_algo=INTEG[integ], auth_key=ikey)
        n = ok = marker = 0
        for p in pkts:
            ip = p[IPv6] if IPv6 in p else (p[IP] if IP in p else None)
            if ip is None:
                continue
            layer = ESP if proto == "esp" else AH
            if layer not in ip or ip[layer].spi != spi:
                continue
            n += 1
            try:
                clear = sa.decrypt(ip.copy())
                ok += 1
                marker += b"mcpsec-" in bytes(clear)
            except Exception as e:  # ICV mismatch or bad padding
                print(f"# spi {spi:#x}: packet failed: {e}")
                bad += 1
        print(f"spi {spi:#x} {proto} packets {n} verified {ok} marker {marker}")
    sys.exit(1 if bad else 0)

main()
