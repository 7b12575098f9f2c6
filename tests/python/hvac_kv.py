"""hvac (the common Python Vault client) against Tresor's KV v1 and v2. Exits non-zero on any mismatch.

Usage: python hvac_kv.py ADDR TOKEN
"""
import sys

import hvac
from hvac.exceptions import InvalidPath, InvalidRequest

addr, token = sys.argv[1], sys.argv[2]
client = hvac.Client(url=addr, token=token)
assert client.is_authenticated()
assert client.sys.is_initialized()
assert not client.sys.is_sealed()

client.sys.enable_secrets_engine("kv", path="hv1", options={"version": "1"})
client.sys.enable_secrets_engine("kv", path="hv2", options={"version": "2"})
assert "hv2/" in client.sys.list_mounted_secrets_engines()["data"]

# KV v1
kv1 = client.secrets.kv.v1
kv1.create_or_update_secret(path="app/db", secret={"user": "u", "pass": "p"}, mount_point="hv1")
assert kv1.read_secret(path="app/db", mount_point="hv1")["data"] == {"user": "u", "pass": "p"}
assert kv1.list_secrets(path="app", mount_point="hv1")["data"]["keys"] == ["db"]
kv1.delete_secret(path="app/db", mount_point="hv1")
try:
    kv1.read_secret(path="app/db", mount_point="hv1")
    raise SystemExit("v1 read after delete should fail")
except InvalidPath:
    pass

# KV v2
kv2 = client.secrets.kv.v2
r = kv2.create_or_update_secret(path="svc/api", secret={"key": "k1"}, mount_point="hv2")
assert r["data"]["version"] == 1, r
kv2.create_or_update_secret(path="svc/api", secret={"key": "k2"}, cas=1, mount_point="hv2")
try:
    kv2.create_or_update_secret(path="svc/api", secret={"key": "k3"}, cas=1, mount_point="hv2")
    raise SystemExit("cas mismatch should fail")
except InvalidRequest as e:
    assert "check-and-set parameter did not match the current version" in str(e), e
read = kv2.read_secret_version(path="svc/api", mount_point="hv2", raise_on_deleted_version=True)
assert read["data"]["data"] == {"key": "k2"} and read["data"]["metadata"]["version"] == 2
assert kv2.read_secret_version(path="svc/api", version=1, mount_point="hv2", raise_on_deleted_version=True)["data"]["data"] == {"key": "k1"}
kv2.patch(path="svc/api", secret={"extra": "x"}, mount_point="hv2")
assert kv2.read_secret_version(path="svc/api", mount_point="hv2", raise_on_deleted_version=True)["data"]["data"] == {"key": "k2", "extra": "x"}
assert kv2.list_secrets(path="svc", mount_point="hv2")["data"]["keys"] == ["api"]
kv2.delete_latest_version_of_secret(path="svc/api", mount_point="hv2")
deleted = kv2.read_secret_version(path="svc/api", mount_point="hv2", raise_on_deleted_version=False)
assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"] != "", deleted
kv2.undelete_secret_versions(path="svc/api", versions=[3], mount_point="hv2")
assert kv2.read_secret_version(path="svc/api", mount_point="hv2", raise_on_deleted_version=True)["data"]["data"]["extra"] == "x"
kv2.destroy_secret_versions(path="svc/api", versions=[1], mount_point="hv2")
meta = kv2.read_secret_metadata(path="svc/api", mount_point="hv2")["data"]
assert meta["versions"]["1"]["destroyed"] is True and meta["current_version"] == 3, meta
kv2.update_metadata(path="svc/api", max_versions=5, custom_metadata={"owner": "ops"}, mount_point="hv2")
assert kv2.read_secret_metadata(path="svc/api", mount_point="hv2")["data"]["custom_metadata"] == {"owner": "ops"}
kv2.configure(max_versions=7, mount_point="hv2")
assert kv2.read_configuration(mount_point="hv2")["data"]["max_versions"] == 7
kv2.delete_metadata_and_all_versions(path="svc/api", mount_point="hv2")
try:
    kv2.read_secret_version(path="svc/api", mount_point="hv2")
    raise SystemExit("read after metadata delete should fail")
except InvalidPath:
    pass

client.sys.disable_secrets_engine(path="hv1")
assert "hv1/" not in client.sys.list_mounted_secrets_engines()["data"]
print("hvac ok")
