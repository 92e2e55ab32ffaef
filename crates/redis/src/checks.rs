//! What a Redis holding payment records must promise, checked at start-up: it never evicts
//! a key to make room (an evicted record is a forgotten payment, and the retry pays again),
//! and it keeps what it acknowledged across a restart (an append-only file).

use anyhow::Context as _;

use crate::Redis;

/// The only eviction policy under which Redis refuses a write rather than drop a key.
const NO_EVICTION: &str = "noeviction";

impl Redis {
    /// Refuses a Redis that may evict keys unless `allow_eviction`; warns when it keeps no
    /// append-only file, or when its settings cannot be read (an ACL without `INFO`).
    pub async fn check_durable(&self, allow_eviction: bool) -> anyhow::Result<()> {
        let purpose = self.shared.purpose;
        let Some(memory) = self.info("memory").await else {
            tracing::warn!(
                purpose,
                "cannot read the redis eviction policy (INFO memory): make sure it is noeviction"
            );
            return Ok(());
        };
        let policy = field(&memory, "maxmemory_policy").unwrap_or_default();
        if policy != NO_EVICTION {
            anyhow::ensure!(
                allow_eviction,
                "the {purpose} redis evicts keys under memory pressure (maxmemory-policy \
                 {policy}): an evicted record is a forgotten payment; set maxmemory-policy \
                 noeviction, or allow_eviction = true to accept the risk"
            );
            tracing::warn!(
                purpose,
                policy,
                "the redis may evict records (allow_eviction = true)"
            );
        }
        match self.info("persistence").await {
            Some(persistence) if field(&persistence, "aof_enabled") != Some("1") => {
                tracing::warn!(
                    purpose,
                    "the redis keeps no append-only file: a restart may forget acknowledged records"
                );
            }
            Some(_) => {}
            None => tracing::warn!(
                purpose,
                "cannot read the redis persistence settings (INFO persistence)"
            ),
        }
        Ok(())
    }

    async fn info(&self, section: &str) -> Option<String> {
        let mut connection = self.connection();
        redis::cmd("INFO")
            .arg(section)
            .query_async::<String>(&mut connection)
            .await
            .context("INFO")
            .ok()
    }
}

/// `name:value` lines of an `INFO` answer.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_name() {
        let info = "# Memory\r\nused_memory:100\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(field(info, "maxmemory_policy"), Some("allkeys-lru"));
        assert_eq!(field(info, "used"), None);
    }
}
