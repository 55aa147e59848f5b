//! Faults: exactly one typed mutation of the baseline's world, with its inverse.
//!
//! A [`Fault`] is what a scenario file says; a [`Mutation`] is what a backend executes. Every
//! fault maps to a forward mutation and an inverse mutation computed from the baseline, so the
//! inverse can be registered before the fault is injected.

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, ClusterIdentity, Route, SecurityRule};
use crate::diagnostic::{Diagnostic, closest};

/// The one thing a scenario breaks. Written as a single-key map: `deleteVnetLink: {...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Fault {
    /// No fault: the healthy baseline must stay healthy and yield no finding.
    None,
    /// Delete a principal's role assignment on the registry (someone removed AcrPull).
    #[serde(rename_all = "camelCase")]
    DeleteRoleAssignment {
        /// `kubelet` or `application:NAME`.
        principal: String,
        /// Role name.
        role: String,
    },
    /// Switch the registry's role assignment mode (e.g. to `AbacRepositoryPermissions`).
    #[serde(rename_all = "camelCase")]
    SetRegistryRoleAssignmentMode {
        /// The new mode.
        mode: String,
    },
    /// Let an application's client secret expire.
    #[serde(rename_all = "camelCase")]
    ExpireApplicationSecret {
        /// The application's name.
        application: String,
    },
    /// Move the cluster to another service principal; role assignments stay on the old one.
    #[serde(rename_all = "camelCase")]
    ReplaceClusterServicePrincipal {
        /// The new application's name (declared in the baseline, holding no role).
        application: String,
    },
    /// Remove the kubelet identity from a node pool's scale set.
    #[serde(rename_all = "camelCase")]
    DetachKubeletIdentity {
        /// The pool.
        pool: String,
    },
    /// Break the credential provider on a pool's nodes: its config's `args` name a cloud config
    /// file the nodes do not have (a custom node set-up or a bootstrap script that moved
    /// `/etc/kubernetes/azure.json`). The plugin fails on every call, the kubelet pulls
    /// without credentials, and the kubelet is restarted to read the config, as a reboot does.
    #[serde(rename_all = "camelCase")]
    MisconfigureCredentialProvider {
        /// The pool.
        pool: String,
    },
    /// Regenerate the registry's admin password (pull secrets made from it go stale).
    #[serde(rename_all = "camelCase")]
    RegenerateRegistryPassword {
        /// `password` or `password2`.
        password: String,
    },
    /// Delete the workload's pull secret from its namespace (the pod still names it).
    #[serde(rename_all = "camelCase")]
    DeletePullSecret {
        /// The secret, as the baseline's `workload.pullSecret.name`.
        secret: String,
    },
    /// Rewrite the workload's pull secret keyed for another registry host (the old registry
    /// after a migration): same credentials, an `auths` key the kubelet never matches.
    #[serde(rename_all = "camelCase")]
    RekeyPullSecret {
        /// The secret, as the baseline's `workload.pullSecret.name`.
        secret: String,
        /// The registry host the entry is keyed for instead.
        registry: String,
    },
    /// Change the workload's image reference.
    #[serde(rename_all = "camelCase")]
    SetImage {
        /// The new reference (`{loginServer}` is replaced).
        image: String,
    },
    /// Delete a private DNS zone's link to a VNet.
    #[serde(rename_all = "camelCase")]
    DeleteVnetLink {
        /// The zone.
        zone: String,
        /// The VNet.
        vnet: String,
    },
    /// Remove an allowed source from the registry firewall.
    #[serde(rename_all = "camelCase")]
    RemoveRegistryIpRule {
        /// A public IP name or literal, as in the baseline's `firewall.allow`.
        allow: String,
    },
    /// Delete a peering (one side leaves the other `Disconnected`; both sides leave none).
    #[serde(rename_all = "camelCase")]
    DeletePeering {
        /// The VNet whose peering is deleted.
        from: String,
        /// The remote VNet.
        to: String,
        /// Delete the reverse side too.
        #[serde(default)]
        both_sides: bool,
    },
    /// Add a rule to an NSG.
    #[serde(rename_all = "camelCase")]
    AddNsgRule {
        /// The NSG.
        nsg: String,
        /// The rule.
        rule: SecurityRule,
    },
    /// Add a route to a route table.
    #[serde(rename_all = "camelCase")]
    AddRoute {
        /// The route table.
        route_table: String,
        /// The route.
        route: Route,
    },
    /// Re-create the registry's private endpoint as a manual connection request (Terraform's
    /// `is_manual_connection = true`, or a team that may not approve on the registry): its
    /// connection stays `Pending` until the registry's owner approves it, and carries no traffic.
    #[serde(rename_all = "camelCase")]
    RecreatePrivateEndpointManual {
        /// The request message the registry's owner sees.
        #[serde(default = "default_request_message")]
        request_message: String,
    },
}

fn default_request_message() -> String {
    "Please approve: AKS nodes pull through this endpoint".into()
}

/// One executable change of the world. Faults and their inverses are both mutations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Mutation {
    /// Nothing.
    Nothing,
    /// Create a role assignment.
    #[serde(rename_all = "camelCase")]
    CreateRoleAssignment { principal: String, role: String },
    /// Delete a role assignment.
    #[serde(rename_all = "camelCase")]
    DeleteRoleAssignment { principal: String, role: String },
    /// Set the registry's role assignment mode.
    #[serde(rename_all = "camelCase")]
    SetRegistryRoleAssignmentMode { mode: String },
    /// Set an application's secret expiry (RFC 3339, or `past`).
    #[serde(rename_all = "camelCase")]
    SetApplicationSecretExpiry { application: String, expires: String },
    /// Reset the cluster's service principal.
    #[serde(rename_all = "camelCase")]
    ResetClusterServicePrincipal { application: String },
    /// Detach the kubelet identity from a pool's scale set.
    #[serde(rename_all = "camelCase")]
    DetachKubeletIdentity { pool: String },
    /// Attach it again.
    #[serde(rename_all = "camelCase")]
    AttachKubeletIdentity { pool: String },
    /// Point the pool's credential provider at a cloud config its nodes do not have.
    #[serde(rename_all = "camelCase")]
    MisconfigureCredentialProvider { pool: String },
    /// Give the pool's nodes AKS's own credential provider config again (a reimage).
    #[serde(rename_all = "camelCase")]
    RestoreCredentialProvider { pool: String },
    /// Regenerate an admin password.
    #[serde(rename_all = "camelCase")]
    RegenerateRegistryPassword { password: String },
    /// Rewrite the pull secret from current credentials.
    #[serde(rename_all = "camelCase")]
    RefreshPullSecret { secret: String },
    /// Delete the pull secret.
    #[serde(rename_all = "camelCase")]
    DeletePullSecret { secret: String },
    /// Rewrite the pull secret from current credentials, keyed for another registry host.
    #[serde(rename_all = "camelCase")]
    RekeyPullSecret { secret: String, registry: String },
    /// Set the workload image.
    #[serde(rename_all = "camelCase")]
    SetImage { image: String },
    /// Put the workload back as the baseline declares it (image, node selector, pull secret).
    RestoreWorkload,
    /// Create a VNet link.
    #[serde(rename_all = "camelCase")]
    CreateVnetLink { zone: String, vnet: String },
    /// Delete a VNet link.
    #[serde(rename_all = "camelCase")]
    DeleteVnetLink { zone: String, vnet: String },
    /// Allow a source in the registry firewall.
    #[serde(rename_all = "camelCase")]
    AddRegistryIpRule { allow: String },
    /// Remove it.
    #[serde(rename_all = "camelCase")]
    RemoveRegistryIpRule { allow: String },
    /// Create a peering (and its reverse).
    #[serde(rename_all = "camelCase")]
    CreatePeering { from: String, to: String, both_sides: bool },
    /// Delete a peering (and its reverse).
    #[serde(rename_all = "camelCase")]
    DeletePeering { from: String, to: String, both_sides: bool },
    /// Add an NSG rule.
    #[serde(rename_all = "camelCase")]
    AddNsgRule { nsg: String, rule: SecurityRule },
    /// Delete an NSG rule.
    #[serde(rename_all = "camelCase")]
    DeleteNsgRule { nsg: String, rule: String },
    /// Add a route.
    #[serde(rename_all = "camelCase")]
    AddRoute { route_table: String, route: Route },
    /// Delete a route.
    #[serde(rename_all = "camelCase")]
    DeleteRoute { route_table: String, route: String },
    /// Delete the registry's private endpoint and create it again as a manual connection request.
    #[serde(rename_all = "camelCase")]
    RecreatePrivateEndpointManual { request_message: String },
    /// Delete the registry's private endpoint and create it again as the baseline declares it
    /// (an automatic connection, approved at once).
    RestorePrivateEndpoint,
}

impl Fault {
    /// The kind as written in YAML (`deleteVnetLink`).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::DeleteRoleAssignment { .. } => "deleteRoleAssignment",
            Fault::SetRegistryRoleAssignmentMode { .. } => "setRegistryRoleAssignmentMode",
            Fault::ExpireApplicationSecret { .. } => "expireApplicationSecret",
            Fault::ReplaceClusterServicePrincipal { .. } => "replaceClusterServicePrincipal",
            Fault::DetachKubeletIdentity { .. } => "detachKubeletIdentity",
            Fault::MisconfigureCredentialProvider { .. } => "misconfigureCredentialProvider",
            Fault::RegenerateRegistryPassword { .. } => "regenerateRegistryPassword",
            Fault::DeletePullSecret { .. } => "deletePullSecret",
            Fault::RekeyPullSecret { .. } => "rekeyPullSecret",
            Fault::SetImage { .. } => "setImage",
            Fault::DeleteVnetLink { .. } => "deleteVnetLink",
            Fault::RemoveRegistryIpRule { .. } => "removeRegistryIpRule",
            Fault::DeletePeering { .. } => "deletePeering",
            Fault::AddNsgRule { .. } => "addNsgRule",
            Fault::AddRoute { .. } => "addRoute",
            Fault::RecreatePrivateEndpointManual { .. } => "recreatePrivateEndpointManual",
        }
    }

    /// The forward mutation.
    pub fn mutation(&self) -> Mutation {
        match self.clone() {
            Fault::None => Mutation::Nothing,
            Fault::DeleteRoleAssignment { principal, role } => Mutation::DeleteRoleAssignment { principal, role },
            Fault::SetRegistryRoleAssignmentMode { mode } => Mutation::SetRegistryRoleAssignmentMode { mode },
            Fault::ExpireApplicationSecret { application } => {
                Mutation::SetApplicationSecretExpiry { application, expires: "past".into() }
            }
            Fault::ReplaceClusterServicePrincipal { application } => {
                Mutation::ResetClusterServicePrincipal { application }
            }
            Fault::DetachKubeletIdentity { pool } => Mutation::DetachKubeletIdentity { pool },
            Fault::MisconfigureCredentialProvider { pool } => Mutation::MisconfigureCredentialProvider { pool },
            Fault::RegenerateRegistryPassword { password } => Mutation::RegenerateRegistryPassword { password },
            Fault::DeletePullSecret { secret } => Mutation::DeletePullSecret { secret },
            Fault::RekeyPullSecret { secret, registry } => Mutation::RekeyPullSecret { secret, registry },
            Fault::SetImage { image } => Mutation::SetImage { image },
            Fault::DeleteVnetLink { zone, vnet } => Mutation::DeleteVnetLink { zone, vnet },
            Fault::RemoveRegistryIpRule { allow } => Mutation::RemoveRegistryIpRule { allow },
            Fault::DeletePeering { from, to, both_sides } => Mutation::DeletePeering { from, to, both_sides },
            Fault::AddNsgRule { nsg, rule } => Mutation::AddNsgRule { nsg, rule },
            Fault::AddRoute { route_table, route } => Mutation::AddRoute { route_table, route },
            Fault::RecreatePrivateEndpointManual { request_message } => {
                Mutation::RecreatePrivateEndpointManual { request_message }
            }
        }
    }

    /// The mutation that restores the baseline, computed from it before injection.
    pub fn inverse(&self, baseline: &Baseline) -> Mutation {
        match self.clone() {
            Fault::None => Mutation::Nothing,
            Fault::DeleteRoleAssignment { principal, role } => Mutation::CreateRoleAssignment { principal, role },
            Fault::SetRegistryRoleAssignmentMode { .. } => {
                Mutation::SetRegistryRoleAssignmentMode { mode: baseline.registry.role_assignment_mode.to_string() }
            }
            Fault::ExpireApplicationSecret { application } => {
                let expires = baseline
                    .application(&application)
                    .and_then(|a| a.secret_expires.clone())
                    .unwrap_or_else(|| "+1y".into());
                Mutation::SetApplicationSecretExpiry { application, expires }
            }
            Fault::ReplaceClusterServicePrincipal { .. } => match &baseline.cluster.identity {
                ClusterIdentity::ServicePrincipal { application } => {
                    Mutation::ResetClusterServicePrincipal { application: application.clone() }
                }
                ClusterIdentity::ManagedIdentity => Mutation::Nothing,
            },
            Fault::DetachKubeletIdentity { pool } => Mutation::AttachKubeletIdentity { pool },
            Fault::MisconfigureCredentialProvider { pool } => Mutation::RestoreCredentialProvider { pool },
            Fault::RegenerateRegistryPassword { .. } => Mutation::RefreshPullSecret {
                secret: baseline.workload.pull_secret.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            },
            Fault::DeletePullSecret { secret } | Fault::RekeyPullSecret { secret, .. } => {
                Mutation::RefreshPullSecret { secret }
            }
            Fault::SetImage { .. } => Mutation::RestoreWorkload,
            Fault::DeleteVnetLink { zone, vnet } => Mutation::CreateVnetLink { zone, vnet },
            Fault::RemoveRegistryIpRule { allow } => Mutation::AddRegistryIpRule { allow },
            Fault::DeletePeering { from, to, both_sides } => Mutation::CreatePeering { from, to, both_sides },
            Fault::AddNsgRule { nsg, rule } => Mutation::DeleteNsgRule { nsg, rule: rule.name },
            Fault::AddRoute { route_table, route } => Mutation::DeleteRoute { route_table, route: route.name },
            Fault::RecreatePrivateEndpointManual { .. } => Mutation::RestorePrivateEndpoint,
        }
    }

    /// Checks the fault's references against the baseline. Each diagnostic carries the
    /// offending value in `message` between backticks so callers can locate it in the file.
    pub fn check(&self, baseline: &Baseline) -> Vec<(String, Diagnostic)> {
        let mut out = Vec::new();
        let mut need = |value: &str, what: &str, known: Vec<String>| {
            if !known.iter().any(|k| k == value) {
                let hint = closest(value, known.iter().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("baseline `{}` has: {}", baseline.name, known.join(", ")));
                out.push((
                    value.to_string(),
                    Diagnostic::new(format!("{what} `{value}` is not in baseline `{}`", baseline.name)).hint(hint),
                ));
            }
        };
        match self {
            Fault::None => {}
            Fault::DeleteRoleAssignment { principal, role } => {
                let assigned: Vec<String> = baseline
                    .role_assignments
                    .iter()
                    .filter(|a| &a.principal == principal)
                    .map(|a| a.role.clone())
                    .collect();
                need(principal, "principal", baseline.principal_names());
                if baseline.principal_names().contains(principal) {
                    need(role, &format!("a role assignment of `{principal}` for role"), assigned);
                }
            }
            Fault::SetRegistryRoleAssignmentMode { mode } => {
                need(
                    mode,
                    "role assignment mode",
                    vec!["LegacyRegistryPermissions".into(), "AbacRepositoryPermissions".into()],
                );
            }
            Fault::ExpireApplicationSecret { application } | Fault::ReplaceClusterServicePrincipal { application } => {
                need(application, "application", baseline.applications.iter().map(|a| a.name.clone()).collect());
            }
            Fault::DetachKubeletIdentity { pool } => {
                need(pool, "node pool", baseline.cluster.pools.iter().map(|p| p.name.clone()).collect());
                if baseline.cluster.identity != ClusterIdentity::ManagedIdentity {
                    out.push((
                        pool.clone(),
                        Diagnostic::new(
                            "detachKubeletIdentity needs a cluster with `identity: {kind: managedIdentity}`",
                        ),
                    ));
                }
            }
            Fault::MisconfigureCredentialProvider { pool } => {
                need(pool, "node pool", baseline.cluster.pools.iter().map(|p| p.name.clone()).collect());
            }
            Fault::RegenerateRegistryPassword { password } => {
                need(password, "admin password", vec!["password".into(), "password2".into()]);
                if !baseline.registry.admin_user_enabled {
                    out.push((
                        password.clone(),
                        Diagnostic::new("regenerateRegistryPassword needs `adminUserEnabled: true`"),
                    ));
                }
            }
            Fault::DeletePullSecret { secret } | Fault::RekeyPullSecret { secret, .. } => {
                match &baseline.workload.pull_secret {
                    Some(p) if p.from == crate::baseline::PullSecretSource::Admin => {
                        need(secret, "workload pull secret", vec![p.name.clone()])
                    }
                    _ => out.push((
                        secret.clone(),
                        Diagnostic::new(format!(
                            "{} needs a workload pull secret made from the admin credentials (`pullSecret: {{name: ..., from: {{kind: admin}}}}`)",
                            self.kind()
                        ))
                        .hint("the inverse rewrites the secret from the registry's admin credentials; use baseline `pull-secret-admin`"),
                    )),
                }
                if let Fault::RekeyPullSecret { registry, .. } = self
                    && (registry.trim().is_empty()
                        || registry.eq_ignore_ascii_case(&baseline.registry.login_server())
                        || registry.contains('/'))
                {
                    out.push((
                        registry.clone(),
                        Diagnostic::new(format!(
                            "rekeyPullSecret needs another registry host, not `{registry}` (the baseline's registry is {})",
                            baseline.registry.login_server()
                        )),
                    ));
                }
            }
            Fault::SetImage { image } => {
                if image.trim().is_empty() {
                    out.push((image.clone(), Diagnostic::new("setImage needs a non-empty image")));
                }
            }
            Fault::DeleteVnetLink { zone, vnet } => {
                need(zone, "private DNS zone", baseline.private_dns_zones.iter().map(|z| z.name.clone()).collect());
                let links = baseline.private_dns_zones.iter().find(|z| &z.name == zone).map(|z| z.links.clone());
                if let Some(links) = links {
                    need(vnet, &format!("a link of zone `{zone}` to vnet"), links);
                }
            }
            Fault::RemoveRegistryIpRule { allow } => {
                need(
                    allow,
                    "firewall entry",
                    baseline.registry.firewall.as_ref().map(|f| f.allow.clone()).unwrap_or_default(),
                );
            }
            Fault::DeletePeering { from, to, .. } => {
                let vnets: Vec<String> = baseline.vnets.iter().map(|v| v.name.clone()).collect();
                need(from, "vnet", vnets.clone());
                need(to, "vnet", vnets);
                let peered = baseline.peerings.iter().any(|p| p.between.contains(from) && p.between.contains(to));
                if !peered {
                    out.push((
                        from.clone(),
                        Diagnostic::new(format!(
                            "baseline `{}` has no peering between `{from}` and `{to}`",
                            baseline.name
                        )),
                    ));
                }
            }
            Fault::AddNsgRule { nsg, .. } => need(nsg, "NSG", baseline.nsgs.iter().map(|n| n.name.clone()).collect()),
            Fault::AddRoute { route_table, .. } => {
                need(route_table, "route table", baseline.route_tables.iter().map(|r| r.name.clone()).collect())
            }
            Fault::RecreatePrivateEndpointManual { request_message } => {
                if baseline.registry.private_endpoint.is_none() {
                    out.push((
                        request_message.clone(),
                        Diagnostic::new(format!(
                            "recreatePrivateEndpointManual needs a registry with a private endpoint; baseline `{}` has none",
                            baseline.name
                        ))
                        .hint("use baseline `private-registry`"),
                    ));
                }
            }
        }
        out
    }
}

impl Mutation {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Mutation::Nothing => "nothing".into(),
            Mutation::CreateRoleAssignment { principal, role } => {
                format!("assign {role} to {principal} on the registry")
            }
            Mutation::DeleteRoleAssignment { principal, role } => {
                format!("delete {principal}'s {role} assignment on the registry")
            }
            Mutation::SetRegistryRoleAssignmentMode { mode } => {
                format!("set the registry's roleAssignmentMode to {mode}")
            }
            Mutation::SetApplicationSecretExpiry { application, expires } if expires == "past" => {
                format!("make application {application}'s client secret expired")
            }
            Mutation::SetApplicationSecretExpiry { application, expires } => {
                format!("set application {application}'s client secret expiry to {expires}")
            }
            Mutation::ResetClusterServicePrincipal { application } => {
                format!("reset the cluster's service principal to application {application}")
            }
            Mutation::DetachKubeletIdentity { pool } => {
                format!("remove the kubelet identity from pool {pool}'s scale set")
            }
            Mutation::AttachKubeletIdentity { pool } => {
                format!("attach the kubelet identity to pool {pool}'s scale set")
            }
            Mutation::MisconfigureCredentialProvider { pool } => format!(
                "point pool {pool}'s credential provider at a cloud config its nodes do not have, and restart their kubelets"
            ),
            Mutation::RestoreCredentialProvider { pool } => {
                format!("give pool {pool}'s nodes AKS's own credential provider config again (reimage)")
            }
            Mutation::RegenerateRegistryPassword { password } => format!("regenerate the registry admin {password}"),
            Mutation::RefreshPullSecret { secret } => {
                format!("rewrite pull secret {secret} from the registry's current admin credentials")
            }
            Mutation::DeletePullSecret { secret } => format!("delete pull secret {secret} (the pod still names it)"),
            Mutation::RekeyPullSecret { secret, registry } => {
                format!("rewrite pull secret {secret} keyed for {registry} instead of the registry it serves")
            }
            Mutation::SetImage { image } => format!("set the workload image to {image}"),
            Mutation::RestoreWorkload => {
                "restore the workload as the baseline declares it (image, nodeSelector)".into()
            }
            Mutation::CreateVnetLink { zone, vnet } => format!("link zone {zone} to vnet {vnet}"),
            Mutation::DeleteVnetLink { zone, vnet } => format!("delete zone {zone}'s link to vnet {vnet}"),
            Mutation::AddRegistryIpRule { allow } => format!("allow {allow} in the registry firewall"),
            Mutation::RemoveRegistryIpRule { allow } => format!("remove {allow} from the registry firewall"),
            Mutation::CreatePeering { from, to, both_sides } => {
                format!("create peering {from} -> {to}{}", if *both_sides { " and its reverse" } else { "" })
            }
            Mutation::DeletePeering { from, to, both_sides } => {
                format!("delete peering {from} -> {to}{}", if *both_sides { " and its reverse" } else { "" })
            }
            Mutation::AddNsgRule { nsg, rule } => format!(
                "add {} rule {} (priority {}, {} {} {}:{}) to NSG {nsg}",
                rule.access,
                rule.name,
                rule.priority,
                rule.direction,
                rule.protocol.label(),
                rule.destination,
                rule.port
            ),
            Mutation::DeleteNsgRule { nsg, rule } => format!("delete rule {rule} from NSG {nsg}"),
            Mutation::AddRoute { route_table, route } => format!(
                "add route {} ({} -> {}) to route table {route_table}",
                route.name, route.address_prefix, route.next_hop_type
            ),
            Mutation::DeleteRoute { route_table, route } => {
                format!("delete route {route} from route table {route_table}")
            }
            Mutation::RecreatePrivateEndpointManual { .. } => {
                "re-create the registry's private endpoint as a manual connection request (Pending until approved)"
                    .into()
            }
            Mutation::RestorePrivateEndpoint => {
                "re-create the registry's private endpoint as the baseline declares it (automatic connection)".into()
            }
        }
    }
}
