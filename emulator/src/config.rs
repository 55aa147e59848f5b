//! How an emulator is started: [`EmulatorConfig`] and the [`Clock`] it reads time from.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use azure_model::Inventory;
use time::{Duration, OffsetDateTime};

/// The tenant id used when none is configured.
pub const DEFAULT_TENANT_ID: &str = "72f0a1b2-5c3d-4e6f-8a9b-0c1d2e3f4a5b";
/// The subscription id used when none is configured.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "3c6d9e2f-1a4b-4c7d-9e0f-2a3b4c5d6e7f";
/// The `iss` of registry access tokens when none is configured (distribution's `auth.token.issuer`
/// must be set to the same text).
pub const DEFAULT_REGISTRY_TOKEN_ISSUER: &str = "Azure Container Registry";

/// Everything [`crate::Emulator::start`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where the HTTPS server listens (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener answering only IMDS (`/metadata/...`), as the real IMDS at
    /// `169.254.169.254:80` is plain HTTP.
    pub imds_listen: Option<SocketAddr>,
    /// The Entra tenant.
    pub tenant_id: String,
    /// The one subscription ARM knows.
    pub subscription_id: String,
    /// Extra DNS names or IPs for the default server certificate (clients that send SNI for
    /// another name get a certificate minted for that name on the fly).
    pub extra_san: Vec<String>,
    /// A world to start from (an exported [`Inventory`]).
    pub state: Option<Inventory>,
    /// The `iss` claim of registry access tokens.
    pub registry_token_issuer: String,
    /// Where time comes from (tests move it to expire secrets).
    pub clock: Clock,
    /// Answer the writes Azure runs asynchronously (network, clusters, registries, scale sets,
    /// the service principal reset) with ARM's long-running operation protocol
    /// (`Azure-AsyncOperation`, `202` + `Location`), so clients prove they follow it.
    pub async_operations: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            imds_listen: None,
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            subscription_id: DEFAULT_SUBSCRIPTION_ID.to_string(),
            extra_san: Vec::new(),
            state: None,
            registry_token_issuer: DEFAULT_REGISTRY_TOKEN_ISSUER.to_string(),
            clock: Clock::system(),
            async_operations: false,
        }
    }
}

impl EmulatorConfig {
    /// Starts from `inventory`, taking its tenant and subscription ids when it has them.
    pub fn with_state(mut self, inventory: Inventory) -> Self {
        if let Some(t) = &inventory.tenant_id {
            self.tenant_id = t.clone();
        }
        if let Some(s) = &inventory.subscription_id {
            self.subscription_id = s.clone();
        }
        self.state = Some(inventory);
        self
    }
}

/// The emulator's time source: the system clock (optionally shifted) or a manual clock.
///
/// Clones share the same time, so a test keeps a clone and moves it while the server runs.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Mutex<ClockMode>>);

#[derive(Debug, Clone, Copy)]
enum ClockMode {
    System { offset: Duration },
    Manual { now: OffsetDateTime },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Mutex::new(ClockMode::System { offset: Duration::ZERO })))
    }

    /// A clock standing still at `now` until [`Clock::set`] or [`Clock::advance`] move it.
    pub fn manual(now: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(ClockMode::Manual { now })))
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        match *self.lock() {
            ClockMode::System { offset } => OffsetDateTime::now_utc() + offset,
            ClockMode::Manual { now } => now,
        }
    }

    /// Moves time forward (or backward with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut mode = self.lock();
        *mode = match *mode {
            ClockMode::System { offset } => ClockMode::System { offset: offset + by },
            ClockMode::Manual { now } => ClockMode::Manual { now: now + by },
        };
    }

    /// Sets the time (a system clock becomes a shifted system clock).
    pub fn set(&self, at: OffsetDateTime) {
        let mut mode = self.lock();
        *mode = match *mode {
            ClockMode::System { .. } => ClockMode::System { offset: at - OffsetDateTime::now_utc() },
            ClockMode::Manual { .. } => ClockMode::Manual { now: at },
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockMode> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_and_shifted() {
        let start = time::macros::datetime!(2026-01-01 0:00 UTC);
        let c = Clock::manual(start);
        c.advance(Duration::days(2));
        assert_eq!(c.clone().now(), time::macros::datetime!(2026-01-03 0:00 UTC));
        let s = Clock::system();
        s.advance(Duration::days(365));
        assert!(s.now() - OffsetDateTime::now_utc() > Duration::days(364));
    }
}
