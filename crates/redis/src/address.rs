//! Where the shared Redis is, from its URL: one server (`redis://`, `rediss://` for TLS) or
//! a primary Sentinel names (`redis+sentinel://` and `rediss+sentinel://`). A URL may
//! carry the ACL user and password; neither ever reaches an error message.

use anyhow::Context as _;
use percent_encoding::percent_decode_str;
use redis::{ConnectionInfo, IntoConnectionInfo as _, RedisConnectionInfo};

/// What a URL names.
#[derive(Debug)]
pub(crate) enum Target {
    /// One server, with its TLS and credentials.
    Direct(ConnectionInfo),
    /// The primary the sentinels name `master`, reached with `node`'s credentials; the
    /// sentinels are asked with `sentinel`'s.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master: String,
        tls: bool,
        node: RedisConnectionInfo,
        sentinel: RedisConnectionInfo,
    },
}

const SENTINEL: &str = "redis+sentinel://";
const SENTINEL_TLS: &str = "rediss+sentinel://";

/// The port of a sentinel written without one.
const SENTINEL_PORT: u16 = 26379;

impl Target {
    pub(crate) fn parse(url: &str) -> anyhow::Result<Target> {
        let sentinel = url
            .strip_prefix(SENTINEL)
            .map(|rest| (rest, false))
            .or_else(|| url.strip_prefix(SENTINEL_TLS).map(|rest| (rest, true)));
        match sentinel {
            Some((rest, tls)) => sentinel_target(rest, tls),
            None => url
                .into_connection_info()
                .map(Target::Direct)
                .map_err(|_| anyhow::anyhow!("not a redis://, rediss:// or redis+sentinel:// URL")),
        }
    }

    /// Whether every sentinel is asked with credentials of its own (a direct URL has none
    /// to ask).
    pub(crate) fn sentinels_authenticated(&self) -> bool {
        match self {
            Target::Direct(_) => true,
            Target::Sentinel { sentinel, .. } => sentinel.password.is_some(),
        }
    }

    /// Whether the connections are TLS.
    pub(crate) fn tls(&self) -> bool {
        match self {
            Target::Direct(info) => matches!(info.addr, redis::ConnectionAddr::TcpTls { .. }),
            Target::Sentinel { tls, .. } => *tls,
        }
    }
}

/// `[user[:password]@]host[:port],host[:port]/master[/db][?sentinel_username=u&sentinel_password=p]`:
/// the credentials before the hosts are the primary's, those of the query the sentinels'.
fn sentinel_target(rest: &str, tls: bool) -> anyhow::Result<Target> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest
        .split_once('/')
        .context("a Sentinel URL names its primary: redis+sentinel://host:26379,.../<name>")?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let sentinels = hosts
        .split(',')
        .map(sentinel_address)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut segments = path.split('/').filter(|segment| !segment.is_empty());
    let master = segments
        .next()
        .context("a Sentinel URL names its primary after the hosts")?
        .to_owned();
    let db = match segments.next() {
        Some(db) => db
            .parse()
            .context("the database after the primary's name is a number")?,
        None => 0,
    };
    let (username, password) = match userinfo {
        Some(userinfo) => credentials(userinfo)?,
        None => (None, None),
    };
    Ok(Target::Sentinel {
        sentinels,
        master,
        tls,
        node: RedisConnectionInfo {
            db,
            username,
            password,
            ..RedisConnectionInfo::default()
        },
        sentinel: sentinel_credentials(query)?,
    })
}

/// The sentinels' credentials from the URL's query; any other parameter is refused, so
/// that a misspelt one does not leave the sentinels unauthenticated unnoticed.
fn sentinel_credentials(query: &str) -> anyhow::Result<RedisConnectionInfo> {
    let mut credentials = RedisConnectionInfo::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Some(decode(value)?);
        match name {
            "sentinel_username" => credentials.username = value,
            "sentinel_password" => credentials.password = value,
            _ => anyhow::bail!(
                "a Sentinel URL's query takes sentinel_username and sentinel_password only"
            ),
        }
    }
    Ok(credentials)
}

fn decode(part: &str) -> anyhow::Result<String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| anyhow::anyhow!("the URL's credentials are not UTF-8"))
}

fn sentinel_address(host: &str) -> anyhow::Result<(String, u16)> {
    anyhow::ensure!(
        !host.is_empty(),
        "a Sentinel URL lists at least one sentinel"
    );
    Ok(match host.rsplit_once(':') {
        Some((name, port)) => (
            name.to_owned(),
            port.parse().context("a sentinel's port is a number")?,
        ),
        None => (host.to_owned(), SENTINEL_PORT),
    })
}

/// `user:password`, `:password` or `user`, percent-decoded as in any URL.
fn credentials(userinfo: &str) -> anyhow::Result<(Option<String>, Option<String>)> {
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
    Ok((user, password.map(decode).transpose()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_their_sentinels_primary_and_credentials() {
        let url = "rediss+sentinel://pasarela:p%40ss@s1:5000,s2/payments/2\
                   ?sentinel_username=watcher&sentinel_password=s%26cret";
        let Target::Sentinel {
            sentinels,
            master,
            tls,
            node,
            sentinel,
        } = Target::parse(url).unwrap()
        else {
            panic!("a sentinel target");
        };
        assert_eq!(sentinel.username.as_deref(), Some("watcher"));
        assert_eq!(sentinel.password.as_deref(), Some("s&cret"));
        let unauthenticated = Target::parse("rediss+sentinel://s1/payments").unwrap();
        assert!(!unauthenticated.sentinels_authenticated());
        let misspelt = Target::parse("rediss+sentinel://s1/payments?sentinel_pasword=x");
        assert!(misspelt.is_err(), "an unknown parameter is refused");
        assert_eq!(
            sentinels,
            [("s1".into(), 5000), ("s2".into(), SENTINEL_PORT)]
        );
        assert_eq!(master, "payments");
        assert!(tls);
        assert_eq!(node.db, 2);
        assert_eq!(node.username.as_deref(), Some("pasarela"));
        assert_eq!(node.password.as_deref(), Some("p@ss"));
    }

    #[test]
    fn direct_urls_keep_their_tls_and_bad_ones_say_nothing_of_their_content() {
        assert!(Target::parse("rediss://:pw@host:6380/0").unwrap().tls());
        assert!(!Target::parse("redis://host:6379/0").unwrap().tls());
        let error = Target::parse("http://user:hunter2@host").unwrap_err();
        assert!(!format!("{error:#}").contains("hunter2"));
        assert!(
            Target::parse("redis+sentinel://s1:26379").is_err(),
            "no primary named"
        );
    }
}
