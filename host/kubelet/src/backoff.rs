//! The kubelet's image pull back-off (`flowcontrol.Backoff` keyed by `PODUID_IMAGE`): 10 s
//! after the first failure, doubling to 300 s; an entry untouched for twice the maximum starts
//! over.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::clock::since;

/// The kubelet's initial image pull back-off.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The kubelet's maximum image pull back-off (`MaxContainerBackOff`).
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Timestamp,
}

/// Back-off per key.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL, MAX)
    }
}

impl Backoff {
    /// A back-off starting at `initial` and doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, entries: HashMap::new() }
    }

    /// Whether `key` is still backing off at `now` (`IsInBackOffSinceUpdate`).
    pub fn is_in_backoff(&self, key: &str, now: Timestamp) -> bool {
        self.entries.get(key).is_some_and(|e| since(now, e.last_update) < e.backoff)
    }

    /// Records a failure at `now` (`Next`): the first (or first after a long quiet time) sets
    /// the initial back-off, later ones double it up to the maximum.
    pub fn next(&mut self, key: &str, now: Timestamp) {
        let (initial, max) = (self.initial, self.max);
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry { backoff: Duration::ZERO, last_update: now });
        let expired = since(now, entry.last_update) > max.saturating_mul(2);
        entry.backoff = if entry.backoff.is_zero() || expired { initial } else { (entry.backoff * 2).min(max) };
        entry.last_update = now;
    }

    /// The current back-off of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.backoff)
    }

    /// Forgets `key`.
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_maximum_and_starts_over_after_a_quiet_time() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let mut backoff = Backoff::default();
        assert!(!backoff.is_in_backoff("k", t0));
        backoff.next("k", t0);
        assert_eq!(backoff.get("k"), Some(Duration::from_secs(10)));
        assert!(backoff.is_in_backoff("k", at(9)));
        assert!(!backoff.is_in_backoff("k", at(10)));
        let mut now = 10;
        let mut seen = Vec::new();
        for _ in 0..7 {
            backoff.next("k", at(now));
            let d = backoff.get("k").unwrap();
            seen.push(d.as_secs());
            now += d.as_secs() as i64;
        }
        assert_eq!(seen, [20, 40, 80, 160, 300, 300, 300]);
        backoff.next("k", at(now + 601));
        assert_eq!(backoff.get("k"), Some(Duration::from_secs(10)));
        backoff.reset("k");
        assert!(!backoff.is_in_backoff("k", at(now + 602)));
    }
}
