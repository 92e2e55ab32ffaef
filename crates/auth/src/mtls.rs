//! Client certificates as identities: the identity a verified certificate carries, and the
//! principals configuration makes of them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate, X509Name};

use crate::config::MtlsSettings;
use crate::principal::{Principal, PrincipalSource};

/// The identity of a certificate: its SPIFFE URI SAN, else its subject (`CN=..., O=...`).
pub fn certificate_identity(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let spiffe = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some((*uri).to_owned()),
                _ => None,
            })
        });
    spiffe.or_else(|| subject_identity(cert.subject()))
}

/// A subject as configuration names it (`CN=billing, O=acme`), every value escaped as
/// RFC 4514 says: no value can pass for another attribute (a single CN of
/// `billing, O=acme` is `CN=billing\, O=acme`, not the identity `CN=billing, O=acme`).
fn subject_identity(name: &X509Name) -> Option<String> {
    let registry = oid_registry();
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = oid2abbrev(attr.attr_type(), registry)
                        .map(str::to_owned)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = match attr.as_str() {
                        Ok(text) => escape_value(text),
                        Err(_) => format!("#{}", hex::encode_upper(attr.attr_value().as_bytes())),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let identity = rdns.join(", ");
    (!identity.is_empty()).then_some(identity)
}

/// An attribute value escaped as RFC 4514 (2.4) says: the special characters anywhere, a
/// `#` or a space first, a space last, and NUL.
fn escape_value(value: &str) -> String {
    let count = value.chars().count();
    let mut escaped = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == count && c == ' ');
        match c {
            '\0' => escaped.push_str("\\00"),
            c if special => {
                escaped.push('\\');
                escaped.push(c);
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// The identity `auth.mtls.principals` must list for the certificate in a PEM file.
pub fn certificate_file_identity(path: &Path) -> anyhow::Result<String> {
    let der = CertificateDer::from_pem_file(path)
        .with_context(|| format!("reading a certificate from {}", path.display()))?;
    certificate_identity(&der)
        .with_context(|| format!("{} holds no usable identity", path.display()))
}

/// Certificate identities that stand as principals, with the scopes each is granted.
#[derive(Debug, Clone)]
pub struct CertificatePrincipals(BTreeMap<String, Vec<String>>);

impl CertificatePrincipals {
    pub fn new(settings: &MtlsSettings) -> Self {
        Self(settings.principals.clone())
    }

    /// The identity of the connection's verified client certificate, if it sent one.
    pub fn peer_identity<B>(request: &http::Request<B>) -> Option<String> {
        let info = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()?;
        let certs = info.peer_certs()?;
        certificate_identity(certs.first()?)
    }

    /// The principal a certificate identity stands for, when it is listed.
    pub fn principal(&self, identity: &str) -> Option<Principal> {
        self.0.get(identity).map(|scopes| Principal {
            subject: identity.to_owned(),
            client_id: None,
            scopes: scopes.clone(),
            source: PrincipalSource::Mtls,
            ..Principal::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(uri: Option<&str>) -> Vec<u8> {
        certificate_of("billing", Some("acme"), uri)
    }

    fn certificate_of(common_name: &str, organization: Option<&str>, uri: Option<&str>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["billing.internal".to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        if let Some(organization) = organization {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, organization);
        }
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(uri.try_into().expect("uri")));
        }
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn spiffe_uri_wins_over_the_subject() {
        let der = certificate(Some("spiffe://cluster.local/ns/pay/sa/billing"));
        assert_eq!(
            certificate_identity(&der).as_deref(),
            Some("spiffe://cluster.local/ns/pay/sa/billing")
        );
    }

    #[test]
    fn subject_stands_when_there_is_no_spiffe_uri() {
        let der = certificate(Some("https://billing.example"));
        assert_eq!(
            certificate_identity(&der).as_deref(),
            Some("CN=billing, O=acme")
        );
        assert_eq!(certificate_identity(b"not a certificate"), None);
    }

    #[test]
    fn a_common_name_cannot_pass_for_another_attribute() {
        let forged = certificate_of("billing, O=acme", None, None);
        assert_eq!(
            certificate_identity(&forged).as_deref(),
            Some("CN=billing\\, O\\=acme")
        );
        let odd = certificate_of(" #lead+trail ", None, None);
        assert_eq!(
            certificate_identity(&odd).as_deref(),
            Some("CN=\\ #lead\\+trail\\ ")
        );
    }
}
