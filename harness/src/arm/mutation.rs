//! A [`Mutation`] as the Azure calls (or cluster operation) that realise it.

use azure_model::api_version as v;
use serde_json::json;

use super::ids::World;
use super::provision::{self, firewall_value, principal_binding};
use super::request::{Capture, Edit, Request};
use crate::baseline::{Baseline, RoleScope};
use crate::scenario::Mutation;

/// A change to the Kubernetes side of the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOp {
    /// Set the workload's image.
    SetImage(String),
    /// Rewrite the pull secret from the registry's current admin credentials.
    RefreshPullSecret(String),
    /// Delete the pull secret.
    DeletePullSecret(String),
    /// Rewrite the pull secret from the admin credentials, keyed for another host.
    RekeyPullSecret {
        /// The secret.
        secret: String,
        /// The host its entry is keyed for.
        registry: String,
    },
    /// Put the workload back as the baseline declares it.
    RestoreWorkload,
}

/// A change only an emulated control plane can make (Azure has no API that does it at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmulatorOp {
    /// Set the end date of an application's client secrets (`past` = now minus a day).
    SetSecretExpiry {
        /// The application's name in the baseline.
        application: String,
        /// RFC 3339, `past`, or `+1y`.
        expires: String,
    },
}

/// A change to the nodes themselves: what a custom node set-up, a bootstrap script or a
/// reimage does, with no ARM call that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOp {
    /// The pool's credential provider config names a cloud config file its nodes do not have.
    BreakCredentialProvider(String),
    /// The pool's nodes get AKS's own credential provider config back.
    RestoreCredentialProvider(String),
}

/// How one mutation is carried out.
#[derive(Debug, Clone, PartialEq)]
pub enum Realisation {
    /// Nothing to do.
    Nothing,
    /// ARM / Graph calls, in order.
    Azure(Vec<Request>),
    /// A cluster operation.
    Cluster(ClusterOp),
    /// An emulator-only control-plane edit.
    Emulator(EmulatorOp),
    /// A change on the nodes.
    Node(NodeOp),
}

/// How `m` is realised against the world provisioned from `b`.
pub fn realise(m: &Mutation, b: &Baseline, w: &World) -> Realisation {
    use Realisation::Azure;
    let registry = w.registry(b);
    match m {
        Mutation::Nothing => Realisation::Nothing,
        Mutation::CreateRoleAssignment { principal, role } => {
            let scope = b
                .role_assignments
                .iter()
                .find(|a| &a.principal == principal && &a.role == role)
                .map(|a| a.scope)
                .unwrap_or(RoleScope::Registry);
            Azure(vec![provision::role_assignment(b, w, principal, role, scope)])
        }
        Mutation::DeleteRoleAssignment { principal, role } => {
            let scope = b
                .role_assignments
                .iter()
                .find(|a| &a.principal == principal && &a.role == role)
                .map(|a| a.scope)
                .unwrap_or(RoleScope::Registry);
            let id = w.role_assignment(&w.role_scope(b, scope), principal, role);
            Azure(vec![Request::delete(id, v::AUTHORIZATION, format!("delete {role} of {principal}"))])
        }
        Mutation::SetRegistryRoleAssignmentMode { mode } => Azure(vec![Request::update(
            registry,
            v::CONTAINER_REGISTRY,
            Edit::Set { pointer: "/properties/roleAssignmentMode".into(), value: json!(mode) },
            format!("roleAssignmentMode = {mode}"),
        )]),
        Mutation::SetApplicationSecretExpiry { application, expires } => {
            Realisation::Emulator(EmulatorOp::SetSecretExpiry {
                application: application.clone(),
                expires: expires.clone(),
            })
        }
        Mutation::ResetClusterServicePrincipal { application } => Azure(vec![Request::post(
            format!("{}/resetServicePrincipalProfile", w.cluster(b)),
            v::CONTAINER_SERVICE,
            Some(
                json!({ "clientId": format!("${{app.{application}.appId}}"), "secret": format!("${{secret.{application}}}") }),
            ),
            format!("reset the cluster's service principal to {application}"),
        )]),
        Mutation::DetachKubeletIdentity { pool } | Mutation::AttachKubeletIdentity { pool } => {
            let list =
                format!("{}/providers/Microsoft.Compute/virtualMachineScaleSets", w.group(&w.node_resource_group(b)));
            let mut find = Request::get(list, v::COMPUTE, format!("find pool {pool}'s scale set"))
                .capture(Capture::value(format!("vmss.{pool}.id"), "/id"));
            find.find_by_tag = Some((azure_model::compute::POOL_NAME_TAG.into(), pool.clone()));
            let kubelet = w.kubelet_identity(b);
            let edit = if matches!(m, Mutation::DetachKubeletIdentity { .. }) {
                Edit::RemoveKey { pointer: "/identity/userAssignedIdentities".into(), key: kubelet }
            } else {
                Edit::Set {
                    pointer: format!(
                        "/identity/userAssignedIdentities/{}",
                        kubelet.replace('~', "~0").replace('/', "~1")
                    ),
                    value: json!({}),
                }
            };
            Azure(vec![find, Request::update(format!("${{vmss.{pool}.id}}"), v::COMPUTE, edit, m.describe())])
        }
        Mutation::MisconfigureCredentialProvider { pool } => {
            Realisation::Node(NodeOp::BreakCredentialProvider(pool.clone()))
        }
        Mutation::RestoreCredentialProvider { pool } => {
            Realisation::Node(NodeOp::RestoreCredentialProvider(pool.clone()))
        }
        Mutation::RegenerateRegistryPassword { password } => Azure(vec![Request::post(
            format!("{registry}/regenerateCredential"),
            v::CONTAINER_REGISTRY,
            Some(json!({ "name": password })),
            format!("regenerate admin {password}"),
        )]),
        Mutation::RefreshPullSecret { secret } => Realisation::Cluster(ClusterOp::RefreshPullSecret(secret.clone())),
        Mutation::DeletePullSecret { secret } => Realisation::Cluster(ClusterOp::DeletePullSecret(secret.clone())),
        Mutation::RekeyPullSecret { secret, registry } => {
            Realisation::Cluster(ClusterOp::RekeyPullSecret { secret: secret.clone(), registry: registry.clone() })
        }
        Mutation::RestoreWorkload => Realisation::Cluster(ClusterOp::RestoreWorkload),
        Mutation::SetImage { image } => {
            Realisation::Cluster(ClusterOp::SetImage(image.replace("{loginServer}", &b.registry.login_server())))
        }
        Mutation::CreateVnetLink { zone, vnet } => Azure(vec![provision::vnet_link(b, w, zone, vnet)]),
        Mutation::DeleteVnetLink { zone, vnet } => Azure(vec![Request::delete(
            w.vnet_link(b, zone, vnet),
            v::PRIVATE_DNS,
            format!("unlink {zone} from {vnet}"),
        )]),
        Mutation::AddRegistryIpRule { allow } => {
            let pointer = "/properties/networkRuleSet/ipRules".to_string();
            let value = json!({ "action": "Allow", "value": firewall_value(b, allow) });
            // Where the baseline declares it, so an inverse restores the exact list.
            let declared = b.registry.firewall.as_ref().and_then(|f| f.allow.iter().position(|a| a == allow));
            let edit = match declared {
                Some(index) => Edit::Insert { pointer, index, value },
                None => Edit::Append { pointer, value },
            };
            Azure(vec![Request::update(registry, v::CONTAINER_REGISTRY, edit, format!("allow {allow}"))])
        }
        Mutation::RemoveRegistryIpRule { allow } => Azure(vec![Request::update(
            registry,
            v::CONTAINER_REGISTRY,
            Edit::RemoveWhere {
                pointer: "/properties/networkRuleSet/ipRules".into(),
                field: "value".into(),
                equals: json!(firewall_value(b, allow)),
            },
            format!("remove {allow}"),
        )]),
        Mutation::CreatePeering { from, to, both_sides } => {
            let mut reqs = vec![provision::peering(b, w, from, to)];
            if *both_sides {
                reqs.push(provision::peering(b, w, to, from));
            } else {
                // Re-creating a deleted side makes both Connected again (the other side is
                // still there, Disconnected; Azure re-syncs it on the next PUT).
                reqs.push(provision::peering(b, w, to, from));
            }
            Azure(reqs)
        }
        Mutation::DeletePeering { from, to, both_sides } => {
            let mut reqs =
                vec![Request::delete(w.peering(b, from, to), v::NETWORK, format!("delete peering {from}->{to}"))];
            if *both_sides {
                reqs.push(Request::delete(w.peering(b, to, from), v::NETWORK, format!("delete peering {to}->{from}")));
            }
            Azure(reqs)
        }
        Mutation::AddNsgRule { nsg, rule } => {
            let body = provision::security_rule(rule);
            Azure(vec![Request::put(
                format!("{}/securityRules/{}", w.nsg(b, nsg), rule.name),
                v::NETWORK,
                json!({ "properties": body["properties"] }),
                format!("add rule {} to {nsg}", rule.name),
            )])
        }
        Mutation::DeleteNsgRule { nsg, rule } => Azure(vec![Request::delete(
            format!("{}/securityRules/{rule}", w.nsg(b, nsg)),
            v::NETWORK,
            format!("delete rule {rule}"),
        )]),
        Mutation::AddRoute { route_table, route } => {
            let body = provision::route(route);
            Azure(vec![Request::put(
                format!("{}/routes/{}", w.route_table(b, route_table), route.name),
                v::NETWORK,
                json!({ "properties": body["properties"] }),
                format!("add route {}", route.name),
            )])
        }
        Mutation::RecreatePrivateEndpointManual { request_message } => {
            recreate_private_endpoint(b, w, Some(request_message))
        }
        Mutation::RestorePrivateEndpoint => recreate_private_endpoint(b, w, None),
        Mutation::DeleteRoute { route_table, route } => Azure(vec![Request::delete(
            format!("{}/routes/{route}", w.route_table(b, route_table)),
            v::NETWORK,
            format!("delete route {route}"),
        )]),
    }
}

/// Deletes the registry's private endpoint and creates it again, automatic or as a manual
/// connection request (Azure cannot switch an endpoint between the two in place).
fn recreate_private_endpoint(b: &Baseline, w: &World, manual_request: Option<&str>) -> Realisation {
    let (Some(pe_id), Some(put)) = (w.private_endpoint(b), provision::private_endpoint(b, w, manual_request)) else {
        return Realisation::Nothing;
    };
    Realisation::Azure(vec![Request::delete(pe_id, v::NETWORK, "delete the registry's private endpoint"), put])
}

/// The principal binding, re-exported for callers that build requests by hand.
pub fn principal(principal: &str) -> String {
    principal_binding(principal)
}
