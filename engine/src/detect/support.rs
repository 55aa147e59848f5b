//! What several detectors share: grouping findings, matching an image's host to a registry,
//! quoting the kubelet, and placing a failing pod in the cluster's network.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;

use azure_model::container_registry::{RegistryProperties, is_acr_login_server};
use azure_model::id::same_id;
use azure_model::network::SubnetProperties;
use azure_model::{Inventory, Resource, ResourceId};

use super::Context;
use crate::evidence::PullFailure;
use crate::finding::{Blame, Confidence, Finding, FindingCode, Severity};
use crate::plan::{Action, Plan};

/// A finding for one failing pull, before it is grouped with the same cause elsewhere.
pub(crate) struct Draft {
    pub code: FindingCode,
    pub confidence: Confidence,
    pub summary: String,
    pub blamed: Vec<Blame>,
    pub evidence: Vec<String>,
    pub actions: Vec<Action>,
}

impl Draft {
    /// A draft with the kubelet's message as its first evidence line.
    pub fn new(code: FindingCode, confidence: Confidence, failure: &PullFailure, summary: impl Into<String>) -> Self {
        Self {
            code,
            confidence,
            summary: summary.into(),
            blamed: Vec::new(),
            evidence: vec![quote(failure)],
            actions: Vec::new(),
        }
    }

    pub fn blame(mut self, b: Blame) -> Self {
        self.blamed.push(b);
        self
    }

    pub fn line(mut self, l: impl Into<String>) -> Self {
        self.evidence.push(l.into());
        self
    }

    pub fn lines(mut self, l: impl IntoIterator<Item = String>) -> Self {
        self.evidence.extend(l);
        self
    }

    pub fn action(mut self, a: Action) -> Self {
        self.actions.push(a);
        self
    }

    pub fn actions(mut self, a: impl IntoIterator<Item = Action>) -> Self {
        self.actions.extend(a);
        self
    }
}

/// Findings keyed by code and cause, so that many pods failing for one cause make one finding.
#[derive(Default)]
pub(crate) struct Findings {
    by_key: BTreeMap<(FindingCode, String), Finding>,
}

fn push_new<T: PartialEq>(into: &mut Vec<T>, items: impl IntoIterator<Item = T>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

impl Findings {
    /// Adds `draft` for `failure` under `key` (what identifies the cause: a principal and
    /// registry, a rule id, an image...). Same code and key: pods, proof and actions merge.
    pub fn add(&mut self, key: &str, failure: &PullFailure, draft: Draft) {
        match self.by_key.entry((draft.code, key.to_string())) {
            Entry::Vacant(slot) => {
                slot.insert(Finding {
                    code: draft.code,
                    severity: Severity::Error,
                    confidence: draft.confidence,
                    summary: draft.summary,
                    blamed: dedup(draft.blamed),
                    evidence: dedup(draft.evidence),
                    pods: vec![failure.pod.clone()],
                    plan: Plan::new(dedup(draft.actions)),
                });
            }
            Entry::Occupied(mut slot) => {
                let f = slot.get_mut();
                // The best-supported pull decides how sure the finding is.
                f.confidence = f.confidence.min(draft.confidence);
                push_new(&mut f.pods, [failure.pod.clone()]);
                push_new(&mut f.blamed, draft.blamed);
                push_new(&mut f.evidence, draft.evidence);
                push_new(&mut f.plan.actions, draft.actions);
            }
        }
    }

    /// The grouped findings, pods sorted.
    pub fn into_vec(self) -> Vec<Finding> {
        self.by_key
            .into_values()
            .map(|mut f| {
                f.pods.sort();
                f
            })
            .collect()
    }
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    push_new(&mut out, items);
    out
}

/// The kubelet's message as an evidence line.
pub(crate) fn quote(failure: &PullFailure) -> String {
    format!("kubelet: {}", failure.message)
}

/// The last segment of an ARM id (or the text itself).
pub(crate) fn name_of(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// How an image's registry host relates to the registries in the inventory.
pub(crate) enum RegistryMatch<'a> {
    /// A registry's login server.
    Known(&'a Resource<RegistryProperties>),
    /// Not a login server, but one or two edits from these (the closest, ties kept).
    Typo(Vec<&'a Resource<RegistryProperties>>),
    /// Nothing known is close. `acr`: the host is shaped like an ACR login server.
    Unknown { acr: bool },
}

/// Matches `host` against the inventory's login servers.
pub(crate) fn match_registry<'a>(inv: &'a Inventory, host: &str) -> RegistryMatch<'a> {
    if let Some(r) = inv.registry_by_login_server(host) {
        return RegistryMatch::Known(r);
    }
    let host_l = host.to_ascii_lowercase();
    let mut close: Vec<(usize, &Resource<RegistryProperties>)> = inv
        .registries
        .iter()
        .filter_map(|r| {
            let login = r.properties.login_server.as_deref()?.to_ascii_lowercase();
            let d = strsim::levenshtein(&host_l, &login);
            ((1..=2).contains(&d) && d * 5 <= host_l.len().max(login.len())).then_some((d, r))
        })
        .collect();
    close.sort_by_key(|(d, _)| *d);
    if let Some(best) = close.first().map(|(d, _)| *d) {
        return RegistryMatch::Typo(close.into_iter().filter(|(d, _)| *d == best).map(|(_, r)| r).collect());
    }
    RegistryMatch::Unknown { acr: is_acr_login_server(host) }
}

/// The registry name an ACR host names (`myacr` of `myacr.azurecr.io`).
pub(crate) fn registry_name_of_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// Where a failing pod's node sits in the network.
pub(crate) struct Placement {
    /// The node subnet.
    pub subnet_id: String,
    /// Its VNet.
    pub vnet_id: String,
    /// The subnet's properties, when the inventory has them.
    pub subnet: Option<SubnetProperties>,
    /// The node's address (its `InternalIP`, else the first usable address of the subnet).
    pub node_ip: Option<IpAddr>,
}

impl Context<'_> {
    /// The node subnet of the pool the failing pod runs on (the first pool with one otherwise;
    /// for a managed VNet, the first subnet of a VNet in the node resource group).
    pub(crate) fn placement(&self, failure: &PullFailure) -> Option<Placement> {
        let inv = &self.evidence.azure;
        let cluster = self.cluster?;
        let pools = &cluster.properties.agent_pool_profiles;
        let pool = failure.platform.pool.as_deref();
        let subnet_id = pool
            .and_then(|p| pools.iter().find(|ap| ap.name.eq_ignore_ascii_case(p)))
            .and_then(|ap| ap.vnet_subnet_id.clone())
            .or_else(|| pools.iter().find_map(|ap| ap.vnet_subnet_id.clone()))
            .or_else(|| {
                let node_rg = cluster.properties.node_resource_group.as_deref()?;
                inv.virtual_networks
                    .iter()
                    .filter(|v| resource_group_of(&v.id).is_some_and(|rg| rg.eq_ignore_ascii_case(node_rg)))
                    .find_map(|v| {
                        v.properties
                            .subnets
                            .first()
                            .map(|s| s.id.clone().unwrap_or_else(|| format!("{}/subnets/{}", v.id, s.name)))
                    })
            })?;
        let vnet_id = Inventory::vnet_of_subnet(&subnet_id)?.to_string();
        let subnet = inv.subnet(&subnet_id);
        let node_ip = failure
            .node
            .as_deref()
            .and_then(|n| self.evidence.node(n))
            .and_then(|n| {
                n.status.as_ref()?.addresses.as_ref()?.iter().find(|a| a.type_ == "InternalIP")?.address.parse().ok()
            })
            .or_else(|| subnet.as_ref()?.address_prefix.as_deref().and_then(first_host));
        Some(Placement { subnet_id, vnet_id, subnet, node_ip })
    }

    /// The cluster's name, for sentences.
    pub(crate) fn cluster_name(&self) -> &str {
        self.cluster.map(|c| c.name.as_str()).unwrap_or("the cluster")
    }
}

/// The resource group named in an ARM id.
pub(crate) fn resource_group_of(id: &str) -> Option<String> {
    ResourceId::parse(id).ok().and_then(|i| i.resource_group().map(str::to_string))
}

/// The fourth address of an IPv4 prefix (Azure gives the first VM `.4`).
fn first_host(prefix: &str) -> Option<IpAddr> {
    let (net, _) = prefix.split_once('/')?;
    let net: std::net::Ipv4Addr = net.parse().ok()?;
    Some(IpAddr::V4(std::net::Ipv4Addr::from(u32::from(net).wrapping_add(4))))
}

/// Whether two ARM ids name the same resource.
pub(crate) fn same(a: &str, b: &str) -> bool {
    same_id(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        Inventory::from_json(
            r#"{"resources": [
              {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrshop", "name": "acrshop",
               "type": "Microsoft.ContainerRegistry/registries", "properties": {"loginServer": "acrshop.azurecr.io"}},
              {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acrship", "name": "acrship",
               "type": "Microsoft.ContainerRegistry/registries", "properties": {"loginServer": "acrship.azurecr.io"}}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn registry_matching() {
        let inv = inv();
        assert!(matches!(match_registry(&inv, "ACRSHOP.azurecr.io"), RegistryMatch::Known(r) if r.name == "acrshop"));
        match match_registry(&inv, "acrshop.azureacr.io") {
            RegistryMatch::Typo(r) => assert_eq!(r.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["acrshop"]),
            _ => panic!("typo expected"),
        }
        // One edit from both: ambiguous, both kept.
        assert!(matches!(match_registry(&inv, "acrshup.azurecr.io"), RegistryMatch::Typo(r) if r.len() == 2));
        assert!(matches!(match_registry(&inv, "otherregistry.azurecr.io"), RegistryMatch::Unknown { acr: true }));
        assert!(matches!(match_registry(&inv, "ghcr.io"), RegistryMatch::Unknown { acr: false }));
    }

    #[test]
    fn findings_group_by_key() {
        use crate::evidence::NodePlatform;
        use crate::finding::PodRef;
        use crate::plan::WorkloadRef;
        use crate::symptom::Symptom;
        let failure = |pod: &str| PullFailure {
            pod: PodRef { namespace: "ns".into(), name: pod.into(), container: "c".into(), image: "i".into() },
            image: None,
            symptom: Symptom::parse("x"),
            message: "boom".into(),
            node: None,
            platform: NodePlatform::default(),
            node_selector: Default::default(),
            pull_secret_names: vec![],
            pull_secrets: vec![],
            missing_pull_secrets: vec![],
            workload: WorkloadRef { kind: "Deployment".into(), namespace: "ns".into(), name: "d".into() },
            first_seen: None,
            last_seen: None,
        };
        let mut fs = Findings::default();
        for (pod, conf) in [("b", Confidence::Medium), ("a", Confidence::High), ("a", Confidence::Low)] {
            let f = failure(pod);
            fs.add("k", &f, Draft::new(FindingCode::ImageNotFound, conf, &f, "s").line("same"));
        }
        let f = failure("c");
        fs.add("other", &f, Draft::new(FindingCode::ImageNotFound, Confidence::Low, &f, "s"));
        let out = fs.into_vec();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].pods.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(out[0].confidence, Confidence::High);
        assert_eq!(out[0].evidence, ["kubelet: boom", "same"]);
    }
}
