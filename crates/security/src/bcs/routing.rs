//! Where each Banco Caja Social operation is sent and how its credentials travel: the
//! bank's base URL, or another for an operation that lives on another host (the spec
//! prints a CloudHub host for its camelCase paths and `apis.{env}` for the rest), and the
//! header family of its client id, secret and token (S8, S9 and S16 print none).

use std::collections::BTreeMap;

use pasarela_provider::BaseUrl;

use crate::config::Config;

/// Which headers carry pasarela's credentials. The spec names them three ways: the
/// MuleSoft `X-Security-*` family (S1-S7, S10-S13), the same with the token in
/// `Authorization: Bearer` (S17), and the gateway's `client_id`, `client_secret` and
/// `Authorization: Bearer` (S14, S15, S18, S19). S8, S9 and S16 print none: their family is
/// a guess, and a setting (`security.credential_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialFamily {
    Mule,
    MuleBearer,
    Gateway,
}

/// The header names of one family.
#[derive(Debug)]
pub struct Credentials {
    pub id: &'static str,
    pub secret: &'static str,
    pub token: &'static str,
    pub bearer: bool,
}

impl CredentialFamily {
    pub fn headers(self) -> &'static Credentials {
        match self {
            CredentialFamily::Mule => &Credentials {
                id: "X-Security-ClientID",
                secret: "X-Security-ClientSecret",
                token: "X-Security-Token",
                bearer: false,
            },
            CredentialFamily::MuleBearer => &Credentials {
                id: "X-Security-ClientID",
                secret: "X-Security-ClientSecret",
                token: "Authorization",
                bearer: true,
            },
            CredentialFamily::Gateway => &Credentials {
                id: "client_id",
                secret: "client_secret",
                token: "Authorization",
                bearer: true,
            },
        }
    }
}

/// The routes of the 19 operations, from `security.base_url`, `security.base_urls` and
/// `security.credential_headers`.
#[derive(Debug)]
pub struct Routes {
    base_url: BaseUrl,
    base_urls: BTreeMap<String, BaseUrl>,
    families: BTreeMap<String, CredentialFamily>,
}

impl Routes {
    /// Every key of the per-operation settings must be one of `operations`.
    pub fn new(config: &Config, operations: &[&str]) -> anyhow::Result<Self> {
        let known = |setting: &str, name: &String| {
            anyhow::ensure!(
                operations.contains(&name.as_str()),
                "security.{setting}.{name}: no such operation (one of {})",
                operations.join(", ")
            );
            Ok(())
        };
        let mut base_urls = BTreeMap::new();
        for (name, url) in &config.base_urls {
            known("base_urls", name)?;
            let key = format!("security.base_urls.{name}");
            base_urls.insert(name.clone(), BaseUrl::parse(url, &key)?);
        }
        for name in config.credential_headers.keys() {
            known("credential_headers", name)?;
        }
        Ok(Self {
            base_url: BaseUrl::parse(&config.base_url, "security.base_url")?,
            base_urls,
            families: config.credential_headers.clone(),
        })
    }

    /// The base URL `operation` is sent under.
    pub fn base_url(&self, operation: &str) -> &BaseUrl {
        self.base_urls.get(operation).unwrap_or(&self.base_url)
    }

    /// The headers `operation`'s credentials travel in: configured, else `default`.
    pub fn family(&self, operation: &str, default: CredentialFamily) -> CredentialFamily {
        self.families.get(operation).copied().unwrap_or(default)
    }
}
