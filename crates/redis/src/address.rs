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
    /// The primary the sentinels name `master`, reached with `node`'s credentials.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master: String,
        tls: bool,
        node: RedisConnectionInfo,
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

    /// Whether the connections are TLS.
    pub(crate) fn tls(&self) -> bool {
        match self {
            Target::Direct(info) => matches!(info.addr, redis::ConnectionAddr::TcpTls { .. }),
            Target::Sentinel { tls, .. } => *tls,
        }
    }
}

/// `[user[:password]@]host[:port],host[:port]/master[/db]`.
fn sentinel_target(rest: &str, tls: bool) -> anyhow::Result<Target> {
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
    })
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
    let decode = |part: &str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| anyhow::anyhow!("the URL's credentials are not UTF-8"))
    };
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
        let Target::Sentinel {
            sentinels,
            master,
            tls,
            node,
        } = Target::parse("rediss+sentinel://pasarela:p%40ss@s1:5000,s2/payments/2").unwrap()
        else {
            panic!("a sentinel target");
        };
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
