//! The request journal: every call an emulator received, as it arrived (method, path, query
//! string, headers, body), so that a test can compare what a client actually put on the
//! wire with the provider's documented examples. Bounded: the oldest calls go first.

use std::collections::VecDeque;

use serde::Serialize;

use crate::faults::Provider;

/// Calls kept; a long-running standalone sandbox must not grow without end.
pub const CAPACITY: usize = 1000;

/// One call as received, before any fault or emulator acted on it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Order of arrival across every provider, from 1.
    pub seq: u64,
    pub provider: Provider,
    pub method: String,
    /// The router's pattern (`/security-management/v1/channelholds/{ident_serial_num}`), or
    /// the path when no route matched: the key the call counts use.
    pub route: String,
    pub path: String,
    /// The raw query string, undecoded (empty when there is none), so casing and order
    /// stay as sent.
    pub query: String,
    /// Every header in the order received, names as the HTTP stack gives them (lower case).
    pub headers: Vec<(String, String)>,
    /// The body as text (bytes that are not UTF-8 replaced), empty when there is none.
    pub body: String,
}

/// The calls received so far, oldest first.
#[derive(Debug, Default)]
pub struct Journal {
    next_seq: u64,
    entries: VecDeque<Entry>,
}

impl Journal {
    /// Records `entry` under the next sequence number, dropping the oldest past [`CAPACITY`].
    pub fn record(&mut self, mut entry: Entry) {
        self.next_seq += 1;
        entry.seq = self.next_seq;
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// The calls of `provider` (of every provider when `None`), oldest first.
    pub fn entries(&self, provider: Option<Provider>) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|entry| provider.is_none_or(|p| entry.provider == p))
            .cloned()
            .collect()
    }

    /// Forgets every call; sequence numbers keep growing, so none is ever reused.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(provider: Provider, path: &str) -> Entry {
        Entry {
            seq: 0,
            provider,
            method: "GET".into(),
            route: path.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    #[test]
    fn entries_are_numbered_filtered_and_bounded() {
        let mut journal = Journal::default();
        journal.record(entry(Provider::Bcs, "/a"));
        journal.record(entry(Provider::Kiban, "/b"));
        let bcs = journal.entries(Some(Provider::Bcs));
        assert_eq!((bcs.len(), bcs[0].seq, bcs[0].path.as_str()), (1, 1, "/a"));
        assert_eq!(journal.entries(None).len(), 2);
        for _ in 0..CAPACITY {
            journal.record(entry(Provider::Daviplata, "/c"));
        }
        let all = journal.entries(None);
        assert_eq!(all.len(), CAPACITY);
        assert!(all.iter().all(|e| e.path == "/c"), "the oldest went first");
        journal.clear();
        journal.record(entry(Provider::Bcs, "/d"));
        assert_eq!(journal.entries(None)[0].seq, CAPACITY as u64 + 3);
    }
}
