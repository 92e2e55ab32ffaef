//! Method patterns and scope rules: which entry of the configuration governs a method
//! path, and whether a principal's scopes satisfy it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::{Config, ReflectionAccess};
use crate::principal::Principal;
use crate::rejection::{Reason, Rejection};

/// Services that serve reflection, whose access `auth.reflection` decides.
const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// A gRPC method path split into its parts: `/pkg.Service/Method`.
#[derive(Debug, Clone, Copy)]
pub struct MethodPath<'a> {
    pub service: &'a str,
    /// `pkg.Service/Method`: the path without its leading `/`, the spelling of
    /// configuration keys and dev scopes.
    pub full: &'a str,
}

impl<'a> MethodPath<'a> {
    /// `None` for anything that is not `/service/method`.
    pub fn parse(path: &'a str) -> Option<Self> {
        let full = path.strip_prefix('/')?;
        let (service, method) = full.split_once('/')?;
        (!service.is_empty() && !method.is_empty() && !method.contains('/'))
            .then_some(Self { service, full })
    }

    /// The configuration keys that may govern this method, most specific first.
    fn keys(&self) -> [&'a str; 3] {
        [self.full, self.service, "*"]
    }
}

/// Patterns (`pkg.Service/Method`, `pkg.Service`, `*`) normalised once: a leading `/` is
/// accepted in configuration and dropped.
pub(crate) fn normalise(pattern: &str) -> String {
    pattern.trim().trim_start_matches('/').to_owned()
}

/// A set of method patterns (the exempt list, a rate-limit group).
#[derive(Debug, Clone)]
pub struct MethodSet(Vec<String>);

impl MethodSet {
    pub fn new(patterns: &[String]) -> Self {
        Self(patterns.iter().map(|p| normalise(p)).collect())
    }

    pub fn contains(&self, path: &MethodPath<'_>) -> bool {
        path.keys()
            .iter()
            .any(|key| self.0.iter().any(|pattern| pattern == key))
    }
}

/// What the auth layer must do with a call before looking at credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Let it through without credentials.
    Exempt,
    /// Refuse it whoever calls.
    Refuse(Reason),
    /// Authenticate, then authorize against the method rules.
    Authenticate,
}

#[derive(Debug, Clone)]
pub struct Policy {
    rules: BTreeMap<String, Vec<String>>,
    exempt: MethodSet,
    reflection: ReflectionAccess,
    superuser_scope: Option<String>,
}

impl Policy {
    pub fn new(config: &Config) -> Self {
        Self {
            rules: config
                .methods
                .iter()
                .map(|(pattern, scopes)| (normalise(pattern), scopes.clone()))
                .collect(),
            exempt: MethodSet::new(&config.exempt),
            reflection: config.reflection,
            superuser_scope: config.superuser_scope.clone(),
        }
    }

    pub fn gate(&self, path: Option<&MethodPath<'_>>) -> Gate {
        let Some(path) = path else {
            return Gate::Authenticate;
        };
        if REFLECTION_SERVICES.contains(&path.service) {
            return match self.reflection {
                ReflectionAccess::Open => Gate::Exempt,
                ReflectionAccess::Closed => Gate::Refuse(Reason::ReflectionClosed),
                ReflectionAccess::Authenticated => Gate::Authenticate,
            };
        }
        if self.exempt.contains(path) {
            Gate::Exempt
        } else {
            Gate::Authenticate
        }
    }

    /// Allowed when the most specific rule for the method exists and every scope it
    /// requires is granted; denied otherwise (default deny).
    pub fn authorize(
        &self,
        path: Option<&MethodPath<'_>>,
        principal: &Principal,
    ) -> Result<(), Rejection> {
        let not_configured = || Rejection::new(Reason::MethodNotConfigured);
        let path = path.ok_or_else(not_configured)?;
        let required = path
            .keys()
            .into_iter()
            .find_map(|key| self.rules.get(key))
            .ok_or_else(not_configured)?;
        let missing: Vec<Cow<'_, str>> = required
            .iter()
            .map(|scope| expand(scope, path))
            .filter(|scope| !self.grants(principal, scope))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Rejection::new(Reason::ScopeMissing)
                .with("method", path.full)
                .with("required_scopes", missing.join(" ")))
        }
    }

    fn grants(&self, principal: &Principal, required: &str) -> bool {
        principal
            .scopes
            .iter()
            .any(|granted| granted == required || Some(granted) == self.superuser_scope.as_ref())
    }
}

/// A required scope with `{method}` and `{service}` replaced by the called method's names
/// (borrowed as configured when it names neither).
fn expand<'s>(scope: &'s str, path: &MethodPath<'_>) -> Cow<'s, str> {
    if !scope.contains('{') {
        return Cow::Borrowed(scope);
    }
    Cow::Owned(
        scope
            .replace("{method}", path.full)
            .replace("{service}", path.service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalSource;

    fn principal(scopes: &[&str]) -> Principal {
        Principal {
            subject: "svc".into(),
            client_id: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            source: PrincipalSource::Jwt,
            ..Principal::default()
        }
    }

    fn policy(rules: &[(&str, &[&str])]) -> Policy {
        Policy::new(&Config {
            methods: rules
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            ..Config::default()
        })
    }

    const PAY: &str = "/pasarela.recurring_payments.v1.RecurringPaymentsService/Charge";
    const CANCEL: &str = "/pasarela.recurring_payments.v1.RecurringPaymentsService/Cancel";
    const BUREAU: &str = "/pasarela.bureau.v1.BureauService/GetPasswordExpiration";

    fn check(policy: &Policy, path: &str, scopes: &[&str]) -> Result<(), Reason> {
        let path = MethodPath::parse(path);
        policy
            .authorize(path.as_ref(), &principal(scopes))
            .map_err(|r| r.reason)
    }

    #[test]
    fn most_specific_rule_wins() {
        let policy = policy(&[
            (
                "pasarela.recurring_payments.v1.RecurringPaymentsService",
                &["payments"],
            ),
            (
                "/pasarela.recurring_payments.v1.RecurringPaymentsService/Charge",
                &["payments", "charge"],
            ),
        ]);
        assert_eq!(check(&policy, CANCEL, &["payments"]), Ok(()));
        assert_eq!(
            check(&policy, PAY, &["payments"]),
            Err(Reason::ScopeMissing)
        );
        assert_eq!(check(&policy, PAY, &["payments", "charge"]), Ok(()));
    }

    #[test]
    fn unconfigured_methods_are_denied() {
        let policy = policy(&[("pasarela.bureau.v1.BureauService", &["bureau"])]);
        assert_eq!(
            check(&policy, PAY, &["bureau"]),
            Err(Reason::MethodNotConfigured)
        );
        assert_eq!(
            check(&policy, "/not-a-path", &["bureau"]),
            Err(Reason::MethodNotConfigured)
        );
    }

    #[test]
    fn dev_policy_requires_each_methods_own_scope_and_star_grants_all() {
        let policy = Policy::new(&Config::dev());
        let own = "pasarela.bureau.v1.BureauService/GetPasswordExpiration";
        assert_eq!(check(&policy, BUREAU, &[own]), Ok(()));
        assert_eq!(check(&policy, PAY, &[own]), Err(Reason::ScopeMissing));
        assert_eq!(check(&policy, PAY, &["*"]), Ok(()));
    }

    #[test]
    fn star_is_literal_without_a_superuser_scope() {
        let policy = policy(&[("*", &["admin"])]);
        assert_eq!(check(&policy, PAY, &["*"]), Err(Reason::ScopeMissing));
    }

    #[test]
    fn health_is_exempt_and_reflection_follows_its_setting() {
        let health = MethodPath::parse("/grpc.health.v1.Health/Check");
        let reflection =
            MethodPath::parse("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
        let mut config = Config::dev();
        assert_eq!(Policy::new(&config).gate(health.as_ref()), Gate::Exempt);
        assert_eq!(Policy::new(&config).gate(reflection.as_ref()), Gate::Exempt);
        config.reflection = ReflectionAccess::Closed;
        assert_eq!(
            Policy::new(&config).gate(reflection.as_ref()),
            Gate::Refuse(Reason::ReflectionClosed)
        );
        config.exempt.clear();
        assert_eq!(
            Policy::new(&config).gate(health.as_ref()),
            Gate::Authenticate
        );
    }

    #[test]
    fn method_paths_parse_strictly() {
        assert!(MethodPath::parse("/a.B/C").is_some());
        for bad in ["a.B/C", "/a.B", "/a.B/", "//C", "/a.B/C/D"] {
            assert!(MethodPath::parse(bad).is_none(), "{bad}");
        }
    }
}
