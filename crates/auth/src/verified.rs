//! Bearer tokens already verified, remembered a short while so that a caller's next calls
//! skip the signature check: keyed by the token's SHA-256 (the token itself is never
//! kept), bounded in number, never past the token's `exp`, and never longer than
//! [`MAX_AGE`], so that a key dropped from the issuer's JWKS stops being honoured soon.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::principal::Principal;

/// The longest a verification is trusted without checking the signature again.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// The most tokens remembered; past it the expired ones are dropped, then all.
pub const CAPACITY: usize = 4096;

/// A token's SHA-256.
pub type Digest = [u8; 32];

pub fn digest(token: &str) -> Digest {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut bytes = [0; 32];
    bytes.copy_from_slice(digest.as_ref());
    bytes
}

struct Verified {
    principal: Principal,
    until: Instant,
}

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<Digest, Verified>>,
}

impl VerifiedTokens {
    /// The principal of a token verified less than [`MAX_AGE`] ago and not expired since.
    pub fn get(&self, digest: &Digest) -> Option<Principal> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(digest) {
            Some(verified) if verified.until > Instant::now() => Some(verified.principal.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers a token just verified, whose `exp` claim is `expires_at` (Unix seconds).
    pub fn put(&self, digest: Digest, principal: Principal, expires_at: u64) {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let Some(left) = Duration::from_secs(expires_at).checked_sub(now_unix) else {
            return;
        };
        let now = Instant::now();
        let until = now.checked_add(left.min(MAX_AGE)).unwrap_or(now);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            let now = Instant::now();
            entries.retain(|_, verified| verified.until > now);
            // A sweep that freed little would run again at the next insert, over the whole
            // map and under the lock every call takes: start afresh instead.
            if entries.len() > CAPACITY * 3 / 4 {
                entries.clear();
            }
        }
        entries.insert(digest, Verified { principal, until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalSource;

    fn principal(subject: &str) -> Principal {
        Principal {
            subject: subject.to_owned(),
            client_id: None,
            scopes: vec!["*".to_owned()],
            source: PrincipalSource::Jwt,
            ..Principal::default()
        }
    }

    fn unix_in(seconds: u64) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + seconds
    }

    #[tokio::test(start_paused = true)]
    async fn a_verified_token_is_remembered_at_most_max_age() {
        let tokens = VerifiedTokens::default();
        let key = digest("a.b.c");
        tokens.put(key, principal("alice"), unix_in(3600));
        assert_eq!(tokens.get(&key).map(|p| p.subject), Some("alice".into()));
        assert!(tokens.get(&digest("a.b.d")).is_none(), "another token");
        tokio::time::advance(MAX_AGE).await;
        assert!(tokens.get(&key).is_none(), "checked again after MAX_AGE");
    }

    #[tokio::test(start_paused = true)]
    async fn never_past_the_tokens_expiry() {
        let tokens = VerifiedTokens::default();
        let soon = digest("soon");
        tokens.put(soon, principal("bob"), unix_in(2));
        assert!(tokens.get(&soon).is_some());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(
            tokens.get(&soon).is_none(),
            "expired: verified (and refused) anew"
        );
        let past = digest("past");
        tokens.put(past, principal("carol"), unix_in(0).saturating_sub(1));
        assert!(
            tokens.get(&past).is_none(),
            "an expired token is not remembered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_number_remembered_is_bounded() {
        let tokens = VerifiedTokens::default();
        for n in 0..CAPACITY + 10 {
            tokens.put(digest(&n.to_string()), principal("dan"), unix_in(3600));
        }
        let len = tokens.entries.lock().unwrap().len();
        assert!(len <= CAPACITY, "{len}");
        assert!(tokens.get(&digest(&(CAPACITY + 9).to_string())).is_some());
    }
}
