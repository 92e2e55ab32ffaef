//! Things under way per key, each key at most `max` at once: calls per principal, streams
//! or connections per peer address. A key leaves the map with its last slot, so the map
//! holds only keys that hold something.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
