//! A provider's base URL, parsed once at start-up: each call's URL is the base with the
//! operation's path appended, so the scheme and host (IDNA included) are not parsed again
//! on every call.

use anyhow::Context as _;
use reqwest::Url;

#[derive(Debug, Clone)]
pub struct BaseUrl {
    url: Url,
    /// The base's own path, without its trailing slash.
    prefix: String,
}

impl BaseUrl {
    /// `setting` names the configuration key in the error.
    pub fn parse(text: &str, setting: &str) -> anyhow::Result<Self> {
        let url = Url::parse(text).with_context(|| format!("{setting} {text:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https") && url.has_host(),
            "{setting} must be an http(s) URL with a host, not {text:?}"
        );
        anyhow::ensure!(
            url.query().is_none() && url.fragment().is_none(),
            "{setting} must have no query or fragment: {text:?}"
        );
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(Self { url, prefix })
    }

    /// The URL of `path` (which starts with `/`) under the base.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        url.set_path(&format!("{}{path}", self.prefix));
        url
    }

    /// The base as configured, without its trailing slash.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_appended_to_the_base_path() {
        let base = BaseUrl::parse("https://apis.dev.example.co/api/", "base_url").unwrap();
        assert_eq!(
            base.join("/user/password/status").as_str(),
            "https://apis.dev.example.co/api/user/password/status"
        );
        let bare = BaseUrl::parse("http://127.0.0.1:8080", "base_url").unwrap();
        assert_eq!(bare.join("/a/b").as_str(), "http://127.0.0.1:8080/a/b");
        assert_eq!(bare.as_str(), "http://127.0.0.1:8080");
    }

    #[test]
    fn only_http_urls_with_a_host_are_bases() {
        for bad in ["ftp://x/", "not a url", "http://x/?q=1", "unix:/tmp/s"] {
            assert!(BaseUrl::parse(bad, "base_url").is_err(), "{bad}");
        }
    }
}
