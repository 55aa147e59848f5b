//! Real Kubernetes for the host backend, from the release pinned in `scripts/kubernetes.env`
//! (built by `scripts/kubernetes.sh`, found through
//! [`pullproof_host_runtime::components::Components`]):
//!
//! - [`pki`]: the run's CA, serving and client certificates, service-account key;
//! - [`control_plane`]: etcd, kube-apiserver, kube-controller-manager, kube-scheduler on
//!   loopback, one set per run;
//! - [`kubelet`]: one real kubelet per node, with AKS's labels, provider id and the upstream
//!   `acr-credential-provider`;
//! - [`kubeconfig`]: the files that give components, engines and people access.
//!
//! Nothing here imitates a Kubernetes component: every event, status and message a world shows
//! comes from these processes.

#![warn(missing_docs)]

pub mod control_plane;
pub mod kubeconfig;
pub mod kubelet;
pub mod pki;

pub use control_plane::{ControlPlane, ControlPlaneConfig, ControlPlaneError};
pub use kubelet::{CredentialProvider, Kubelet, KubeletConfig, KubeletError};
