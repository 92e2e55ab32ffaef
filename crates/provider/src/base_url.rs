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
    /// `setting` names the configuration key in the error; the URL itself is not echoed
    /// (it may carry credentials).
    pub fn parse(text: &str, setting: &str) -> anyhow::Result<Self> {
        let url = Url::parse(text).with_context(|| format!("{setting} is not a URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https") && url.has_host(),
            "{setting} must be an http(s) URL with a host"
        );
        anyhow::ensure!(
            url.query().is_none() && url.fragment().is_none(),
            "{setting} must have no query or fragment"
        );
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(Self { url, prefix })
    }

    /// The URL of `path` (which starts with `/`, and may end in a `?query` a provider's
    /// environment wants) under the base.
    pub fn join(&self, path: &str) -> Url {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.url.clone();
        url.set_path(&format!("{}{path}", self.prefix));
        url.set_query(query);
        url
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
        assert_eq!(
            bare.join("/a?env=qa").as_str(),
            "http://127.0.0.1:8080/a?env=qa",
            "a query in a configured path stays a query"
        );
    }

    #[test]
    fn a_bad_base_url_is_not_echoed() {
        let error = BaseUrl::parse("ftp://user:secret@x/", "base_url").unwrap_err();
        assert!(!format!("{error:#}").contains("secret"), "{error:#}");
    }

    #[test]
    fn only_http_urls_with_a_host_are_bases() {
        for bad in ["ftp://x/", "not a url", "http://x/?q=1", "unix:/tmp/s"] {
            assert!(BaseUrl::parse(bad, "base_url").is_err(), "{bad}");
        }
    }
}
