//! The HMACs that make what pasarela keeps in a shared store tamper-evident: each record is
//! sealed to the key it lives under (a forged, altered or moved record is never replayed),
//! and request fingerprints are keyed, so that whoever reads the store cannot test guesses
//! of a request's secrets (a 6-digit OTP) offline.

use std::sync::Arc;
use std::time::Duration;

use pasarela_provider::{Credential, Keyring};
use ring::hmac;

/// Shortest secret accepted: RFC 2104 asks for a key at least as long as the hash.
pub const MIN_KEY_BYTES: usize = 32;

/// A sealed value reads `v1.<hex HMAC>.<record>`; the version lets a future seal coexist.
const VERSION: &str = "v1";

/// The seals of one record key: its keyring (the first line seals, every line opens, a
/// replaced key opens for an overlap window), so that the key rotates without a restart
/// and without orphaning what was sealed under the old one.
#[derive(Clone)]
pub struct Seal {
    ring: Arc<Keyring<Pair>>,
}

/// The two keys of one secret, derived so that a fingerprint can never pass for a
/// record's seal.
pub struct Pair {
    records: hmac::Key,
    fingerprints: hmac::Key,
}

/// A value whose seal does not match its content and key: forged, altered, moved from
/// another key, or sealed under another secret.
#[derive(Debug, thiserror::Error)]
#[error("the record's seal does not match")]
pub struct Broken;

/// A request's fingerprint under the signing key, and under the keys that still verify:
/// a retry after a rotation matches the record its first try wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// What a new record keeps.
    pub current: String,
    others: Vec<String>,
}

impl Fingerprint {
    /// Whether a record's fingerprint is this request's, under any key that verifies.
    pub fn matches(&self, recorded: &str) -> bool {
        self.current == recorded || self.others.iter().any(|print| print == recorded)
    }
}

impl From<String> for Fingerprint {
    fn from(current: String) -> Self {
        Self {
            current,
            others: Vec::new(),
        }
    }
}

impl Seal {
    /// Seals under the keyring in `record_key` (each key at least [`MIN_KEY_BYTES`]); a
    /// key that leaves it keeps opening records for `overlap`.
    pub fn new(record_key: Credential, overlap: Duration) -> anyhow::Result<Self> {
        let ring = Keyring::new(
            record_key,
            overlap,
            MIN_KEY_BYTES,
            derive,
            "idempotency.record_key",
        )?;
        Ok(Self {
            ring: Arc::new(ring),
        })
    }

    /// Keys of this process alone: for a store no other process reads (memory).
    pub fn random() -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let secret: [u8; MIN_KEY_BYTES] = ring::rand::generate(&rng)
            .map_err(|_| anyhow::anyhow!("no randomness for the record key"))?
            .expose();
        Self::new(Credential::fixed(hex::encode(secret)), Duration::ZERO)
    }

    /// A digest of everything that makes two requests "the same": the operation and the
    /// encoded request without its idempotency key.
    pub fn fingerprint(
        &self,
        operation: &str,
        request_without_key: &impl prost::Message,
    ) -> Fingerprint {
        let encoded = request_without_key.encode_to_vec();
        let keys = self.ring.keys();
        let print = |pair: &Pair| {
            let mut context = hmac::Context::with_key(&pair.fingerprints);
            context.update(operation.as_bytes());
            context.update(&[0]);
            context.update(&encoded);
            hex::encode(context.sign().as_ref())
        };
        Fingerprint {
            current: print(&keys.signing),
            others: keys.verifying.iter().skip(1).map(print).collect(),
        }
    }

    /// `record` sealed to the store key it is written under.
    pub fn seal(&self, key: &str, record: &str) -> String {
        let tag = hmac::sign(&self.ring.keys().signing.records, &signed(key, record));
        format!("{VERSION}.{}.{record}", hex::encode(tag.as_ref()))
    }

    /// The record inside `value`, if its seal is one of this keyring's (compared in
    /// constant time).
    pub fn open<'a>(&self, key: &str, value: &'a str) -> Result<&'a str, Broken> {
        let rest = value
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(Broken)?;
        let (tag, record) = rest.split_once('.').ok_or(Broken)?;
        let tag = hex::decode(tag).map_err(|_| Broken)?;
        let signed = signed(key, record);
        let keys = self.ring.keys();
        keys.verifying
            .iter()
            .any(|pair| hmac::verify(&pair.records, &signed, &tag).is_ok())
            .then_some(record)
            .ok_or(Broken)
    }
}

fn derive(secret: &[u8]) -> Pair {
    let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let derive = |purpose: &str| {
        hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&root, purpose.as_bytes()).as_ref(),
        )
    };
    Pair {
        records: derive("pasarela idempotency records"),
        fingerprints: derive("pasarela idempotency fingerprints"),
    }
}

/// What a seal covers: the key, then the record.
fn signed(key: &str, record: &str) -> Vec<u8> {
    let mut signed = Vec::with_capacity(key.len() + 1 + record.len());
    signed.extend_from_slice(key.as_bytes());
    signed.push(0);
    signed.extend_from_slice(record.as_bytes());
    signed
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a record key of thirty-two bytes or more";

    fn seal_of(secret: &str) -> Seal {
        Seal::new(Credential::fixed(secret.into()), Duration::ZERO).unwrap()
    }

    #[test]
    fn a_sealed_record_opens_under_its_key_only() {
        let seal = seal_of(SECRET);
        let value = seal.seal("k:1", r#"{"state":"done"}"#);
        assert_eq!(seal.open("k:1", &value).unwrap(), r#"{"state":"done"}"#);
        assert!(seal.open("k:2", &value).is_err(), "moved to another key");
        let altered = value.replace("done", "dune");
        assert!(seal.open("k:1", &altered).is_err(), "altered");
        assert!(seal.open("k:1", r#"{"state":"done"}"#).is_err(), "unsealed");
        let other = seal_of("another secret, thirty-two bytes long");
        assert!(other.open("k:1", &value).is_err(), "another secret");
    }

    #[test]
    fn fingerprints_are_keyed_and_apart_from_seals() {
        let (seal, other) = (seal_of(SECRET), Seal::random().unwrap());
        let request = prost_types::Timestamp {
            seconds: 123_456,
            nanos: 0,
        };
        let print = seal.fingerprint("withdraw", &request);
        assert_eq!(print, seal.fingerprint("withdraw", &request));
        assert_ne!(print, other.fingerprint("withdraw", &request));
        assert_ne!(print, seal.fingerprint("charge", &request));
        assert!(!seal.seal("withdraw", "").contains(&print.current));
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(Seal::new(Credential::fixed("short".into()), Duration::ZERO).is_err());
    }

    #[test]
    fn records_and_fingerprints_of_the_old_key_still_match_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("record-key");
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        let credential = Credential::from_file(file.clone()).unwrap();
        let seal = Seal::new(credential.clone(), Duration::from_secs(3600)).unwrap();
        let request = prost_types::Timestamp {
            seconds: 7,
            nanos: 0,
        };
        let before = seal.seal("k:1", "{}");
        let first_print = seal.fingerprint("charge", &request).current;

        std::fs::write(&file, "a new record key, thirty-two bytes or more\n").unwrap();
        credential.look_again();
        let after = seal.seal("k:1", "{}");
        assert_ne!(before, after, "the new key seals");
        assert_eq!(
            seal.open("k:1", &before).unwrap(),
            "{}",
            "the old key still opens"
        );
        let retry = seal.fingerprint("charge", &request);
        assert_ne!(retry.current, first_print);
        assert!(
            retry.matches(&first_print),
            "a retry across the rotation is the same call"
        );

        let unrotated = seal_of("a new record key, thirty-two bytes or more");
        assert!(unrotated.open("k:1", &before).is_err());
        assert!(
            !unrotated
                .fingerprint("charge", &request)
                .matches(&first_print)
        );
    }
}
