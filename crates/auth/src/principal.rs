//! Who is calling: the identity the auth layer puts in request extensions for handlers.

use std::fmt;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalSource {
    /// A verified bearer JWT.
    Jwt,
    /// A client certificate listed in `auth.mtls.principals`.
    Mtls,
}

impl fmt::Display for PrincipalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrincipalSource::Jwt => "jwt",
            PrincipalSource::Mtls => "mtls",
        })
    }
}

/// The authenticated caller of one RPC. Handlers read it with
/// `request.extensions().get::<Principal>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` of the token, or the certificate identity.
    pub subject: String,
    /// `client_id` (or `azp`) of the token: the application acting for the subject.
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub source: PrincipalSource,
}

impl Principal {
    /// The key space of a request's caller: its principal's [`Principal::key`], or one
    /// shared space when the service runs without the auth layer.
    pub fn key_of<T>(request: &tonic::Request<T>) -> String {
        request
            .extensions()
            .get::<Principal>()
            .map_or_else(|| "anonymous".to_owned(), Principal::key)
    }

    /// The caller's identity, `source:subject`: the same on every connection, the key its
    /// rate limits and idempotency keys are counted under.
    pub fn key(&self) -> String {
        format!("{}:{}", self.source, self.subject)
    }
}
