//! Detectors: pure functions from [`Evidence`] to [`Finding`]s.
//!
//! [`diagnose`] finds the failing pulls once, builds a [`Context`], and runs every detector in
//! [`DETECTORS`]. Each detector owns one concept (identity, pull secrets, image names, network
//! path, platform) and may emit several codes; it must stay silent on a healthy world.
//!
//! Each fault must yield its own code and no other. Detectors decide by the symptom's class
//! (never its raw text), and the three that read `unauthorized` pulls (identity, pull secrets,
//! image) share one assessment (`access::assess_auth`), so exactly one of them names the cause.
//! A pull whose cause cannot be shown gets no finding (the report says undiagnosed); findings
//! that rest on the symptom alone are `medium` or `low` confidence. `world` (tests only) builds
//! the synthetic AKS + ACR worlds behind `fixtures/evidence`.

mod access;
pub use access::role_pull;
mod candidates;
mod identity;
mod image;
mod network;
mod platform;
mod pull_secret;
mod reach;
pub mod route;
mod support;
#[cfg(test)]
mod world;

pub use candidates::{Candidate, candidates};

use azure_model::Resource;
use azure_model::container_service::ManagedClusterProperties;
use time::OffsetDateTime;

use crate::evidence::{Evidence, PullFailure, pull_failures};
use crate::finding::Finding;

/// What every detector gets: the evidence, the failing pulls, and the cluster, found once.
pub struct Context<'a> {
    /// All evidence.
    pub evidence: &'a Evidence,
    /// The failing pulls.
    pub failures: Vec<PullFailure>,
    /// The AKS cluster the pods run on (the only one in the inventory, or the one named).
    pub cluster: Option<&'a Resource<ManagedClusterProperties>>,
    /// Evaluation time.
    pub now: OffsetDateTime,
}

/// A detector.
pub type Detector = fn(&Context<'_>) -> Vec<Finding>;

/// Every detector, by name.
pub const DETECTORS: &[(&str, Detector)] = &[
    ("identity", identity::detect),
    ("pull_secret", pull_secret::detect),
    ("image", image::detect),
    ("network", network::detect),
    ("platform", platform::detect),
    ("reach", reach::detect),
];

/// The outcome of a diagnosis.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The failing pulls that were examined.
    pub failures: Vec<PullFailure>,
    /// The findings, ordered by severity then code.
    pub findings: Vec<Finding>,
}

/// The cluster the nodes belong to: the one whose node resource group holds the nodes' scale
/// sets (from their `azure:///subscriptions/S/resourceGroups/MC_.../...` provider ids), else the
/// first cluster of the inventory. Inventories often hold several clusters sharing a registry.
pub fn cluster_of_nodes(evidence: &Evidence) -> Option<&Resource<ManagedClusterProperties>> {
    let clusters = &evidence.azure.managed_clusters;
    let node_groups: Vec<String> = evidence
        .nodes
        .iter()
        .filter_map(|n| n.spec.as_ref()?.provider_id.as_deref())
        .filter_map(|p| {
            let mut parts = p.split('/');
            parts.by_ref().find(|s| s.eq_ignore_ascii_case("resourceGroups"))?;
            parts.next().map(str::to_ascii_lowercase)
        })
        .collect();
    clusters
        .iter()
        .find(|c| {
            c.properties.node_resource_group.as_deref().is_some_and(|rg| node_groups.contains(&rg.to_ascii_lowercase()))
        })
        .or_else(|| clusters.first())
}

/// Runs every detector on `evidence`.
pub fn diagnose(evidence: &Evidence) -> Diagnosis {
    let cluster = cluster_of_nodes(evidence);
    let ctx = Context { evidence, failures: pull_failures(evidence), cluster, now: evidence.now() };
    let mut findings: Vec<Finding> = DETECTORS.iter().flat_map(|(_, d)| d(&ctx)).collect();
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then(a.code.cmp(&b.code)));
    Diagnosis { failures: ctx.failures, findings }
}
