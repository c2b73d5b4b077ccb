#!/usr/bin/python3
"""Keeps schema/*.schema.json and the C parser (lib/conf.c) in step.

1. The keys each YAML mapping accepts in lib/conf.c equal the schema's properties.
2. Every example and good fixture validates against the schema (and the C parser accepts it:
   checked by the bats caller with `mcpsec check`), and so does what `mcpsec import` and
   `mcpsec mirror` write.
3. Bad fixtures whose errors are shape errors fail the schema too.
Prints TAP.
"""
import json, os, re, subprocess, sys, glob, yaml, jsonschema

root = sys.argv[1] if len(sys.argv) > 1 else "."
site = json.load(open(f"{root}/schema/site.schema.json"))
keys = json.load(open(f"{root}/schema/keys.schema.json"))
suite = json.load(open(f"{root}/schema/tests.schema.json"))
src = open(f"{root}/lib/conf.c").read()
n = 0
failed = 0

def ok(cond, msg):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print(("ok" if cond else "not ok"), n, "-", msg)

def c_keys(func):
    """The NULL-terminated key table declared inside a C function."""
    body = src[src.index(func):]
    body = body[:body.index("\n}\n")]  # that function only
    m = re.search(r"keys\[\]\s*=\s*\{(.*?)NULL\s*\}", body, re.S) or re.search(r"top\[\]\s*=\s*\{(.*?)NULL\s*\}", body, re.S)
    return set(re.findall(r'"([^"]+)"', m.group(1)))

pol = site["definitions"]["policy"]["properties"]
pairs = [
    ("parse_policy(", set(pol)),
    ("parse_ipsec(", set(site["properties"]["ipsec"]["properties"])),
    ("parse_ah(", set(pol["ah"]["properties"])),
    ("parse_esp(", set(pol["esp"]["properties"])),
    ("parse_next(", set(pol["next"]["properties"])),
    ("parse_lifetime(", set(pol["lifetime"]["properties"])),
    ("parse_limit(", set(site["definitions"]["limit"]["oneOf"][1]["properties"])),
    ("parse_site_text(", set(site["properties"])),
    ("parse_key(", set(keys["properties"]["keys"]["additionalProperties"]["properties"])),
    ("parse_suite_test(", set(suite["definitions"]["test"]["properties"])),
]
for func, schema_keys in pairs:
    ck = c_keys(func)
    ok(ck == schema_keys, f"{func.strip('(')}: C keys {sorted(ck)} == schema keys {sorted(schema_keys)}")
# A suite's expectations: the second key table of parse_suite_test.
body = src[src.index("parse_suite_test("):]
ek = set(re.findall(r'"([^"]+)"', re.search(r"ekeys\[\]\s*=\s*\{(.*?)NULL\s*\}", body, re.S).group(1)))
ok(ek == set(suite["definitions"]["expect"]["properties"]),
   f"suite expectations: C keys {sorted(ek)} == schema keys {sorted(suite['definitions']['expect']['properties'])}")
# MCP's spellings pass the schema as they pass the parser (tests/bats/280-mcp.bats checks the parser).
for where, value in ((site["properties"]["ipsec"]["properties"]["default"], ["IPv6Only", "DENYALL", "Deny", "bypass"]),
                     (site["definitions"]["integrity"], ["HMAC_SHA1_96", "HMAC-SHA-256", "hmac-sha512"]),
                     (site["definitions"]["confidentiality"], ["AES_CBC", "TDES", "aes"]),
                     (keys["properties"]["keys"]["additionalProperties"]["properties"]["algorithm"], ["SHA-1", "AES", "TDES", "aes128"])):
    for v in value:
        ok(not list(jsonschema.Draft7Validator(where).iter_errors(v)), f"the schema accepts MCP's spelling {v!r}")
pp = site["definitions"]["policy"]["properties"]
for where, value in ((pp["direction"], ["IN", "OUTBOUND", "inbound", "out"]), (pp["action"], ["BYPASS", "Protect", "discard"]),
                     (pp["protocol"], ["ICMPv6", "BIP", "tcp", 58])):
    for v in value:
        ok(not list(jsonschema.Draft7Validator(where).iter_errors(v)), f"the schema accepts MCP's spelling {v!r}")
# An upper-case PROTECT still needs its spi and SA (the schema's if/then follows the spelling).
doc = {"policies": [{"name": "P", "direction": "OUT", "action": "PROTECT", "remote": "fec0::2"}]}
ok(list(jsonschema.Draft7Validator(site).iter_errors(doc)), "a PROTECT policy without spi fails the schema in any case")
for where, v in ((site["properties"]["ipsec"]["properties"]["default"], "sometimes"), (pp["direction"], "sideways"),
                 (pp["action"], "allow"),
                 (site["definitions"]["integrity"], "hmac-md5"), (site["definitions"]["confidentiality"], "aes-gcm")):
    ok(list(jsonschema.Draft7Validator(where).iter_errors(v)), f"the schema refuses {v!r}")

# Enum values: the algorithm names in lib/algo.c's two tables (the only lists of them) equal the
# schemas' enums, so that a new algorithm cannot be added to one and forgotten in the other.
algo = open(f"{root}/lib/algo.c").read()
c_algs = re.findall(r'\{\s*"([^"]+)",\s*MC_ALG_(INTEGRITY|CONFIDENTIALITY)', algo)
for kind, schema_enum in (("INTEGRITY", site["definitions"]["integrity"]["anyOf"][0]["enum"]),
                          ("CONFIDENTIALITY", site["definitions"]["confidentiality"]["anyOf"][0]["enum"])):
    names = [n for n, k in c_algs if k == kind]
    ok(names == schema_enum, f"{kind.lower()} algorithms: C {names} == schema enum {schema_enum}")
keytab = algo[algo.index("keyalgs[] = {"):]
keytab = keytab[:keytab.index("};")]
c_types = list(dict.fromkeys(re.findall(r'\{\s*"[^"]+",\s*"([^"]+)",\s*\d+', keytab)))
k_enum = keys["properties"]["keys"]["additionalProperties"]["properties"]["algorithm"]["anyOf"][0]["enum"]
ok(c_types == k_enum, f"key algorithms: C {c_types} == keys.schema enum {k_enum}")
ok(len(c_algs) >= 5 and len(c_types) >= 5, "the C tables were found and read")

for f in sorted(glob.glob(f"{root}/examples/*/site.yaml")) + sorted(glob.glob(f"{root}/tests/bats/fixtures/*.yaml")) + \
        sorted(glob.glob(f"{root}/tests/unit/fixtures/good/*.yaml")):
    errs = list(jsonschema.Draft7Validator(site).iter_errors(yaml.safe_load(open(f))))
    ok(not errs, f"{f[len(root)+1:]} validates against site.schema.json" + ("" if not errs else ": " + errs[0].message))
for f in sorted(glob.glob(f"{root}/examples/*/tests.yaml")):
    errs = list(jsonschema.Draft7Validator(suite).iter_errors(yaml.safe_load(open(f))))
    ok(not errs, f"{f[len(root)+1:]} validates against tests.schema.json" + ("" if not errs else ": " + errs[0].message))
for f in sorted(glob.glob(f"{root}/examples/*/keys.yaml")):
    errs = list(jsonschema.Draft7Validator(keys).iter_errors(yaml.safe_load(open(f))))
    ok(not errs, f"{f[len(root)+1:]} validates against keys.schema.json")

# What mcpsec itself writes must be valid input too.
binary = next((b for b in (f"{root}/build/san/mcpsec", f"{root}/mcpsec") if os.access(b, os.X_OK)), None)
ok(binary is not None, "an mcpsec binary is built (build/san/mcpsec or ./mcpsec)")
if binary:
    written = {
        "import of examples/mcp-listing/policies.txt": [binary, "import", f"{root}/examples/mcp-listing/policies.txt"],
        "import of tests/unit/fixtures/import/variants.txt": [binary, "import", "--default", "bypass", f"{root}/tests/unit/fixtures/import/variants.txt"],
        "mirror of examples/host-a": [binary, "mirror", f"{root}/examples/host-a/site.yaml", "--peer",
                                      "fec0::2222:a00:bff:fe3a:127", "--self", "fec0::2222:a00:bff:fe3a:100"],
    }
    for what, cmd in written.items():
        r = subprocess.run(cmd, capture_output=True, text=True)
        errs = list(jsonschema.Draft7Validator(site).iter_errors(yaml.safe_load(r.stdout))) if r.returncode == 0 else ["exit %d" % r.returncode]
        ok(not errs, f"{what} validates against site.schema.json" + ("" if not errs else f": {errs[0]}"))

    # rekey's edits (each step of a rollover of examples/host-a, in a scratch copy) are valid too.
    import shutil, tempfile
    with tempfile.TemporaryDirectory() as d:
        for f in ("site.yaml", "keys.yaml"):
            shutil.copy(f"{root}/examples/host-a/{f}", d)
        os.chmod(f"{d}/keys.yaml", 0o600)
        for step in ("accept", "switch", "retire"):
            r = subprocess.run([binary, "--state-dir", f"{d}/state", "rekey", "PROTECTFTPOUT", "PROTECTBNAIN",
                                "--site", f"{d}/site.yaml", "--force"], capture_output=True, text=True)
            doc = yaml.safe_load(open(f"{d}/site.yaml"))
            errs = list(jsonschema.Draft7Validator(site).iter_errors(doc)) if r.returncode == 0 else ["exit %d: %s" % (r.returncode, r.stderr)]
            ok(not errs, f"rekey {step} of examples/host-a validates against site.schema.json" + ("" if not errs else f": {errs[0]}"))

# Shape errors the C parser reports must be schema errors too.
for name in ["keys-structure", "ports-icmp", "protect", "nokeyfile", "policies-not-list"]:
    doc = yaml.safe_load(open(f"{root}/tests/unit/fixtures/bad/{name}.yaml"))
    errs = list(jsonschema.Draft7Validator(site).iter_errors(doc))
    ok(len(errs) > 0, f"bad/{name}.yaml fails the schema as it fails the parser")
print(f"1..{n}")
sys.exit(1 if failed else 0)
