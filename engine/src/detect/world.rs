//! A synthetic AKS + ACR world: one healthy baseline, then exactly one thing broken per
//! scenario, the way it breaks in production. Test-only.
//!
//! It writes the evidence fixtures (`fixtures/evidence/<scenario>/`: a `kubectl cluster-info
//! dump` directory, `azure.json`, `expected.json`) and builds the same [`Evidence`] in memory
//! for the detectors' unit tests, which vary a scenario further. Everything is deterministic:
//! names, uids and times derive from fixed seeds.
//!
//! The fixtures are checked against this generator (`fixtures_match_the_generator`); after a
//! change, regenerate them with
//! `PULLDOCTOR_UPDATE_FIXTURES=1 cargo test -p pulldoctor --lib detect::world`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::evidence::Evidence;

// ---------------------------------------------------------------------------------------
// Names

pub(crate) const SUB: &str = "5b1f7c2e-8d4a-4e6b-9f3c-1a2d3e4f5a6b";
pub(crate) const TENANT: &str = "c4e8a1f2-6b3d-4a9e-8c7f-2d1e0b9a8c76";
pub(crate) const LOCATION: &str = "westeurope";
pub(crate) const RG_AKS: &str = "rg-shop-aks";
pub(crate) const RG_ACR: &str = "rg-shop-acr";
pub(crate) const RG_NET: &str = "rg-shop-network";
pub(crate) const CLUSTER: &str = "aks-shop-weu";
pub(crate) const NODE_RG: &str = "MC_rg-shop-aks_aks-shop-weu_westeurope";
pub(crate) const REGISTRY: &str = "acrshopweu";
pub(crate) const LOGIN: &str = "acrshopweu.azurecr.io";
pub(crate) const NS: &str = "shop";
pub(crate) const PE_IP: &str = "10.20.1.4";
pub(crate) const PE_DATA_IP: &str = "10.20.1.5";
pub(crate) const EGRESS_IP: &str = "20.103.44.17";
/// What tests look for in every rendering: the password in the pull secrets.
pub(crate) const SECRET_MARKER: &str = "s3cr3t-DO-NOT-LEAK";

pub(crate) const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub(crate) const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
pub(crate) const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub(crate) const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
pub(crate) const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub(crate) const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

const T0: OffsetDateTime = datetime!(2025-06-02 09:12:00 UTC);

/// FNV-1a: stable across platforms and Rust versions.
fn fnv(seed: &str) -> u64 {
    seed.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn hex(seed: &str, n: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < n {
        out.push_str(&format!("{:016x}", fnv(&format!("{seed}#{i}"))));
        i += 1;
    }
    out.truncate(n);
    out
}

/// A deterministic GUID (version 4 shaped).
pub(crate) fn guid(seed: &str) -> String {
    let h = hex(seed, 32);
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// Kubernetes' random-name alphabet (`k8s.io/apimachinery/pkg/util/rand`).
fn k8s_suffix(seed: &str, n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n).map(|i| ALPHABET[(fnv(&format!("{seed}/{i}")) % ALPHABET.len() as u64) as usize] as char).collect()
}

fn ts(offset_secs: i64) -> String {
    (T0 + Duration::seconds(offset_secs)).format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn rg_id(rg: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}")
}

pub(crate) fn arm_id(rg: &str, rest: &str) -> String {
    format!("{}/providers/{rest}", rg_id(rg))
}

pub(crate) fn cluster_id() -> String {
    arm_id(RG_AKS, &format!("Microsoft.ContainerService/managedClusters/{CLUSTER}"))
}
pub(crate) fn registry_id() -> String {
    arm_id(RG_ACR, &format!("Microsoft.ContainerRegistry/registries/{REGISTRY}"))
}
pub(crate) fn aks_vnet_id() -> String {
    arm_id(RG_NET, "Microsoft.Network/virtualNetworks/vnet-shop-aks")
}
pub(crate) fn hub_vnet_id() -> String {
    arm_id(RG_NET, "Microsoft.Network/virtualNetworks/vnet-shop-hub")
}
pub(crate) fn node_subnet_id() -> String {
    format!("{}/subnets/snet-aks-nodes", aks_vnet_id())
}
pub(crate) fn pe_subnet_id() -> String {
    format!("{}/subnets/snet-private-endpoints", hub_vnet_id())
}
pub(crate) fn nsg_id() -> String {
    arm_id(RG_NET, "Microsoft.Network/networkSecurityGroups/nsg-aks-nodes")
}
pub(crate) fn route_table_id() -> String {
    arm_id(RG_NET, "Microsoft.Network/routeTables/rt-aks-nodes")
}
pub(crate) fn zone_id() -> String {
    arm_id(RG_NET, "Microsoft.Network/privateDnsZones/privatelink.azurecr.io")
}
pub(crate) fn vmss_id(name: &str) -> String {
    arm_id(NODE_RG, &format!("Microsoft.Compute/virtualMachineScaleSets/{name}"))
}
pub(crate) fn kubelet_identity_id() -> String {
    arm_id(NODE_RG, &format!("Microsoft.ManagedIdentity/userAssignedIdentities/{CLUSTER}-agentpool"))
}
fn addon_identity_id() -> String {
    arm_id(NODE_RG, &format!("Microsoft.ManagedIdentity/userAssignedIdentities/azurekeyvaultsecretsprovider-{CLUSTER}"))
}
pub(crate) fn egress_ip_id() -> String {
    arm_id(NODE_RG, &format!("Microsoft.Network/publicIPAddresses/{}", guid("egress-ip")))
}
fn role_def(role: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}")
}
pub(crate) fn kubelet_object_id() -> String {
    guid("kubelet-object")
}

/// A registered application with its service principal.
#[derive(Clone, Copy)]
pub(crate) struct App {
    pub name: &'static str,
}

impl App {
    pub fn app_id(self) -> String {
        guid(&format!("{}-app-id", self.name))
    }
    pub fn object_id(self) -> String {
        guid(&format!("{}-sp-object", self.name))
    }
    pub fn application(self, ends: &[&str]) -> Value {
        json!({
            "id": guid(&format!("{}-application-object", self.name)),
            "appId": self.app_id(),
            "displayName": self.name,
            "passwordCredentials": ends.iter().enumerate().map(|(i, end)| json!({
                "keyId": guid(&format!("{}-key-{i}", self.name)),
                "displayName": format!("rbac-{}", &end[..4]),
                // Valid ones were created in January 2025; expired ones a year before they ended.
                "startDateTime": if *end > "2030" { "2025-01-14T10:21:33Z".to_string() } else { format!("{}-{}", end[..4].parse::<i32>().unwrap_or(2025) - 1, &end[5..]) },
                "endDateTime": end,
                "hint": "Q~x"
            })).collect::<Vec<_>>()
        })
    }
    pub fn service_principal(self) -> Value {
        json!({"id": self.object_id(), "appId": self.app_id(), "displayName": self.name})
    }
}

pub(crate) const CI_APP: App = App { name: "sp-shop-github-ci" };
pub(crate) const CLUSTER_APP: App = App { name: "aks-shop-weu-sp" };
pub(crate) const CLUSTER_APP_2025: App = App { name: "aks-shop-weu-sp-2025" };
pub(crate) const PULL_APP: App = App { name: "sp-shop-pull" };

pub(crate) const VALID: &str = "2099-01-31T00:00:00Z";
pub(crate) const EXPIRED: &str = "2024-05-31T00:00:00Z";

// ---------------------------------------------------------------------------------------
// How the node reports errors

/// The node's Kubernetes and containerd versions decide how errors read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runtime {
    pub k8s: &'static str,
    pub containerd: &'static str,
    /// Kubernetes < 1.28 keeps `rpc error: code = Unknown desc = `.
    pub rpc_unknown: bool,
    /// containerd < 1.6.25: `unexpected status: 401 Unauthorized`.
    pub old_status: bool,
}

pub(crate) const K131: Runtime =
    Runtime { k8s: "1.31.5", containerd: "1.7.25-1", rpc_unknown: false, old_status: false };
pub(crate) const K127: Runtime =
    Runtime { k8s: "1.27.9", containerd: "1.7.15-1", rpc_unknown: true, old_status: false };
pub(crate) const K124: Runtime = Runtime { k8s: "1.24.10", containerd: "1.6.18", rpc_unknown: true, old_status: true };

/// Splits `HOST/REPO:TAG`.
fn parts(image: &str) -> (&str, &str, &str) {
    let (host, rest) = image.split_once('/').unwrap_or(("", image));
    let (repo, tag) = rest.rsplit_once(':').unwrap_or((rest, "latest"));
    (host, repo, tag)
}

impl Runtime {
    fn wrap(&self, code: &str, body: String) -> String {
        if code != "Unknown" || self.rpc_unknown { format!("rpc error: code = {code} desc = {body}") } else { body }
    }

    fn pre(image: &str) -> String {
        format!("failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": ")
    }

    /// `failed to fetch {creds} token: ...: {status}` (with ACR's body where containerd shows it).
    pub fn token(&self, image: &str, creds: &str, status: &str, body: Option<&str>) -> String {
        let (host, repo, _) = parts(image);
        let tail = if self.old_status {
            format!("unexpected status: {status}")
        } else {
            let url = format!(
                "https://{host}/oauth2/token?scope=repository%3A{}%3Apull&service={host}",
                repo.replace('/', "%2F")
            );
            format!(
                "unexpected status from GET request to {url}: {status}{}",
                body.map(|b| format!(": {b}")).unwrap_or_default()
            )
        };
        self.wrap("Unknown", format!("{}failed to authorize: failed to fetch {creds} token: {tail}", Self::pre(image)))
    }

    /// `failed to do request: Head "https://HOST/v2/REPO/manifests/TAG": {tail}`.
    pub fn request(&self, image: &str, tail: &str) -> String {
        let (host, repo, tag) = parts(image);
        self.wrap(
            "Unknown",
            format!(
                "{}failed to do request: Head \"https://{host}/v2/{repo}/manifests/{tag}\": {tail}",
                Self::pre(image)
            ),
        )
    }

    pub fn not_found(&self, image: &str) -> String {
        self.wrap("NotFound", format!("{}{image}: not found", Self::pre(image)))
    }

    pub fn platform(&self, image: &str) -> String {
        self.wrap(
            "NotFound",
            format!("failed to pull and unpack image \"{image}\": no match for platform in manifest: not found"),
        )
    }

    /// The kubelet's `[err1, err2]` when several credentials were tried.
    pub fn aggregate(&self, errors: &[String]) -> String {
        format!("[{}]", errors.join(", "))
    }
}

// ---------------------------------------------------------------------------------------
// Kubernetes side

#[derive(Clone, Debug)]
pub(crate) struct NodeSpec {
    pub name: String,
    pub pool: String,
    pub os: &'static str,
    pub arch: &'static str,
    pub ip: String,
    pub vmss: String,
    pub index: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub name: String,
    pub image: String,
    pub replicas: usize,
    /// The nodes the replicas run on, in order (cycled).
    pub nodes: Vec<String>,
    pub node_selector: BTreeMap<String, String>,
    pub pull_secrets: Vec<String>,
    pub service_account: String,
    /// The pull error (ERR), when the pods cannot pull.
    pub error: Option<String>,
    /// Bumped by a rollout: a new ReplicaSet.
    pub revision: u32,
}

impl Workload {
    fn new(name: &str, image: &str, replicas: usize, nodes: &[&str]) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            replicas,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            node_selector: BTreeMap::new(),
            pull_secrets: vec![],
            service_account: "default".into(),
            error: None,
            revision: 1,
        }
    }

    fn template_hash(&self) -> String {
        k8s_suffix(&format!("{}|{}|{:?}|{}", self.name, self.image, self.node_selector, self.revision), 10)
    }

    fn rs_name(&self) -> String {
        format!("{}-{}", self.name, self.template_hash())
    }

    fn pod_names(&self) -> Vec<String> {
        (0..self.replicas)
            .map(|i| format!("{}-{}", self.rs_name(), k8s_suffix(&format!("{}#{i}", self.rs_name()), 5)))
            .collect()
    }
}

/// The world: Kubernetes objects and the Azure inventory.
#[derive(Clone, Debug)]
pub(crate) struct World {
    pub name: String,
    pub runtime: Runtime,
    pub nodes: Vec<NodeSpec>,
    pub workloads: Vec<Workload>,
    /// Secrets and service accounts of the `shop` namespace (written only when present).
    pub secrets: Vec<Value>,
    pub service_accounts: Vec<Value>,
    /// The inventory document.
    pub azure: Value,
    pub expected: Vec<&'static str>,
}

fn node_names() -> [String; 2] {
    ["aks-nodepool1-31415926-vmss000000".to_string(), "aks-nodepool1-31415926-vmss000001".to_string()]
}

impl World {
    // -- access to the inventory -----------------------------------------------------------

    fn resources(&mut self) -> &mut Vec<Value> {
        self.azure["resources"].as_array_mut().expect("resources")
    }

    /// The resource with `id` (case-insensitive). Panics when absent: a typo in a scenario.
    pub fn resource(&mut self, id: &str) -> &mut Value {
        self.resources()
            .iter_mut()
            .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
            .unwrap_or_else(|| panic!("no resource {id}"))
    }

    pub fn remove(&mut self, id: &str) {
        let before = self.resources().len();
        self.resources().retain(|r| !r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)));
        assert!(self.resources().len() < before, "no resource {id} to remove");
    }

    pub fn add(&mut self, resource: Value) {
        self.resources().push(resource);
    }

    /// Sets `pointer` (e.g. `/properties/publicNetworkAccess`) of resource `id`.
    pub fn set(&mut self, id: &str, pointer: &str, value: Value) {
        let r = self.resource(id);
        *r.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer} in {id}")) = value;
    }

    pub fn workload(&mut self, name: &str) -> &mut Workload {
        self.workloads.iter_mut().find(|w| w.name == name).unwrap_or_else(|| panic!("no workload {name}"))
    }

    /// The role assignment with the seed `seed` (see [`role_assignment`]).
    pub fn assignment_id(scope: &str, seed: &str) -> String {
        format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", guid(seed))
    }

    /// Rolls workload `name` out with a new image and makes its pods fail with `error`.
    pub fn break_rollout(&mut self, name: &str, image: Option<&str>, error: impl Fn(&Runtime, &str) -> String) {
        let rt = self.runtime;
        let w = self.workload(name);
        if let Some(i) = image {
            w.image = i.to_string();
        }
        w.revision += 1;
        w.error = Some(error(&rt, &w.image));
    }

    // -- baselines --------------------------------------------------------------------------

    /// A public registry (firewall allowing the cluster's egress IP) and a managed-identity
    /// cluster whose kubelet identity holds AcrPull.
    pub fn baseline(name: &str, runtime: Runtime) -> Self {
        let [n0, n1] = node_names();
        let nodes = vec![
            NodeSpec {
                name: n0.clone(),
                pool: "nodepool1".into(),
                os: "linux",
                arch: "amd64",
                ip: "10.10.0.4".into(),
                vmss: "aks-nodepool1-31415926-vmss".into(),
                index: 0,
            },
            NodeSpec {
                name: n1.clone(),
                pool: "nodepool1".into(),
                os: "linux",
                arch: "amd64",
                ip: "10.10.0.5".into(),
                vmss: "aks-nodepool1-31415926-vmss".into(),
                index: 1,
            },
        ];
        let workloads = vec![
            Workload::new("web", &format!("{LOGIN}/shop/web:1.4.2"), 2, &[&n0, &n1]),
            Workload::new("cart", &format!("{LOGIN}/shop/cart:2.0.1"), 1, &[&n1]),
        ];
        let mut w = World {
            name: name.into(),
            runtime,
            nodes,
            workloads,
            secrets: vec![],
            service_accounts: vec![],
            azure: Value::Null,
            expected: vec![],
        };
        w.azure = w.inventory();
        w
    }

    /// [`World::baseline`] with the registry behind a private endpoint in a peered hub VNet,
    /// public access disabled, and `privatelink.azurecr.io` linked to both VNets.
    pub fn private_baseline(name: &str, runtime: Runtime) -> Self {
        let mut w = Self::baseline(name, runtime);
        let pe_id = arm_id(RG_ACR, &format!("Microsoft.Network/privateEndpoints/pe-{REGISTRY}"));
        w.set(&registry_id(), "/properties/publicNetworkAccess", json!("Disabled"));
        w.set(&registry_id(), "/properties/networkRuleSet", json!({"defaultAction": "Deny", "ipRules": []}));
        w.set(
            &registry_id(),
            "/properties/privateEndpointConnections",
            json!([{
                "id": format!("{}/privateEndpointConnections/pe-{REGISTRY}.{}", registry_id(), guid("pec")),
                "properties": {
                    "privateEndpoint": {"id": pe_id},
                    "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved"},
                    "provisioningState": "Succeeded"
                }
            }]),
        );
        let peering = |from: &str, to: &str| {
            let from_id = arm_id(RG_NET, &format!("Microsoft.Network/virtualNetworks/{from}"));
            let to_id = arm_id(RG_NET, &format!("Microsoft.Network/virtualNetworks/{to}"));
            json!({
                "name": format!("{from}-to-{to}"),
                "id": format!("{from_id}/virtualNetworkPeerings/{from}-to-{to}"),
                "properties": {
                    "remoteVirtualNetwork": {"id": to_id},
                    "allowVirtualNetworkAccess": true,
                    "allowForwardedTraffic": true,
                    "peeringState": "Connected",
                    "peeringSyncLevel": "FullyInSync",
                    "provisioningState": "Succeeded"
                }
            })
        };
        w.set(&aks_vnet_id(), "/properties/virtualNetworkPeerings", json!([peering("vnet-shop-aks", "vnet-shop-hub")]));
        w.add(json!({
            "id": hub_vnet_id(), "name": "vnet-shop-hub", "type": "Microsoft.Network/virtualNetworks", "location": LOCATION,
            "properties": {
                "provisioningState": "Succeeded",
                "addressSpace": {"addressPrefixes": ["10.20.0.0/16"]},
                "subnets": [
                    {"name": "AzureFirewallSubnet", "id": format!("{}/subnets/AzureFirewallSubnet", hub_vnet_id()),
                     "properties": {"addressPrefix": "10.20.0.0/26", "provisioningState": "Succeeded"}},
                    {"name": "snet-private-endpoints", "id": pe_subnet_id(),
                     "properties": {"addressPrefix": "10.20.1.0/24", "privateEndpointNetworkPolicies": "Disabled", "provisioningState": "Succeeded"}}
                ],
                "virtualNetworkPeerings": [peering("vnet-shop-hub", "vnet-shop-aks")]
            }
        }));
        w.add(json!({
            "id": pe_id, "name": format!("pe-{REGISTRY}"), "type": "Microsoft.Network/privateEndpoints", "location": LOCATION,
            "properties": {
                "provisioningState": "Succeeded",
                "subnet": {"id": pe_subnet_id()},
                "privateLinkServiceConnections": [{
                    "name": format!("pe-{REGISTRY}"),
                    "id": format!("{pe_id}/privateLinkServiceConnections/pe-{REGISTRY}"),
                    "properties": {
                        "privateLinkServiceId": registry_id(),
                        "groupIds": ["registry"],
                        "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved"}
                    }
                }],
                "customDnsConfigs": [
                    {"fqdn": format!("{REGISTRY}.{LOCATION}.data.azurecr.io"), "ipAddresses": [PE_DATA_IP]},
                    {"fqdn": LOGIN, "ipAddresses": [PE_IP]}
                ]
            }
        }));
        w.add(json!({
            "id": zone_id(), "name": "privatelink.azurecr.io", "type": "Microsoft.Network/privateDnsZones", "location": "global",
            "properties": {"numberOfRecordSets": 3, "numberOfVirtualNetworkLinks": 2, "provisioningState": "Succeeded"}
        }));
        for vnet in ["vnet-shop-hub", "vnet-shop-aks"] {
            w.add(json!({
                "id": format!("{}/virtualNetworkLinks/{vnet}-link", zone_id()), "name": format!("{vnet}-link"),
                "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "location": "global",
                "properties": {
                    "virtualNetwork": {"id": arm_id(RG_NET, &format!("Microsoft.Network/virtualNetworks/{vnet}"))},
                    "registrationEnabled": false, "virtualNetworkLinkState": "Completed", "provisioningState": "Succeeded"
                }
            }));
        }
        for (name, ip) in [(REGISTRY.to_string(), PE_IP), (format!("{REGISTRY}.{LOCATION}.data"), PE_DATA_IP)] {
            w.add(json!({
                "id": format!("{}/A/{name}", zone_id()), "name": name, "type": "Microsoft.Network/privateDnsZones/A",
                "properties": {"ttl": 10, "fqdn": format!("{name}.privatelink.azurecr.io."), "aRecords": [{"ipv4Address": ip}]}
            }));
        }
        w
    }

    /// [`World::baseline`] with a cluster that authenticates with a service principal.
    pub fn sp_baseline(name: &str, runtime: Runtime) -> Self {
        let mut w = Self::baseline(name, runtime);
        w.set(&cluster_id(), "/properties/servicePrincipalProfile", json!({"clientId": CLUSTER_APP.app_id()}));
        for (id, pointer, key) in [
            (cluster_id(), "", "identity"),
            (cluster_id(), "/properties", "identityProfile"),
            (vmss_id("aks-nodepool1-31415926-vmss"), "", "identity"),
        ] {
            w.resource(&id).pointer_mut(pointer).and_then(Value::as_object_mut).expect("object").remove(key);
        }
        let kubelet_ra = Self::assignment_id(&registry_id(), "ra-kubelet-acrpull");
        w.remove(&kubelet_ra);
        w.add(role_assignment(
            &registry_id(),
            "ra-cluster-sp-acrpull",
            ACR_PULL,
            &CLUSTER_APP.object_id(),
            "ServicePrincipal",
        ));
        w.azure["applications"].as_array_mut().expect("apps").push(CLUSTER_APP.application(&[VALID]));
        w.azure["servicePrincipals"].as_array_mut().expect("sps").push(CLUSTER_APP.service_principal());
        w
    }

    /// [`World::baseline`] where the registry is not attached to the cluster: `web` pulls with
    /// a pull secret holding `username` (an application id or the admin user).
    pub fn pull_secret_baseline(
        name: &str,
        runtime: Runtime,
        secret: &str,
        username: &str,
        via_service_account: bool,
    ) -> Self {
        let mut w = Self::baseline(name, runtime);
        w.remove(&Self::assignment_id(&registry_id(), "ra-kubelet-acrpull"));
        let auth = base64_encode(&format!("{username}:{SECRET_MARKER}"));
        let config =
            json!({"auths": {LOGIN: {"username": username, "password": SECRET_MARKER, "auth": auth}}}).to_string();
        w.secrets = vec![
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": secret, "namespace": NS, "uid": guid(&format!("secret-{secret}")),
                             "creationTimestamp": ts(-86400 * 30), "resourceVersion": "48211"},
                "data": {".dockerconfigjson": base64_encode(&config)}
            }),
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "web-config", "namespace": NS, "uid": guid("secret-web-config"),
                             "creationTimestamp": ts(-86400 * 30), "resourceVersion": "48212"},
                "data": {"DATABASE_PASSWORD": base64_encode(SECRET_MARKER)}
            }),
        ];
        let sa = |name: &str, pull: &[&str]| {
            let mut v = json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": NS, "uid": guid(&format!("sa-{name}")), "creationTimestamp": ts(-86400 * 60)}
            });
            if !pull.is_empty() {
                v["imagePullSecrets"] = json!(pull.iter().map(|p| json!({"name": p})).collect::<Vec<_>>());
            }
            v
        };
        if via_service_account {
            w.service_accounts = vec![sa("default", &[]), sa("web", &[secret])];
            w.workload("web").service_account = "web".into();
        } else {
            w.service_accounts = vec![sa("default", &[])];
            w.workload("web").pull_secrets = vec![secret.into()];
        }
        w
    }

    fn inventory(&self) -> Value {
        let nodepool_vmss = "aks-nodepool1-31415926-vmss";
        let mut resources = vec![];
        for rg in [RG_AKS, RG_ACR, RG_NET] {
            resources.push(json!({
                "id": rg_id(rg), "name": rg, "type": "Microsoft.Resources/resourceGroups", "location": LOCATION,
                "tags": {"app": "shop"}, "properties": {"provisioningState": "Succeeded"}
            }));
        }
        resources.push(json!({
            "id": rg_id(NODE_RG), "name": NODE_RG, "type": "Microsoft.Resources/resourceGroups", "location": LOCATION,
            "managedBy": cluster_id(), "properties": {"provisioningState": "Succeeded"}
        }));
        resources.push(json!({
            "id": cluster_id(), "name": CLUSTER, "type": "Microsoft.ContainerService/managedClusters", "location": LOCATION,
            "sku": {"name": "Base", "tier": "Standard"},
            "identity": {"type": "SystemAssigned", "principalId": guid("cluster-control-plane"), "tenantId": TENANT},
            "properties": {
                "provisioningState": "Succeeded",
                "powerState": {"code": "Running"},
                "kubernetesVersion": self.runtime.k8s,
                "currentKubernetesVersion": self.runtime.k8s,
                "dnsPrefix": format!("{CLUSTER}-dns"),
                "fqdn": format!("{CLUSTER}-dns-{}.hcp.{LOCATION}.azmk8s.io", hex("fqdn", 8)),
                "nodeResourceGroup": NODE_RG,
                "enableRBAC": true,
                "agentPoolProfiles": [{
                    "name": "nodepool1", "count": 2, "vmSize": "Standard_D4ds_v5", "osType": "Linux", "osSKU": "Ubuntu",
                    "mode": "System", "type": "VirtualMachineScaleSets", "maxPods": 30, "orchestratorVersion": self.runtime.k8s,
                    "vnetSubnetID": node_subnet_id(), "provisioningState": "Succeeded"
                }],
                "servicePrincipalProfile": {"clientId": "msi"},
                "identityProfile": {"kubeletidentity": {
                    "resourceId": kubelet_identity_id(), "clientId": guid("kubelet-client"), "objectId": kubelet_object_id()
                }},
                "networkProfile": {
                    "networkPlugin": "azure", "networkPolicy": "azure", "serviceCidr": "10.0.0.0/16", "dnsServiceIP": "10.0.0.10",
                    "outboundType": "loadBalancer", "loadBalancerSku": "standard",
                    "loadBalancerProfile": {"managedOutboundIPs": {"count": 1}, "effectiveOutboundIPs": [{"id": egress_ip_id()}]}
                }
            }
        }));
        resources.push(json!({
            "id": vmss_id(nodepool_vmss), "name": nodepool_vmss, "type": "Microsoft.Compute/virtualMachineScaleSets", "location": LOCATION,
            "tags": {"aks-managed-poolName": "nodepool1", "aks-managed-orchestrator": format!("Kubernetes:{}", self.runtime.k8s),
                     "aks-managed-createOperationID": guid("vmss-create")},
            "sku": {"name": "Standard_D4ds_v5", "tier": "Standard"},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {
                kubelet_identity_id(): {"principalId": kubelet_object_id(), "clientId": guid("kubelet-client")},
                addon_identity_id(): {"principalId": guid("kv-addon-object"), "clientId": guid("kv-addon-client")}
            }},
            "properties": {"provisioningState": "Succeeded", "uniqueId": guid("vmss-unique"), "orchestrationMode": "Uniform"}
        }));
        resources.push(json!({
            "id": egress_ip_id(), "name": guid("egress-ip"), "type": "Microsoft.Network/publicIPAddresses", "location": LOCATION,
            "sku": {"name": "Standard", "tier": "Regional"},
            "tags": {"aks-managed-type": "aks-slb-managed-outbound-ip"},
            "properties": {"ipAddress": EGRESS_IP, "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4", "provisioningState": "Succeeded"}
        }));
        resources.push(json!({
            "id": aks_vnet_id(), "name": "vnet-shop-aks", "type": "Microsoft.Network/virtualNetworks", "location": LOCATION,
            "properties": {
                "provisioningState": "Succeeded",
                "addressSpace": {"addressPrefixes": ["10.10.0.0/16"]},
                "subnets": [{"name": "snet-aks-nodes", "id": node_subnet_id(), "properties": {
                    "addressPrefix": "10.10.0.0/22",
                    "networkSecurityGroup": {"id": nsg_id()},
                    "routeTable": {"id": route_table_id()},
                    "provisioningState": "Succeeded"
                }}],
                "virtualNetworkPeerings": []
            }
        }));
        let rule = |name: &str,
                    priority: u32,
                    direction: &str,
                    access: &str,
                    src: &str,
                    dst: &str,
                    port: &str,
                    protocol: &str| {
            json!({"name": name, "id": format!("{}/securityRules/{name}", nsg_id()), "properties": {
                "protocol": protocol, "sourcePortRange": "*", "destinationPortRange": port,
                "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
                "access": access, "priority": priority, "direction": direction, "provisioningState": "Succeeded"
            }})
        };
        resources.push(json!({
            "id": nsg_id(), "name": "nsg-aks-nodes", "type": "Microsoft.Network/networkSecurityGroups", "location": LOCATION,
            "properties": {"provisioningState": "Succeeded", "securityRules": [
                rule("allow-bastion-ssh", 200, "Inbound", "Allow", "10.30.0.0/26", "*", "22", "Tcp"),
                rule("deny-smtp-outbound", 300, "Outbound", "Deny", "*", "Internet", "25", "Tcp")
            ]}
        }));
        resources.push(json!({
            "id": route_table_id(), "name": "rt-aks-nodes", "type": "Microsoft.Network/routeTables", "location": LOCATION,
            "properties": {"provisioningState": "Succeeded", "disableBgpRoutePropagation": false, "routes": [
                {"name": "to-onprem", "id": format!("{}/routes/to-onprem", route_table_id()),
                 "properties": {"addressPrefix": "192.168.0.0/16", "nextHopType": "VirtualNetworkGateway", "provisioningState": "Succeeded"}}
            ]}
        }));
        resources.push(json!({
            "id": registry_id(), "name": REGISTRY, "type": "Microsoft.ContainerRegistry/registries", "location": LOCATION,
            "sku": {"name": "Premium", "tier": "Premium"},
            "properties": {
                "loginServer": LOGIN,
                "provisioningState": "Succeeded",
                "adminUserEnabled": false,
                "publicNetworkAccess": "Enabled",
                "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": EGRESS_IP}]},
                "networkRuleBypassOptions": "AzureServices",
                "roleAssignmentMode": "LegacyRegistryPermissions",
                "anonymousPullEnabled": false,
                "privateEndpointConnections": []
            }
        }));
        resources.push(role_assignment(
            &registry_id(),
            "ra-kubelet-acrpull",
            ACR_PULL,
            &kubelet_object_id(),
            "ServicePrincipal",
        ));
        resources.push(role_assignment(
            &registry_id(),
            "ra-ci-acrpush",
            ACR_PUSH,
            &CI_APP.object_id(),
            "ServicePrincipal",
        ));
        resources.push(role_assignment(&rg_id(RG_ACR), "ra-devs-reader", READER, &guid("shop-devs-group"), "Group"));
        resources.push(role_assignment(
            &format!("/subscriptions/{SUB}"),
            "ra-admin-owner",
            OWNER,
            &guid("platform-admin"),
            "User",
        ));
        json!({
            "subscriptionId": SUB,
            "tenantId": TENANT,
            "resources": resources,
            "applications": [CI_APP.application(&[VALID])],
            "servicePrincipals": [
                CI_APP.service_principal(),
                {"id": kubelet_object_id(), "appId": guid("kubelet-client"), "displayName": format!("{CLUSTER}-agentpool")}
            ],
            "registryContent": [{
                "loginServer": LOGIN,
                "repositories": [
                    {"name": "shop/cart", "tags": ["2.0.0", "2.0.1"], "platforms": ["linux/amd64"]},
                    {"name": "shop/legacy-iis", "tags": ["2022.1", "2022.2"], "platforms": ["windows/amd64"]},
                    {"name": "shop/web", "tags": ["1.2.7", "1.3.0", "1.4.1", "1.4.2"], "platforms": ["linux/amd64", "linux/arm64"]}
                ]
            }]
        })
    }

    // -- rendering ---------------------------------------------------------------------------

    fn node_json(&self, n: &NodeSpec) -> Value {
        let windows = n.os == "windows";
        let (os_image, kernel, runtime) = if windows {
            ("Windows Server 2022 Datacenter", "10.0.20348.3207", "containerd://1.7.20+azure".to_string())
        } else {
            ("Ubuntu 22.04.5 LTS", "5.15.0-1079-azure", format!("containerd://{}", self.runtime.containerd))
        };
        let mut labels = json!({
            "agentpool": n.pool,
            "beta.kubernetes.io/arch": n.arch,
            "beta.kubernetes.io/os": n.os,
            "kubernetes.azure.com/agentpool": n.pool,
            "kubernetes.azure.com/cluster": NODE_RG,
            "kubernetes.azure.com/mode": if n.pool == "nodepool1" { "system" } else { "user" },
            "kubernetes.azure.com/node-image-version": if windows { "AKSWindows-2022-containerd-20348.3207.250310" } else { "AKSUbuntu-2204gen2containerd-202503.13.0" },
            "kubernetes.io/arch": n.arch,
            "kubernetes.io/hostname": n.name,
            "kubernetes.io/os": n.os,
            "node.kubernetes.io/instance-type": "Standard_D4ds_v5",
            "topology.kubernetes.io/region": LOCATION,
            "topology.kubernetes.io/zone": "0"
        });
        if windows {
            labels["node.kubernetes.io/windows-build"] = json!("10.0.20348");
        }
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": n.name, "uid": guid(&format!("node-{}", n.name)), "resourceVersion": "50123",
                "creationTimestamp": ts(-86400 * 20), "labels": labels,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
            },
            "spec": {"providerID": format!(
                "azure:///subscriptions/{SUB}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}/virtualMachines/{}",
                NODE_RG.to_ascii_lowercase(), n.vmss, n.index
            )},
            "status": {
                "addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
                "capacity": {"cpu": "4", "ephemeral-storage": "129886128Ki", "memory": "16365384Ki", "pods": "30"},
                "allocatable": {"cpu": "3860m", "ephemeral-storage": "119703055367", "memory": "12880200Ki", "pods": "30"},
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": ts(290), "lastTransitionTime": ts(-86400 * 20)
                }],
                "nodeInfo": {
                    "architecture": n.arch, "bootID": guid(&format!("boot-{}", n.name)), "containerRuntimeVersion": runtime,
                    "kernelVersion": kernel, "kubeProxyVersion": format!("v{}", self.runtime.k8s),
                    "kubeletVersion": format!("v{}", self.runtime.k8s), "machineID": hex(&format!("machine-{}", n.name), 32),
                    "operatingSystem": n.os, "osImage": os_image, "systemUUID": guid(&format!("sysuuid-{}", n.name))
                }
            }
        })
    }

    fn node_ip(&self, node: &str) -> String {
        self.nodes.iter().find(|n| n.name == node).map(|n| n.ip.clone()).unwrap_or_default()
    }

    fn pods_and_events(&self, w: &Workload) -> (Vec<Value>, Vec<Value>) {
        let mut pods = vec![];
        let mut events = vec![];
        let rs = w.rs_name();
        let hash = w.template_hash();
        for (i, pod) in w.pod_names().into_iter().enumerate() {
            let node = w.nodes[i % w.nodes.len()].clone();
            let pod_uid = guid(&format!("pod-{pod}"));
            let created = if w.error.is_some() { 0 } else { -86400 * 3 };
            let mut spec = json!({
                "containers": [{
                    "name": w.name, "image": w.image, "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "nodeName": node, "preemptionPolicy": "PreemptLowerPriority",
                "priority": 0, "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
                "serviceAccount": w.service_account, "serviceAccountName": w.service_account, "terminationGracePeriodSeconds": 30,
                "tolerations": [
                    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
                ]
            });
            if !w.node_selector.is_empty() {
                spec["nodeSelector"] = json!(w.node_selector);
            }
            if !w.pull_secrets.is_empty() {
                spec["imagePullSecrets"] = json!(w.pull_secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>());
            }
            let (phase, ready, state, image_id) = match &w.error {
                None => (
                    "Running",
                    true,
                    json!({"running": {"startedAt": ts(created + 9)}}),
                    format!(
                        "{}@sha256:{}",
                        w.image.rsplit_once(':').map(|(r, _)| r).unwrap_or(&w.image),
                        hex(&w.image, 64)
                    ),
                ),
                Some(err) => {
                    let waiting = if i % 2 == 0 {
                        json!({"reason": "ErrImagePull", "message": err})
                    } else {
                        json!({"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{}\"", w.image)})
                    };
                    ("Pending", false, json!({"waiting": waiting}), String::new())
                }
            };
            let cond = |t: &str, ok: bool| {
                let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": ts(created + 1)});
                if !ok {
                    c["reason"] = json!("ContainersNotReady");
                    c["message"] = json!(format!("containers with unready status: [{}]", w.name));
                }
                c
            };
            let status_container = json!({
                "name": w.name, "image": w.image, "imageID": image_id, "ready": ready, "restartCount": 0,
                "started": ready, "state": state, "lastState": {}
            });
            pods.push(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod, "generateName": format!("{rs}-"), "namespace": NS, "uid": pod_uid,
                    "resourceVersion": format!("{}", 51000 + i), "creationTimestamp": ts(created),
                    "labels": {"app": w.name, "pod-template-hash": hash},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": guid(&format!("rs-{rs}")),
                                         "controller": true, "blockOwnerDeletion": true}]
                },
                "spec": spec,
                "status": {
                    "phase": phase,
                    "conditions": [cond("PodReadyToStartContainers", true), cond("Initialized", true), cond("Ready", ready),
                                   cond("ContainersReady", ready), cond("PodScheduled", true)],
                    "hostIP": self.node_ip(&node), "hostIPs": [{"ip": self.node_ip(&node)}],
                    "podIP": format!("10.10.1.{}", 20 + i + 10 * self.workloads.iter().position(|x| x.name == w.name).unwrap_or(0)),
                    "startTime": ts(created),
                    "containerStatuses": [status_container],
                    "qosClass": "Burstable"
                }
            }));
            if let Some(err) = &w.error {
                let ev = |n: usize,
                          kind: &str,
                          reason: &str,
                          message: String,
                          first: i64,
                          last: i64,
                          count: u32,
                          component: &str| {
                    let mut host = json!({"component": component});
                    if component == "kubelet" {
                        host["host"] = json!(node);
                    }
                    json!({
                        "apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": format!("{pod}.{}", hex(&format!("{pod}-ev{n}"), 16)), "namespace": NS,
                                     "uid": guid(&format!("{pod}-ev{n}")), "resourceVersion": format!("{}", 52000 + n),
                                     "creationTimestamp": ts(first)},
                        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": NS, "uid": pod_uid,
                                           "resourceVersion": format!("{}", 51000 + i), "fieldPath": if component == "kubelet" { format!("spec.containers{{{}}}", w.name) } else { String::new() }},
                        "reason": reason, "message": message, "source": host,
                        "firstTimestamp": ts(first), "lastTimestamp": ts(last), "count": count, "type": kind,
                        "eventTime": null, "reportingComponent": component, "reportingInstance": if component == "kubelet" { node.clone() } else { String::new() }
                    })
                };
                events.push(ev(
                    0,
                    "Normal",
                    "Scheduled",
                    format!("Successfully assigned {NS}/{pod} to {node}"),
                    0,
                    0,
                    1,
                    "default-scheduler",
                ));
                // As the kubelet does (`getPullSecretsForPod`): a named secret it cannot read is
                // warned about, and the pull goes ahead without it.
                let absent: Vec<&str> = w
                    .pull_secrets
                    .iter()
                    .filter(|n| !self.secrets.iter().any(|s| s["metadata"]["name"] == json!(n)))
                    .map(String::as_str)
                    .collect();
                if !absent.is_empty() {
                    events.push(ev(
                        6,
                        "Warning",
                        "FailedToRetrieveImagePullSecret",
                        format!(
                            "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                            absent.join(", ")
                        ),
                        1,
                        170,
                        4,
                        "kubelet",
                    ));
                }
                events.push(ev(1, "Normal", "Pulling", format!("Pulling image \"{}\"", w.image), 1, 170, 4, "kubelet"));
                events.push(ev(
                    2,
                    "Warning",
                    "Failed",
                    format!("Failed to pull image \"{}\": {err}", w.image),
                    2,
                    171,
                    4,
                    "kubelet",
                ));
                events.push(ev(3, "Warning", "Failed", "Error: ErrImagePull".into(), 2, 171, 4, "kubelet"));
                events.push(ev(
                    4,
                    "Normal",
                    "BackOff",
                    format!("Back-off pulling image \"{}\"", w.image),
                    3,
                    290,
                    11,
                    "kubelet",
                ));
                events.push(ev(5, "Warning", "Failed", "Error: ImagePullBackOff".into(), 3, 290, 11, "kubelet"));
            }
        }
        // The scheduler's event names no container and no instance.
        for e in &mut events {
            if e["involvedObject"]["fieldPath"] == json!("") {
                if let Some(o) = e["involvedObject"].as_object_mut() {
                    o.remove("fieldPath");
                }
                if let Some(o) = e.as_object_mut() {
                    o.remove("reportingInstance");
                }
            }
        }
        (pods, events)
    }

    fn replica_set(&self, w: &Workload) -> Value {
        let rs = w.rs_name();
        let ready = if w.error.is_some() { 0 } else { w.replicas };
        let mut template_spec = json!({"containers": [{"name": w.name, "image": w.image, "imagePullPolicy": "IfNotPresent",
                                                      "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
                                       "serviceAccountName": w.service_account});
        if !w.node_selector.is_empty() {
            template_spec["nodeSelector"] = json!(w.node_selector);
        }
        if !w.pull_secrets.is_empty() {
            template_spec["imagePullSecrets"] =
                json!(w.pull_secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>());
        }
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": rs, "namespace": NS, "uid": guid(&format!("rs-{rs}")), "resourceVersion": "50990",
                "creationTimestamp": ts(if w.error.is_some() { 0 } else { -86400 * 3 }),
                "generation": 1,
                "labels": {"app": w.name, "pod-template-hash": w.template_hash()},
                "annotations": {"deployment.kubernetes.io/desired-replicas": w.replicas.to_string(),
                                "deployment.kubernetes.io/max-replicas": (w.replicas + 1).to_string(),
                                "deployment.kubernetes.io/revision": w.revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name,
                                     "uid": guid(&format!("deploy-{}", w.name)), "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {
                "replicas": w.replicas,
                "selector": {"matchLabels": {"app": w.name, "pod-template-hash": w.template_hash()}},
                "template": {"metadata": {"labels": {"app": w.name, "pod-template-hash": w.template_hash()}}, "spec": template_spec}
            },
            "status": {"replicas": w.replicas, "fullyLabeledReplicas": w.replicas, "readyReplicas": ready,
                       "availableReplicas": ready, "observedGeneration": 1}
        })
    }

    fn kube_system(&self) -> (Vec<Value>, Vec<Value>) {
        let coredns =
            Workload::new("coredns", "mcr.microsoft.com/oss/v2/kubernetes/coredns:v1.11.3-2", 1, &[&node_names()[0]]);
        let (mut pods, _) = self.pods_and_events(&coredns);
        let mut rs = self.replica_set(&coredns);
        for v in pods.iter_mut().chain(std::iter::once(&mut rs)) {
            v["metadata"]["namespace"] = json!("kube-system");
            v["metadata"]["labels"] = json!({"k8s-app": "kube-dns", "pod-template-hash": coredns.template_hash()});
        }
        for p in &mut pods {
            p["spec"]["priorityClassName"] = json!("system-node-critical");
            p["spec"]["priority"] = json!(2000001000);
            p["spec"]["serviceAccount"] = json!("coredns");
            p["spec"]["serviceAccountName"] = json!("coredns");
        }
        (pods, vec![rs])
    }

    /// Every file of the fixture, by path relative to the scenario directory.
    pub fn files(&self) -> BTreeMap<String, String> {
        let dump = self.dump();
        let mut files = BTreeMap::new();
        files.insert("dump/nodes.json".to_string(), kube_json(&list("NodeList", dump.nodes)));
        for (ns, lists) in dump.namespaces {
            for (file, kind, items) in lists {
                files.insert(format!("dump/{ns}/{file}"), kube_json(&list(kind, items)));
            }
        }
        files.insert("azure.json".into(), pretty(&self.azure));
        files.insert("expected.json".into(), pretty(&json!({"findings": self.expected})));
        files
    }

    fn dump(&self) -> Dump {
        let nodes = self.nodes.iter().map(|n| self.node_json(n)).collect();
        let mut shop_pods = vec![];
        let mut shop_events = vec![];
        let mut shop_rs = vec![];
        for w in &self.workloads {
            let (p, e) = self.pods_and_events(w);
            shop_pods.extend(p);
            shop_events.extend(e);
            shop_rs.push(self.replica_set(w));
        }
        let mut shop = vec![
            ("events.json", "EventList", shop_events),
            ("pods.json", "PodList", shop_pods),
            ("replicasets.json", "ReplicaSetList", shop_rs),
        ];
        if !self.secrets.is_empty() {
            shop.push(("secrets.json", "SecretList", self.secrets.clone()));
        }
        if !self.service_accounts.is_empty() {
            shop.push(("serviceaccounts.json", "ServiceAccountList", self.service_accounts.clone()));
        }
        let (ks_pods, ks_rs) = self.kube_system();
        let kube_system = vec![
            ("events.json", "EventList", vec![]),
            ("pods.json", "PodList", ks_pods),
            ("replicasets.json", "ReplicaSetList", ks_rs),
        ];
        Dump { nodes, namespaces: vec![("kube-system", kube_system), (NS, shop)] }
    }

    /// The same evidence the fixture files load to (`now` unset, as when loaded).
    pub fn evidence(&self) -> Evidence {
        fn items<T: serde::de::DeserializeOwned>(v: &[Value]) -> Vec<T> {
            v.iter().map(|x| serde_json::from_value(x.clone()).expect("valid Kubernetes object")).collect()
        }
        let dump = self.dump();
        let mut ev = Evidence { nodes: items(&dump.nodes), ..Default::default() };
        for (_, lists) in &dump.namespaces {
            for (file, _, v) in lists {
                match *file {
                    "pods.json" => ev.pods.extend(items(v)),
                    "events.json" => ev.events.extend(items(v)),
                    "replicasets.json" => ev.replica_sets.extend(items(v)),
                    "secrets.json" => ev.secrets.extend(items(v)),
                    "serviceaccounts.json" => ev.service_accounts.extend(items(v)),
                    _ => {}
                }
            }
        }
        ev.azure = azure_model::Inventory::from_json(&self.azure.to_string()).expect("valid inventory");
        ev
    }
}

type NamespaceLists = Vec<(&'static str, &'static str, Vec<Value>)>;

struct Dump {
    nodes: Vec<Value>,
    namespaces: Vec<(&'static str, NamespaceLists)>,
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "52117"}, "items": items})
}

/// `kubectl cluster-info dump` indents with four spaces.
fn kube_json(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    v.serialize(&mut ser).expect("serializable");
    let mut s = String::from_utf8(buf).expect("utf-8");
    s.push('\n');
    s
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("serializable");
    s.push('\n');
    s
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub(crate) fn role_assignment(scope: &str, seed: &str, role: &str, principal: &str, principal_type: &str) -> Value {
    json!({
        "id": World::assignment_id(scope, seed), "name": guid(seed), "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": role_def(role), "principalId": principal, "principalType": principal_type, "scope": scope,
            "createdOn": "2025-01-14T10:21:33.0000000Z", "updatedOn": "2025-01-14T10:21:33.0000000Z"
        }
    })
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// Every scenario, by fixture directory name.
pub(crate) fn scenarios() -> Vec<World> {
    vec![
        healthy_baseline(),
        acrpull_role_missing(),
        acrpull_abac_mode(),
        sp_secret_expired(),
        acrpull_on_stale_sp(),
        kubelet_identity_removed(),
        credential_provider_misconfigured(),
        pull_secret_sp_invalid(),
        pull_secret_admin_stale(),
        pull_secret_missing(),
        pull_secret_registry_mismatch(),
        image_tag_not_found(),
        login_server_typo(),
        private_dns_missing(),
        custom_dns_not_forwarding(),
        acr_firewall_denies_egress(),
        vnet_peering_missing(),
        vnet_peering_disconnected(),
        private_endpoint_not_approved(),
        nsg_blocks_registry(),
        data_endpoint_blocked(),
        route_table_blackhole(),
        tls_intercepted(),
        tls_handshake_timeout(),
        platform_mismatch(),
    ]
}

/// Diagnoses a world in memory.
pub(crate) fn diagnose(w: &World) -> crate::detect::Diagnosis {
    crate::detect::diagnose(&w.evidence())
}

/// The codes a world diagnoses to.
pub(crate) fn codes(w: &World) -> Vec<&'static str> {
    diagnose(w).findings.iter().map(|f| f.code.as_str()).collect()
}

/// The scenario named `name`.
pub(crate) fn scenario(name: &str) -> World {
    scenarios().into_iter().find(|w| w.name == name).unwrap_or_else(|| panic!("no scenario {name}"))
}

fn healthy_baseline() -> World {
    World::private_baseline("healthy-baseline", K131)
}

fn acrpull_role_missing() -> World {
    let mut w = World::baseline("acrpull-role-missing", K131);
    w.remove(&World::assignment_id(&registry_id(), "ra-kubelet-acrpull"));
    w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", "401 Unauthorized", None));
    w.expected = vec!["ACR_PULL_ROLE_MISSING"];
    w
}

fn acrpull_abac_mode() -> World {
    let mut w = World::baseline("acrpull-abac-mode", K127);
    w.set(&registry_id(), "/properties/roleAssignmentMode", json!("AbacRepositoryPermissions"));
    w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", "401 Unauthorized", None));
    w.expected = vec!["ACR_ABAC_ROLE_MISSING"];
    w
}

fn sp_secret_expired() -> World {
    let mut w = World::sp_baseline("sp-secret-expired", K124);
    w.azure["applications"] = json!([CI_APP.application(&[VALID]), CLUSTER_APP.application(&[EXPIRED])]);
    w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", "401 Unauthorized", None));
    w.expected = vec!["SP_SECRET_EXPIRED"];
    w
}

fn acrpull_on_stale_sp() -> World {
    let mut w = World::sp_baseline("acrpull-on-stale-sp", K131);
    // The cluster was moved to a new service principal; AcrPull stayed with the old one.
    w.set(&cluster_id(), "/properties/servicePrincipalProfile", json!({"clientId": CLUSTER_APP_2025.app_id()}));
    w.azure["applications"].as_array_mut().expect("apps").push(CLUSTER_APP_2025.application(&[VALID]));
    w.azure["servicePrincipals"].as_array_mut().expect("sps").push(CLUSTER_APP_2025.service_principal());
    w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", "401 Unauthorized", None));
    w.expected = vec!["ACR_ROLE_ON_STALE_PRINCIPAL"];
    w
}

fn kubelet_identity_removed() -> World {
    let mut w = World::baseline("kubelet-identity-removed", K131);
    let vmss = vmss_id("aks-nodepool1-31415926-vmss");
    w.resource(&vmss)["identity"]["userAssignedIdentities"]
        .as_object_mut()
        .expect("identities")
        .retain(|k, _| !k.eq_ignore_ascii_case(&kubelet_identity_id()));
    w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", "401 Unauthorized", None));
    w.expected = vec!["KUBELET_IDENTITY_NOT_ON_VMSS"];
    w
}

/// Everything in Azure is right (the identity is on the scale set and holds AcrPull); the pull
/// still went without credentials, because the node's credential provider gave none.
fn credential_provider_misconfigured() -> World {
    let mut w = World::baseline("credential-provider-misconfigured", K131);
    w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", "401 Unauthorized", None));
    w.expected = vec!["CREDENTIAL_PROVIDER_MISCONFIGURED"];
    w
}

fn pull_secret_sp_invalid() -> World {
    let mut w = World::pull_secret_baseline("pull-secret-sp-invalid", K127, "acr-pull", &PULL_APP.app_id(), false);
    w.add(role_assignment(&registry_id(), "ra-pull-sp-acrpull", ACR_PULL, &PULL_APP.object_id(), "ServicePrincipal"));
    w.azure["applications"].as_array_mut().expect("apps").push(PULL_APP.application(&[EXPIRED]));
    w.azure["servicePrincipals"].as_array_mut().expect("sps").push(PULL_APP.service_principal());
    // The pull secret's credentials are refused, then the kubelet's anonymous attempt.
    w.break_rollout("web", None, |rt, img| {
        rt.aggregate(&[
            rt.token(img, "oauth", "401 Unauthorized", None),
            rt.token(img, "anonymous", "401 Unauthorized", None),
        ])
    });
    w.expected = vec!["PULL_SECRET_INVALID_SP"];
    w
}

fn pull_secret_admin_stale() -> World {
    let mut w = World::pull_secret_baseline("pull-secret-admin-stale", K127, "acr-admin", REGISTRY, true);
    w.set(&registry_id(), "/properties/adminUserEnabled", json!(true));
    // The admin password was regenerated; the secret still holds the old one.
    w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", "401 Unauthorized", None));
    w.expected = vec!["PULL_SECRET_STALE_ADMIN"];
    w
}

fn pull_secret_missing() -> World {
    let mut w = World::pull_secret_baseline("pull-secret-missing", K131, "acr-admin", REGISTRY, false);
    w.set(&registry_id(), "/properties/adminUserEnabled", json!(true));
    // The secret was deleted; the pod still names it, and the node's identity holds no role.
    w.secrets.retain(|s| s["metadata"]["name"] != json!("acr-admin"));
    // The node's credential provider is refused (no role), then the anonymous attempt.
    w.break_rollout("web", None, |rt, img| {
        rt.aggregate(&[
            rt.token(img, "oauth", "401 Unauthorized", None),
            rt.token(img, "anonymous", "401 Unauthorized", None),
        ])
    });
    w.expected = vec!["PULL_SECRET_MISSING"];
    w
}

fn pull_secret_registry_mismatch() -> World {
    let mut w = World::pull_secret_baseline("pull-secret-registry-mismatch", K131, "acr-admin", REGISTRY, false);
    w.set(&registry_id(), "/properties/adminUserEnabled", json!(true));
    // After a migration the secret is still keyed for the old registry.
    let old = "acrshopold.azurecr.io";
    let auth = base64_encode(&format!("{REGISTRY}:{SECRET_MARKER}"));
    let config = json!({"auths": {old: {"username": REGISTRY, "password": SECRET_MARKER, "auth": auth}}}).to_string();
    for s in w.secrets.iter_mut().filter(|s| s["metadata"]["name"] == json!("acr-admin")) {
        s["data"][".dockerconfigjson"] = json!(base64_encode(&config));
    }
    // The node's credential provider is refused (no role), then the anonymous attempt.
    w.break_rollout("web", None, |rt, img| {
        rt.aggregate(&[
            rt.token(img, "oauth", "401 Unauthorized", None),
            rt.token(img, "anonymous", "401 Unauthorized", None),
        ])
    });
    w.expected = vec!["PULL_SECRET_REGISTRY_MISMATCH"];
    w
}

fn image_tag_not_found() -> World {
    let mut w = World::baseline("image-tag-not-found", K131);
    w.break_rollout("web", Some(&format!("{LOGIN}/shop/web:1.4.20")), |rt, img| rt.not_found(img));
    w.expected = vec!["IMAGE_NOT_FOUND"];
    w
}

fn login_server_typo() -> World {
    let mut w = World::baseline("login-server-typo", K131);
    w.break_rollout("web", Some("acrshopweu.azureacr.io/shop/web:1.4.2"), |rt, img| {
        rt.request(img, "dial tcp: lookup acrshopweu.azureacr.io on 168.63.129.16:53: no such host")
    });
    w.expected = vec!["LOGIN_SERVER_TYPO"];
    w
}

fn private_dns_missing() -> World {
    let mut w = World::private_baseline("private-dns-missing", K124);
    w.remove(&format!("{}/virtualNetworkLinks/vnet-shop-aks-link", zone_id()));
    w.set(&zone_id(), "/properties/numberOfVirtualNetworkLinks", json!(1));
    w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", "403 Forbidden", None));
    w.expected = vec!["PRIVATE_DNS_ZONE_NOT_LINKED"];
    w
}

/// The spoke's machines use the hub firewall's DNS proxy (10.20.0.4), which asks Azure's
/// resolver from the hub; the zone's hub link is gone, its spoke link remains.
fn custom_dns_not_forwarding() -> World {
    let mut w = World::private_baseline("custom-dns-not-forwarding", K131);
    w.resource(&aks_vnet_id())["properties"]["dhcpOptions"] = json!({"dnsServers": ["10.20.0.4"]});
    w.remove(&format!("{}/virtualNetworkLinks/vnet-shop-hub-link", zone_id()));
    w.set(&zone_id(), "/properties/numberOfVirtualNetworkLinks", json!(1));
    w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", "403 Forbidden", None));
    w.expected = vec!["CUSTOM_DNS_NOT_FORWARDING"];
    w
}

fn acr_firewall_denies_egress() -> World {
    let mut w = World::baseline("acr-firewall-denies-egress", K131);
    // The cluster's outbound IP was replaced; the registry still allows the old one.
    let new_ip = "20.103.51.208";
    w.set(&egress_ip_id(), "/properties/ipAddress", json!(new_ip));
    let body = format!(
        "{{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"client with IP '{new_ip}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.\"}}]}}"
    );
    w.break_rollout("web", None, move |rt, img| rt.token(img, "oauth", "403 Forbidden", Some(&body)));
    w.expected = vec!["ACR_FIREWALL_DENIES_EGRESS"];
    w
}

fn vnet_peering_missing() -> World {
    let mut w = World::private_baseline("vnet-peering-missing", K131);
    w.set(&aks_vnet_id(), "/properties/virtualNetworkPeerings", json!([]));
    w.set(&hub_vnet_id(), "/properties/virtualNetworkPeerings", json!([]));
    w.break_rollout("web", None, |rt, img| rt.request(img, &format!("dial tcp {PE_IP}:443: i/o timeout")));
    w.expected = vec!["VNET_PEERING_MISSING"];
    w
}

fn vnet_peering_disconnected() -> World {
    let mut w = World::private_baseline("vnet-peering-disconnected", K127);
    // The hub side was deleted: the cluster side stays, Disconnected.
    w.set(&hub_vnet_id(), "/properties/virtualNetworkPeerings", json!([]));
    w.set(&aks_vnet_id(), "/properties/virtualNetworkPeerings/0/properties/peeringState", json!("Disconnected"));
    w.set(&aks_vnet_id(), "/properties/virtualNetworkPeerings/0/properties/peeringSyncLevel", json!("RemoteNotInSync"));
    w.break_rollout("web", None, |rt, img| rt.request(img, &format!("dial tcp {PE_IP}:443: i/o timeout")));
    w.expected = vec!["VNET_PEERING_DISCONNECTED"];
    w
}

fn private_endpoint_not_approved() -> World {
    let mut w = World::private_baseline("private-endpoint-not-approved", K131);
    // The endpoint was re-created as a manual request, and nobody approved it on the registry.
    let pe_id = arm_id(RG_ACR, &format!("Microsoft.Network/privateEndpoints/pe-{REGISTRY}"));
    let message = "AKS nodes pull through this endpoint";
    let pending = json!({"status": "Pending", "description": message, "actionsRequired": "None"});
    let mut conn = w.resource(&pe_id)["properties"]["privateLinkServiceConnections"][0].clone();
    conn["properties"]["privateLinkServiceConnectionState"] = pending.clone();
    conn["properties"]["requestMessage"] = json!(message);
    conn["id"] = json!(format!("{pe_id}/manualPrivateLinkServiceConnections/pe-{REGISTRY}"));
    w.set(&pe_id, "/properties/privateLinkServiceConnections", json!([]));
    w.resource(&pe_id)["properties"]["manualPrivateLinkServiceConnections"] = json!([conn]);
    w.set(
        &registry_id(),
        "/properties/privateEndpointConnections/0/properties/privateLinkServiceConnectionState",
        pending,
    );
    w.break_rollout("web", None, |rt, img| rt.request(img, &format!("dial tcp {PE_IP}:443: i/o timeout")));
    w.expected = vec!["PRIVATE_ENDPOINT_NOT_APPROVED"];
    w
}

fn nsg_blocks_registry() -> World {
    let mut w = World::private_baseline("nsg-blocks-registry", K131);
    let rules = w.resource(&nsg_id())["properties"]["securityRules"].as_array_mut().expect("rules");
    rules.push(json!({"name": "deny-hub-outbound", "id": format!("{}/securityRules/deny-hub-outbound", nsg_id()), "properties": {
        "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
        "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "10.20.0.0/16",
        "access": "Deny", "priority": 210, "direction": "Outbound", "provisioningState": "Succeeded",
        "description": "quarantine: no traffic to the hub"
    }}));
    w.break_rollout("web", None, |rt, img| rt.request(img, &format!("dial tcp {PE_IP}:443: i/o timeout")));
    w.expected = vec!["NSG_BLOCKS_REGISTRY"];
    w
}

/// A rule meant to keep the nodes to the registry's own address also denies its data endpoint's:
/// the manifest resolves, the layer download (redirected to the data endpoint) times out.
fn data_endpoint_blocked() -> World {
    let mut w = World::private_baseline("data-endpoint-blocked", K131);
    w.resource(&registry_id())["properties"]["dataEndpointEnabled"] = json!(true);
    let rules = w.resource(&nsg_id())["properties"]["securityRules"].as_array_mut().expect("rules");
    rules.push(json!({"name": "deny-endpoints-but-registry", "id": format!("{}/securityRules/deny-endpoints-but-registry", nsg_id()), "properties": {
        "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "443",
        "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": PE_DATA_IP,
        "access": "Deny", "priority": 220, "direction": "Outbound", "provisioningState": "Succeeded",
        "description": "only the registry's address"
    }}));
    w.break_rollout("web", None, |rt, img| {
        let (_, repo, _) = parts(img);
        rt.wrap(
            "DeadlineExceeded",
            format!(
                "failed to pull and unpack image \"{img}\": failed to copy: httpReadSeeker: failed open: failed to do request: Get \"https://{REGISTRY}.{LOCATION}.data.azurecr.io/v2/{repo}/blobs/sha256:9c2b3a1f0d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b?se=2025-06-03T10%3A15%3A00Z&sig=Q2hhbmdlZA%3D%3D\": dial tcp {PE_DATA_IP}:443: i/o timeout"
            ),
        )
    });
    w.expected = vec!["DATA_ENDPOINT_BLOCKED"];
    w
}

fn route_table_blackhole() -> World {
    let mut w = World::private_baseline("route-table-blackhole", K131);
    let routes = w.resource(&route_table_id())["properties"]["routes"].as_array_mut().expect("routes");
    routes.push(json!({"name": "drop-private-endpoints", "id": format!("{}/routes/drop-private-endpoints", route_table_id()),
                       "properties": {"addressPrefix": "10.20.1.0/24", "nextHopType": "None", "provisioningState": "Succeeded"}}));
    w.break_rollout("web", None, |rt, img| {
        rt.request(img, &format!("dial tcp {PE_IP}:443: connect: connection timed out"))
    });
    w.expected = vec!["ROUTE_BLACKHOLE"];
    w
}

/// The node subnet's traffic for the private endpoints goes through the hub firewall
/// (10.20.0.4, in AzureFirewallSubnet) and its TLS inspection.
fn via_firewall(name: &str) -> World {
    let mut w = World::private_baseline(name, K131);
    let routes = w.resource(&route_table_id())["properties"]["routes"].as_array_mut().expect("routes");
    routes.push(
        json!({"name": "endpoints-via-firewall", "id": format!("{}/routes/endpoints-via-firewall", route_table_id()),
                       "properties": {"addressPrefix": "10.20.1.0/24", "nextHopType": "VirtualAppliance",
                                      "nextHopIpAddress": "10.20.0.4", "provisioningState": "Succeeded"}}),
    );
    w
}

fn tls_intercepted() -> World {
    let mut w = via_firewall("tls-intercepted");
    w.break_rollout("web", None, |rt, img| {
        rt.request(img, "tls: failed to verify certificate: x509: certificate signed by unknown authority")
    });
    w.expected = vec!["TLS_INTERCEPTED"];
    w
}

fn tls_handshake_timeout() -> World {
    let mut w = via_firewall("tls-handshake-timeout");
    w.break_rollout("web", None, |rt, img| rt.request(img, "net/http: TLS handshake timeout"));
    w.expected = vec!["TLS_HANDSHAKE_TIMEOUT"];
    w
}

fn platform_mismatch() -> World {
    let mut w = World::baseline("platform-mismatch", K131);
    // A Windows pool, and a Windows-only workload pinned to it...
    w.nodes.push(NodeSpec {
        name: "aksnpwin000000".into(),
        pool: "npwin".into(),
        os: "windows",
        arch: "amd64",
        ip: "10.10.0.6".into(),
        vmss: "aksnpwin".into(),
        index: 0,
    });
    w.resource(&cluster_id())["properties"]["agentPoolProfiles"].as_array_mut().expect("pools").push(json!({
        "name": "npwin", "count": 1, "vmSize": "Standard_D4ds_v5", "osType": "Windows", "osSKU": "Windows2022",
        "mode": "User", "type": "VirtualMachineScaleSets", "maxPods": 30, "orchestratorVersion": K131.k8s,
        "vnetSubnetID": node_subnet_id(), "provisioningState": "Succeeded"
    }));
    w.add(json!({
        "id": vmss_id("aksnpwin"), "name": "aksnpwin", "type": "Microsoft.Compute/virtualMachineScaleSets", "location": LOCATION,
        "tags": {"aks-managed-poolName": "npwin", "aks-managed-orchestrator": format!("Kubernetes:{}", K131.k8s)},
        "sku": {"name": "Standard_D4ds_v5", "tier": "Standard"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {
            kubelet_identity_id(): {"principalId": kubelet_object_id(), "clientId": guid("kubelet-client")}
        }},
        "properties": {"provisioningState": "Succeeded", "uniqueId": guid("vmss-win-unique"), "orchestrationMode": "Uniform"}
    }));
    let mut legacy = Workload::new("legacy-iis", &format!("{LOGIN}/shop/legacy-iis:2022.1"), 1, &["aksnpwin000000"]);
    legacy.node_selector.insert("kubernetes.io/os".into(), "windows".into());
    w.workloads.push(legacy);
    // ... until a change drops the selector: the pods land on Linux nodes.
    let [n0, n1] = node_names();
    let l = w.workload("legacy-iis");
    l.node_selector.clear();
    l.nodes = vec![n0, n1];
    l.replicas = 2;
    w.break_rollout("legacy-iis", None, |rt, img| rt.platform(img));
    w.expected = vec!["PLATFORM_MISMATCH"];
    w
}

// ---------------------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence")
}

#[test]
fn fixtures_match_the_generator() {
    let root = fixtures_dir();
    let update = std::env::var_os("PULLDOCTOR_UPDATE_FIXTURES").is_some();
    let mut stale = Vec::new();
    for w in scenarios() {
        for (rel, content) in w.files() {
            let path = root.join(&w.name).join(&rel);
            if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
                continue;
            }
            if update {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, content).expect("write fixture");
            } else {
                stale.push(format!("{}/{rel}", w.name));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} fixture file(s) differ from detect/world.rs, e.g. {:?}\nregenerate: PULLDOCTOR_UPDATE_FIXTURES=1 cargo test -p pulldoctor --lib detect::world",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
}

#[test]
fn every_scenario_diagnoses_to_its_code_in_memory() {
    for w in scenarios() {
        let d = crate::detect::diagnose(&w.evidence());
        let codes: Vec<&str> = d.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, w.expected, "{}: {:#?}", w.name, d.findings);
    }
}

#[test]
fn baselines_are_quiet() {
    for w in [World::baseline("b", K131), World::private_baseline("p", K127), World::sp_baseline("s", K124)] {
        let ev = w.evidence();
        assert!(crate::evidence::pull_failures(&ev).is_empty(), "{}", w.name);
        assert!(crate::detect::diagnose(&ev).findings.is_empty(), "{}", w.name);
    }
}

#[test]
fn every_command_is_exact() {
    // No `<PLACEHOLDER>` a person would have to fill in: values are the evidence's, or named
    // shell variables set by an earlier command or explained in a `#` line.
    for w in scenarios() {
        for f in crate::detect::diagnose(&w.evidence()).findings {
            for c in f.plan.actions.iter().flat_map(crate::plan::Action::commands) {
                assert!(!c.contains('<') && !c.contains('>'), "{}/{}: {c}", w.name, f.code);
            }
        }
    }
}
