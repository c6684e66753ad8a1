"""hvac (Python's Vault client, unchanged) against a running `bulwark server`.

Run by apps/server/test/hvac.test.ts with the venv's python (tooling/services/install.sh); reads
BULWARK_ADDR, BULWARK_TOKEN (a root token; kv v2 mounted at secret/, kv v1 at kv1/) and
BULWARK_UNSEAL_KEY (the one share: the last check seals and unseals). Prints one
JSON line per check, {"check": name, "ok": bool, ...}, and exits 1 when any check failed: every
check runs even after a failure, so one run shows all of them.
"""

import json
import os
import sys
import traceback

import hvac
import hvac.adapters
import hvac.exceptions

ADDR = os.environ["BULWARK_ADDR"]
TOKEN = os.environ["BULWARK_TOKEN"]
client = hvac.Client(url=ADDR, token=TOKEN)
# The same client returning the requests.Response: the raw text, to compare numbers byte for byte
# (the parsed value cannot show whether 1.0 came back as 1 or 1.0).
raw = hvac.Client(url=ADDR, token=TOKEN, adapter=hvac.adapters.RawAdapter)
failed = []


def check(name):
    def run(fn):
        try:
            detail = fn()
            print(json.dumps({"check": name, "ok": True, **({"detail": detail} if detail else {})}), flush=True)
        except Exception as e:  # noqa: BLE001 - a failed check is reported, the next one runs
            failed.append(name)
            print(
                json.dumps({"check": name, "ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}),
                flush=True,
            )
        return fn

    return run


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def raises(exc, fn):
    """Runs fn, which must raise exc; returns the exception."""
    try:
        got = fn()
    except exc as e:
        return e
    raise AssertionError(f"expected {exc.__name__}, got {got!r}")


def exact_numbers(text, *keys):
    """The JSON in text with every number kept as its text (strings stay strings: no clash, the
    matrix has no string values), then descended through keys."""
    v = json.loads(text, parse_int=lambda s: ("num", s), parse_float=lambda s: ("num", s))
    for k in keys:
        v = v[k]
    return {k: n[1] for k, n in v.items()}


@check("sys.read_seal_status")
def _():
    s = client.sys.read_seal_status()
    expect(s["sealed"] is False and s["initialized"] is True and s["t"] == 1, s)


@check("sys.list_mounted_secrets_engines")
def _():
    m = client.sys.list_mounted_secrets_engines()
    mounts = m.get("data", m)
    expect(mounts["secret/"]["type"] == "kv" and mounts["secret/"]["options"]["version"] == "2", mounts.get("secret/"))
    expect(mounts["kv1/"]["type"] == "kv", mounts.get("kv1/"))


@check("sys.list_auth_methods")
def _():
    a = client.sys.list_auth_methods()
    methods = a.get("data", a)
    expect(methods["token/"]["type"] == "token", methods)


@check("sys.read_health_status, sys.is_initialized, sys.is_sealed")
def _():
    h = client.sys.read_health_status(method="GET")
    expect(h["initialized"] is True and h["sealed"] is False and h["standby"] is False, h)
    expect(client.sys.is_initialized() is True and client.sys.is_sealed() is False, "init/seal state")


@check("sys.enable_secrets_engine, read/tune_mount_configuration, disable_secrets_engine")
def _():
    client.sys.enable_secrets_engine(backend_type="kv", path="scratch", options={"version": "2"})
    expect("scratch/" in client.sys.list_mounted_secrets_engines()["data"], "scratch/ not mounted")
    client.sys.tune_mount_configuration(path="scratch", default_lease_ttl="1h", max_lease_ttl="2h")
    c = client.sys.read_mount_configuration(path="scratch")
    c = c.get("data", c)
    expect(c["default_lease_ttl"] == 3600 and c["max_lease_ttl"] == 7200, c)
    client.secrets.kv.v2.create_or_update_secret(path="x", secret={"a": "b"}, mount_point="scratch")
    client.sys.disable_secrets_engine(path="scratch")
    expect("scratch/" not in client.sys.list_mounted_secrets_engines()["data"], "scratch/ still mounted")
    raises(hvac.exceptions.VaultError, lambda: client.secrets.kv.v2.read_secret_version(path="x", mount_point="scratch", raise_on_deleted_version=True))


@check("sys.rotate_encryption_key, get_encryption_key_status")
def _():
    before = client.sys.get_encryption_key_status()
    before = before.get("data", before)
    client.sys.rotate_encryption_key()
    after = client.sys.get_encryption_key_status()
    after = after.get("data", after)
    expect(after["term"] == before["term"] + 1, {"before": before, "after": after})


@check("kv.v2 create_or_update_secret, read_secret_version")
def _():
    w = client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"user": "u", "pass": "p1"})
    expect(w["data"]["version"] == 1, w)
    w = client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"user": "u", "pass": "p2"}, cas=1)
    expect(w["data"]["version"] == 2, w)
    r = client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)
    expect(r["data"]["data"] == {"user": "u", "pass": "p2"} and r["data"]["metadata"]["version"] == 2, r)
    r = client.secrets.kv.v2.read_secret_version(path="app/db", version=1, raise_on_deleted_version=True)
    expect(r["data"]["data"]["pass"] == "p1", r)


@check("kv.v2 list_secrets, read_secret_metadata")
def _():
    client.secrets.kv.v2.create_or_update_secret(path="app/api", secret={"k": "v"})
    keys = client.secrets.kv.v2.list_secrets(path="app")["data"]["keys"]
    expect(sorted(keys) == ["api", "db"], keys)
    expect(client.secrets.kv.v2.list_secrets(path="")["data"]["keys"] == ["app/"], "root listing")
    m = client.secrets.kv.v2.read_secret_metadata(path="app/db")["data"]
    expect(m["current_version"] == 2 and sorted(m["versions"]) == ["1", "2"], m)


@check("kv.v2 bad cas: InvalidRequest with the error body in e.errors")
def _():
    e = raises(
        hvac.exceptions.InvalidRequest,
        lambda: client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"x": "y"}, cas=1),
    )
    # hvac fills e.errors from the body only when the Content-Type is exactly application/json.
    expect(isinstance(e.errors, list) and len(e.errors) > 0 and all(isinstance(x, str) and x for x in e.errors), e.errors)
    expect("check-and-set" in e.errors[0], e.errors)


@check("kv.v2 read of a missing secret: InvalidPath")
def _():
    raises(hvac.exceptions.InvalidPath, lambda: client.secrets.kv.v2.read_secret_version(path="nope", raise_on_deleted_version=True))


@check("kv.v2 delete_latest_version_of_secret, deleted version read")
def _():
    client.secrets.kv.v2.delete_latest_version_of_secret(path="app/db")
    # raise_on_deleted_version=False: the 404's body (the deleted version's metadata) is returned.
    r = client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=False)
    expect(r["data"]["data"] is None, r)
    md = r["data"]["metadata"]
    expect(md["version"] == 2 and md["deletion_time"] != "" and md["destroyed"] is False, md)
    e = raises(
        hvac.exceptions.InvalidPath,
        lambda: client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True),
    )
    expect(e.json is not None and e.json["data"]["metadata"]["version"] == 2, e.json)


@check("kv.v2 undelete_secret_versions")
def _():
    client.secrets.kv.v2.undelete_secret_versions(path="app/db", versions=[2])
    r = client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)
    expect(r["data"]["data"]["pass"] == "p2" and r["data"]["metadata"]["deletion_time"] == "", r)


@check("kv.v2 destroy_secret_versions")
def _():
    client.secrets.kv.v2.destroy_secret_versions(path="app/db", versions=[1])
    m = client.secrets.kv.v2.read_secret_metadata(path="app/db")["data"]
    expect(m["versions"]["1"]["destroyed"] is True and m["versions"]["2"]["destroyed"] is False, m)
    # A destroyed version has no deletion_time (as in Vault): hvac raises even when told not to
    # for deleted ones; the 404's body still carries the metadata.
    e = raises(
        hvac.exceptions.InvalidPath,
        lambda: client.secrets.kv.v2.read_secret_version(path="app/db", version=1, raise_on_deleted_version=False),
    )
    md = e.json["data"]["metadata"]
    expect(e.json["data"]["data"] is None and md["destroyed"] is True and md["deletion_time"] == "", e.json)


@check("kv.v2 delete_metadata_and_all_versions")
def _():
    client.secrets.kv.v2.delete_metadata_and_all_versions(path="app/api")
    raises(hvac.exceptions.InvalidPath, lambda: client.secrets.kv.v2.read_secret_metadata(path="app/api"))


@check("kv.v1 create_or_update_secret, read_secret, list_secrets, delete_secret")
def _():
    client.secrets.kv.v1.create_or_update_secret(path="team/a", secret={"k": "v", "n": 1}, mount_point="kv1")
    r = client.secrets.kv.v1.read_secret(path="team/a", mount_point="kv1")
    expect(r["data"] == {"k": "v", "n": 1}, r)
    expect(client.secrets.kv.v1.list_secrets(path="team", mount_point="kv1")["data"]["keys"] == ["a"], "list")
    client.secrets.kv.v1.delete_secret(path="team/a", mount_point="kv1")
    raises(hvac.exceptions.InvalidPath, lambda: client.secrets.kv.v1.read_secret(path="team/a", mount_point="kv1"))


READER = 'path "secret/data/app/*" { capabilities = ["read"] }\n'


@check("sys acl policies: create_or_update, read, list (root included)")
def _():
    client.sys.create_or_update_acl_policy(name="reader", policy=READER)
    p = client.sys.read_acl_policy(name="reader")
    expect(p["data"]["policy"] == READER, p)
    keys = client.sys.list_acl_policies()["data"]["keys"]
    expect({"default", "reader", "root"} <= set(keys), keys)


@check("auth.token create (policies, ttl), lookup_self, 403 Forbidden, revoke")
def _():
    t = client.auth.token.create(policies=["reader"], ttl="1h")["auth"]
    expect(t["policies"] == ["default", "reader"] and t["lease_duration"] == 3600, t)
    limited = hvac.Client(url=ADDR, token=t["client_token"])
    me = limited.auth.token.lookup_self()["data"]
    expect(me["policies"] == ["default", "reader"] and 0 < me["ttl"] <= 3600, me)
    expect(limited.is_authenticated(), "is_authenticated")
    r = limited.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)
    expect(r["data"]["data"]["pass"] == "p2", r)
    e = raises(
        hvac.exceptions.Forbidden,
        lambda: limited.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"x": "y"}),
    )
    expect(isinstance(e.errors, list) and len(e.errors) > 0, e.errors)
    raises(hvac.exceptions.Forbidden, lambda: limited.sys.list_mounted_secrets_engines())
    client.auth.token.revoke(t["client_token"])
    expect(not limited.is_authenticated(), "revoked token still authenticates")
    raises(hvac.exceptions.Forbidden, lambda: limited.auth.token.lookup_self())


# Numbers as Python sends them (json.dumps: ints in full, floats in repr), and what OpenBao 2.6.2
# returns for those writes: KV v1 the text as sent, KV v2 Go's float64 text (it decodes a version's
# data into float64 when reading; see apps/server/src/http/kv-numbers.test.ts).
MATRIX = {
    "p53": 2**53 + 1,
    "p63": 2**63 - 1,
    "negzero": -0.0,
    "tiny": 1e-400,  # 0.0 in Python: sent as 0.0
    "tenth": 0.1,
    "hundred": 1e2,  # 100.0
    "big": 123456789012345678901234567890,
    "e29": 10**29,
    "neg": -12.5e3,
    "int": 42,
    "half": 1.5,
    "small": 1e-7,
    "huge": 1e21,
}
SENT = {k: json.dumps(v) for k, v in MATRIX.items()}
OPENBAO_V2 = {
    "p53": "9007199254740992",
    "p63": "9223372036854776000",
    "negzero": "-0",
    "tiny": "0",
    "tenth": "0.1",
    "hundred": "100",
    "big": "1.2345678901234568e+29",
    "e29": "1e+29",
    "neg": "-12500",
    "int": "42",
    "half": "1.5",
    "small": "1e-7",
    "huge": "1e+21",
}


@check("numbers: kv.v1 round trip, exact text (as OpenBao)")
def _():
    expect(SENT["p63"] == "9223372036854775807" and SENT["negzero"] == "-0.0" and SENT["tiny"] == "0.0", SENT)
    client.secrets.kv.v1.create_or_update_secret(path="numbers", secret=MATRIX, mount_point="kv1")
    text = raw.read("kv1/numbers").text
    got = exact_numbers(text, "data")
    expect(got == SENT, {"got": got, "want": SENT})
    # Parsed by hvac: Python's ints are unbounded, so every value is back as written.
    r = client.secrets.kv.v1.read_secret(path="numbers", mount_point="kv1")["data"]
    expect(r == MATRIX and all(type(r[k]) is type(MATRIX[k]) for k in MATRIX), r)
    return text


@check("numbers: kv.v2 read back as OpenBao 2.6.2 returns them")
def _():
    client.secrets.kv.v2.create_or_update_secret(path="numbers", secret=MATRIX)
    text = raw.read("secret/data/numbers").text
    got = exact_numbers(text, "data", "data")
    expect(got == OPENBAO_V2, {"got": got, "want": OPENBAO_V2})
    r = client.secrets.kv.v2.read_secret_version(path="numbers", raise_on_deleted_version=True)["data"]["data"]
    expect(r["p63"] == 9223372036854776000 and r["p53"] == 2**53 and r["big"] == 1.2345678901234568e29, r)
    return text


@check("numbers: text Python cannot send, through hvac's adapter: 1e400 refused, 1e-400 and 1E+2 as OpenBao")
def _():
    # json.dumps cannot write these (1e400 is inf, refused by requests; 1e-400 is 0.0): the body
    # goes as text through hvac's adapter, as another client's would.
    for path in ("v1/kv1/inf", "v1/secret/data/inf"):
        body = '{"v":1e400}' if path.startswith("v1/kv1") else '{"data":{"v":1e400}}'
        e = raises(
            hvac.exceptions.InvalidRequest,
            lambda: client.adapter.post(path, data=body, headers={"Content-Type": "application/json"}),
        )
        expect(isinstance(e.errors, list) and len(e.errors) > 0 and "64-bit float" in e.errors[0], e.errors)
    raises(hvac.exceptions.InvalidPath, lambda: client.secrets.kv.v1.read_secret(path="inf", mount_point="kv1"))
    raises(hvac.exceptions.InvalidPath, lambda: client.secrets.kv.v2.read_secret_version(path="inf", raise_on_deleted_version=True))
    client.adapter.post("v1/kv1/text", data='{"a":1e-400,"b":1E+2}')
    client.adapter.post("v1/secret/data/text", data='{"data":{"a":1e-400,"b":1E+2}}')
    v1 = exact_numbers(raw.read("kv1/text").text, "data")
    expect(v1 == {"a": "1e-400", "b": "1E+2"}, v1)
    v2 = exact_numbers(raw.read("secret/data/text").text, "data", "data")
    expect(v2 == {"a": "0", "b": "100"}, v2)


@check("sys audit: enable_audit_device, list_enabled_audit_devices, calculate_hash, disable_audit_device")
def _():
    log = os.path.join(os.environ["HOME"], "hvac-audit.log")
    client.sys.enable_audit_device(device_type="file", path="hvac-file", options={"file_path": log})
    listed = client.sys.list_enabled_audit_devices()["data"]
    expect(listed["hvac-file/"]["type"] == "file" and listed["hvac-file/"]["options"]["file_path"] == log, listed)
    client.secrets.kv.v2.create_or_update_secret(path="audited", secret={"pin": "hvac-audited-plaintext"})
    want = client.sys.calculate_hash(path="hvac-file", input_to_hash="hvac-audited-plaintext")["data"]["hash"]
    with open(log) as f:
        text = f.read()
    expect("hvac-audited-plaintext" not in text, "the secret is in the audit log in plaintext")
    records = [json.loads(l) for l in text.splitlines() if l]
    put = [r for r in records if r.get("request", {}).get("path") == "secret/data/audited"]
    expect([r["type"] for r in put] == ["request", "response"], [r["type"] for r in put])
    expect(put[0]["request"]["data"]["data"]["pin"] == want, {"logged": put[0]["request"]["data"]["data"]["pin"], "hash": want})
    client.sys.disable_audit_device(path="hvac-file")
    expect(client.sys.list_enabled_audit_devices()["data"] == {}, "still enabled")


@check("sys.seal, 503 while sealed, sys.submit_unseal_key (last: the data is back)")
def _():
    client.sys.seal()
    expect(client.sys.read_seal_status()["sealed"] is True, "not sealed")
    # Sealed: 503, which hvac raises as VaultDown (it tells a sealed Vault by the status).
    raises(hvac.exceptions.VaultDown, lambda: client.secrets.kv.v1.read_secret(path="numbers", mount_point="kv1"))
    s = client.sys.submit_unseal_key(key=os.environ["BULWARK_UNSEAL_KEY"])
    expect(s["sealed"] is False, s)
    r = client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)
    expect(r["data"]["data"]["pass"] == "p2", r)


sys.exit(1 if failed else 0)
