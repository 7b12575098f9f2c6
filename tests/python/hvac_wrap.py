"""hvac against Tresor's response wrapping and leases. Exits non-zero on any mismatch.

Usage: python hvac_wrap.py ADDR ROOT_TOKEN
"""
import sys

import hvac
from hvac.exceptions import InvalidRequest

addr, root = sys.argv[1], sys.argv[2]
client = hvac.Client(url=addr, token=root)

# Wrap arbitrary data, look it up, unwrap it once.
wrapped = client.write("sys/wrapping/wrap", wrap_ttl="5m", foo="bar", n=1)
info = wrapped["wrap_info"]
assert info["ttl"] == 300 and info["creation_path"] == "sys/wrapping/wrap", info
looked = client.sys.read_wrapping_token_info(info["token"]) if hasattr(client.sys, "read_wrapping_token_info") else client.write("sys/wrapping/lookup", token=info["token"])
assert looked["data"]["creation_ttl"] == 300, looked
unwrapped = client.sys.unwrap(info["token"])
assert unwrapped["data"] == {"foo": "bar", "n": 1}, unwrapped
try:
    client.sys.unwrap(info["token"])
    raise SystemExit("a second unwrap must fail")
except InvalidRequest as e:
    assert "wrapping token is not valid or does not exist" in str(e), e

# Wrap a KV read; the unwrapping client holds only the wrapping token.
client.sys.enable_secrets_engine("kv", path="kvw", options={"version": "2"})
client.secrets.kv.v2.create_or_update_secret(path="app", secret={"pw": "wrapped-pw"}, mount_point="kvw")
resp = client.adapter.get("/v1/kvw/data/app", headers={"X-Vault-Wrap-TTL": "60"})
token = resp["wrap_info"]["token"]
assert resp["data"] is None and resp["wrap_info"]["creation_path"] == "kvw/data/app", resp
receiver = hvac.Client(url=addr, token=token)
got = receiver.sys.unwrap()
assert got["data"]["data"] == {"pw": "wrapped-pw"}, got

# A wrapped token creation: unwrap returns the auth block.
resp = client.auth.token.create(policies=["default"], wrap_ttl="2m")
assert resp["wrap_info"]["wrapped_accessor"], resp
auth = client.sys.unwrap(resp["wrap_info"]["token"])["auth"]
assert auth["accessor"] == resp["wrap_info"]["wrapped_accessor"], auth
assert hvac.Client(url=addr, token=auth["client_token"]).is_authenticated()

print("hvac wrap ok")
