//! Who is calling: the identity the auth layer puts in request extensions for handlers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::tenancy::EndUser;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalSource {
    /// A verified bearer JWT.
    #[default]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// `sub` of the token, or the certificate identity.
    pub subject: String,
    /// `azp` (else `client_id`) of the token: the application acting for the subject.
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub source: PrincipalSource,
    /// The tenant it acts for (`auth.tenants`); none when it is listed in no tenant.
    pub tenant: Option<Arc<str>>,
    /// The end user its tenant binds its requests to, when the tenant names a claim.
    pub end_user: Option<EndUser>,
    /// The token's claims that tenants bind end users with (and no other).
    pub claims: BTreeMap<String, String>,
}

impl Principal {
    /// The caller of a request, when the auth layer identified one.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Principal> {
        request.extensions().get::<Principal>()
    }

    /// The key space of a request's caller: its principal's [`Principal::key`], or one
    /// shared space when the service runs without the auth layer.
    pub fn key_of<T>(request: &tonic::Request<T>) -> String {
        Self::key_or_anonymous(Self::of(request))
    }

    /// Who the caller is as a person, `source:subject`, whatever its tenant or application:
    /// what four eyes compare, and the key its calls were counted under before tenants and
    /// applications were part of it ([`Principal::key`]).
    pub fn person(&self) -> String {
        format!("{}:{}", self.source, self.subject)
    }

    /// [`Principal::key`], or the one shared space of calls that reached the service
    /// without the auth layer.
    pub fn key_or_anonymous(principal: Option<&Principal>) -> String {
        principal.map_or_else(|| "anonymous".to_owned(), Principal::key)
    }

    /// The caller's identity, `[tenant/]source:subject[@application]`: the same on every
    /// connection, the key its rate limits and idempotency keys are counted under. Two
    /// applications acting for one subject, or one subject in two tenants, share nothing.
    /// Each part is escaped, so that no subject can spell another caller's key.
    pub fn key(&self) -> String {
        let mut key = String::new();
        if let Some(tenant) = &self.tenant {
            key.push_str(&escape(tenant));
            key.push('/');
        }
        key.push_str(&format!("{}:{}", self.source, escape(&self.subject)));
        if let Some(client) = &self.client_id {
            key.push('@');
            key.push_str(&escape(client));
        }
        key
    }
}

/// The tenant a [`Principal::key`] acts for, as it was named in `auth.tenants`. A key made
/// before tenants (`source:subject`, its subject unescaped) has none, even when its subject
/// holds a `/` (a SPIFFE identity): an escaped tenant never holds a `:`.
pub fn tenant_of_key(key: &str) -> Option<String> {
    let (tenant, _) = key.split_once('/')?;
    (!tenant.contains(':')).then(|| unescape(tenant))
}

fn unescape(part: &str) -> String {
    part.replace("%2F", "/")
        .replace("%40", "@")
        .replace("%3A", ":")
        .replace("%25", "%")
}

/// `%`, `/`, `@` and `:` percent-encoded: the separators of [`Principal::key`].
fn escape(part: &str) -> String {
    part.replace('%', "%25")
        .replace('/', "%2F")
        .replace('@', "%40")
        .replace(':', "%3A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_applications_and_tenants_apart() {
        let alice = Principal {
            subject: "alice".into(),
            ..Principal::default()
        };
        assert_eq!(
            alice.key(),
            "jwt:alice",
            "unchanged without tenant or application"
        );
        let app = Principal {
            client_id: Some("billing".into()),
            ..alice.clone()
        };
        assert_eq!(app.key(), "jwt:alice@billing");
        let tenant = Principal {
            tenant: Some(Arc::from("acme")),
            ..app.clone()
        };
        assert_eq!(tenant.key(), "acme/jwt:alice@billing");
        let forged = Principal {
            subject: "alice@billing".into(),
            ..alice
        };
        assert_ne!(
            forged.key(),
            app.key(),
            "a subject cannot spell an application"
        );
        assert_eq!(tenant_of_key(&tenant.key()).as_deref(), Some("acme"));
        assert_eq!(tenant_of_key(&app.key()), None);
        let odd = Principal {
            tenant: Some(Arc::from("a/b@c%d")),
            subject: "x/y".into(),
            ..Principal::default()
        };
        assert_eq!(tenant_of_key(&odd.key()).as_deref(), Some("a/b@c%d"));
        let colon = Principal {
            tenant: Some(Arc::from("bank:a")),
            ..Principal::default()
        };
        assert_eq!(tenant_of_key(&colon.key()).as_deref(), Some("bank:a"));
        assert_eq!(
            tenant_of_key("mtls:spiffe://cluster.local/ns/a/sa/b"),
            None,
            "a key made before tenants"
        );
        assert_eq!(
            app.person(),
            "jwt:alice",
            "the person, whatever its application"
        );
    }
}
