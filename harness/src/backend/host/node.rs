//! The node's container runtimes as the kubelet crate's `ImageService`: real containerd over CRI
//! for Linux nodes, and a client-side `ctr --platform windows/amd64` pull for Windows nodes
//! (containerd's own resolver and platform matcher, as a Windows node would run them).

use std::sync::Arc;

use pullproof_host_kubelet::{Auth, ImageService, PulledImage, RuntimeError};
use pullproof_host_runtime::Containerd;

/// Which platform a node pulls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOs {
    /// linux/amd64, through CRI.
    Linux,
    /// windows/amd64, through `ctr`.
    Windows,
}

/// One node's runtime.
#[derive(Clone)]
pub struct NodeRuntime {
    /// The containerd both kinds of node use.
    pub containerd: Arc<Containerd>,
    /// The node's platform.
    pub os: NodeOs,
}

fn runtime_error(e: pullproof_host_runtime::PullError) -> RuntimeError {
    let message = e.message();
    // ctr prefixes its own name; the rest is containerd's resolver error, untouched.
    let message = message.strip_prefix("ctr: ").unwrap_or(message);
    RuntimeError::new(e.code().unwrap_or("Unknown").to_string(), message.to_string())
}

impl ImageService for NodeRuntime {
    async fn pull(&self, image: &str, auth: Option<&Auth>) -> Result<PulledImage, RuntimeError> {
        let auth = auth.map(|a| pullproof_host_runtime::Auth::new(a.username.clone(), a.password.clone()));
        match self.os {
            NodeOs::Linux => {
                let r = self.containerd.pull_image(image, auth.as_ref()).await.map_err(runtime_error)?;
                Ok(PulledImage { image_ref: r.to_string(), size_bytes: 1024 })
            }
            NodeOs::Windows => {
                self.containerd.ctr_pull(image, Some("windows/amd64"), auth.as_ref()).await.map_err(runtime_error)?;
                Ok(PulledImage { image_ref: image.to_string(), size_bytes: 1024 })
            }
        }
    }
}
