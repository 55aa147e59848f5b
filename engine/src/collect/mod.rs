//! Live evidence: the imperative shell that fills an [`Evidence`] from a running cluster
//! ([`k8s`], kube-rs) and a subscription ([`azure`], azure-rest), so the pure core diagnoses it
//! exactly as it diagnoses a dump.
//!
//! ```text
//! kube::Client ──► k8s::collect ──► pods, events, nodes, secrets, SAs, RSs ─┐
//!                                      │ hints: provider ids, image hosts,  │
//!                                      ▼ pull-secret app ids                ▼
//! azure_rest::Client ──► azure::collect ──► Inventory (+ Unavailable) ──► Evidence
//! ACR data plane ──► registry::enrich ──► registry content (tags, platforms) ─┘
//! ```
//!
//! What could not be read is recorded in `evidence.azure.unavailable` (Kubernetes reads too,
//! as `kubernetes: ...`), and [`reach::apply`] lowers the confidence of the findings that rest on
//! it.

pub mod azure;
pub mod k8s;
pub mod reach;
pub mod registry;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use azure_rest::{Client, RestError};

pub use azure::{AzureClients, Hints};
pub use k8s::{KubeOptions, Selection};
pub use registry::{RegistryOptions, RegistryRead};

use crate::credential::AzureAuth;
use crate::detect::Diagnosis;
use crate::evidence::{Evidence, pull_failures};
use crate::report::Report;

/// Where Azure is and how to authenticate (flags or environment; defaults are public Azure and
/// the `azure_identity` chain).
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// ARM base URL.
    pub arm_endpoint: String,
    /// Graph base URL.
    pub graph_endpoint: String,
    /// Extra CAs to trust (PEM), e.g. the emulator's.
    pub ca_pem: Vec<String>,
    /// The credential.
    pub auth: AzureAuth,
    /// Whether to read Microsoft Graph (app secret expiry, principals' names).
    pub read_graph: bool,
    /// Backoff of retries (azure-rest's default is 500 ms).
    pub backoff: Option<Duration>,
}

impl Default for AzureConfig {
    fn default() -> Self {
        Self {
            arm_endpoint: azure_rest::ARM_ENDPOINT.into(),
            graph_endpoint: azure_rest::GRAPH_ENDPOINT.into(),
            ca_pem: Vec::new(),
            auth: AzureAuth::Chain,
            read_graph: true,
            backoff: None,
        }
    }
}

impl AzureConfig {
    /// Builds the ARM and Graph clients (one token source shared by both).
    pub fn clients(&self) -> Result<AzureClients, RestError> {
        let http = crate::credential::http_client(&self.ca_pem)?;
        let tokens = self.auth.token_source(http.clone());
        let build = |base: &str, scope: &str| {
            let mut b = Client::builder(base, scope).http(http.clone()).token_source(tokens.clone());
            if let Some(d) = self.backoff {
                b = b.backoff(d);
            }
            b.build()
        };
        Ok(AzureClients {
            arm: build(&self.arm_endpoint, azure_rest::ARM_SCOPE)?,
            graph: if self.read_graph { Some(build(&self.graph_endpoint, azure_rest::GRAPH_SCOPE)?) } else { None },
            tokens,
        })
    }
}

/// What `pulldoctor diagnose` asks for beyond the pod selection.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--subscription`.
    pub subscription: Option<String>,
    /// `--cluster RG/NAME`.
    pub cluster: Option<(String, String)>,
}

/// Live evidence and what it cost.
#[derive(Debug)]
pub struct LiveEvidence {
    /// The evidence.
    pub evidence: Evidence,
    /// Kubernetes API requests.
    pub kube_requests: u64,
    /// ARM requests (retries included).
    pub arm_requests: u64,
    /// Graph requests.
    pub graph_requests: u64,
    /// Requests to registries' data planes and token services (not ARM requests).
    pub registry_requests: u64,
    /// Wall time of the collection.
    pub elapsed: Duration,
}

/// Why live evidence could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Kubernetes.
    #[error(transparent)]
    Kube(#[from] k8s::KubeError),
    /// Azure (user errors such as an unknown `--cluster`).
    #[error(transparent)]
    Azure(#[from] azure::AzureError),
}

/// What the Kubernetes evidence says about where to look in Azure.
pub fn hints(evidence: &Evidence, target: &Target) -> Hints {
    let mut h =
        Hints { subscription: target.subscription.clone(), cluster: target.cluster.clone(), ..Default::default() };
    let failures = pull_failures(evidence);
    let failing_nodes: BTreeSet<&str> = failures.iter().filter_map(|f| f.node.as_deref()).collect();
    // The failing pods' nodes first, then any node: all of one cluster.
    let mut nodes: Vec<&k8s_openapi::api::core::v1::Node> = evidence.nodes.iter().collect();
    nodes.sort_by_key(|n| !failing_nodes.contains(n.metadata.name.as_deref().unwrap_or_default()));
    for n in nodes {
        if let Some((sub, rg, _)) =
            n.spec.as_ref().and_then(|s| s.provider_id.as_deref()).and_then(k8s::parse_provider_id)
        {
            if h.subscription.is_none() {
                h.subscription = Some(sub);
            }
            h.node_resource_groups.insert(rg);
        }
    }
    for f in &failures {
        let Some(host) = f.registry_host() else { continue };
        h.registry_hosts.insert(host.to_ascii_lowercase());
        let repo = f.image.as_ref().map(|i| i.repository.as_str()).unwrap_or_default();
        for s in &f.pull_secrets {
            if let Some(l) = s.login_for_image(host, repo) {
                let u = l.username.trim();
                if looks_like_guid(u) && u != "00000000-0000-0000-0000-000000000000" {
                    h.app_ids.insert(u.to_ascii_lowercase());
                }
            }
        }
    }
    h
}

fn looks_like_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Collects live evidence: Kubernetes first, then (when `azure` is given) the Azure resources
/// the failing pulls point at. Registries' content is not read (see [`collect_live_with`]).
pub async fn collect_live(
    kube: kube::Client,
    selection: &Selection,
    kube_options: KubeOptions,
    azure: Option<&AzureClients>,
    target: &Target,
) -> Result<LiveEvidence, CollectError> {
    collect_live_with(kube, selection, kube_options, azure, target, None).await
}

/// [`collect_live`], then, when `azure` and `registry` are given, the content (tags,
/// platforms) of the failing images' repositories from ACR's data plane ([`registry::enrich`]).
pub async fn collect_live_with(
    kube: kube::Client,
    selection: &Selection,
    kube_options: KubeOptions,
    azure: Option<&AzureClients>,
    target: &Target,
    registry: Option<&RegistryOptions>,
) -> Result<LiveEvidence, CollectError> {
    let start = Instant::now();
    let k = k8s::collect(kube, selection, kube_options).await?;
    let mut evidence = Evidence {
        pods: k.pods,
        events: k.events,
        nodes: k.nodes,
        secrets: k.secrets,
        service_accounts: k.service_accounts,
        replica_sets: k.replica_sets,
        ..Default::default()
    };
    let (arm0, graph0) =
        azure.map(|a| (a.arm.requests_sent(), a.graph.as_ref().map_or(0, Client::requests_sent))).unwrap_or((0, 0));
    if let Some(clients) = azure {
        // Nothing fails to pull: no Azure read is needed (unless a cluster was named).
        let h = hints(&evidence, target);
        if !h.registry_hosts.is_empty() || h.cluster.is_some() {
            evidence.azure = azure::collect(clients, &h).await?;
        }
    }
    let mut registry_requests = 0;
    if let (Some(clients), Some(options)) = (azure, registry) {
        registry_requests = registry::enrich(&mut evidence, clients, options).await.requests as u64;
    }
    evidence.azure.unavailable.splice(0..0, k.unavailable);
    let (arm1, graph1) =
        azure.map(|a| (a.arm.requests_sent(), a.graph.as_ref().map_or(0, Client::requests_sent))).unwrap_or((0, 0));
    Ok(LiveEvidence {
        evidence,
        kube_requests: k.requests,
        arm_requests: arm1 - arm0,
        graph_requests: graph1 - graph0,
        registry_requests,
        elapsed: start.elapsed(),
    })
}

/// The report of a diagnosis, with the confidence of findings that rest on unavailable
/// evidence lowered ([`reach::apply`]).
pub fn report(diagnosis: &Diagnosis, evidence: &Evidence) -> Report {
    let mut d = diagnosis.clone();
    reach::apply(&mut d.findings, &evidence.azure.unavailable);
    Report::from_diagnosis(&d, evidence.azure.unavailable.clone())
}
