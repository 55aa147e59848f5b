//! Time as the kubelet and the cluster see it: injectable, so tests and the harness can move
//! past a back-off without waiting.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// A source of "now".
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        system_now()
    }
}

/// The system time as a timestamp (jiff's own `now` needs a feature k8s-openapi leaves off).
fn system_now() -> Timestamp {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
    Timestamp::from_nanosecond(nanos).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// A clock stopped at the current system time, truncated to whole seconds.
    pub fn starting_now() -> Self {
        let now = system_now();
        Self::new(Timestamp::from_second(now.as_second()).unwrap_or(now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        *now = now.checked_add(by).unwrap_or(Timestamp::MAX);
    }

    /// Sets the time.
    pub fn set(&self, to: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `later - earlier` as a std duration (zero when `later` is not later).
pub(crate) fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or(Duration::ZERO)
}

/// `at + by`, saturating.
pub(crate) fn plus(at: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by).ok().and_then(|by| at.checked_add(by).ok()).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(Timestamp::from_second(1_700_000_000).unwrap());
        let shared = clock.clone();
        clock.advance(Duration::from_secs(10));
        assert_eq!(shared.now().as_second(), 1_700_000_010);
        assert_eq!(since(shared.now(), Timestamp::from_second(1_700_000_000).unwrap()), Duration::from_secs(10));
        assert_eq!(since(Timestamp::from_second(0).unwrap(), shared.now()), Duration::ZERO);
        assert_eq!(plus(shared.now(), Duration::from_secs(5)).as_second(), 1_700_000_015);
    }
}
