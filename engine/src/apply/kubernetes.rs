//! The Kubernetes API as remediation uses it: one request in, the answer's JSON out.
//!
//! [`kube::Client`] implements it for live clusters. Anything else that holds Kubernetes objects
//! (the host backend's in-process cluster, a test double) implements it too, and the same
//! [`Executor`](super::Executor) steps (reads, guards, patches) run against it unchanged.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

/// A request that did not succeed: the HTTP status when there was one, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The HTTP status (`None` when no answer came).
    pub status: Option<u16>,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiFailure {
    /// A failure with a status.
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        Self { status: Some(status), message: message.into() }
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The future a [`KubernetesApi`] call returns.
pub type ApiFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ApiFailure>> + Send + 'a>>;

/// Sends one request to a Kubernetes API server (`GET` or `PATCH` of a single object, as the
/// remediation steps make them) and answers the object as JSON.
pub trait KubernetesApi: Send + Sync {
    /// Sends `request` (its URI is the path below the API server, e.g.
    /// `/api/v1/namespaces/shop/secrets/acr`; a body carries its `Content-Type`).
    fn send(&self, request: http::Request<Vec<u8>>) -> ApiFuture<'_>;
}

impl KubernetesApi for kube::Client {
    fn send(&self, request: http::Request<Vec<u8>>) -> ApiFuture<'_> {
        Box::pin(async move {
            let text = self
                .request_text(request)
                .await
                .map_err(|e| ApiFailure { status: crate::collect::k8s::status_of(&e), message: e.to_string() })?;
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }
}
