//! A fake runtime answering with real containerd 1.6.20 messages (copied from
//! shared/notes/host-backend.md), and helpers shared by the tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use pullproof_host_kubelet::{Auth, Cluster, ImageService, ManualClock, NodeConfig, PulledImage, RuntimeError};

pub const HOST: &str = "myacr.azurecr.io";
pub const IMG: &str = "myacr.azurecr.io/shop/web:1.4.2";
pub const WIN_IMG: &str = "myacr.azurecr.io/shop/legacy-iis:2022.1";

/// `failed to pull and unpack image "IMG": failed to resolve reference "IMG": `
pub fn prefix(image: &str) -> String {
    format!("failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": ")
}

/// Token service says 401, no credentials sent.
pub fn anonymous_401(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!(
            "{}failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
            prefix(image)
        ),
    )
}

/// Token service says 401, credentials sent.
pub fn oauth_401(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!(
            "{}failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized",
            prefix(image)
        ),
    )
}

/// Token service says 403, credentials sent.
pub fn oauth_403(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!("{}failed to authorize: failed to fetch oauth token: unexpected status: 403 Forbidden", prefix(image)),
    )
}

/// Tag or repository missing.
pub fn not_found(image: &str) -> RuntimeError {
    RuntimeError::new("NotFound", format!("{}{image}: not found", prefix(image)))
}

/// Platform mismatch (no second clause).
pub fn platform(image: &str) -> RuntimeError {
    RuntimeError::new(
        "NotFound",
        format!("failed to pull and unpack image \"{image}\": no match for platform in manifest: not found"),
    )
}

/// Packets dropped.
pub fn timeout(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!(
            "{}failed to do request: Head \"https://{HOST}/v2/shop/web/manifests/1.4.2\": dial tcp 10.10.0.4:443: i/o timeout",
            prefix(image)
        ),
    )
}

/// The name does not resolve.
pub fn no_such_host(image: &str, host: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!(
            "{}failed to do request: Head \"https://{host}/v2/shop/web/manifests/1.4.2\": dial tcp: lookup {host} on 10.0.0.10:53: no such host",
            prefix(image)
        ),
    )
}

/// Untrusted certificate.
pub fn x509(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!(
            "{}failed to do request: Head \"https://{HOST}/v2/shop/web/manifests/1.4.2\": x509: certificate signed by unknown authority",
            prefix(image)
        ),
    )
}

/// `/v2/` answers 403 (firewall style).
pub fn basic_403(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!("{}pulling from host {HOST} failed with status code [manifests v1]: 403 Forbidden", prefix(image)),
    )
}

/// containerd >= 1.6.25 / 1.7 wording of a refused token request.
pub fn oauth_401_new_wording(image: &str) -> RuntimeError {
    RuntimeError::new(
        "Unknown",
        format!(
            "{}failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://{HOST}/oauth2/token?scope=repository%3Ashop%2Fweb%3Apull&service={HOST}: 401 Unauthorized",
            prefix(image)
        ),
    )
}

/// A fake runtime: answers per username (`""` for anonymous), records every call.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    answers: Arc<Mutex<HashMap<String, Result<PulledImage, RuntimeError>>>>,
    present: Arc<Mutex<HashMap<String, String>>>,
    calls: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeRuntime {
    /// Answers `result` to pulls with `username` (`""`: anonymous).
    pub fn answer(&self, username: &str, result: Result<PulledImage, RuntimeError>) {
        self.answers.lock().unwrap().insert(username.to_owned(), result);
    }

    /// Marks an image as present on the node.
    pub fn make_present(&self, image: &str, image_ref: &str) {
        self.present.lock().unwrap().insert(image.to_owned(), image_ref.to_owned());
    }

    /// `(image, username)` of every pull so far, and forgets them.
    pub fn take_calls(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

pub fn pulled() -> PulledImage {
    PulledImage {
        image_ref: "sha256:5f1b6c4d3e2a1908f7e6d5c4b3a291807f6e5d4c3b2a19087f6e5d4c3b2a1908".into(),
        size_bytes: 3_214_562,
    }
}

impl ImageService for FakeRuntime {
    fn pull(&self, image: &str, auth: Option<&Auth>) -> impl Future<Output = Result<PulledImage, RuntimeError>> + Send {
        let username = auth.map(|a| a.username.clone()).unwrap_or_default();
        self.calls.lock().unwrap().push((image.to_owned(), username.clone()));
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get(&username)
            .cloned()
            .unwrap_or_else(|| panic!("the test configured no answer for a pull as {username:?}"));
        async move { answer }
    }

    fn image_ref(&self, image: &str) -> impl Future<Output = Result<Option<String>, RuntimeError>> + Send {
        let found = self.present.lock().unwrap().get(image).cloned();
        async move { Ok(found) }
    }
}

/// A cluster on a manual clock with a Linux and a Windows node.
pub fn cluster() -> (Cluster, ManualClock) {
    let clock = ManualClock::new(k8s_openapi::jiff::Timestamp::from_second(1_750_000_000).unwrap());
    let mut cluster = Cluster::with_clock(Arc::new(clock.clone()));
    cluster.add_node(&NodeConfig::linux("aks-nodepool1-12345678-vmss000000", "nodepool1")).unwrap();
    cluster.add_node(&NodeConfig::windows("akswin000000", "win")).unwrap();
    (cluster, clock)
}

pub const LINUX_NODE: &str = "aks-nodepool1-12345678-vmss000000";
pub const WINDOWS_NODE: &str = "akswin000000";

/// `(type, reason, message, count)` of a pod's events, in order.
pub fn pod_events(cluster: &Cluster, namespace: &str, pod: &str) -> Vec<(String, String, String, i32)> {
    cluster
        .pod_events(namespace, pod)
        .into_iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
                e.count.unwrap_or(0),
            )
        })
        .collect()
}

/// The waiting `(reason, message)` of a pod's first container.
pub fn waiting(cluster: &Cluster, namespace: &str, pod: &str) -> Option<(String, String)> {
    let status = cluster.pod(namespace, pod)?.status.as_ref()?.container_statuses.as_ref()?.first()?.clone();
    let waiting = status.state?.waiting?;
    Some((waiting.reason.unwrap_or_default(), waiting.message.unwrap_or_default()))
}

/// The only pod of a deployment.
pub fn only_pod(cluster: &Cluster, namespace: &str, deployment: &str) -> String {
    let pods = cluster.pods_of(namespace, deployment);
    assert_eq!(pods.len(), 1, "{pods:?}");
    pods[0].metadata.name.clone().unwrap()
}
