//! The bureau section of pasarela's configuration: where Kiban lives, pasarela's API key
//! for it, and whether that deployment is Kiban's sandbox.

use pasarela_provider::Credential;
pub use pasarela_provider::Environment;
use pasarela_provider::outbound::OutboundSettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Kiban's base URL: `https://link.kiban.com` in production,
    /// `https://sandbox.link.kiban.com` in Kiban's sandbox. Required: Kiban's public material
    /// names more than one host, so no default could be trusted.
    pub base_url: String,
    /// pasarela's Kiban API key, sent in `api_key_header` on every call.
    pub api_key: Credential,
    /// Which Kiban environment `base_url` is: production (real answers, every call billed,
    /// no test cases) or the sandbox (answers from test cases selected by `testCaseId`);
    /// test cases are forwarded to the sandbox only.
    #[serde(default)]
    pub environment: Environment,
    /// Path of the company password-expiry operation, relative to `base_url`.
    #[serde(default = "defaults::path")]
    pub path: String,
    /// Header carrying the API key.
    #[serde(default = "defaults::api_key_header")]
    pub api_key_header: String,
    /// Transport (timeouts, CA), retries and breaker of the Kiban client.
    #[serde(default)]
    pub outbound: OutboundSettings,
}

/// The default path of the password-expiry service.
pub fn default_path() -> String {
    defaults::path()
}

mod defaults {
    pub fn path() -> String {
        "/api/v1/password-expiry-date-bc-pm".into()
    }

    pub fn api_key_header() -> String {
        "x-api-key".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_wiring_is_enough() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:1",
            "api_key": "k",
            "environment": "sandbox",
        }))
        .expect("config");
        assert_eq!(config.environment, Environment::Sandbox);
        assert_eq!(config.path, "/api/v1/password-expiry-date-bc-pm");
        assert_eq!(config.api_key_header, "x-api-key");
    }

    #[test]
    fn production_is_the_default_and_typos_are_refused() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "base_url": "https://link.kiban.com",
            "api_key": "k",
        }))
        .expect("config");
        assert_eq!(config.environment, Environment::Production);
        let typo = serde_json::from_value::<Config>(serde_json::json!({
            "base_url": "https://link.kiban.com",
            "api_key": "k",
            "enviroment": "sandbox",
        }));
        assert!(typo.is_err());
    }

    #[test]
    fn the_api_key_is_not_printed() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "base_url": "https://link.kiban.com",
            "api_key": "very-secret-key",
        }))
        .expect("config");
        assert!(!format!("{config:?}").contains("very-secret-key"));
    }
}
