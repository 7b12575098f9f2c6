//! Known-answer tests against published vectors: AES-GCM (the GCM specification's test cases, as
//! used by NIST CAVP), ChaCha20-Poly1305 (RFC 8439 §2.8.2), XChaCha20-Poly1305
//! (draft-irtf-cfrg-xchacha-03 §A.3.1), Ed25519 (RFC 8032 §7.1), ECDSA P-256
//! (RFC 6979 A.2.5), HMAC (RFC 4231), SHA-2/SHA-3 (FIPS 180-4 / 202 "abc"), HKDF (RFC 5869).

use crate::crypto::{self, HashAlg, SignOptions};
use crate::policy::{KeyEntry, KeyType, Secret};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector is hex")
}

fn seal_open(kind: KeyType, key: &str, nonce: &str, pt: &[u8], aad: &str, expected: &str) {
    let sealed = crypto::aead_seal(kind, &h(key), &h(nonce), pt, &h(aad)).expect("seal");
    assert_eq!(hex::encode(&sealed), expected, "{kind:?} ciphertext ‖ tag");
    let opened = crypto::aead_open(kind, &h(key), &h(nonce), &sealed, &h(aad)).expect("open");
    assert_eq!(opened.as_slice(), pt);
    let mut flipped = sealed.clone();
    flipped[0] ^= 1;
    let go = if kind.is_chacha() { "chacha20poly1305: message authentication failed" } else { "cipher: message authentication failed" };
    assert_eq!(crypto::aead_open(kind, &h(key), &h(nonce), &flipped, &h(aad)).unwrap_err(), go);
}

#[test]
fn aes_gcm_vectors() {
    // GCM spec test case 2 (AES-128) and 14 (AES-256): zero key, zero IV, one zero block.
    seal_open(KeyType::Aes128Gcm96, &"00".repeat(16), &"00".repeat(12), &[0; 16], "", "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf");
    seal_open(KeyType::Aes256Gcm96, &"00".repeat(32), &"00".repeat(12), &[0; 16], "", "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    // Test case 16: AES-256 with additional authenticated data.
    seal_open(
        KeyType::Aes256Gcm96,
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        &h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b",
    );
}

#[test]
fn chacha20_poly1305_rfc8439() {
    seal_open(
        KeyType::ChaCha20Poly1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
        "50515253c0c1c2c3c4c5c6c7",
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691",
    );
}

#[test]
fn xchacha20_poly1305_draft_irtf_cfrg_xchacha() {
    seal_open(
        KeyType::XChaCha20Poly1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "404142434445464748494a4b4c4d4e4f5051525354555657",
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
        "50515253c0c1c2c3c4c5c6c7",
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52ec0875924c1c7987947deafd8780acf49",
    );
}

fn ed25519_entry(seed: &str) -> KeyEntry {
    let (private, public) = crypto::ed25519_from_seed(&h(seed)).expect("seed");
    KeyEntry { key: Some(private), public_key: crypto::b64(&public), ..KeyEntry::default() }
}

const PLAIN: SignOptions = SignOptions { hash: HashAlg::Sha256, prehashed: false, pss: true, salt_len: None, jws: false };

#[test]
fn ed25519_rfc8032() {
    for (seed, public, msg, sig) in [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ] {
        let entry = ed25519_entry(seed);
        assert_eq!(crypto::unb64(&entry.public_key).unwrap(), h(public));
        // Go's private key layout: seed ‖ public.
        assert_eq!(entry.key.as_deref().unwrap().as_slice(), [h(seed), h(public)].concat().as_slice());
        let signed = crypto::sign(KeyType::Ed25519, &entry, None, &h(msg), &PLAIN).unwrap();
        assert_eq!(hex::encode(&signed), sig);
        assert!(crypto::verify(KeyType::Ed25519, &entry, None, &h(msg), &h(sig), &PLAIN).unwrap());
        assert!(!crypto::verify(KeyType::Ed25519, &entry, None, b"other", &h(sig), &PLAIN).unwrap());
    }
}

#[test]
fn ecdsa_p256_rfc6979() {
    let mut entry = KeyEntry::default();
    crypto::ecdsa_p256::set_scalar(&mut entry, &h("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")).unwrap();
    let (x, y, _) = crypto::ecdsa_p256::scalars(&entry).unwrap();
    assert_eq!(hex::encode(x), "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6");
    assert_eq!(hex::encode(y), "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
    // A.2.5, SHA-256, message "sample": (r, s) as a JWS (r ‖ s) signature.
    let sig = h("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
    let jws = SignOptions { jws: true, ..PLAIN };
    assert!(crypto::verify(KeyType::EcdsaP256, &entry, None, b"sample", &sig, &jws).unwrap());
    assert!(!crypto::verify(KeyType::EcdsaP256, &entry, None, b"test", &sig, &jws).unwrap());
    // Our own (randomised) signatures verify, in both encodings.
    for opts in [PLAIN, jws] {
        let ours = crypto::sign(KeyType::EcdsaP256, &entry, None, b"sample", &opts).unwrap();
        assert!(crypto::verify(KeyType::EcdsaP256, &entry, None, b"sample", &ours, &opts).unwrap());
    }
}

#[test]
fn hmac_rfc4231_case2() {
    let data = b"what do ya want for nothing?";
    assert_eq!(hex::encode(crypto::hmac(HashAlg::Sha256, b"Jefe", data).unwrap()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_eq!(
        hex::encode(crypto::hmac(HashAlg::Sha512, b"Jefe", data).unwrap()),
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    );
}

#[test]
fn sha2_sha3_abc() {
    assert_eq!(hex::encode(crypto::digest(HashAlg::Sha256, b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(hex::encode(crypto::digest(HashAlg::Sha3_256, b"abc")), "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
    assert_eq!(hex::encode(crypto::digest(HashAlg::Sha1, b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

#[test]
fn hkdf_rfc5869_case3() {
    let okm: Secret = crypto::hkdf(&[0x0b; 22], b"", 42).unwrap();
    assert_eq!(hex::encode(okm.as_slice()), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}
