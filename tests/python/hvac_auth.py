"""hvac against Tresor's policies, userpass and AppRole auth methods. Exits non-zero on any mismatch.

Usage: python hvac_auth.py ADDR ROOT_TOKEN
"""
import sys

import hvac
from hvac.exceptions import Forbidden, InvalidRequest

addr, root = sys.argv[1], sys.argv[2]
admin = hvac.Client(url=addr, token=root)

admin.sys.create_or_update_acl_policy(
    name="app", policy='path "secret/data/app/*" { capabilities = ["create", "read", "update"] }'
)
assert "app" in admin.sys.list_acl_policies()["data"]["keys"]
assert "secret/data/app/*" in admin.sys.read_acl_policy("app")["data"]["policy"]

# AppRole
admin.sys.enable_auth_method("approle")
assert "approle/" in admin.sys.list_auth_methods()["data"]
admin.auth.approle.create_or_update_approle(
    "ci", token_policies=["app"], token_ttl="20m", token_max_ttl="1h", secret_id_num_uses=3, secret_id_ttl="10m"
)
role = admin.auth.approle.read_role("ci")["data"]
assert role["token_ttl"] == 1200 and role["secret_id_num_uses"] == 3, role
role_id = admin.auth.approle.read_role_id("ci")["data"]["role_id"]
sid = admin.auth.approle.generate_secret_id("ci", metadata={"env": "ci"})["data"]
assert sid["secret_id_num_uses"] == 3 and sid["secret_id_ttl"] == 600, sid

machine = hvac.Client(url=addr)
login = machine.auth.approle.login(role_id=role_id, secret_id=sid["secret_id"])
auth = login["auth"]
assert auth["policies"] == ["app", "default"], auth
assert auth["metadata"] == {"env": "ci", "role_name": "ci"}, auth
assert auth["lease_duration"] == 1200 and auth["orphan"] is True, auth
assert machine.is_authenticated()
machine.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"pw": "x"})
assert machine.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)["data"]["data"] == {"pw": "x"}
try:
    machine.secrets.kv.v2.read_secret_version(path="other", raise_on_deleted_version=True)
    raise SystemExit("read outside the policy was allowed")
except Forbidden:
    pass

looked = admin.auth.approle.read_secret_id("ci", sid["secret_id"])["data"]
assert looked["secret_id_num_uses"] == 2 and looked["metadata"] == {"env": "ci"}, looked
try:
    hvac.Client(url=addr).auth.approle.login(role_id=role_id, secret_id="wrong")
    raise SystemExit("bad secret id accepted")
except InvalidRequest as e:
    assert "invalid role or secret ID" in str(e), e

# userpass
admin.sys.enable_auth_method("userpass")
admin.auth.userpass.create_or_update_user("alice", password="s3cret", policies=["app"])
person = hvac.Client(url=addr)
auth = person.auth.userpass.login("alice", "s3cret")["auth"]
assert auth["metadata"] == {"username": "alice"}, auth
assert person.lookup_token()["data"]["display_name"] == "userpass-alice"
try:
    hvac.Client(url=addr).auth.userpass.login("alice", "nope")
    raise SystemExit("wrong password accepted")
except InvalidRequest:
    pass

# Token self-management through hvac.
child = admin.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
assert admin.auth.token.lookup(child)["data"]["policies"] == ["app", "default"]
admin.auth.token.revoke(child)
assert not hvac.Client(url=addr, token=child).is_authenticated()
print("hvac auth ok")
