//! The HMACs that make what pasarela keeps in a shared store tamper-evident: each record is
//! sealed to the key it lives under (a forged, altered or moved record is never replayed),
//! and request fingerprints are keyed, so that whoever reads the store cannot test guesses
//! of a request's secrets (a 6-digit OTP) offline.

use ring::hmac;

/// Shortest secret accepted: RFC 2104 asks for a key at least as long as the hash.
pub const MIN_KEY_BYTES: usize = 32;

/// A sealed value reads `v1.<hex HMAC>.<record>`; the version lets a future seal coexist.
const VERSION: &str = "v1";

/// The two keys, derived from one configured secret so that a fingerprint can never pass
/// for a record's seal.
#[derive(Clone)]
pub struct Seal {
    records: hmac::Key,
    fingerprints: hmac::Key,
}

/// A value whose seal does not match its content and key: forged, altered, moved from
/// another key, or sealed under another secret.
#[derive(Debug, thiserror::Error)]
#[error("the record's seal does not match")]
pub struct Broken;

impl Seal {
    /// Keys derived from `secret` (at least [`MIN_KEY_BYTES`]).
    pub fn new(secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= MIN_KEY_BYTES,
            "idempotency.record_key must be at least {MIN_KEY_BYTES} bytes"
        );
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive = |purpose: &str| {
            hmac::Key::new(
                hmac::HMAC_SHA256,
                hmac::sign(&root, purpose.as_bytes()).as_ref(),
            )
        };
        Ok(Self {
            records: derive("pasarela idempotency records"),
            fingerprints: derive("pasarela idempotency fingerprints"),
        })
    }

    /// Keys of this process alone: for a store no other process reads (memory).
    pub fn random() -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let secret: [u8; MIN_KEY_BYTES] = ring::rand::generate(&rng)
            .map_err(|_| anyhow::anyhow!("no randomness for the record key"))?
            .expose();
        Self::new(&secret)
    }

    /// A digest of everything that makes two requests "the same": the operation and the
    /// encoded request without its idempotency key.
    pub fn fingerprint(
        &self,
        operation: &str,
        request_without_key: &impl prost::Message,
    ) -> String {
        let mut context = hmac::Context::with_key(&self.fingerprints);
        context.update(operation.as_bytes());
        context.update(&[0]);
        context.update(&request_without_key.encode_to_vec());
        hex::encode(context.sign().as_ref())
    }

    /// `record` sealed to the store key it is written under.
    pub fn seal(&self, key: &str, record: &str) -> String {
        let tag = hmac::sign(&self.records, &signed(key, record));
        format!("{VERSION}.{}.{record}", hex::encode(tag.as_ref()))
    }

    /// The record inside `value`, if its seal is this key's (compared in constant time).
    pub fn open<'a>(&self, key: &str, value: &'a str) -> Result<&'a str, Broken> {
        let rest = value
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(Broken)?;
        let (tag, record) = rest.split_once('.').ok_or(Broken)?;
        let tag = hex::decode(tag).map_err(|_| Broken)?;
        hmac::verify(&self.records, &signed(key, record), &tag).map_err(|_| Broken)?;
        Ok(record)
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

    const SECRET: &[u8] = b"a record key of thirty-two bytes or more";

    #[test]
    fn a_sealed_record_opens_under_its_key_only() {
        let seal = Seal::new(SECRET).unwrap();
        let value = seal.seal("k:1", r#"{"state":"done"}"#);
        assert_eq!(seal.open("k:1", &value).unwrap(), r#"{"state":"done"}"#);
        assert!(seal.open("k:2", &value).is_err(), "moved to another key");
        let altered = value.replace("done", "dune");
        assert!(seal.open("k:1", &altered).is_err(), "altered");
        assert!(seal.open("k:1", r#"{"state":"done"}"#).is_err(), "unsealed");
        let other = Seal::new(b"another secret, thirty-two bytes long").unwrap();
        assert!(other.open("k:1", &value).is_err(), "another secret");
    }

    #[test]
    fn fingerprints_are_keyed_and_apart_from_seals() {
        let (seal, other) = (Seal::new(SECRET).unwrap(), Seal::random().unwrap());
        let request = prost_types::Timestamp {
            seconds: 123_456,
            nanos: 0,
        };
        let print = seal.fingerprint("withdraw", &request);
        assert_eq!(print, seal.fingerprint("withdraw", &request));
        assert_ne!(print, other.fingerprint("withdraw", &request));
        assert_ne!(print, seal.fingerprint("charge", &request));
        assert!(!seal.seal("withdraw", "").contains(&print));
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(Seal::new(b"short").is_err());
    }
}
