//! BitPay client identity: the secp256k1 key pair, its SIN and request signatures
//! (reference sections 1 and 2).

use crate::exit::{ExitCode, Failing};
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ripemd::Ripemd160;
use secp256k1::ecdsa::Signature;
// One process-wide context: building one costs more than signing.
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};
use sha2::{Digest, Sha256};

/// SIN version byte and "ephemeral" type byte.
const SIN_PREFIX: [u8; 2] = [0x0f, 0x02];

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("private key file {path} is readable by other users (mode {mode:o}); fix it with: chmod 600 {path}")]
    KeyFileTooOpen { path: String, mode: u32 },
    #[error("private key file {path} is not a valid secp256k1 key (expected 64 hex characters); move it away to create a new identity, then pair again")]
    KeyFileInvalid { path: String },
    #[error("cannot read private key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create private key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

impl Failing for IdentityError {
    /// A key file the admin must fix is a configuration problem; a failed write may pass.
    fn exit_code(&self) -> ExitCode {
        match self {
            IdentityError::Random(_) => ExitCode::Failure,
            IdentityError::Write { .. } => ExitCode::Temporary,
            _ => ExitCode::Config,
        }
    }
}

/// The add-on's key pair. `Debug` shows only the SIN, never the private key.
pub struct Identity {
    secret: SecretKey,
    public: PublicKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("sin", &self.sin())
            .field("private_key", &"(redacted)")
            .finish()
    }
}

impl Identity {
    pub fn from_secret_bytes(bytes: &[u8]) -> Option<Identity> {
        let secret = SecretKey::from_slice(bytes).ok()?;
        let public = PublicKey::from_secret_key(SECP256K1, &secret);
        Some(Identity { secret, public })
    }

    pub fn from_secret_hex(hex_key: &str) -> Option<Identity> {
        Identity::from_secret_bytes(&hex::decode(hex_key.trim()).ok()?)
    }

    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Identity, IdentityError> {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes).map_err(|e| IdentityError::Random(e.to_string()))?;
            // Out-of-range scalars are astronomically rare; draw again if one comes.
            if let Some(identity) = Identity::from_secret_bytes(&bytes) {
                return Ok(identity);
            }
        }
    }

    /// Loads the key from `path`, creating it (mode 0600) when it does not exist.
    /// A key file that group or others can read is refused.
    pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
        let shown = path.display().to_string();
        match fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(IdentityError::KeyFileTooOpen { path: shown, mode });
                }
                let text = fs::read_to_string(path).map_err(|source| IdentityError::Read {
                    path: shown.clone(),
                    source,
                })?;
                Identity::from_secret_hex(&text)
                    .ok_or(IdentityError::KeyFileInvalid { path: shown })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Identity::generate()?;
                identity
                    .write_new(path)
                    .map_err(|source| IdentityError::Write {
                        path: shown,
                        source,
                    })?;
                Ok(identity)
            }
            Err(source) => Err(IdentityError::Read {
                path: shown,
                source,
            }),
        }
    }

    /// Loads an existing key without creating one; `None` when there is no key file yet.
    pub fn load_existing(path: &Path) -> Result<Option<Identity>, IdentityError> {
        if path.exists() {
            Identity::load_or_create(path).map(Some)
        } else {
            Ok(None)
        }
    }

    fn write_new(&self, path: &Path) -> std::io::Result<()> {
        // create_new: two processes racing to create the key must not overwrite each other.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(hex::encode(self.secret.secret_bytes()).as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }

    /// Hex of the 33-byte compressed public key: the `X-Identity` header.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public.serialize())
    }

    pub fn sin(&self) -> String {
        sin_from_public_key(&self.public.serialize())
    }

    /// A 32-byte key for `purpose`, derived from the private key (HMAC-SHA256 keyed with
    /// it): secrets only this installation has, without another file to keep.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret.secret_bytes())
            .expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Hex DER ECDSA signature (RFC 6979, low-S) of SHA-256(message): the `X-Signature` header.
    pub fn sign(&self, message: &[u8]) -> String {
        let digest: [u8; 32] = Sha256::digest(message).into();
        let signature = SECP256K1.sign_ecdsa(&Message::from_digest(digest), &self.secret);
        hex::encode(signature.serialize_der())
    }
}

/// Base58Check(0x0F 0x02 ‖ RIPEMD160(SHA256(compressed public key))).
pub fn sin_from_public_key(compressed: &[u8]) -> String {
    let h160 = Ripemd160::digest(Sha256::digest(compressed));
    let mut payload = SIN_PREFIX.to_vec();
    payload.extend_from_slice(&h160);
    bs58::encode(payload).with_check().into_string()
}

/// True when `sin` is well-formed Base58Check with the SIN prefix.
pub fn is_valid_sin(sin: &str) -> bool {
    match bs58::decode(sin).with_check(None).into_vec() {
        Ok(bytes) => bytes.len() == 22 && bytes[..2] == SIN_PREFIX,
        Err(_) => false,
    }
}

/// Verifies a hex DER signature over SHA-256(message) by the hex compressed public key.
/// High-S signatures (as the official PHP and Node SDKs send) are accepted after
/// normalisation, as BitPay's verifier does.
pub fn verify(public_key_hex: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(public_bytes) = hex::decode(public_key_hex) else {
        return false;
    };
    let Ok(public) = PublicKey::from_slice(&public_bytes) else {
        return false;
    };
    let Ok(der) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut signature) = Signature::from_der(&der) else {
        return false;
    };
    signature.normalize_s();
    let digest: [u8; 32] = Sha256::digest(message).into();
    SECP256K1
        .verify_ecdsa(&Message::from_digest(digest), &signature, &public)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIN_VECTORS: &[(&str, &str, &str)] = &[
        (
            "97811b691dd7ebaeb67977d158e1da2c4d3eaa4ee4e2555150628acade6b344c",
            "02326209e52f6f17e987ec27c56a1321acf3d68088b8fb634f232f12ccbc9a4575",
            "Tf3yr5tYvccKNVrE26BrPs6LWZRh8woHwjR",
        ),
        (
            "283b13834de77624696b80c29a2a8df0287e3cca23b26ad5fe77d9d5fed0ee90",
            "038d970d6ba29dcfa190c177140fd889fadd6d2590b1ee1a6a06e255dbf22b4017",
            "TeyN4LPrXiG5t2yuSamKqP3ynVk3F52iHrX",
        ),
        (
            "d33092e07c600b524c9cd435a96cf05da55f1b0b22770bdeb39cf1da91769b3c",
            "039f438f1dd674871fad2d1a1ba8331b0b9535da4f81033ca737fc0c8f31b76b16",
            "TfFW1ePJ5q6EZKBsYUrMGQEbb6z4fBmx6BW",
        ),
        (
            "38f93bdda21a5c4a7bae4eb75bb7811cbc3eb627176805c1009ff2099263c6ad",
            "02d7cfea0841ca90c67f5260013e2fadf86c7fe3587c58851e4489736bb8ed5863",
            "Tf7UNQnxB8SccfoyZScQmb34V2GdEtQkzDz",
        ),
        (
            "09880c962437080d72f72c8c63a69efd65d086c9e7851a87b76373eb6ce9aab5",
            "0285274317852c02e6da42a2d2932dbac169e3c3956e7fa0a4670ef65bbedea0b2",
            "Tf22EUFxHWh4wmA3sDuw151W5C5g32jgph2",
        ),
        (
            "c6b7f6bfe5bb19b1e390e55ed4ba5df8af6068d0eb89379a33f9c19aacf6c08c",
            "0200bf0e38b86329f84ea90972e0f901d5ea0145f1ebac8c50fded77796d7a70e1",
            "TfEdpTxBreHYjTe5ke9ENbGRWYBBcjGMZXY",
        ),
    ];

    #[test]
    fn sin_vectors() {
        for (private, public, sin) in SIN_VECTORS {
            let identity = Identity::from_secret_hex(private).unwrap();
            assert_eq!(identity.public_key_hex(), *public);
            assert_eq!(identity.sin(), *sin);
            assert!(is_valid_sin(sin));
        }
    }

    #[test]
    fn sin_validation_vectors() {
        assert!(is_valid_sin("TfG4ScDgysrSpodWD4Re5UtXmcLbY5CiUHA"));
        assert!(
            !is_valid_sin("Tf1Jc1xSbqasm5QLwwSQc5umddx2h7mAMhX"),
            "bad checksum"
        );
        assert!(!is_valid_sin("not#base!58"));
    }

    #[test]
    fn uncompressed_key_gives_a_different_sin() {
        let identity = Identity::from_secret_hex(SIN_VECTORS[0].0).unwrap();
        let uncompressed = identity.public.serialize_uncompressed();
        assert_eq!(
            sin_from_public_key(&uncompressed),
            "TfCGpP1WXA4Jk71Dj9gMy7bFeKbsx62oFUg"
        );
    }

    #[test]
    fn signature_vector_a_byte_for_byte() {
        let identity = Identity::from_secret_hex(
            "000000000000000000000000000000000000000000056916d0f9b31dc9b637f3",
        )
        .unwrap();
        assert_eq!(
            identity.public_key_hex(),
            "0240902c19992973bbebff52fb90f0da3bab7b0d1fe905fbcb4e92277ea969b777"
        );
        assert_eq!(identity.sin(), "Tf5FrMAHKKSb1oGiGFhcWAG8Sn4ghgsismw");
        let message = b"The question of whether computers can think is like the question of whether submarines can swim.";
        assert_eq!(
            identity.sign(message),
            "3045022100cde1302d83f8dd835d89aef803c74a119f561fbaef3eb9129e45f30de86abbf9022006ce643f5049ee1f27890467b77a6a8e11ec4661cc38cd8badf90115fbd03cef"
        );
    }

    #[test]
    fn bitauth_reference_signatures_verify_after_normalising_s() {
        let identity = Identity::from_secret_hex(
            "8295702b2273896ae085c3caebb02985cab02038251e10b6f67a14340edb51b0",
        )
        .unwrap();
        let public = identity.public_key_hex();
        assert_eq!(
            public,
            "0333952d51e42f7db05a6c9dd347c4a7b4d4167ba29191ce1b86a0c0dd39bffb58"
        );
        let vectors = [
            ("foo", "3044022045bc5aba353f97316b92996c01eba6e0b0cb63a763d26898a561c748a9545c7502204dc0374c8d4ca489c161b21ff5e25714f1046d759ec9adf9440233069d584567"),
            ("baz", "304502206ac2ffc240d23fd218a5aa9857065b8bb09ed6c154f1d7da2b56f993bd6e1e3e022100e8dba80dea09122ab87aae82f91e23876aa6628055e24afc895405482ac97aae"),
            ("What a piece of work is a man! how noble in reason! how infinite in faculty! in form and moving how express and admirable! in action how like an angel! in apprehension how like a god!", "304402204c818a10380ba42b3be0a293d47922469c4ae7ad6277e0e62bf32700c79c32210220102b673477ee13877b4b7f8f9a2e4c2004553948fbe5e7fd95d7e23b4cd9f8e3"),
            ("☕️   ⓝ  🀤  ⎈  ∲", "304502204d78e57e9bce7fc6d3dd61bcd1baaceff2689f9a8efac5bbb8ce59a47f6652120221008bdce60d43916e35db9c8ee889ba2f85acd2a98fa0193cce0a7f9f9d9867aac1"),
        ];
        for (message, signature) in vectors {
            assert!(verify(&public, message.as_bytes(), signature), "{message}");
            assert!(!verify(&public, b"tampered", signature));
        }
    }

    #[test]
    fn full_request_vectors_c_byte_for_byte() {
        let identity = Identity::from_secret_hex(SIN_VECTORS[0].0).unwrap();
        let rows = [
            ("https://test.bitpay.com/invoices/UZjwcYkWAKfTMn9J1yyfs4?token=kQLZ7C9YKPSnMCC4EJwrqRHXuQkLzL1W8DfZCh37DHb", "6f537f8bab7a10e00c2dedd029d1e7d4d269026be9cd130447805ca6cb64b26f", "304402206b7962204684e2465fe78d9d83c4b54c2fc65d680c3c8946b2ee7767b6e873d3022052dc8ec53fe9dae4dbdb3f0199165aa403be61c20a0641bd4632ff3dc40b8bfa"),
            ("https://test.bitpay.com/tokens", "5efb94b9fba1bc00ca1f3ad980c8b25e5876fa94c4ae3e56922d9913392402a7", "3044022018dcddc8eaa3ee4ee861286118df0f62f24f8833c110ea7fdc89bea4ccc756ec022074bef9adba0dbf22acdf276ad96371d93ce1346fdfc62bff3ce163aaa08328d7"),
            ("https://test.bitpay.com/invoices?token=AKnJyeLF1BjAfgfDbVUzHXk64N1WuDq3R9xtZouQFhSv&dateStart=2024-01-01&dateEnd=2024-01-31&status=complete", "e9e3816b0f02f3c79c69179b8e718bb6023f0685803662895f81662bfa6305c1", "304402206f7cdd064d465d7fd13f2b46e72f6569bdc5dde762132de19dd06c56958921a1022074d0beed07cac303b77d47d8c3a442cd46a7e0c56866c38bc76b24520c4eb033"),
            (r#"https://test.bitpay.com/invoices{"price":10.5,"currency":"USD","orderId":"order-1001","notificationURL":"https://shop.example/ipn","extendedNotifications":true,"token":"AKnJyeLF1BjAfgfDbVUzHXk64N1WuDq3R9xtZouQFhSv"}"#, "dc4cf800abb0ec7342b441d9e4eb5655e2520589c687fc94aa9212d530a42321", "30440220615df0c65f71eb9bd028c813ea0f0d02046cb25bc0bfa2a59f63e3c9b88d2e8c0220719fea97ea284961d3c2c7cc67c3dbbb1d31da2dcc8f84f12eebda6b4701b0c8"),
        ];
        assert_eq!(
            identity.public_key_hex(),
            "02326209e52f6f17e987ec27c56a1321acf3d68088b8fb634f232f12ccbc9a4575"
        );
        for (signed, sha, signature) in rows {
            assert_eq!(hex::encode(Sha256::digest(signed.as_bytes())), sha);
            assert_eq!(identity.sign(signed.as_bytes()), signature, "{signed}");
        }
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let identity = Identity::from_secret_hex(SIN_VECTORS[0].0).unwrap();
        let shown = format!("{identity:?}");
        assert!(shown.contains("(redacted)"));
        assert!(!shown.contains(SIN_VECTORS[0].0));
    }

    #[test]
    fn key_file_is_created_0600_and_refused_when_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bitpay.key");
        let created = Identity::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            Identity::load_or_create(&path).unwrap().sin(),
            created.sin()
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
