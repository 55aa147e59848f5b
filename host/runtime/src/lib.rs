//! The host backend's real processes: a private containerd driven over CRI, the distribution
//! registry, and OCI images built and pushed with no internet.
//!
//! - [`Containerd`]: a private containerd (own config, root, state, gRPC socket, CRI with a local
//!   `sandbox_image`, `certs.d` registry config, `SSL_CERT_FILE`), started through a
//!   [`Launcher`] so it can run inside a node's network namespace with its own resolver.
//! - [`Cri`]: the kubelet's CRI calls (`PullImage` with `AuthConfig{username,password}`,
//!   `ImageStatus`, `RemoveImage`); failures keep containerd's code and text untouched
//!   ([`PullError`]).
//! - [`ctr_pull`]: `ctr images pull --platform ...` for a Windows node pool.
//! - [`Registry`]: `docker-registry serve` on a Unix socket (no auth, htpasswd or token auth),
//!   and [`RegistryClient`] for its HTTP API over that socket.
//! - [`image`]: deterministic OCI images (gzip tar layer, config, manifests, index) and pushes.
//!
//! Every process is started in its own process group and stopped (SIGTERM, then SIGKILL after
//! 2 s) when its handle is dropped; every temp dir goes with its handle. Secrets are never
//! logged and never part of an error or a `Debug` output.
//!
//! Running containerd in a network namespace with a private `/etc/resolv.conf`:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use pullproof_host_runtime::{Containerd, ContainerdConfig, Launcher};
//! let node = Containerd::start(ContainerdConfig {
//!     ssl_cert_file: Some("/tmp/run/ca-bundle.pem".into()),
//!     launcher: Launcher::netns_with_resolv("/run/netns/node", "/tmp/run/node-resolv.conf"),
//!     ..ContainerdConfig::default()
//! })
//! .await?;
//! let err = node.pull_image("myacr.azurecr.io/app:1", None).await.unwrap_err();
//! println!("{err}"); // rpc error: code = Unknown desc = failed to pull and unpack image ...
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod components;
mod containerd;
mod cri;
mod ctr;
mod http;
pub mod image;
mod process;
mod registry;

pub use containerd::{Containerd, ContainerdConfig, DEFAULT_SANDBOX_IMAGE};
pub use cri::{Auth, Cri, CriError, ImageInfo, ImageRef, PullError, RuntimeVersion};
pub use ctr::{CtrOptions, CtrPullOutput, ctr_pull};
pub use image::{BuiltImage, ImageSpec, ImageSpecError, Platform, PushError};
pub use process::{
    Customize, DaemonError, Launcher, NotReady, ProcessGuard, STOP_GRACE, Stopped, log_tail, processes_in_group,
    unmount_below, wait_ready,
};
pub use registry::{
    Authorization, Ping, PushReport, Registry, RegistryApiError, RegistryAuth, RegistryClient, RegistryConfig,
};
