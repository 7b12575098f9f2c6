"""hvac's transit client against Tresor, with every result checked by an independent implementation
(pyca/cryptography, i.e. OpenSSL). Exits non-zero on any mismatch.

Usage: python hvac_transit.py ADDR ROOT_TOKEN
"""
import base64
import hashlib
import sys

import hvac
from hvac.exceptions import InvalidRequest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as pyhmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

addr, root = sys.argv[1], sys.argv[2]
# A slow shared CI machine: RSA-4096 generation may take seconds there.
client = hvac.Client(url=addr, token=root, timeout=120)
transit = client.secrets.transit
client.sys.enable_secrets_engine("transit")

MSG = b"attack at dawn"
B64 = base64.b64encode(MSG).decode()


def raw(value):
    """The bytes of a `vault:vN:` value."""
    assert value.startswith("vault:v"), value
    return base64.b64decode(value.split(":", 2)[2])


def expect_400(fn, text):
    try:
        fn()
    except InvalidRequest as e:
        assert text in str(e), (text, str(e))
        return
    raise SystemExit(f"expected a 400 containing {text!r}")


HASHES = {"sha2-256": hashes.SHA256(), "sha2-384": hashes.SHA384(), "sha2-512": hashes.SHA512()}

for key_type in ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305", "ed25519", "ecdsa-p256",
                 "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096", "hmac"]:
    name = "k-" + key_type
    if key_type in ("aes128-gcm96", "hmac", "xchacha20-poly1305"):
        # hvac's create_key does not know these types; its generic writer does.
        client.write(f"transit/keys/{name}", type=key_type, exportable=True, allow_plaintext_backup=True)
    else:
        transit.create_key(name, key_type=key_type, exportable=True, allow_plaintext_backup=True)
    key = transit.read_key(name)["data"]
    assert key["type"] == key_type and key["latest_version"] == 1, key

    # HMAC: every key type has an HMAC key; recompute with the exported one.
    mac = transit.generate_hmac(name, hash_input=B64, algorithm="sha2-256")["data"]["hmac"]
    hmac_key = base64.b64decode(transit.export_key(name, key_type="hmac-key", version="latest")["data"]["keys"]["1"])
    h = pyhmac.HMAC(hmac_key, hashes.SHA256())
    h.update(MSG)
    assert raw(mac) == h.finalize(), key_type
    assert transit.verify_signed_data(name, hash_input=B64, hmac=mac)["data"]["valid"] is True

    if key["supports_encryption"]:
        ct = transit.encrypt_data(name, plaintext=B64)["data"]["ciphertext"]
        assert transit.decrypt_data(name, ciphertext=ct)["data"]["plaintext"] == B64, key_type
        exported = transit.export_key(name, key_type="encryption-key")["data"]["keys"]["1"]
        if key_type == "xchacha20-poly1305":
            # `cryptography` has no XChaCha20-Poly1305; the plugin's known-answer test covers the
            # cipher. Here: the format (24-byte nonce ‖ ciphertext ‖ 16-byte tag) and the key size.
            assert len(base64.b64decode(exported)) == 32 and len(raw(ct)) == 24 + len(MSG) + 16
            theirs = None
        elif key_type.startswith("rsa"):
            private = serialization.load_pem_private_key(exported.encode(), password=None)
            oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
            assert private.decrypt(raw(ct), oaep) == MSG
            theirs = private.public_key().encrypt(MSG, oaep)
        else:
            aead = ChaCha20Poly1305 if key_type.startswith("chacha") else AESGCM
            cipher = aead(base64.b64decode(exported))
            body = raw(ct)
            # Vault's format: nonce (12) ‖ ciphertext ‖ tag.
            assert cipher.decrypt(body[:12], body[12:], None) == MSG, key_type
            nonce = bytes(range(12))
            theirs = nonce + cipher.encrypt(nonce, MSG, None)
        if theirs is not None:
            mine = "vault:v1:" + base64.b64encode(theirs).decode()
            assert transit.decrypt_data(name, ciphertext=mine)["data"]["plaintext"] == B64, key_type

    if key["supports_signing"]:
        public_text = key["keys"]["1"]["public_key"]
        for hash_name in (["sha2-256"] if key_type == "ed25519" else ["sha2-256", "sha2-512"]):
            variants = [{}]
            if key_type.startswith("rsa"):
                variants = [{"signature_algorithm": "pss"}, {"signature_algorithm": "pkcs1v15"}]
            if key_type.startswith("ecdsa"):
                variants = [{"marshaling_algorithm": "asn1"}, {"marshaling_algorithm": "jws"}]
            for extra in variants:
                sig = transit.sign_data(name, hash_input=B64, hash_algorithm=hash_name, **extra)["data"]["signature"]
                assert transit.verify_signed_data(name, hash_input=B64, signature=sig, hash_algorithm=hash_name, **extra)["data"]["valid"] is True
                assert transit.verify_signed_data(name, hash_input=base64.b64encode(b"x").decode(), signature=sig,
                                                  hash_algorithm=hash_name, **extra)["data"]["valid"] is False
                # Independent verification (raises on a bad signature).
                if key_type == "ed25519":
                    ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_text)).verify(raw(sig), MSG)
                    continue
                public = serialization.load_pem_public_key(public_text.encode())
                if key_type.startswith("ecdsa"):
                    body = sig.split(":", 2)[2]
                    if extra["marshaling_algorithm"] == "jws":
                        rs = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
                        half = len(rs) // 2
                        der = utils.encode_dss_signature(int.from_bytes(rs[:half], "big"), int.from_bytes(rs[half:], "big"))
                    else:
                        der = base64.b64decode(body)
                    public.verify(der, MSG, ec.ECDSA(HASHES[hash_name]))
                elif extra["signature_algorithm"] == "pss":
                    public.verify(raw(sig), MSG, padding.PSS(mgf=padding.MGF1(HASHES[hash_name]), salt_length=padding.PSS.AUTO), HASHES[hash_name])
                else:
                    public.verify(raw(sig), MSG, padding.PKCS1v15(), HASHES[hash_name])
        # The other way: a signature made by cryptography with the exported key verifies in Tresor.
        exported = transit.export_key(name, key_type="signing-key")["data"]["keys"]["1"]
        if key_type == "ed25519":
            theirs = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(exported)[:32]).sign(MSG)
            extra = {}
        else:
            private = serialization.load_pem_private_key(exported.encode(), password=None)
            if key_type.startswith("ecdsa"):
                theirs = private.sign(MSG, ec.ECDSA(hashes.SHA256()))
                extra = {}
            else:
                theirs = private.sign(MSG, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256())
                extra = {"signature_algorithm": "pss"}
        mine = "vault:v1:" + base64.b64encode(theirs).decode()
        assert transit.verify_signed_data(name, hash_input=B64, signature=mine, **extra)["data"]["valid"] is True, key_type

    # Backup and restore under another name keep every version.
    transit.rotate_key(name)
    backup = transit.backup_key(name)["data"]["backup"]
    transit.restore_key(backup, name=name + "-restored")
    restored = transit.read_key(name + "-restored")["data"]
    assert restored["latest_version"] == 2 and restored["type"] == key_type, restored

# Rotation, rewrap, min_decryption_version, tampering, batch.
transit.create_key("app")
v1 = transit.encrypt_data("app", plaintext=B64)["data"]["ciphertext"]
transit.rotate_key("app")
assert transit.decrypt_data("app", ciphertext=v1)["data"]["plaintext"] == B64
v2 = transit.rewrap_data("app", ciphertext=v1)["data"]["ciphertext"]
assert v2.startswith("vault:v2:"), v2
transit.update_key_configuration("app", min_decryption_version=2)
expect_400(lambda: transit.decrypt_data("app", ciphertext=v1), "disallowed by policy (too old)")
body = bytearray(raw(v2))
body[20] ^= 0x01
expect_400(lambda: transit.decrypt_data("app", ciphertext="vault:v2:" + base64.b64encode(bytes(body)).decode()),
           "message authentication failed")

batch = [{"plaintext": B64}, {"plaintext": "not base64!"}, {"plaintext": B64, "reference": "third"}]
resp = client.adapter.post("/v1/transit/encrypt/app", json={"batch_input": batch}, raise_exception=False)
assert resp.status_code == 400, resp.status_code
results = resp.json()["data"]["batch_results"]
assert "ciphertext" in results[0] and "error" in results[1] and results[2]["reference"] == "third", results

datakey = transit.generate_data_key("app", key_type="plaintext", bits=256)["data"]
assert len(base64.b64decode(datakey["plaintext"])) == 32
assert transit.decrypt_data("app", ciphertext=datakey["ciphertext"])["data"]["plaintext"] == datakey["plaintext"]
assert len(transit.generate_random_bytes(n_bytes=24)["data"]["random_bytes"]) == 32
assert transit.hash_data(hash_input=B64, algorithm="sha2-512", output_format="hex")["data"]["sum"] == hashlib.sha512(MSG).hexdigest()
assert sorted(transit.list_keys()["data"]["keys"])[0] == "app"
print("hvac transit ok")
