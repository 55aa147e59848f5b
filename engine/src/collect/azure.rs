//! Live Azure evidence through azure-rest: from the image hosts the registries, from the nodes'
//! provider ids (or `--cluster RG/NAME`) the cluster, then only what the detectors read.
//!
//! Requests run in three concurrent stages (each stage needs the answers of the one before),
//! every answer is cached for the run (the same id is read once), azure-rest retries 429/5xx
//! honouring `Retry-After`, and a refused read (403 `AuthorizationFailed`, Graph
//! `Authorization_RequestDenied`) or a failed one becomes an [`Unavailable`] entry of the
//! inventory: the diagnosis goes on with what could be read.
//!
//! ARM requests for one failing pod: clusters (1), registries (1), role assignments at the
//! registry (1), node pool scale sets (1), node VNet (1), its NSG and route table (2), egress
//! IPs when the registry firewall denies (1), the registry's private endpoint with its VNet and
//! subnet NSG (3), the `privatelink.azurecr.io` zone, its links and A records (3): at most 15.
//!
//! A registry shared from another subscription: when an image's ACR login server is not among
//! the registries of the cluster's subscription, the other subscriptions the identity can see
//! (`GET /subscriptions`, the answer stage 0 may already have fetched) are searched, at most
//! [`MAX_OTHER_SUBSCRIPTIONS`] of them, [`SUBSCRIPTION_BATCH`] at a time, stopping once every
//! missing registry is found: 1 + the subscriptions listed. A registry found nowhere becomes an
//! [`Unavailable`] entry ([`what::UNKNOWN_REGISTRY`]) naming it and how many subscriptions were
//! searched, so the report says the registry could not be seen rather than saying nothing. Hosts
//! that are not ACR login servers (`docker.io`, a misspelt suffix) are never searched for. The
//! single-subscription case costs nothing more while the registry is found.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use azure_model::api_version as api;
use azure_model::authorization::built_in;
use azure_model::container_registry::{RegistryProperties, is_acr_login_server};
use azure_model::container_service::ManagedClusterProperties;
use azure_model::inventory::Unavailable;
use azure_model::network::{ACR_PRIVATE_ZONE, VirtualNetworkProperties};
use azure_model::{Inventory, Resource, ResourceId};
use azure_rest::{Client, Method, RestError};
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

/// Prefixes of [`Unavailable::what`] written by this collector (see [`super::reach`]).
pub mod what {
    /// The whole of ARM (no token).
    pub const ARM: &str = "azure: resource manager";
    /// Microsoft Graph as a whole.
    pub const GRAPH: &str = "azure: microsoft graph";
    /// Subscriptions.
    pub const SUBSCRIPTION: &str = "azure: subscription";
    /// The cluster.
    pub const CLUSTER: &str = "azure: managed cluster";
    /// Registries.
    pub const REGISTRY: &str = "azure: registries";
    /// An image's ACR registry found in none of the subscriptions the identity can see.
    pub const UNKNOWN_REGISTRY: &str = "azure: unknown registry";
    /// Role assignments.
    pub const ROLE_ASSIGNMENTS: &str = "azure: role assignments";
    /// Role definitions.
    pub const ROLE_DEFINITION: &str = "azure: role definition";
    /// Scale sets.
    pub const SCALE_SETS: &str = "azure: scale sets";
    /// Network resources (VNets, NSGs, route tables, endpoints, IPs, DNS).
    pub const NETWORK: &str = "azure: network";
    /// The private DNS zones of subscriptions beyond the search bound (`MAX_ZONE_SUBSCRIPTIONS`),
    /// followed by the subscriptions, comma-separated: not searched, not refused.
    pub const UNSEARCHED_ZONES: &str = "azure: network private DNS zones of subscription(s)";
    /// Graph applications and service principals.
    pub const DIRECTORY: &str = "azure: directory";

    /// The reason of the [`GRAPH`] entry written when Graph is skipped (`--no-graph`).
    pub const SKIPPED_NO_GRAPH: &str = "not read: --no-graph";

    /// Whether `u` was skipped on the user's request (its reason starts `not read`) rather than
    /// refused or failed: no grant would let pulldoctor see it.
    pub fn skipped_on_request(u: &super::Unavailable) -> bool {
        u.reason.trim_start().to_ascii_lowercase().starts_with("not read")
    }
}

/// What the Azure collector starts from (read off the Kubernetes evidence).
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// The subscription (`--subscription`, else a node's provider id).
    pub subscription: Option<String>,
    /// `--cluster RG/NAME`.
    pub cluster: Option<(String, String)>,
    /// Node resource groups (`MC_...`) from the nodes' provider ids.
    pub node_resource_groups: BTreeSet<String>,
    /// The registry hosts of the failing images.
    pub registry_hosts: BTreeSet<String>,
    /// Application ids found as pull secret usernames.
    pub app_ids: BTreeSet<String>,
}

/// The clients: ARM, and Graph when it is to be read.
#[derive(Clone)]
pub struct AzureClients {
    /// Resource Manager.
    pub arm: Client,
    /// Microsoft Graph (`None`: not read).
    pub graph: Option<Client>,
    /// The credential behind both: ACR's token exchange takes its ARM-scoped tokens
    /// ([`super::registry`]).
    pub tokens: Arc<dyn azure_rest::TokenSource>,
}

/// A failed read, cloneable so it can be cached.
#[derive(Debug, Clone)]
pub struct Failure {
    /// HTTP status, when the service answered.
    pub status: Option<u16>,
    /// Why.
    pub reason: String,
    /// No token could be had.
    pub token: bool,
}

impl From<RestError> for Failure {
    fn from(e: RestError) -> Self {
        let token = matches!(e, RestError::Token { .. });
        let reason = match &e {
            RestError::Api { status, code, message, .. } => format!("{status} {code}: {message}"),
            other => other.to_string(),
        };
        Failure { status: e.status(), reason, token }
    }
}

type Fetched = Result<Value, Failure>;

/// Reads through one client, each distinct request once per run.
struct Fetcher {
    client: Client,
    cache: Mutex<HashMap<String, Arc<OnceCell<Fetched>>>>,
}

impl Fetcher {
    fn new(client: Client) -> Self {
        Self { client, cache: Mutex::new(HashMap::new()) }
    }

    async fn cell(&self, key: String) -> Arc<OnceCell<Fetched>> {
        self.cache.lock().await.entry(key).or_default().clone()
    }

    /// `GET` one resource (or any JSON answer).
    async fn get(&self, path: &str, api_version: &str) -> Fetched {
        let cell = self.cell(format!("get {} {api_version}", path.to_ascii_lowercase())).await;
        cell.get_or_init(|| async {
            self.client.send(Method::Get, path, api_version, None).await.map_err(Failure::from)
        })
        .await
        .clone()
    }

    /// `GET` a collection, every page.
    async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>, Failure> {
        let cell = self.cell(format!("list {} {api_version}", path.to_ascii_lowercase())).await;
        cell.get_or_init(|| async {
            self.client.list::<Value>(path, api_version).await.map(Value::Array).map_err(Failure::from)
        })
        .await
        .clone()
        .map(|v| match v {
            Value::Array(a) => a,
            _ => Vec::new(),
        })
    }
}

/// Role GUIDs the engine knows without reading their definition.
const KNOWN_ROLES: &[&str] = &[
    "8311e382-0749-4cb8-b61a-304f252e45ec", // AcrPush
    "2a1e307c-b015-4ebd-883e-5b7698a07328", // Container Registry Repository Writer
];

/// At most this many custom role definitions and Graph principals are read.
const MAX_EXTRA_READS: usize = 10;

/// At most this many subscriptions besides the cluster's are searched for a registry.
pub const MAX_OTHER_SUBSCRIPTIONS: usize = 10;

/// How many of them are listed at once.
pub const SUBSCRIPTION_BATCH: usize = 4;

/// At most this many subscriptions besides the cluster's (the registries' and their private
/// endpoints') are searched for the `privatelink.azurecr.io` zone.
pub const MAX_ZONE_SUBSCRIPTIONS: usize = 4;

struct Run {
    arm: Fetcher,
    graph: Option<Fetcher>,
    inv: Mutex<Inventory>,
}

impl Run {
    async fn add(&self, v: Value) {
        let mut inv = self.inv.lock().await;
        let n = inv.other.len();
        if let Err(e) = inv.add_value(n, v) {
            tracing::warn!(error = %e, "an ARM answer does not have the expected shape");
        }
    }

    async fn miss(&self, what: &str, subject: &str, f: &Failure) {
        let mut inv = self.inv.lock().await;
        let entry = Unavailable { what: format!("{what} {subject}"), reason: f.reason.clone() };
        if !inv.unavailable.contains(&entry) {
            inv.unavailable.push(entry);
        }
    }

    /// `GET` an ARM resource into the inventory. 404: absent (nothing recorded).
    async fn arm_get(&self, what: &str, id: &str, api_version: &str) -> Option<Value> {
        match self.arm.get(id, api_version).await {
            Ok(v) => {
                self.add(v.clone()).await;
                Some(v)
            }
            Err(f) if f.status == Some(404) => None,
            Err(f) => {
                self.miss(what, id, &f).await;
                None
            }
        }
    }

    /// Lists an ARM collection into the inventory.
    async fn arm_list(&self, what: &str, path: &str, api_version: &str) -> Option<Vec<Value>> {
        match self.arm.list(path, api_version).await {
            Ok(vs) => {
                for v in &vs {
                    self.add(v.clone()).await;
                }
                Some(vs)
            }
            Err(f) if f.status == Some(404) => Some(Vec::new()),
            Err(f) => {
                self.miss(what, path.split('?').next().unwrap_or(path), &f).await;
                None
            }
        }
    }

    /// Graph application and service principal of `app_id`. Without Graph (`--no-graph`), one
    /// [`what::GRAPH`] entry says it was skipped, so the expiry of secrets is not silently unjudged.
    async fn graph_app(&self, app_id: &str) {
        let Some(g) = &self.graph else {
            let entry = Unavailable { what: what::GRAPH.into(), reason: what::SKIPPED_NO_GRAPH.into() };
            let mut inv = self.inv.lock().await;
            if !inv.unavailable.contains(&entry) {
                inv.unavailable.push(entry);
            }
            return;
        };
        let filter = format!("$filter=appId%20eq%20'{app_id}'");
        let (apps_path, sps_path) =
            (format!("/v1.0/applications?{filter}"), format!("/v1.0/servicePrincipals?{filter}"));
        let (apps, sps) = futures::join!(g.list(&apps_path, ""), g.list(&sps_path, ""));
        let mut inv = self.inv.lock().await;
        match apps {
            Ok(a) => inv.applications.extend(a.into_iter().filter_map(|v| serde_json::from_value(v).ok())),
            Err(f) => inv
                .unavailable
                .push(Unavailable { what: format!("{} application {app_id}", what::DIRECTORY), reason: f.reason }),
        }
        match sps {
            Ok(s) => inv.service_principals.extend(s.into_iter().filter_map(|v| serde_json::from_value(v).ok())),
            Err(f) => inv.unavailable.push(Unavailable {
                what: format!("{} service principal of {app_id}", what::DIRECTORY),
                reason: f.reason,
            }),
        }
    }

    /// Graph service principal by object id (for principals holding roles on a registry).
    async fn graph_principal(&self, object_id: &str) -> Option<String> {
        let g = self.graph.as_ref()?;
        match g.get(&format!("/v1.0/servicePrincipals/{object_id}"), "").await {
            Ok(v) => {
                let sp: azure_model::graph::ServicePrincipal = serde_json::from_value(v).ok()?;
                let app = sp.app_id.clone();
                self.inv.lock().await.service_principals.push(sp);
                Some(app)
            }
            Err(f) if f.status == Some(404) => None,
            Err(f) => {
                self.miss(what::DIRECTORY, &format!("service principal {object_id}"), &f).await;
                None
            }
        }
    }
}

fn registries_path(sub: &str) -> String {
    format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries")
}

fn login_server(v: &Value) -> Option<&str> {
    v.pointer("/properties/loginServer").and_then(Value::as_str)
}

/// Looks for the registries of `hosts` (ACR login servers, lower case) in the subscriptions
/// other than `sub` that the identity can see, and adds those found to the inventory. Each one
/// found nowhere becomes an [`Unavailable`] entry.
async fn registries_elsewhere(run: &Run, sub: &str, hosts: &BTreeSet<String>) -> Vec<Value> {
    let name = |h: &str| h.split('.').next().unwrap_or(h).to_string();
    let not_found = |host: &str, reason: String| Unavailable {
        what: format!("{} {}", what::UNKNOWN_REGISTRY, name(host)),
        reason: format!("{host}: {reason}"),
    };
    let others: Vec<String> = match run.arm.list("/subscriptions", api::RESOURCES).await {
        Ok(subs) => subs
            .iter()
            .filter_map(|s| s.get("subscriptionId")?.as_str())
            .filter(|s| !s.eq_ignore_ascii_case(sub))
            .map(str::to_string)
            .collect(),
        Err(f) => {
            let mut inv = run.inv.lock().await;
            for h in hosts {
                inv.unavailable.push(not_found(
                    h,
                    format!(
                        "no registry with this login server in subscription {sub}, and the other subscriptions cannot be listed ({})",
                        f.reason
                    ),
                ));
            }
            return Vec::new();
        }
    };
    let mut left = hosts.clone();
    let mut found = Vec::new();
    let mut searched = 0usize;
    let mut refused: Vec<String> = Vec::new();
    let candidates: Vec<&String> = others.iter().take(MAX_OTHER_SUBSCRIPTIONS).collect();
    for batch in candidates.chunks(SUBSCRIPTION_BATCH) {
        if left.is_empty() {
            break;
        }
        let lists = futures::future::join_all(
            batch.iter().map(|s| async move { run.arm.list(&registries_path(s), api::CONTAINER_REGISTRY).await }),
        )
        .await;
        for (s, listed) in batch.iter().zip(lists) {
            searched += 1;
            match listed {
                Ok(regs) => {
                    for r in regs {
                        let Some(login) = login_server(&r).map(str::to_ascii_lowercase) else { continue };
                        if left.remove(&login) {
                            run.add(r.clone()).await;
                            found.push(r);
                        }
                    }
                }
                Err(f) => refused.push(format!("{s} ({})", f.reason)),
            }
        }
    }
    if !left.is_empty() {
        let mut reason = format!(
            "no registry with this login server in the cluster's subscription {sub} nor in the {searched} other subscription(s) pulldoctor's identity can see{}",
            if searched == 0 { " (it sees no other)" } else { "" }
        );
        // The search stops early only when everything was found: what is left unsearched is
        // beyond the bound.
        if others.len() > searched {
            reason.push_str(&format!(
                "; {} more subscription(s) were not searched (at most {MAX_OTHER_SUBSCRIPTIONS})",
                others.len() - searched
            ));
        }
        if !refused.is_empty() {
            reason.push_str(&format!("; the registries of {} could not be listed", refused.join(", ")));
        }
        reason.push_str(": it may be in a subscription pulldoctor cannot read, or not exist");
        let mut inv = run.inv.lock().await;
        for h in &left {
            inv.unavailable.push(not_found(h, reason.clone()));
        }
    }
    found
}

/// The subscription of an ARM resource id.
fn subscription_of(id: &str) -> Option<String> {
    ResourceId::parse(id).ok().and_then(|i| i.subscription().map(str::to_string))
}

fn rg_path(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

fn typed<P: serde::de::DeserializeOwned>(v: &Value) -> Option<Resource<P>> {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.entry("properties").or_insert_with(|| serde_json::json!({}));
    }
    serde_json::from_value(v).ok()
}

fn vnet_of_subnet(subnet_id: &str) -> Option<String> {
    Inventory::vnet_of_subnet(subnet_id).map(str::to_string)
}

/// Why the Azure evidence could not be collected at all (user errors only; everything else is
/// an `Unavailable` entry).
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// `--cluster RG/NAME` names nothing.
    #[error("cluster {0} not found in subscription {1}")]
    ClusterNotFound(String, String),
}

/// Collects the Azure inventory the detectors need.
pub async fn collect(clients: &AzureClients, hints: &Hints) -> Result<Inventory, AzureError> {
    let run = Run {
        arm: Fetcher::new(clients.arm.clone()),
        graph: clients.graph.clone().map(Fetcher::new),
        inv: Mutex::new(Inventory::default()),
    };

    // Stage 0: the subscription.
    let sub = match hints.subscription.clone().or_else(|| std::env::var("AZURE_SUBSCRIPTION_ID").ok()) {
        Some(s) => s,
        None => match run.arm.list("/subscriptions", api::RESOURCES).await {
            Ok(subs) => {
                let ids: Vec<String> =
                    subs.iter().filter_map(|s| s.get("subscriptionId")?.as_str().map(str::to_string)).collect();
                match ids.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        let reason = if ids.is_empty() {
                            "the credential sees no subscription".to_string()
                        } else {
                            format!("the credential sees {} subscriptions; pass --subscription", ids.len())
                        };
                        run.inv.lock().await.unavailable.push(Unavailable { what: what::SUBSCRIPTION.into(), reason });
                        return Ok(run.inv.into_inner());
                    }
                }
            }
            Err(f) => {
                let what = if f.token { what::ARM } else { what::SUBSCRIPTION };
                run.inv.lock().await.unavailable.push(Unavailable { what: what.into(), reason: f.reason });
                return Ok(run.inv.into_inner());
            }
        },
    };
    run.inv.lock().await.subscription_id = Some(sub.clone());

    // Stage 1: the cluster and the registries.
    let cluster_fut = async {
        match &hints.cluster {
            Some((rg, name)) => {
                let id = format!("{}/providers/Microsoft.ContainerService/managedClusters/{name}", rg_path(&sub, rg));
                match run.arm.get(&id, api::CONTAINER_SERVICE).await {
                    Ok(v) => Ok((Some(v), Vec::new())),
                    Err(f) if f.status == Some(404) => {
                        Err(AzureError::ClusterNotFound(format!("{rg}/{name}"), sub.clone()))
                    }
                    Err(f) => {
                        run.miss(what::CLUSTER, &id, &f).await;
                        Ok((None, Vec::new()))
                    }
                }
            }
            None => {
                let path = format!("/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters");
                match run.arm.list(&path, api::CONTAINER_SERVICE).await {
                    Ok(all) => {
                        let pick = all.iter().position(|c| {
                            c.pointer("/properties/nodeResourceGroup")
                                .and_then(Value::as_str)
                                .is_some_and(|rg| hints.node_resource_groups.iter().any(|h| h.eq_ignore_ascii_case(rg)))
                        });
                        let pick = pick.or((all.len() == 1 && hints.node_resource_groups.is_empty()).then_some(0));
                        let mut rest = all;
                        let chosen = pick.map(|i| rest.remove(i));
                        Ok((chosen, rest))
                    }
                    Err(f) => {
                        run.miss(what::CLUSTER, &path, &f).await;
                        Ok((None, Vec::new()))
                    }
                }
            }
        }
    };
    let registries_path = registries_path(&sub);
    let registries_fut = run.arm_list(what::REGISTRY, &registries_path, api::CONTAINER_REGISTRY);
    let (cluster, registries) = futures::join!(cluster_fut, registries_fut);
    let (cluster, other_clusters) = cluster?;
    let no_token = run.inv.lock().await.unavailable.iter().find(|u| u.reason.contains("cannot get a token")).cloned();
    if let Some(f) = no_token {
        let mut inv = run.inv.into_inner();
        inv.unavailable = vec![Unavailable { what: what::ARM.into(), reason: f.reason }];
        return Ok(inv);
    }
    // The pods' cluster first: the detectors take the first one.
    if let Some(c) = &cluster {
        run.add(c.clone()).await;
    }
    for c in other_clusters {
        run.add(c).await;
    }
    let cluster: Option<Resource<ManagedClusterProperties>> = cluster.as_ref().and_then(typed);
    // ACR hosts of the images that the cluster's subscription has no registry for: a registry
    // shared from another subscription (searched only when the listing above succeeded).
    let mut registries = registries;
    if let Some(listed) = &registries {
        let missing: BTreeSet<String> = hints
            .registry_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .filter(|h| is_acr_login_server(h))
            .filter(|h| !listed.iter().filter_map(login_server).any(|l| l.eq_ignore_ascii_case(h)))
            .collect();
        if !missing.is_empty() {
            let found = registries_elsewhere(&run, &sub, &missing).await;
            registries.get_or_insert_default().extend(found);
        }
    }
    let registries: Vec<Resource<RegistryProperties>> =
        registries.unwrap_or_default().iter().filter_map(typed).collect();
    let matched: Vec<&Resource<RegistryProperties>> = registries
        .iter()
        .filter(|r| {
            r.properties
                .login_server
                .as_deref()
                .is_some_and(|l| hints.registry_hosts.iter().any(|h| h.eq_ignore_ascii_case(l)))
        })
        .collect();

    // Stage 2: what hangs off the cluster and the registries.
    let cluster_sub = cluster
        .as_ref()
        .and_then(|c| ResourceId::parse(&c.id).ok().and_then(|i| i.subscription().map(str::to_string)))
        .unwrap_or_else(|| sub.clone());
    let node_rg = cluster.as_ref().and_then(|c| c.properties.node_resource_group.clone());
    let pool_subnets: BTreeSet<String> = cluster
        .as_ref()
        .map(|c| c.properties.agent_pool_profiles.iter().filter_map(|p| p.vnet_subnet_id.clone()).collect())
        .unwrap_or_default();
    let pool_vnets: BTreeSet<String> = pool_subnets.iter().filter_map(|s| vnet_of_subnet(s)).collect();
    let private = matched
        .iter()
        .any(|r| !r.properties.private_endpoint_connections.is_empty() || !r.properties.public_access_enabled());
    let firewall = matched.iter().any(|r| {
        r.properties.public_access_enabled()
            && r.properties.network_rule_set.as_ref().is_some_and(|n| n.default_action.eq_ignore_ascii_case("Deny"))
    });
    let endpoint_ids: BTreeSet<String> = matched
        .iter()
        .flat_map(|r| r.properties.private_endpoint_connections.iter())
        .filter_map(|c| c.properties.private_endpoint.as_ref().map(|p| p.id.clone()))
        .collect();
    let egress: Vec<String> = if firewall {
        cluster
            .as_ref()
            .and_then(|c| c.properties.network_profile.as_ref()?.load_balancer_profile.as_ref())
            .map(|lb| lb.effective_outbound_ips.iter().map(|r| r.id.clone()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut app_ids = hints.app_ids.clone();
    if let Some(app) = cluster.as_ref().and_then(|c| c.properties.service_principal_client_id()) {
        app_ids.insert(app.to_string());
    }

    let role_assignments = futures::future::join_all(matched.iter().map(|r| {
        let path = format!("{}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", r.id);
        let id = r.id.clone();
        let run = &run;
        async move {
            match run.arm.list(&path, api::AUTHORIZATION).await {
                Ok(vs) => {
                    for v in &vs {
                        run.add(v.clone()).await;
                    }
                    vs
                }
                Err(f) => {
                    run.miss(what::ROLE_ASSIGNMENTS, &format!("at {id}"), &f).await;
                    Vec::new()
                }
            }
        }
    }));
    let scale_sets = async {
        if let Some(rg) = &node_rg {
            run.arm_list(
                what::SCALE_SETS,
                &format!("{}/providers/Microsoft.Compute/virtualMachineScaleSets", rg_path(&cluster_sub, rg)),
                api::COMPUTE,
            )
            .await;
        }
    };
    let vnets = async {
        if pool_vnets.is_empty() {
            match &node_rg {
                Some(rg) => run
                    .arm_list(
                        what::NETWORK,
                        &format!("{}/providers/Microsoft.Network/virtualNetworks", rg_path(&cluster_sub, rg)),
                        api::NETWORK,
                    )
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        } else {
            futures::future::join_all(pool_vnets.iter().map(|v| run.arm_get(what::NETWORK, v, api::NETWORK)))
                .await
                .into_iter()
                .flatten()
                .collect()
        }
    };
    let endpoints =
        futures::future::join_all(endpoint_ids.iter().map(|id| run.arm_get(what::NETWORK, id, api::NETWORK)));
    let ips = futures::future::join_all(egress.iter().map(|id| run.arm_get(what::NETWORK, id, api::NETWORK)));
    // The `privatelink.azurecr.io` zone: in the cluster's subscription, and in the registries'
    // and their private endpoints' own (a hub subscription often holds both), at most
    // MAX_ZONE_SUBSCRIPTIONS besides the cluster's.
    let zone_subs: Vec<String> = if private {
        let mut subs = vec![sub.clone()];
        let elsewhere = matched
            .iter()
            .map(|r| r.id.as_str())
            .chain(endpoint_ids.iter().map(String::as_str))
            .filter_map(subscription_of);
        for s in elsewhere {
            if !subs.iter().any(|k| k.eq_ignore_ascii_case(&s)) {
                subs.push(s);
            }
        }
        if subs.len() > 1 + MAX_ZONE_SUBSCRIPTIONS {
            let skipped = subs.split_off(1 + MAX_ZONE_SUBSCRIPTIONS);
            run.inv.lock().await.unavailable.push(Unavailable {
                what: format!("{} {}", what::UNSEARCHED_ZONES, skipped.join(", ")),
                reason: format!(
                    "not searched: at most {MAX_ZONE_SUBSCRIPTIONS} subscription(s) besides the cluster's are searched for {ACR_PRIVATE_ZONE}"
                ),
            });
        }
        subs
    } else {
        Vec::new()
    };
    let zones = async {
        let lists = futures::future::join_all(zone_subs.iter().map(|s| {
            let run = &run;
            async move {
                let path = format!("/subscriptions/{s}/providers/Microsoft.Network/privateDnsZones");
                match run.arm.list(&path, api::PRIVATE_DNS).await {
                    Ok(zs) => {
                        let mine: Vec<Value> = zs
                            .into_iter()
                            .filter(|z| {
                                z.get("name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|n| n.eq_ignore_ascii_case(ACR_PRIVATE_ZONE))
                            })
                            .collect();
                        for z in &mine {
                            run.add(z.clone()).await;
                        }
                        mine
                    }
                    Err(f) => {
                        run.miss(what::NETWORK, &path, &f).await;
                        Vec::new()
                    }
                }
            }
        }))
        .await;
        lists.into_iter().flatten().collect::<Vec<Value>>()
    };
    let graph_apps = futures::future::join_all(app_ids.iter().map(|a| run.graph_app(a)));
    let (assignments, _, node_vnets, endpoints, _, zones, _) =
        futures::join!(role_assignments, scale_sets, vnets, endpoints, ips, zones, graph_apps);

    // Stage 3: subnets' NSGs and route tables, the endpoints' VNets, the zone's links and
    // records, custom roles, and who holds roles on the registries.
    let node_vnets: Vec<Resource<VirtualNetworkProperties>> = node_vnets.iter().filter_map(typed).collect();
    let endpoints: Vec<Value> = endpoints.into_iter().flatten().collect();
    let pe_subnets: BTreeSet<String> = endpoints
        .iter()
        .filter_map(|e| e.pointer("/properties/subnet/id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let pe_vnet_ids: BTreeSet<String> = pe_subnets.iter().filter_map(|s| vnet_of_subnet(s)).collect();
    let node_subnet_refs =
        |vnets: &[Resource<VirtualNetworkProperties>], wanted: &BTreeSet<String>| -> BTreeSet<String> {
            let mut refs = BTreeSet::new();
            for v in vnets {
                for s in &v.properties.subnets {
                    let sid = s.id.clone().unwrap_or_else(|| format!("{}/subnets/{}", v.id, s.name));
                    let keep = wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(&sid));
                    if keep {
                        refs.extend(s.properties.network_security_group.as_ref().map(|n| n.id.clone()));
                        refs.extend(s.properties.route_table.as_ref().map(|r| r.id.clone()));
                    }
                }
            }
            refs
        };
    let mut wanted_nodes = pool_subnets.clone();
    if wanted_nodes.is_empty() {
        // Managed VNet: the first subnet of each VNet in the node resource group.
        for v in &node_vnets {
            if let Some(s) = v.properties.subnets.first() {
                wanted_nodes.insert(s.id.clone().unwrap_or_else(|| format!("{}/subnets/{}", v.id, s.name)));
            }
        }
    }
    let node_refs = node_subnet_refs(&node_vnets, &wanted_nodes);
    let pe_side = async {
        let vnets: Vec<Resource<VirtualNetworkProperties>> =
            futures::future::join_all(pe_vnet_ids.iter().map(|v| run.arm_get(what::NETWORK, v, api::NETWORK)))
                .await
                .into_iter()
                .flatten()
                .filter_map(|v| typed(&v))
                .collect();
        let nsgs: BTreeSet<String> = node_subnet_refs(&vnets, &pe_subnets)
            .into_iter()
            .filter(|r| r.to_ascii_lowercase().contains("/networksecuritygroups/"))
            .collect();
        futures::future::join_all(nsgs.iter().map(|id| run.arm_get(what::NETWORK, id, api::NETWORK))).await;
    };
    let node_side = futures::future::join_all(node_refs.iter().map(|id| run.arm_get(what::NETWORK, id, api::NETWORK)));
    let zone_side =
        futures::future::join_all(zones.iter().filter_map(|z| z.get("id")?.as_str().map(str::to_string)).map(|zid| {
            let run = &run;
            async move {
                let (links, records) = (format!("{zid}/virtualNetworkLinks"), format!("{zid}/A"));
                futures::join!(
                    run.arm_list(what::NETWORK, &links, api::PRIVATE_DNS),
                    run.arm_list(what::NETWORK, &records, api::PRIVATE_DNS)
                );
            }
        }));
    let assignments: Vec<Value> = assignments.into_iter().flatten().collect();
    let custom_roles: BTreeSet<String> = assignments
        .iter()
        .filter_map(|a| a.pointer("/properties/roleDefinitionId").and_then(Value::as_str))
        .filter(|id| {
            let guid = id.rsplit('/').next().unwrap_or_default();
            built_in(guid).is_none() && !KNOWN_ROLES.iter().any(|k| k.eq_ignore_ascii_case(guid))
        })
        .map(str::to_string)
        .take(MAX_EXTRA_READS)
        .collect();
    let roles = futures::future::join_all(
        custom_roles.iter().map(|id| run.arm_get(what::ROLE_DEFINITION, id, api::AUTHORIZATION)),
    );
    let kubelet = cluster.as_ref().and_then(|c| c.properties.kubelet_identity().and_then(|k| k.object_id.clone()));
    let holders: BTreeSet<String> = assignments
        .iter()
        .filter(|a| {
            a.pointer("/properties/principalType")
                .and_then(Value::as_str)
                .is_none_or(|t| t.eq_ignore_ascii_case("ServicePrincipal"))
        })
        .filter_map(|a| a.pointer("/properties/principalId").and_then(Value::as_str).map(str::to_string))
        .filter(|p| kubelet.as_deref().is_none_or(|k| !k.eq_ignore_ascii_case(p)))
        .take(MAX_EXTRA_READS)
        .collect();
    let sp_cluster = cluster.as_ref().is_some_and(|c| c.properties.service_principal_client_id().is_some());
    let principals = async {
        let apps: Vec<Option<String>> = futures::future::join_all(holders.iter().map(|p| run.graph_principal(p))).await;
        if sp_cluster {
            // A former service principal of an SP cluster is recognised by its registered app.
            let fresh: Vec<String> = apps.into_iter().flatten().filter(|a| !app_ids.contains(a)).collect();
            futures::future::join_all(fresh.iter().map(|a| run.graph_app(a))).await;
        }
    };
    futures::join!(pe_side, node_side, zone_side, roles, principals);

    let mut inv = run.inv.into_inner();
    dedup_inventory(&mut inv);
    Ok(inv)
}

fn dedup_inventory(inv: &mut Inventory) {
    fn dedup<P>(list: &mut Vec<Resource<P>>) {
        let mut seen = BTreeSet::new();
        list.retain(|r| seen.insert(r.id.to_ascii_lowercase()));
    }
    dedup(&mut inv.managed_clusters);
    dedup(&mut inv.registries);
    dedup(&mut inv.role_assignments);
    dedup(&mut inv.role_definitions);
    dedup(&mut inv.virtual_networks);
    dedup(&mut inv.network_security_groups);
    dedup(&mut inv.route_tables);
    dedup(&mut inv.private_endpoints);
    dedup(&mut inv.public_ip_addresses);
    dedup(&mut inv.virtual_machine_scale_sets);
    dedup(&mut inv.private_dns_zones);
    dedup(&mut inv.virtual_network_links);
    dedup(&mut inv.a_record_sets);
    let mut seen = BTreeSet::new();
    inv.applications.retain(|a| seen.insert(a.id.to_ascii_lowercase()));
    let mut seen = BTreeSet::new();
    inv.service_principals.retain(|s| seen.insert(s.id.to_ascii_lowercase()));
}
