//! Evidence: everything the detectors look at, as plain data.
//!
//! Kubernetes objects are k8s-openapi types; Azure resources are an [`azure_model::Inventory`].
//! Evidence is loaded from files ([`Evidence::load`]) or, by live collectors, filled directly.

mod dump;
mod identity;
mod pull;
mod pull_secret;
mod select;

pub use dump::{DumpError, load_dump};
pub use identity::{EngineIdentity, PrincipalKind};
pub use pull::{NodePlatform, PullFailure, pull_failures};
pub use pull_secret::{PullSecret, RegistryLogin};
pub use select::{LabelSelector, PodSelection, SelectError};

use std::path::Path;

use azure_model::Inventory;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret, ServiceAccount};
use time::OffsetDateTime;

/// What the detectors see.
///
/// `Debug` never prints secret values: each secret shows its metadata, type and data keys only.
#[derive(Clone, Default)]
pub struct Evidence {
    /// Pods (all namespaces collected).
    pub pods: Vec<Pod>,
    /// Core v1 events.
    pub events: Vec<Event>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Secrets (only `kubernetes.io/dockerconfigjson` and `dockercfg` ones are read).
    pub secrets: Vec<Secret>,
    /// Service accounts (for their `imagePullSecrets`).
    pub service_accounts: Vec<ServiceAccount>,
    /// Replica sets (to find the Deployment that owns a pod).
    pub replica_sets: Vec<ReplicaSet>,
    /// Azure resources.
    pub azure: Inventory,
    /// The time the evidence describes (secret expiry is judged against it).
    pub now: Option<OffsetDateTime>,
    /// Who pulldoctor ran as, when known (the fix for unavailable evidence names it).
    pub engine_identity: Option<EngineIdentity>,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Evidence { pods, events, nodes, secrets, service_accounts, replica_sets, azure, now, engine_identity } =
            self;
        f.debug_struct("Evidence")
            .field("pods", pods)
            .field("events", events)
            .field("nodes", nodes)
            .field("secrets", &secrets.iter().map(RedactedSecret).collect::<Vec<_>>())
            .field("service_accounts", service_accounts)
            .field("replica_sets", replica_sets)
            .field("azure", azure)
            .field("now", now)
            .field("engine_identity", engine_identity)
            .finish()
    }
}

/// A secret for `Debug`: its data keys, never its values.
pub(crate) struct RedactedSecret<'a>(pub(crate) &'a Secret);

impl std::fmt::Debug for RedactedSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn keys<V>(m: Option<&std::collections::BTreeMap<String, V>>) -> Option<Vec<String>> {
            m.map(|m| m.keys().map(|k| format!("{k}: <redacted>")).collect())
        }
        // `kubectl apply` keeps the whole secret, data included, in an annotation.
        let mut metadata = self.0.metadata.clone();
        if let Some(a) = metadata.annotations.as_mut() {
            for v in a.values_mut() {
                *v = "<redacted>".to_string();
            }
        }
        f.debug_struct("Secret")
            .field("metadata", &metadata)
            .field("type_", &self.0.type_)
            .field("immutable", &self.0.immutable)
            .field("data", &keys(self.0.data.as_ref()))
            .field("string_data", &keys(self.0.string_data.as_ref()))
            .finish()
    }
}

/// Why evidence could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The dump directory.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// The inventory file could not be read.
    #[error("cannot read Azure inventory {path}: {source}")]
    InventoryIo {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The inventory file is malformed.
    #[error("Azure inventory {path} is not valid: {source}")]
    Inventory {
        /// The file.
        path: String,
        /// What is wrong.
        source: azure_model::inventory::InventoryError,
    },
}

impl Evidence {
    /// Loads a `kubectl cluster-info dump --output-directory` style directory and, optionally,
    /// an inventory JSON file of ARM resources.
    pub fn load(dump_dir: &Path, azure: Option<&Path>) -> Result<Self, EvidenceError> {
        let mut evidence = load_dump(dump_dir)?;
        if let Some(path) = azure {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| EvidenceError::InventoryIo { path: shown.clone(), source })?;
            evidence.azure =
                Inventory::from_json(&text).map_err(|source| EvidenceError::Inventory { path: shown, source })?;
        }
        Ok(evidence)
    }

    /// The evaluation time: `now` if set, else the system clock.
    pub fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name))
    }

    /// The secret `namespace/name`.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets
            .iter()
            .find(|s| s.metadata.namespace.as_deref() == Some(namespace) && s.metadata.name.as_deref() == Some(name))
    }
}
