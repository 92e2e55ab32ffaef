//! Client certificates as identities: the identity a verified certificate carries, and the
//! principals configuration makes of them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

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
    spiffe.or_else(|| Some(cert.subject().to_string()).filter(|s| !s.is_empty()))
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(uri: Option<&str>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["billing.internal".to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "billing");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "acme");
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
}
