//! Plan actions as requests: pure, no network.
//!
//! Each [`Action`] becomes a [`Step`]: the reads that show the current state, a [`Guard`] that
//! decides from those answers whether the change is already made (idempotence: check before
//! write), and the writes (ARM/Graph calls or Kubernetes patches). Write bodies that depend on the
//! current state or on an earlier answer (a new secret) are [`Derive`]d at execution time by pure
//! functions of the reads and bindings, so secrets never appear in a printed plan.
//!
//! Only creates and updates: no step ever sends `DELETE`.
//!
//! ## Rotating a service-principal cluster's secret
//!
//! [`Action::RotateServicePrincipalSecret`] with a cluster is one step: `addPassword` on the
//! application, then `resetServicePrincipalProfile` on the cluster with the secret it answered.
//! Its guard is [`Guard::ClusterSecretUnseen`]: the step is always needed when the plan asks for
//! it. An idempotence check must look at the state the step creates, and none shows it:
//!
//! - the cluster's `servicePrincipalProfile` shows the client id, never the secret (write-only),
//!   and AKS records nothing else a reset changes;
//! - the application shows its credentials (name, dates, a 3-character hint), not which of them
//!   a cluster holds. "The app has a valid secret" is true as soon as `addPassword` succeeded, so
//!   a guard built on it said "already done" after a run whose reset then failed, and the cluster
//!   kept its expired secret for ever;
//! - the secret's value is returned once, by `addPassword`; pulldoctor never stores it, so a
//!   rerun cannot finish a half-done rotation with the secret of the failed run. It has to add
//!   another one.
//!
//! So a rerun repeats the whole rotation: a fresh secret, then the reset. That is harmless (the
//! cluster ends with a valid secret of its own application, whatever it held before) and costs one
//! extra credential per run (an unused one, from a failed run, stays until its end date: pulldoctor
//! never deletes). `pulldoctor fix` runs it only when a fresh diagnosis asks for it, so a run after
//! a complete fix does not rotate again; the executor does not call such a step "not seen yet"
//! after writing it ([`Guard::observable`]).

use std::collections::BTreeMap;

use azure_model::api_version as api;
use azure_model::network::cidr_contains;
use azure_model::{Inventory, ResourceId};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::plan::{Action, WorkloadRef};

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Azure Resource Manager.
    Arm,
    /// Microsoft Graph.
    Graph,
    /// The Kubernetes API server.
    Kubernetes,
}

/// One HTTP request (without secrets).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The API.
    pub service: Service,
    /// `GET`, `PUT`, `PATCH`, `POST`.
    pub method: &'static str,
    /// The path (and query) below the service's base URL.
    pub path: String,
    /// ARM api-version (empty for Graph and Kubernetes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// A fixed body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Kubernetes patch type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'static str>,
    /// A collection read: follow `nextLink` and answer `{"value": [...]}`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paged: bool,
    /// A read whose object may not exist: `404` answers `null` instead of failing the step.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub absent_ok: bool,
}

impl Request {
    fn arm(method: &'static str, path: impl Into<String>, api_version: &str) -> Self {
        Self {
            service: Service::Arm,
            method,
            path: path.into(),
            api_version: api_version.into(),
            body: None,
            content_type: None,
            paged: false,
            absent_ok: false,
        }
    }

    fn graph(method: &'static str, path: impl Into<String>) -> Self {
        Self { service: Service::Graph, ..Self::arm(method, path, "") }
    }

    fn kube(method: &'static str, path: impl Into<String>) -> Self {
        Self { service: Service::Kubernetes, ..Self::arm(method, path, "") }
    }

    fn paged(mut self) -> Self {
        self.paged = true;
        self
    }

    fn absent_ok(mut self) -> Self {
        self.absent_ok = true;
        self
    }

    fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
        self
    }

    /// `PUT /subscriptions/...` (query stripped).
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path.split('?').next().unwrap_or(&self.path))
    }
}

/// A namespaced Kubernetes object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Where a value of a derived body comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "from")]
pub enum Source {
    /// A literal.
    Literal {
        /// The value.
        value: String,
    },
    /// A JSON pointer into the answer of read `read`.
    Read {
        /// Index in the step's reads.
        read: usize,
        /// JSON pointer.
        pointer: String,
    },
    /// A value captured from an earlier write of the step.
    Binding {
        /// Its name.
        name: String,
    },
}

/// A write body computed at execution time from the reads and bindings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "derive")]
pub enum Derive {
    /// Registry PATCH: the current `networkRuleSet` plus an IP rule.
    AppendIpRule {
        /// The address or CIDR.
        ip: String,
    },
    /// Cluster PUT: the cluster as read, read-only fields removed (`az aks update`).
    ClusterPut,
    /// `resetServicePrincipalProfile` body with a secret from a binding.
    ResetServicePrincipal {
        /// The client id.
        client_id: String,
        /// Where the secret is.
        secret: Source,
    },
    /// Kubernetes secret merge patch: the docker config with one registry entry replaced.
    DockerConfig {
        /// Index of the read holding the current Secret (`null` when it does not exist).
        secret_read: usize,
        /// Registry host.
        registry: String,
        /// Username.
        username: Source,
        /// Password.
        password: Source,
        /// For a server-side apply, the whole Secret object (so a missing one is created).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object: Option<ObjectRef>,
    },
    /// Strategic merge patch setting a container's image (in `containers` or `initContainers`).
    SetImage {
        /// Index of the read holding the workload.
        workload_read: usize,
        /// Whether the workload is a bare Pod (no template).
        pod: bool,
        /// Container name.
        container: String,
        /// Image.
        image: String,
    },
}

/// A write and how to fill its body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Write {
    /// The request (with its fixed body, if any).
    pub request: Request,
    /// The body computed at execution time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derive: Option<Derive>,
    /// Name under which to keep a value of the answer (never printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
}

/// A value kept from a write's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capture {
    /// Binding name.
    pub name: String,
    /// JSON pointer in the answer.
    pub pointer: String,
}

/// Whether the change is already there, judged from the reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "check")]
pub enum Guard {
    /// `read[0]` (role assignments at the scope) holds `role` for `principal`.
    RoleAssigned {
        /// Principal object id.
        principal_id: String,
        /// Role GUID.
        role_guid: String,
    },
    /// `read[0]` (the zone's links) links `vnet_id`; a link named `link_name` to another VNet
    /// is a conflict.
    VnetLinked {
        /// VNet.
        vnet_id: String,
        /// Link name.
        link_name: String,
    },
    /// `read[0]` (the VNet) has a peering to `remote` that is Connected or Initiated.
    PeeringUp {
        /// Remote VNet.
        remote_vnet_id: String,
        /// Peering name.
        name: String,
    },
    /// `read[0]` (the registry) lets `ip` through.
    IpAllowed {
        /// The address.
        ip: String,
    },
    /// `read[0]` (the NSG) has the allow rule; another rule at the same priority and direction is
    /// a conflict.
    NsgRule {
        /// Rule name.
        name: String,
        /// Priority.
        priority: u32,
        /// Destination.
        destination: String,
        /// Port.
        port: u16,
    },
    /// `read[0]` (the route table) routes `route_name` to `next_hop_type`.
    RouteHop {
        /// Route.
        route_name: String,
        /// Next hop type.
        next_hop_type: String,
    },
    /// `read[0]` (a private endpoint connection) is `Approved`; `Pending` needs approving;
    /// `Rejected` (the owner's decision) and `Disconnected` are conflicts.
    ConnectionApproved,
    /// `read[0]` is the cluster, `read[1]` its node resource group's scale sets: every scale set
    /// carries the kubelet identity.
    KubeletOnScaleSets,
    /// `read[0]` (a Graph application) has a password credential valid now.
    AppHasValidSecret,
    /// `read[0]` (the cluster's Graph application), shown in the audit only: which secret a
    /// cluster holds is not observable, so resetting it is always needed (see the module docs).
    ClusterSecretUnseen,
    /// `read[0]` (registry `listCredentials`) and `read[1]` (the Secret): the entry for
    /// `registry` holds the admin user and a current password.
    SecretHoldsAdmin {
        /// Registry host.
        registry: String,
    },
    /// `read[0]` (the application) and `read[1]` (the Secret): the entry for `registry` holds
    /// `app_id` and a password whose first characters are the hint of a valid credential.
    SecretHoldsValidAppSecret {
        /// Registry host.
        registry: String,
        /// Application id.
        app_id: String,
    },
    /// `read[0]` (the workload) has every pair of `selector` in its pod template.
    NodeSelector {
        /// The pairs.
        selector: BTreeMap<String, String>,
        /// A bare Pod (no template).
        pod: bool,
    },
    /// `read[0]` (the workload) runs `image` in `container`.
    Image {
        /// Container.
        container: String,
        /// Image.
        image: String,
        /// A bare Pod.
        pod: bool,
    },
    /// No check (manual steps).
    None,
}

/// What a person must do instead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manual {
    /// Why.
    pub description: String,
    /// The commands.
    pub commands: Vec<String>,
}

/// One action as requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The action(s) it carries out.
    pub actions: Vec<Action>,
    /// One line.
    pub summary: String,
    /// The resource it changes.
    pub target: String,
    /// State reads.
    pub reads: Vec<Request>,
    /// The idempotence check.
    pub guard: Guard,
    /// The writes, in order.
    pub writes: Vec<Write>,
    /// Set when a person must act (the action is manual, or cannot be automated here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual: Option<Manual>,
}

/// What translation may look up.
pub struct PlanContext<'a> {
    /// The Azure inventory of the diagnosis (registry ids by login server, node resource group).
    pub inventory: &'a Inventory,
    /// The time (credential end dates are computed from it).
    pub now: OffsetDateTime,
}

/// The deterministic name of a role assignment: a UUID v5 of scope, principal and role, so a
/// second run addresses the same assignment.
pub fn role_assignment_name(scope: &str, principal_id: &str, role_guid: &str) -> String {
    let key = format!(
        "{}|{}|{}",
        scope.to_ascii_lowercase(),
        principal_id.to_ascii_lowercase(),
        role_guid.to_ascii_lowercase()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).to_string()
}

/// The Kubernetes API path of a workload.
pub fn workload_path(w: &WorkloadRef) -> Option<String> {
    let (group, plural) = match w.kind.as_str() {
        "Deployment" => ("apis/apps/v1", "deployments"),
        "StatefulSet" => ("apis/apps/v1", "statefulsets"),
        "DaemonSet" => ("apis/apps/v1", "daemonsets"),
        "ReplicaSet" => ("apis/apps/v1", "replicasets"),
        "Job" => ("apis/batch/v1", "jobs"),
        "Pod" => ("api/v1", "pods"),
        _ => return None,
    };
    Some(format!("/{group}/namespaces/{}/{plural}/{}", w.namespace, w.name))
}

const STRATEGIC: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
/// Server-side apply (JSON is YAML): creates the object or updates the fields it names.
const APPLY: &str = "application/apply-patch+yaml";

fn manual_step(action: &Action, description: String) -> Step {
    Step {
        actions: vec![action.clone()],
        summary: action.describe(),
        target: String::new(),
        reads: vec![],
        guard: Guard::None,
        writes: vec![],
        manual: Some(Manual { description, commands: action.commands() }),
    }
}

fn step(action: &Action, target: &str, reads: Vec<Request>, guard: Guard, writes: Vec<Write>) -> Step {
    Step {
        actions: vec![action.clone()],
        summary: action.describe(),
        target: target.to_string(),
        reads,
        guard,
        writes,
        manual: None,
    }
}

fn fixed(request: Request) -> Write {
    Write { request, derive: None, capture: None }
}

fn derived(request: Request, derive: Derive) -> Write {
    Write { request, derive: Some(derive), capture: None }
}

fn graph_app(app_id: &str) -> String {
    format!("/v1.0/applications(appId='{app_id}')")
}

fn secret_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets/{name}")
}

fn add_password(app_id: &str, now: OffsetDateTime) -> Write {
    let end =
        (now + time::Duration::days(365)).format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let date = now.date();
    Write {
        request: Request::graph("POST", format!("{}/addPassword", graph_app(app_id)))
            .body(json!({"passwordCredential": {"displayName": format!("pulldoctor {date}"), "endDateTime": end}})),
        derive: None,
        capture: Some(Capture { name: format!("secret:{app_id}"), pointer: "/secretText".into() }),
    }
}

/// Translates one action (`next`: the action after it, which a service-principal rotation
/// shares its new secret with).
fn translate_one(action: &Action, next: Option<&Action>, ctx: &PlanContext<'_>) -> (Step, bool) {
    let s = match action {
        Action::CreateRoleAssignment { scope, principal_id, principal_type, role_definition_guid, .. } => {
            let sub = ResourceId::parse(scope).ok().and_then(|i| i.subscription().map(str::to_string)).unwrap_or_default();
            let name = role_assignment_name(scope, principal_id, role_definition_guid);
            step(
                action,
                scope,
                vec![
                    Request::arm(
                        "GET",
                        format!("{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()"),
                        api::AUTHORIZATION,
                    )
                    .paged(),
                ],
                Guard::RoleAssigned { principal_id: principal_id.clone(), role_guid: role_definition_guid.clone() },
                vec![fixed(
                    Request::arm(
                        "PUT",
                        format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                        api::AUTHORIZATION,
                    )
                    .body(json!({"properties": {
                        "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_definition_guid}"),
                        "principalId": principal_id,
                        "principalType": principal_type,
                        "description": "pulldoctor: lets the cluster pull from this registry",
                    }})),
                )],
            )
        }
        Action::CreateVnetLink { zone_id, link_name, vnet_id } => step(
            action,
            zone_id,
            vec![Request::arm("GET", format!("{zone_id}/virtualNetworkLinks"), api::PRIVATE_DNS).paged()],
            Guard::VnetLinked { vnet_id: vnet_id.clone(), link_name: link_name.clone() },
            vec![fixed(Request::arm("PUT", format!("{zone_id}/virtualNetworkLinks/{link_name}"), api::PRIVATE_DNS).body(
                json!({"location": "global", "properties": {"virtualNetwork": {"id": vnet_id}, "registrationEnabled": false}}),
            ))],
        ),
        Action::CreatePeering { vnet_id, name, remote_vnet_id } => step(
            action,
            vnet_id,
            vec![Request::arm("GET", vnet_id.clone(), api::NETWORK)],
            Guard::PeeringUp { remote_vnet_id: remote_vnet_id.clone(), name: name.clone() },
            vec![fixed(Request::arm("PUT", format!("{vnet_id}/virtualNetworkPeerings/{name}"), api::NETWORK).body(json!({
                "properties": {
                    "remoteVirtualNetwork": {"id": remote_vnet_id},
                    "allowVirtualNetworkAccess": true,
                    "allowForwardedTraffic": true,
                    "allowGatewayTransit": false,
                    "useRemoteGateways": false,
                }
            })))],
        ),
        Action::AddRegistryIpRule { registry_id, ip } => step(
            action,
            registry_id,
            vec![Request::arm("GET", registry_id.clone(), api::CONTAINER_REGISTRY)],
            Guard::IpAllowed { ip: ip.clone() },
            vec![derived(Request::arm("PATCH", registry_id.clone(), api::CONTAINER_REGISTRY), Derive::AppendIpRule { ip: ip.clone() })],
        ),
        Action::AllowNsgRule { nsg_id, rule_name, priority, destination, port } => step(
            action,
            nsg_id,
            vec![Request::arm("GET", nsg_id.clone(), api::NETWORK)],
            Guard::NsgRule { name: rule_name.clone(), priority: *priority, destination: destination.clone(), port: *port },
            vec![fixed(Request::arm("PUT", format!("{nsg_id}/securityRules/{rule_name}"), api::NETWORK).body(json!({
                "properties": {
                    "protocol": "Tcp",
                    "sourcePortRange": "*",
                    "destinationPortRange": port.to_string(),
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": destination,
                    "access": "Allow",
                    "priority": priority,
                    "direction": "Outbound",
                    "description": "pulldoctor: lets the nodes reach the registry",
                }
            })))],
        ),
        Action::SetRouteNextHop { route_table_id, route_name, address_prefix, next_hop_type } => step(
            action,
            route_table_id,
            vec![Request::arm("GET", route_table_id.clone(), api::NETWORK)],
            Guard::RouteHop { route_name: route_name.clone(), next_hop_type: next_hop_type.clone() },
            vec![fixed(Request::arm("PUT", format!("{route_table_id}/routes/{route_name}"), api::NETWORK).body(
                json!({"properties": {"addressPrefix": address_prefix, "nextHopType": next_hop_type}}),
            ))],
        ),
        Action::ApprovePrivateEndpointConnection { connection_id } => step(
            action,
            connection_id,
            vec![Request::arm("GET", connection_id.clone(), api::CONTAINER_REGISTRY)],
            Guard::ConnectionApproved,
            vec![fixed(Request::arm("PUT", connection_id.clone(), api::CONTAINER_REGISTRY).body(json!({
                "properties": {"privateLinkServiceConnectionState": {
                    "status": "Approved",
                    "description": "pulldoctor: approved so the cluster's nodes can pull through it",
                }}
            })))],
        ),
        Action::ReconcileCluster { cluster_id } => {
            let node_rg = ctx
                .inventory
                .managed_clusters
                .iter()
                .find(|c| c.id.eq_ignore_ascii_case(cluster_id))
                .and_then(|c| c.properties.node_resource_group.clone());
            let sub = ResourceId::parse(cluster_id).ok().and_then(|i| i.subscription().map(str::to_string)).unwrap_or_default();
            let Some(node_rg) = node_rg else {
                return (manual_step(action, "the cluster's node resource group is unknown".into()), false);
            };
            step(
                action,
                cluster_id,
                vec![
                    Request::arm("GET", cluster_id.clone(), api::CONTAINER_SERVICE),
                    Request::arm(
                        "GET",
                        format!("/subscriptions/{sub}/resourceGroups/{node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets"),
                        api::COMPUTE,
                    )
                    .paged(),
                ],
                Guard::KubeletOnScaleSets,
                vec![derived(Request::arm("PUT", cluster_id.clone(), api::CONTAINER_SERVICE), Derive::ClusterPut)],
            )
        }
        Action::RotateServicePrincipalSecret { app_id, cluster_id } => {
            // Shared with the pull secret that follows: one new secret for both.
            if let Some(Action::ReplacePullSecret { namespace, secret_name, registry, credential_source }) = next
                && credential_source.eq_ignore_ascii_case(&format!("newServicePrincipalSecret:{app_id}"))
                && cluster_id.is_none()
            {
                let both = [action.clone(), next.cloned().unwrap_or_else(|| action.clone())];
                let mut s = step(
                    action,
                    &format!("{namespace}/{secret_name}"),
                    vec![Request::graph("GET", graph_app(app_id)), Request::kube("GET", secret_path(namespace, secret_name))],
                    Guard::SecretHoldsValidAppSecret { registry: registry.clone(), app_id: app_id.clone() },
                    vec![
                        add_password(app_id, ctx.now),
                        Write {
                            request: Request { content_type: Some(MERGE), ..Request::kube("PATCH", secret_path(namespace, secret_name)) },
                            derive: Some(Derive::DockerConfig {
                                secret_read: 1,
                                registry: registry.clone(),
                                username: Source::Literal { value: app_id.clone() },
                                password: Source::Binding { name: format!("secret:{app_id}") },
                                object: None,
                            }),
                            capture: None,
                        },
                    ],
                );
                s.summary = format!("{}, then {}", both[0].describe(), both[1].describe());
                s.actions = both.to_vec();
                return (s, true);
            }
            let mut writes = vec![add_password(app_id, ctx.now)];
            if let Some(c) = cluster_id {
                writes.push(derived(
                    Request::arm("POST", format!("{c}/resetServicePrincipalProfile"), api::CONTAINER_SERVICE),
                    Derive::ResetServicePrincipal {
                        client_id: app_id.clone(),
                        secret: Source::Binding { name: format!("secret:{app_id}") },
                    },
                ));
            }
            // With a cluster the step's result (the cluster holding the new secret) cannot be
            // read back: never "already done" (module docs).
            let guard = if cluster_id.is_some() { Guard::ClusterSecretUnseen } else { Guard::AppHasValidSecret };
            let target = match cluster_id {
                Some(c) => c.clone(),
                None => format!("application {app_id}"),
            };
            step(action, &target, vec![Request::graph("GET", graph_app(app_id))], guard, writes)
        }
        Action::ReplacePullSecret { namespace, secret_name, registry, credential_source } => {
            if !credential_source.eq_ignore_ascii_case("adminCredentials") {
                return (
                    manual_step(action, format!("the new credentials ({credential_source}) come from a step that is not in this plan")),
                    false,
                );
            }
            let Some(reg) = ctx.inventory.registry_by_login_server(registry) else {
                return (manual_step(action, format!("registry {registry} is not in the Azure evidence")), false);
            };
            step(
                action,
                &format!("{namespace}/{secret_name}"),
                vec![
                    Request::arm("POST", format!("{}/listCredentials", reg.id), api::CONTAINER_REGISTRY),
                    // A secret the pod names may be missing altogether (PULL_SECRET_MISSING).
                    Request::kube("GET", secret_path(namespace, secret_name)).absent_ok(),
                ],
                Guard::SecretHoldsAdmin { registry: registry.clone() },
                vec![Write {
                    // Server-side apply: creates a missing secret, and in an existing one owns
                    // only its docker config (other entries are carried over from the read).
                    request: Request {
                        content_type: Some(APPLY),
                        ..Request::kube(
                            "PATCH",
                            format!("{}?fieldManager=pulldoctor&force=true", secret_path(namespace, secret_name)),
                        )
                    },
                    derive: Some(Derive::DockerConfig {
                        secret_read: 1,
                        registry: registry.clone(),
                        username: Source::Read { read: 0, pointer: "/username".into() },
                        password: Source::Read { read: 0, pointer: "/passwords/0/value".into() },
                        object: Some(ObjectRef { namespace: namespace.clone(), name: secret_name.clone() }),
                    }),
                    capture: None,
                }],
            )
        }
        Action::SetNodeSelector { workload, node_selector } => {
            let Some(path) = workload_path(workload).filter(|_| workload.kind != "Pod") else {
                return (
                    manual_step(action, format!("{workload}: the node selector of a running pod cannot be changed; recreate it")),
                    false,
                );
            };
            step(
                action,
                &format!("{}/{}/{}", workload.kind, workload.namespace, workload.name),
                vec![Request::kube("GET", path.clone())],
                Guard::NodeSelector { selector: node_selector.clone(), pod: false },
                vec![fixed(Request {
                    content_type: Some(STRATEGIC),
                    ..Request::kube("PATCH", path).body(json!({"spec": {"template": {"spec": {"nodeSelector": node_selector}}}}))
                })],
            )
        }
        Action::SetImage { workload, container, image } => {
            let Some(path) = workload_path(workload) else {
                return (manual_step(action, format!("{workload}: unknown workload kind")), false);
            };
            let pod = workload.kind == "Pod";
            step(
                action,
                &format!("{}/{}/{}", workload.kind, workload.namespace, workload.name),
                vec![Request::kube("GET", path.clone())],
                Guard::Image { container: container.clone(), image: image.clone(), pod },
                vec![derived(
                    Request { content_type: Some(STRATEGIC), ..Request::kube("PATCH", path) },
                    Derive::SetImage { workload_read: 0, pod, container: container.clone(), image: image.clone() },
                )],
            )
        }
        Action::Manual { description, .. } => manual_step(action, description.clone()),
    };
    (s, false)
}

/// Translates a plan's actions (duplicates removed) into steps.
pub fn translate(actions: &[Action], ctx: &PlanContext<'_>) -> Vec<Step> {
    let mut unique: Vec<&Action> = Vec::new();
    for a in actions {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < unique.len() {
        let (s, consumed_next) = translate_one(unique[i], unique.get(i + 1).copied(), ctx);
        out.push(s);
        i += if consumed_next { 2 } else { 1 };
    }
    out
}

// ---------------------------------------------------------------------------------------
// Guards: pure judgements of the reads.

/// What a guard concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Already so: nothing to write.
    Done,
    /// The change is needed.
    Needed,
    /// Writing would overwrite something else of the user's.
    Conflict(String),
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn same(a: &str, b: &str) -> bool {
    azure_model::id::same_id(a, b)
}

/// The decoded docker config of a Secret answer, and whether it is the legacy `.dockercfg`.
pub fn docker_config(secret: &Value) -> (Value, bool) {
    let decode = |key: &str| {
        let b64 = secret.pointer(&format!("/data/{}", key.replace('/', "~1")))?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok()
    };
    if let Some(v) = decode(".dockerconfigjson") {
        return (v, false);
    }
    if let Some(v) = decode(".dockercfg") {
        return (v, true);
    }
    (json!({"auths": {}}), false)
}

/// `(username, password)` of the entry for `registry` (host match ignoring scheme and path).
pub fn docker_login(secret: &Value, registry: &str) -> Option<(String, String)> {
    let (cfg, legacy) = docker_config(secret);
    let auths = if legacy { &cfg } else { cfg.get("auths")? };
    let want = registry.to_ascii_lowercase();
    for (host, entry) in auths.as_object()? {
        let h = host.trim().trim_start_matches("https://").trim_start_matches("http://");
        if h.split('/').next().unwrap_or_default().to_ascii_lowercase() != want {
            continue;
        }
        let mut user = entry.get("username").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut pass = entry.get("password").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(auth) = entry.get("auth").and_then(Value::as_str)
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(auth.trim())
            && let Ok(text) = String::from_utf8(bytes)
            && let Some((u, p)) = text.split_once(':')
        {
            if user.is_empty() {
                user = u.to_string();
            }
            if pass.is_empty() {
                pass = p.to_string();
            }
        }
        return Some((user, pass));
    }
    None
}

fn valid_credentials(app: &Value, now: OffsetDateTime) -> Vec<azure_model::graph::PasswordCredential> {
    arr(app, "/passwordCredentials")
        .iter()
        .filter_map(|c| serde_json::from_value::<azure_model::graph::PasswordCredential>(c.clone()).ok())
        // A credential just added starts "now" by the directory's clock: allow for skew.
        .filter(|c| c.end().is_none_or(|e| e > now) && c.is_valid_at(now + time::Duration::minutes(10)))
        .collect()
}

fn template(w: &Value, pod: bool) -> Option<&Value> {
    if pod { w.get("spec") } else { w.pointer("/spec/template/spec") }
}

impl Guard {
    /// Whether the reads show the change once it is made (so "done" after a write is a
    /// check of the write). False for [`Guard::ClusterSecretUnseen`] and [`Guard::None`].
    pub fn observable(&self) -> bool {
        !matches!(self, Guard::ClusterSecretUnseen | Guard::None)
    }

    /// Judges the reads.
    pub fn verdict(&self, reads: &[Value], now: OffsetDateTime) -> Verdict {
        let r0 = reads.first().unwrap_or(&Value::Null);
        let r1 = reads.get(1).unwrap_or(&Value::Null);
        let done = |b: bool| if b { Verdict::Done } else { Verdict::Needed };
        match self {
            Guard::RoleAssigned { principal_id, role_guid } => done(arr(r0, "/value").iter().any(|a| {
                s(a, "/properties/principalId").eq_ignore_ascii_case(principal_id)
                    && s(a, "/properties/roleDefinitionId")
                        .rsplit('/')
                        .next()
                        .is_some_and(|g| g.eq_ignore_ascii_case(role_guid))
            })),
            Guard::VnetLinked { vnet_id, link_name } => {
                let links = arr(r0, "/value");
                if links.iter().any(|l| same(s(l, "/properties/virtualNetwork/id"), vnet_id)) {
                    return Verdict::Done;
                }
                match links.iter().find(|l| s(l, "/name").eq_ignore_ascii_case(link_name)) {
                    Some(l) => Verdict::Conflict(format!(
                        "link {link_name} exists and points at {}; choose another name",
                        s(l, "/properties/virtualNetwork/id")
                    )),
                    None => Verdict::Needed,
                }
            }
            Guard::PeeringUp { remote_vnet_id, name } => {
                let peerings = arr(r0, "/properties/virtualNetworkPeerings");
                if peerings.iter().any(|p| {
                    same(s(p, "/properties/remoteVirtualNetwork/id"), remote_vnet_id)
                        && ["Connected", "Initiated"]
                            .iter()
                            .any(|st| s(p, "/properties/peeringState").eq_ignore_ascii_case(st))
                        && p.pointer("/properties/allowVirtualNetworkAccess").and_then(Value::as_bool).unwrap_or(true)
                }) {
                    return Verdict::Done;
                }
                match peerings.iter().find(|p| s(p, "/name").eq_ignore_ascii_case(name)) {
                    Some(p) if !same(s(p, "/properties/remoteVirtualNetwork/id"), remote_vnet_id) => Verdict::Conflict(
                        format!("peering {name} exists and points at {}", s(p, "/properties/remoteVirtualNetwork/id")),
                    ),
                    _ => Verdict::Needed,
                }
            }
            Guard::IpAllowed { ip } => {
                let Ok(addr) = ip.split('/').next().unwrap_or(ip).parse::<std::net::IpAddr>() else {
                    return Verdict::Conflict(format!("`{ip}` is not an IP address"));
                };
                let set = r0.pointer("/properties/networkRuleSet");
                let allow_all = set.is_none_or(|n| s(n, "/defaultAction").eq_ignore_ascii_case("Allow"));
                done(
                    allow_all
                        || arr(r0, "/properties/networkRuleSet/ipRules")
                            .iter()
                            .any(|r| s(r, "/value") == ip || cidr_contains(s(r, "/value"), addr)),
                )
            }
            Guard::NsgRule { name, priority, destination, port } => {
                let rules = arr(r0, "/properties/securityRules");
                if let Some(r) = rules.iter().find(|r| s(r, "/name").eq_ignore_ascii_case(name)) {
                    let ok = s(r, "/properties/access").eq_ignore_ascii_case("Allow")
                        && s(r, "/properties/direction").eq_ignore_ascii_case("Outbound")
                        && s(r, "/properties/destinationAddressPrefix") == destination
                        && s(r, "/properties/destinationPortRange") == port.to_string()
                        && r.pointer("/properties/priority").and_then(Value::as_u64) == Some(u64::from(*priority));
                    return done(ok);
                }
                match rules.iter().find(|r| {
                    r.pointer("/properties/priority").and_then(Value::as_u64) == Some(u64::from(*priority))
                        && s(r, "/properties/direction").eq_ignore_ascii_case("Outbound")
                }) {
                    Some(r) => Verdict::Conflict(format!("rule {} already has priority {priority}", s(r, "/name"))),
                    None => Verdict::Needed,
                }
            }
            Guard::RouteHop { route_name, next_hop_type } => done(arr(r0, "/properties/routes").iter().any(|r| {
                s(r, "/name").eq_ignore_ascii_case(route_name)
                    && s(r, "/properties/nextHopType").eq_ignore_ascii_case(next_hop_type)
            })),
            Guard::KubeletOnScaleSets => {
                let id = s(r0, "/properties/identityProfile/kubeletidentity/resourceId");
                let sets = arr(r1, "/value");
                done(
                    !id.is_empty()
                        && !sets.is_empty()
                        && sets.iter().all(|v| {
                            v.pointer("/identity/userAssignedIdentities")
                                .and_then(Value::as_object)
                                .is_some_and(|m| m.keys().any(|k| same(k, id)))
                        }),
                )
            }
            Guard::ConnectionApproved => {
                match s(r0, "/properties/privateLinkServiceConnectionState/status").to_ascii_lowercase().as_str() {
                    "approved" => Verdict::Done,
                    "pending" => Verdict::Needed,
                    "rejected" => Verdict::Conflict(
                        "the registry's owner rejected this connection: not overridden; ask them to approve it".into(),
                    ),
                    other => Verdict::Conflict(format!(
                        "the connection is {other}: the registry's owner removed it; re-create the private endpoint"
                    )),
                }
            }
            Guard::AppHasValidSecret => done(!valid_credentials(r0, now).is_empty()),
            Guard::ClusterSecretUnseen => Verdict::Needed,
            Guard::SecretHoldsAdmin { registry } => {
                let Some((user, pass)) = docker_login(r1, registry) else { return Verdict::Needed };
                done(
                    user.eq_ignore_ascii_case(s(r0, "/username"))
                        && !pass.is_empty()
                        && arr(r0, "/passwords").iter().any(|p| s(p, "/value") == pass),
                )
            }
            Guard::SecretHoldsValidAppSecret { registry, app_id } => {
                let Some((user, pass)) = docker_login(r1, registry) else { return Verdict::Needed };
                done(
                    user.eq_ignore_ascii_case(app_id)
                        && valid_credentials(r0, now)
                            .iter()
                            .any(|c| c.hint.as_deref().is_some_and(|h| !h.is_empty() && pass.starts_with(h))),
                )
            }
            Guard::NodeSelector { selector, pod } => {
                let have = template(r0, *pod).and_then(|t| t.get("nodeSelector")).and_then(Value::as_object);
                done(
                    selector
                        .iter()
                        .all(|(k, v)| have.and_then(|h| h.get(k)).and_then(Value::as_str) == Some(v.as_str())),
                )
            }
            Guard::Image { container, image, pod } => {
                let t = template(r0, *pod);
                let all = t
                    .map(|t| arr(t, "/containers").iter().chain(arr(t, "/initContainers").iter()).collect::<Vec<_>>())
                    .unwrap_or_default();
                match all.iter().find(|c| s(c, "/name") == container) {
                    Some(c) => done(s(c, "/image") == image),
                    None => Verdict::Conflict(format!("no container named {container}")),
                }
            }
            Guard::None => Verdict::Needed,
        }
    }

    /// The part of the state the guard looks at, for the audit trail (never a secret value).
    pub fn summary(&self, reads: &[Value], now: OffsetDateTime) -> Value {
        let r0 = reads.first().unwrap_or(&Value::Null);
        let r1 = reads.get(1).unwrap_or(&Value::Null);
        match self {
            Guard::RoleAssigned { principal_id, .. } => json!({"roleAssignmentsOfPrincipal": arr(r0, "/value").iter()
                .filter(|a| s(a, "/properties/principalId").eq_ignore_ascii_case(principal_id))
                .map(|a| s(a, "/properties/roleDefinitionId").rsplit('/').next().unwrap_or_default().to_string())
                .collect::<Vec<_>>()}),
            Guard::VnetLinked { .. } => json!({"linkedVnets": arr(r0, "/value").iter()
                .map(|l| format!("{} -> {}", s(l, "/name"), s(l, "/properties/virtualNetwork/id")))
                .collect::<Vec<_>>()}),
            Guard::PeeringUp { .. } => json!({"peerings": arr(r0, "/properties/virtualNetworkPeerings").iter()
                .map(|p| format!("{} -> {}: {}", s(p, "/name"), s(p, "/properties/remoteVirtualNetwork/id"), s(p, "/properties/peeringState")))
                .collect::<Vec<_>>()}),
            Guard::IpAllowed { .. } => json!({
                "publicNetworkAccess": s(r0, "/properties/publicNetworkAccess"),
                "defaultAction": s(r0, "/properties/networkRuleSet/defaultAction"),
                "ipRules": arr(r0, "/properties/networkRuleSet/ipRules").iter().map(|r| s(r, "/value").to_string()).collect::<Vec<_>>(),
            }),
            Guard::NsgRule { .. } => json!({"rules": arr(r0, "/properties/securityRules").iter()
                .map(|r| format!("{} {} {} priority {} -> {}:{}", s(r, "/name"), s(r, "/properties/direction"), s(r, "/properties/access"),
                    r.pointer("/properties/priority").and_then(Value::as_u64).unwrap_or(0),
                    s(r, "/properties/destinationAddressPrefix"), s(r, "/properties/destinationPortRange")))
                .collect::<Vec<_>>()}),
            Guard::RouteHop { .. } => json!({"routes": arr(r0, "/properties/routes").iter()
                .map(|r| format!("{} {} -> {}", s(r, "/name"), s(r, "/properties/addressPrefix"), s(r, "/properties/nextHopType")))
                .collect::<Vec<_>>()}),
            Guard::KubeletOnScaleSets => {
                let id = s(r0, "/properties/identityProfile/kubeletidentity/resourceId");
                json!({"kubeletIdentity": id, "scaleSets": arr(r1, "/value").iter().map(|v| {
                    let on = v.pointer("/identity/userAssignedIdentities").and_then(Value::as_object).is_some_and(|m| m.keys().any(|k| same(k, id)));
                    format!("{}: {}", s(v, "/name"), if on { "has it" } else { "lacks it" })
                }).collect::<Vec<_>>()})
            }
            Guard::ConnectionApproved => json!({
                "status": s(r0, "/properties/privateLinkServiceConnectionState/status"),
                "description": s(r0, "/properties/privateLinkServiceConnectionState/description"),
                "privateEndpoint": s(r0, "/properties/privateEndpoint/id"),
            }),
            Guard::AppHasValidSecret => json!({"validPasswordCredentials": valid_credentials(r0, now).len(),
                "passwordCredentials": arr(r0, "/passwordCredentials").iter()
                    .map(|c| format!("{} ends {}", s(c, "/displayName"), s(c, "/endDateTime"))).collect::<Vec<_>>()}),
            Guard::ClusterSecretUnseen => json!({"validPasswordCredentials": valid_credentials(r0, now).len(),
                "passwordCredentials": arr(r0, "/passwordCredentials").iter()
                    .map(|c| format!("{} ends {}", s(c, "/displayName"), s(c, "/endDateTime"))).collect::<Vec<_>>(),
                "clusterSecret": "not readable (write-only): the cluster is reset on every run"}),
            Guard::SecretHoldsAdmin { registry } | Guard::SecretHoldsValidAppSecret { registry, .. } => {
                let login = docker_login(r1, registry);
                let holds = self.verdict(reads, now) == Verdict::Done;
                json!({"registry": registry, "username": login.as_ref().map(|l| l.0.clone()),
                    "hasPassword": login.as_ref().is_some_and(|l| !l.1.is_empty()), "passwordCurrent": holds})
            }
            Guard::NodeSelector { pod, .. } => {
                json!({"nodeSelector": template(r0, *pod).and_then(|t| t.get("nodeSelector")).cloned()})
            }
            Guard::Image { pod, .. } => {
                json!({"images": template(r0, *pod).map(|t| arr(t, "/containers").iter().chain(arr(t, "/initContainers").iter())
                .map(|c| format!("{}={}", s(c, "/name"), s(c, "/image"))).collect::<Vec<_>>())})
            }
            Guard::None => Value::Null,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Derived bodies: pure functions of the reads and bindings.

/// Why a body could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the request body: {0}")]
pub struct DeriveError(pub String);

fn resolve(src: &Source, reads: &[Value], bindings: &BTreeMap<String, String>) -> Result<String, DeriveError> {
    match src {
        Source::Literal { value } => Ok(value.clone()),
        Source::Read { read, pointer } => reads
            .get(*read)
            .and_then(|r| r.pointer(pointer))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| DeriveError(format!("read {read} has no {pointer}"))),
        Source::Binding { name } => {
            bindings.get(name).cloned().ok_or_else(|| DeriveError(format!("no value for {name}")))
        }
    }
}

/// Read-only fields of a managed cluster that a PUT must not send back.
const CLUSTER_READ_ONLY: &[&str] = &[
    "provisioningState",
    "powerState",
    "fqdn",
    "azurePortalFQDN",
    "privateFQDN",
    "currentKubernetesVersion",
    "maxAgentPools",
];

impl Derive {
    /// Builds the body.
    pub fn body(&self, reads: &[Value], bindings: &BTreeMap<String, String>) -> Result<Value, DeriveError> {
        match self {
            Derive::AppendIpRule { ip } => {
                let r0 = reads.first().unwrap_or(&Value::Null);
                let mut rules: Vec<Value> = arr(r0, "/properties/networkRuleSet/ipRules").to_vec();
                rules.push(json!({"action": "Allow", "value": ip}));
                let default_action = r0
                    .pointer("/properties/networkRuleSet/defaultAction")
                    .and_then(Value::as_str)
                    .unwrap_or("Deny")
                    .to_string();
                Ok(json!({"properties": {"networkRuleSet": {"defaultAction": default_action, "ipRules": rules}}}))
            }
            Derive::ClusterPut => {
                let mut c = reads.first().cloned().ok_or_else(|| DeriveError("the cluster was not read".into()))?;
                if let Some(p) = c.get_mut("properties").and_then(Value::as_object_mut) {
                    for k in CLUSTER_READ_ONLY {
                        p.remove(*k);
                    }
                    if let Some(pools) = p.get_mut("agentPoolProfiles").and_then(Value::as_array_mut) {
                        for pool in pools.iter_mut().filter_map(Value::as_object_mut) {
                            for k in
                                ["provisioningState", "powerState", "currentOrchestratorVersion", "nodeImageVersion"]
                            {
                                pool.remove(k);
                            }
                        }
                    }
                    // The secret is write-only; sending the profile without it would clear it.
                    p.remove("servicePrincipalProfile");
                }
                Ok(c)
            }
            Derive::ResetServicePrincipal { client_id, secret } => {
                Ok(json!({"clientId": client_id, "secret": resolve(secret, reads, bindings)?}))
            }
            Derive::DockerConfig { secret_read, registry, username, password, object } => {
                let current = reads.get(*secret_read).unwrap_or(&Value::Null);
                let (mut cfg, legacy) = docker_config(current);
                let user = resolve(username, reads, bindings)?;
                let pass = resolve(password, reads, bindings)?;
                let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                let entry = json!({"username": user, "password": pass, "auth": auth});
                if !legacy && !cfg.get("auths").is_some_and(Value::is_object) {
                    cfg["auths"] = json!({});
                }
                let auths = if legacy { &mut cfg } else { &mut cfg["auths"] };
                let Some(map) = auths.as_object_mut() else {
                    return Err(DeriveError("the docker config has no `auths` object".into()));
                };
                // Replace the entry for the host whatever its spelling (scheme, path).
                let keys: Vec<String> = map
                    .keys()
                    .filter(|k| {
                        k.trim()
                            .trim_start_matches("https://")
                            .trim_start_matches("http://")
                            .split('/')
                            .next()
                            .unwrap_or_default()
                            .eq_ignore_ascii_case(registry)
                    })
                    .cloned()
                    .collect();
                for k in &keys {
                    map.remove(k);
                }
                map.insert(keys.first().cloned().unwrap_or_else(|| registry.clone()), entry);
                let key = if legacy { ".dockercfg" } else { ".dockerconfigjson" };
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&cfg).unwrap_or_default());
                Ok(match object {
                    None => json!({"data": {key: encoded}}),
                    Some(o) => json!({
                        "apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": o.name, "namespace": o.namespace},
                        "type": if legacy { "kubernetes.io/dockercfg" } else { "kubernetes.io/dockerconfigjson" },
                        "data": {key: encoded},
                    }),
                })
            }
            Derive::SetImage { workload_read, pod, container, image } => {
                let w = reads.get(*workload_read).unwrap_or(&Value::Null);
                let init = template(w, *pod)
                    .is_some_and(|t| arr(t, "/initContainers").iter().any(|c| s(c, "/name") == container));
                let list = if init { "initContainers" } else { "containers" };
                let spec = json!({list: [{"name": container, "image": image}]});
                Ok(if *pod { json!({"spec": spec}) } else { json!({"spec": {"template": {"spec": spec}}}) })
            }
        }
    }
}
