//! # pullproof-host-kubelet
//!
//! What the kubelet does for image pulls, with the kubelet's own formats, and no API server:
//!
//! - [`cluster`]: an in-memory object store (Nodes, Deployments, ReplicaSets, Pods, Secrets,
//!   ServiceAccounts, Events as k8s-openapi types) with the controllers a rollout needs and a
//!   trivial scheduler.
//! - [`kubelet`]: [`Kubelet::sync_pod`] for one pod: pull secrets and credential provider
//!   plugins ([`keyring`], [`plugin`]), one CRI pull per credential through an
//!   [`ImageService`] the caller implements, then pod status, events and back-off exactly as
//!   the kubelet writes them.
//! - [`dump`]: the store as a `kubectl cluster-info dump --all-namespaces --output-directory`
//!   directory.
//!
//! Pull error texts always come from the runtime ([`pull::RuntimeError`]); this crate only
//! applies the kubelet's wrapping (gRPC prefix rule by version, `[e1, e2]` aggregation).

#![warn(missing_docs)]

pub mod backoff;
pub mod clock;
pub mod cluster;
pub mod dump;
pub mod duration;
pub mod error;
pub mod image;
pub mod keyring;
pub mod kubelet;
pub mod plugin;
pub mod pull;
pub mod version;

pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::{Cluster, NodeConfig, WorkloadSpec};
pub use error::{DumpError, KubeletError, PluginError};
pub use kubelet::{ContainerSync, Kubelet, KubeletConfig, PodSync, PullState};
pub use plugin::{CommandWrapper, CredentialProvider, CredentialProviderConfig};
pub use pull::{Auth, ImageService, PulledImage, RuntimeError};
pub use version::KubeletVersion;
