//! The running control plane shared by every endpoint: settings, clock, signing key, CA, the
//! state behind a lock, and the data-plane change feed.

use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::Clock;
use crate::data_plane::DataPlane;
use crate::jwt::TokenSigner;
use crate::state::State;
use crate::tls::CertificateAuthority;

/// Fixed facts of one emulator instance.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub tenant_id: String,
    pub subscription_id: String,
    pub registry_token_issuer: String,
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// Answer asynchronous writes with ARM's operation protocol.
    pub async_operations: bool,
}

impl Settings {
    /// The `iss` of Entra access tokens (v1 tokens, as ARM gets).
    pub fn entra_issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id)
    }
}

/// Shared by all handlers.
pub(crate) struct ControlPlane {
    pub settings: Settings,
    pub clock: Clock,
    pub signer: TokenSigner,
    pub ca: Arc<CertificateAuthority>,
    state: Mutex<State>,
    data_plane: watch::Sender<Arc<DataPlane>>,
    /// Long-running operations in flight (with `async_operations`).
    pub operations: crate::arm::operations::Operations,
    /// Requests refused to read-only identities (`METHOD PATH: ACTION`), oldest first.
    pub refusals: Mutex<Vec<String>>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl ControlPlane {
    pub fn new(
        settings: Settings,
        clock: Clock,
        signer: TokenSigner,
        ca: Arc<CertificateAuthority>,
        state: State,
    ) -> Self {
        let (data_plane, _) = watch::channel(Arc::new(DataPlane::compute(&state)));
        Self {
            settings,
            clock,
            signer,
            ca,
            state: Mutex::new(state),
            data_plane,
            operations: Default::default(),
            refusals: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked mid-mutation leaves the state as it was at the panic; serving
        // on is more useful to a test harness than poisoning every later request.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a request refused to a read-only identity.
    pub fn record_refusal(&self, what: String) {
        self.refusals.lock().unwrap_or_else(|p| p.into_inner()).push(what);
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the state, then refreshes derived fields and publishes the data plane if it changed.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.lock();
        let out = f(&mut state);
        state.commit();
        let next = DataPlane::compute(&state);
        drop(state);
        self.data_plane.send_if_modified(|current| {
            if **current == next {
                false
            } else {
                *current = Arc::new(next);
                true
            }
        });
        out
    }

    /// Subscribes to data-plane snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Arc<DataPlane>> {
        self.data_plane.subscribe()
    }

    /// The current data plane.
    pub fn data_plane(&self) -> Arc<DataPlane> {
        self.data_plane.borrow().clone()
    }

    /// The emulator's time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
