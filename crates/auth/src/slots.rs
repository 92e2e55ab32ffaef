//! Things under way per key, each key at most `max` at once: calls per principal, streams
//! or connections per peer address. A key leaves the map with its last slot, so the map
//! holds only keys that hold something.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The key of a peer's per-address bounds: its address in one canonical form (an IPv4
/// peer seen as `::ffff:a.b.c.d` is `a.b.c.d`), and for IPv6 its /64, which one host
/// commonly holds whole: counting each of its addresses apart would give it 2^64 shares.
pub fn peer_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !u128::from(u64::MAX);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

type Counts = Arc<Mutex<HashMap<String, usize>>>;

/// The counts, shared by every clone.
#[derive(Clone)]
pub struct Slots {
    max: usize,
    counts: Counts,
}

/// One slot taken in [`Slots`] until dropped.
pub struct Slot {
    key: String,
    counts: Counts,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            counts: Arc::default(),
        }
    }

    /// Takes a slot of `key`, or `None` when it holds `max` already.
    pub fn take(&self, key: &str) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.to_owned()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            key: key.to_owned(),
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_one_key_however_its_address_is_seen() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(peer_key(ip("10.0.0.7")), "10.0.0.7");
        assert_eq!(peer_key(ip("::ffff:10.0.0.7")), "10.0.0.7");
        assert_eq!(
            peer_key(ip("2001:db8:1:2:aaaa::1")),
            peer_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "one /64, one peer"
        );
        assert_ne!(
            peer_key(ip("2001:db8:1:2::1")),
            peer_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn a_key_holds_at_most_max_and_gets_its_slots_back() {
        let slots = Slots::new(2);
        let first = slots.take("a").expect("one");
        let second = slots.take("a").expect("two");
        assert!(slots.take("a").is_none(), "a third is refused");
        assert!(slots.take("b").is_some(), "another key has its own");
        drop(first);
        let third = slots.take("a").expect("a slot came back");
        drop((second, third));
        assert!(
            slots.counts.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    }
}
