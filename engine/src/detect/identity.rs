//! The cluster's own identity: `SP_SECRET_EXPIRED`, `KUBELET_IDENTITY_NOT_ON_VMSS`,
//! `ACR_ABAC_ROLE_MISSING`, `ACR_ROLE_ON_STALE_PRINCIPAL`, `ACR_PULL_ROLE_MISSING`.
//!
//! Only for `unauthorized` pulls from a registry that the pod holds no pull secret for (the
//! kubelet then pulls with what the credential provider gives it). In order:
//! 1. a service-principal cluster whose application has no valid secret: `SP_SECRET_EXPIRED`;
//!    when the application could not be read (Graph refused, an `unavailable` entry) and nothing
//!    else explains the 401 (the principal's roles allow pulling or cannot be judged, the image
//!    is not known to be missing), `SP_SECRET_EXPIRED` at low confidence, naming the missing
//!    evidence;
//!    when the application has a valid secret but every valid one was created after the pulls
//!    began failing (the earliest `Failed` event), another had ended by then, and the pulls
//!    still failed more than 20 minutes after the newest started (a reset and the pods' backoff
//!    outlast it by minutes), the cluster cannot hold the new one (a `fix` whose reset failed):
//!    `SP_SECRET_EXPIRED` at medium
//!    confidence, when its rights allow pulling or the registry is unknown;
//! 2. no credentials sent and the kubelet identity missing from the pool's scale set:
//!    `KUBELET_IDENTITY_NOT_ON_VMSS`; no credentials sent to an ACR login server although the
//!    principal may pull and is on the scale sets: `CREDENTIAL_PROVIDER_MISCONFIGURED` (medium:
//!    the provider's config lives on the node, out of the API's sight);
//! 3. the principal holds no role that pulls at the registry scope (or above): ABAC mode with
//!    legacy roles only, `ACR_ABAC_ROLE_MISSING`; a pull role on a former principal of the
//!    cluster, `ACR_ROLE_ON_STALE_PRINCIPAL`; otherwise `ACR_PULL_ROLE_MISSING`.
//!
//! A principal that may pull leaves the 401 to the image detector (ACR answers 401 for images
//! that do not exist).

use azure_model::graph::{Application, PasswordCredential};
use azure_model::inventory::Unavailable;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Context;
use super::access::{
    AuthPath, ClusterOutcome, Principal, Registry, RoleVerdict, assess_auth, describe_assignment, needed_role,
};
use super::support::{Draft, Findings, name_of, registry_name_of_host};
use crate::evidence::PullFailure;
use crate::finding::{Blame, Confidence, Finding, FindingCode};
use crate::plan::Action;

/// Runs the detector.
pub(super) fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Findings::default();
    for f in &ctx.failures {
        let Some(a) = assess_auth(ctx, f) else { continue };
        let AuthPath::Cluster(outcome) = &a.path else { continue };
        match outcome {
            ClusterOutcome::SpExpired { app_id, app } => sp_expired(&mut out, ctx, f, app_id, app),
            ClusterOutcome::SpUnverified { app_id, missing } => sp_unverified(&mut out, ctx, f, app_id, missing),
            ClusterOutcome::SpRenewedNotApplied { app_id, app, expired, renewed, since, last } => {
                sp_renewed_not_applied(&mut out, ctx, f, app_id, app, expired, renewed, (*since, *last))
            }
            ClusterOutcome::NotOnVmss { identity_id, scale_sets } => {
                let Some(cluster) = ctx.cluster else { continue };
                let names: Vec<&str> = scale_sets.iter().map(|v| v.name.as_str()).collect();
                let pool = f.platform.pool.as_deref().map(|p| format!(" of node pool {p}")).unwrap_or_default();
                let mut d = Draft::new(
                    FindingCode::KubeletIdentityNotOnVmss,
                    Confidence::High,
                    f,
                    format!(
                        "The kubelet identity {} of cluster {} is not assigned to scale set {}{pool}, so the nodes get no token from IMDS and pull anonymously.",
                        name_of(identity_id),
                        cluster.name,
                        names.join(", ")
                    ),
                )
                .line(format!("cluster {}: identityProfile.kubeletidentity.resourceId = {identity_id}", cluster.name))
                .line("the pull went without credentials (anonymous token only): the credential provider produced none; IMDS answers 400 `Identity not found` for identities not on the scale set".to_string());
                for v in scale_sets {
                    let attached: Vec<&str> = v
                        .identity
                        .as_ref()
                        .map(|i| i.user_assigned_identities.keys().map(|k| name_of(k)).collect())
                        .unwrap_or_default();
                    d = d
                        .blame(
                            Blame::new("VirtualMachineScaleSet", v.id.clone())
                                .note(format!("identity.userAssignedIdentities lacks {}", name_of(identity_id))),
                        )
                        .line(format!(
                            "scale set {}: identity.userAssignedIdentities = [{}] (no {})",
                            v.name,
                            attached.join(", "),
                            name_of(identity_id)
                        ));
                }
                d = d.action(Action::ReconcileCluster { cluster_id: cluster.id.clone() });
                out.add(identity_id, f, d);
            }
            ClusterOutcome::ProviderGaveNothing { principal, granted, scale_sets } => {
                provider_gave_nothing(&mut out, ctx, f, principal, granted, scale_sets)
            }
            ClusterOutcome::Rights { principal, verdict } => {
                let Some(registry) = a.registry else { continue };
                rights(&mut out, ctx, f, registry, principal, verdict);
            }
            ClusterOutcome::NoRegistry { principal } if f.symptom.credentials_sent() => {
                let host = f.registry_host().unwrap_or_default();
                let name = registry_name_of_host(host);
                let d = Draft::new(
                    FindingCode::AcrPullRoleMissing,
                    Confidence::Medium,
                    f,
                    format!(
                        "The registry {host} refused the credentials of the {}; the inventory lacks the registry, so its role assignments could not be checked.",
                        principal.describe
                    ),
                )
                .blame(Blame::new("Registry", host.to_string()).note("not in the inventory; role assignments unknown"))
                .line(format!("the pull sent the credentials of the {} and got 401", principal.describe))
                .line(format!("registry {host} is not in the Azure inventory (another subscription, or not collected)"))
                .action(Action::Manual {
                    change: None,
                    description: format!(
                        "assign AcrPull on registry {name} to principal {} (or run `az aks update --attach-acr`)",
                        principal.object_id
                    ),
                    commands: vec![format!(
                        "az role assignment create --assignee-object-id {} --assignee-principal-type ServicePrincipal --role AcrPull --scope $(az acr show -n {name} --query id -o tsv)",
                        principal.object_id
                    )],
                });
                out.add(&format!("{}|{host}", principal.object_id), f, d);
            }
            ClusterOutcome::NoRegistry { .. } | ClusterOutcome::Unknown => {}
        }
    }
    out.into_vec()
}

/// `CREDENTIAL_PROVIDER_MISCONFIGURED`: the kubelet pulled from an ACR login server without
/// credentials although the cluster's principal may pull there (and a kubelet identity is on
/// the pool's scale sets), so the node's credential provider gave it nothing. What broke it
/// (the provider config's `matchImages` or `args`, the plugin binary, its cloud config) is on
/// the node, where the API cannot look: the finding says what to check there, and reimaging
/// the pool's nodes puts AKS's own configuration back.
fn provider_gave_nothing(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    principal: &Principal,
    granted: &[&super::access::Assignment],
    scale_sets: &[&azure_model::Resource<azure_model::compute::VirtualMachineScaleSetProperties>],
) {
    let Some(cluster) = ctx.cluster else { return };
    let host = f.registry_host().unwrap_or_default();
    let node = f.node.as_deref().map(|n| format!("node {n}")).unwrap_or_else(|| "the node".to_string());
    let mut d = Draft::new(
        FindingCode::CredentialProviderMisconfigured,
        Confidence::Medium,
        f,
        format!(
            "The kubelet on {node} pulled from {host} without credentials, although the {} may pull there: the node's credential provider gave it none. Its configuration or plugin is broken on the node (the API cannot show which).",
            principal.describe
        ),
    )
    .line(format!(
        "the pull went without credentials (anonymous token only) to {host}, an ACR login server that AKS's credential provider serves (matchImages *.azurecr.io)"
    ));
    for g in granted {
        d = d.line(format!("{} may pull: {}", principal.describe, describe_assignment(&ctx.evidence.azure, g)));
    }
    let identity = cluster.properties.kubelet_identity().and_then(|k| k.resource_id.clone());
    for v in scale_sets {
        let mut line = format!("scale set {}", v.name);
        if let Some(id) = &identity {
            line += &format!(": identity.userAssignedIdentities includes {} (IMDS can issue its token)", name_of(id));
        }
        d = d.line(line).blame(
            Blame::new("VirtualMachineScaleSet", v.id.clone())
                .note("its nodes' credential provider gives the kubelet no registry credentials"),
        );
    }
    if scale_sets.is_empty() {
        d = d.blame(
            Blame::new("ManagedCluster", cluster.id.clone())
                .note("the nodes' credential provider gives the kubelet no registry credentials"),
        );
    }
    d = d.line(format!(
        "check on the node: the kubelet's --image-credential-provider-config (provider acr-credential-provider, matchImages covering {host}, args naming the node's existing /etc/kubernetes/azure.json), --image-credential-provider-bin-dir holding the plugin, and the kubelet log for `Failed getting credential from external registry credential provider`"
    ));
    let node_rg = cluster.properties.node_resource_group.clone().unwrap_or_default();
    for v in scale_sets {
        d = d.action(Action::Manual {
            change: Some(crate::plan::Change::update(v.id.clone())),
            description: format!(
                "reimage scale set {}: its nodes get AKS's own credential provider config and cloud config back (after fixing whatever custom node set-up rewrote them)",
                v.name
            ),
            commands: vec![format!("az vmss reimage -g {node_rg} -n {}", v.name)],
        });
    }
    if scale_sets.is_empty() {
        d = d.action(Action::Manual {
            change: None,
            description: "restore the nodes' credential provider config (reimage the node pool: `az aks nodepool upgrade --node-image-only`)".into(),
            commands: vec![],
        });
    }
    out.add(&format!("{}|{host}", principal.object_id), f, d);
}

fn sp_expired(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure, app_id: &str, app: &Application) {
    let Some(cluster) = ctx.cluster else { return };
    let name = app.display_name.as_deref().unwrap_or(app_id);
    let latest = app
        .latest_secret_end()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .map(|t| format!(" (the latest expired {t})"))
        .unwrap_or_else(|| " (it has none)".to_string());
    let mut d = Draft::new(
        FindingCode::SpSecretExpired,
        Confidence::High,
        f,
        format!("The service principal {name} ({app_id}) of cluster {} has no valid client secret{latest}, so the nodes cannot authenticate to the registry.", cluster.name),
    )
    .blame(Blame::new("ServicePrincipal", app_id.to_string()).note("every password credential has expired"))
    .blame(Blame::new("ManagedCluster", cluster.id.clone()).note("servicePrincipalProfile uses the expired service principal"))
    .line(format!("cluster {}: servicePrincipalProfile.clientId = {app_id}", cluster.name));
    if app.password_credentials.is_empty() {
        d = d.line(format!("application {name} ({app_id}): no password credentials"));
    }
    for c in &app.password_credentials {
        d = d.line(format!(
            "application {name} ({app_id}): password credential {} ended {}",
            c.display_name.as_deref().or(c.key_id.as_deref()).unwrap_or("(unnamed)"),
            c.end_date_time.as_deref().unwrap_or("never")
        ));
    }
    d = d
        .line("Entra ID refuses expired secrets (AADSTS7000222), so the registry answers 401; that text never reaches kubelet events".to_string())
        .action(Action::RotateServicePrincipalSecret { app_id: app_id.to_string(), cluster_id: Some(cluster.id.clone()) });
    out.add(app_id, f, d);
}

/// A service-principal cluster whose application has a valid secret, but only ones created
/// after its pulls began failing with an expired one: a new secret was added (a `fix` whose
/// cluster reset failed, or a manual `credential reset --append`) and never given to the
/// cluster. Medium: the inventory cannot show which secret the cluster holds.
#[allow(clippy::too_many_arguments)]
fn sp_renewed_not_applied(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    app_id: &str,
    app: &Application,
    expired: &[&PasswordCredential],
    renewed: &[&PasswordCredential],
    (since, last): (OffsetDateTime, OffsetDateTime),
) {
    let Some(cluster) = ctx.cluster else { return };
    let name = app.display_name.as_deref().unwrap_or(app_id);
    let rfc = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string());
    let (since, last) = (rfc(since), rfc(last));
    let label =
        |c: &PasswordCredential| c.display_name.as_deref().or(c.key_id.as_deref()).unwrap_or("(unnamed)").to_string();
    let d = Draft::new(
        FindingCode::SpSecretExpired,
        Confidence::Medium,
        f,
        format!(
            "The service principal {name} ({app_id}) of cluster {} still authenticates with an expired client secret: its only valid secrets were created after the pulls began failing ({since}), so the cluster was never given them (a secret was added but the cluster's service principal was not reset).",
            cluster.name
        ),
    )
    .blame(
        Blame::new("ServicePrincipal", app_id.to_string())
            .note("a secret expired; its valid secrets were created after the pulls broke"),
    )
    .blame(
        Blame::new("ManagedCluster", cluster.id.clone())
            .note("servicePrincipalProfile was not reset with the new secret"),
    )
    .line(format!("cluster {}: servicePrincipalProfile.clientId = {app_id}", cluster.name))
    .line(format!(
        "the pulls began failing at {since} and still failed at {last}, with {}",
        f.symptom.status().map(|s| format!("{s} from the registry")).unwrap_or_else(|| "no credentials from the credential provider".into())
    ))
    .lines(expired.iter().map(|c| {
        format!(
            "application {name} ({app_id}): password credential {} started {} and ended {} (expired)",
            label(c),
            c.start_date_time.as_deref().unwrap_or("(unknown)"),
            c.end_date_time.as_deref().unwrap_or("never")
        )
    }))
    .lines(renewed.iter().map(|c| {
        format!(
            "application {name} ({app_id}): password credential {} started {}, after the failures began and before the last one, and ends {} (valid)",
            label(c),
            c.start_date_time.as_deref().unwrap_or("(unknown)"),
            c.end_date_time.as_deref().unwrap_or("never")
        )
    }))
    .line("ARM never returns the cluster's secret, so which one it holds is inferred from these dates; resetting the cluster's service principal with a new secret settles it".to_string())
    .action(Action::RotateServicePrincipalSecret { app_id: app_id.to_string(), cluster_id: Some(cluster.id.clone()) });
    out.add(app_id, f, d);
}

/// A service-principal cluster whose pulls are refused while its application (and so the
/// expiry of its secrets) could not be read: the expired secret is the likely cause, named at
/// low confidence with the missing evidence, and checked before anything is rotated.
fn sp_unverified(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure, app_id: &str, missing: &[&Unavailable]) {
    let Some(cluster) = ctx.cluster else { return };
    let (rg, name) = (super::support::resource_group_of(&cluster.id).unwrap_or_default(), cluster.name.as_str());
    let unread = if missing.iter().all(|u| crate::collect::azure::what::skipped_on_request(u)) {
        "was not read (skipped on request)"
    } else {
        "could not be read"
    };
    let d = Draft::new(
        FindingCode::SpSecretExpired,
        Confidence::Low,
        f,
        format!(
            "The registry refuses the credentials of the service principal {app_id} of cluster {name}, and its application {unread}, so whether its client secret has expired is unconfirmed; an expired secret is the likely cause."
        ),
    )
    .blame(
        Blame::new("ServicePrincipal", app_id.to_string())
            .note("secret expiry unknown: its application could not be read"),
    )
    .blame(Blame::new("ManagedCluster", cluster.id.clone()).note("servicePrincipalProfile uses this service principal"))
    .line(format!("cluster {name}: servicePrincipalProfile.clientId = {app_id}"))
    .line(format!(
        "the pull sent the service principal's credentials and got {}",
        f.symptom.status().map(|s| s.to_string()).unwrap_or_else(|| "401".into())
    ))
    .lines(missing.iter().map(|u| {
        format!(
            "application {app_id} could not be read ({}: {}), so the expiry of its password credentials is unknown",
            u.what, u.reason
        )
    }))
    .line("if its secret is still valid, the service principal may lack a pull role on the registry instead".to_string())
    .action(Action::Manual {
        change: None,
        description: format!(
            "check the secrets of application {app_id}; if every one has expired, add a new one and reset cluster {name} with it"
        ),
        commands: vec![
            format!("az ad app credential list --id {app_id} --query \"[].{{keyId: keyId, end: endDateTime}}\" -o table"),
            format!("SECRET=$(az ad app credential reset --id {app_id} --append --query password -o tsv)"),
            format!(
                "az aks update-credentials -g {rg} -n {name} --reset-service-principal --service-principal {app_id} --client-secret \"$SECRET\""
            ),
        ],
    });
    out.add(app_id, f, d);
}

fn assign(registry: &Registry, principal: &Principal) -> Action {
    let role = needed_role(registry);
    Action::CreateRoleAssignment {
        scope: registry.id.clone(),
        principal_id: principal.object_id.clone(),
        principal_type: "ServicePrincipal".into(),
        role_definition_guid: role.id.into(),
        role_name: role.name.into(),
    }
}

/// Emits the finding a [`RoleVerdict`] calls for (nothing when the principal may pull).
/// Shared with the pull-secret detector for a secret's service principal.
pub(super) fn rights(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    registry: &Registry,
    principal: &Principal,
    verdict: &RoleVerdict<'_>,
) {
    let inv = &ctx.evidence.azure;
    let anonymous_only = f.symptom.only_anonymous();
    let mode = if registry.properties.abac_mode() { "AbacRepositoryPermissions" } else { "LegacyRegistryPermissions" };
    let others: Vec<String> = inv
        .role_assignments_at(&registry.id)
        .filter(|ra| !ra.properties.principal_id.eq_ignore_ascii_case(&principal.object_id))
        .map(|ra| describe_assignment(inv, ra))
        .collect();
    let key = format!("{}|{}", principal.object_id, registry.id);
    let principal_line = format!(
        "{} has object id {}{}",
        principal.describe,
        principal.object_id,
        if principal.app { String::new() } else { format!(" (resource {})", principal.id) }
    );
    match verdict {
        RoleVerdict::Granted(_) => {}
        RoleVerdict::AbacMissing { legacy } => {
            let roles: Vec<String> = legacy.iter().map(|ra| describe_assignment(inv, ra)).collect();
            let d = Draft::new(
                FindingCode::AcrAbacRoleMissing,
                Confidence::High,
                f,
                format!(
                    "Registry {} uses ABAC repository permissions, where AcrPull is not honoured, and the {} holds no Container Registry Repository Reader role on it.",
                    registry.name, principal.describe
                ),
            )
            .blame(Blame::new("Registry", registry.id.clone()).note("roleAssignmentMode AbacRepositoryPermissions"))
            .line(principal_line)
            .line(format!("registry {}: roleAssignmentMode = AbacRepositoryPermissions", registry.name))
            .lines(roles.into_iter().map(|r| format!("the principal holds {r}, which pulls only in legacy mode")))
            .line(format!(
                "registry {}: no role assignment granting repository read (Container Registry Repository Reader) for principal {} at scope {} or above",
                registry.name, principal.object_id, registry.id
            ))
            .action(assign(registry, principal));
            out.add(&key, f, d);
        }
        RoleVerdict::Stale { assignments, strong } => {
            let role = needed_role(registry);
            let mut d = Draft::new(
                FindingCode::AcrRoleOnStalePrincipal,
                if *strong { Confidence::High } else { Confidence::Medium },
                f,
                format!(
                    "Registry {} grants pull to a principal cluster {} no longer uses, not to its current {}.",
                    registry.name,
                    ctx.cluster_name(),
                    principal.describe
                ),
            )
            .line(principal_line)
            .line(format!(
                "registry {}: no role assignment granting pull for principal {} at scope {} or above",
                registry.name, principal.object_id, registry.id
            ));
            for ra in assignments {
                let p = &ra.properties.principal_id;
                let who = inv
                    .service_principals
                    .iter()
                    .find(|s| s.id.eq_ignore_ascii_case(p))
                    .map(|s| {
                        format!("service principal {} (appId {})", s.display_name.as_deref().unwrap_or("?"), s.app_id)
                    })
                    .unwrap_or_else(|| format!("principal {p}"));
                d = d
                    .blame(Blame::new("RoleAssignment", ra.id.clone()).note(format!(
                        "{} assigned to {who}, not the cluster's current principal; reported, not deleted",
                        super::access::role_name(inv, ra)
                    )))
                    .line(format!("stale: {} ({who})", describe_assignment(inv, ra)));
            }
            d = d
                .blame(
                    Blame::new("Registry", registry.id.clone())
                        .note(format!("no {} for {}", role.name, principal.object_id)),
                )
                .action(assign(registry, principal));
            out.add(&key, f, d);
        }
        RoleVerdict::Missing { unknown } => {
            let role = needed_role(registry);
            let confidence = if !unknown.is_empty() || anonymous_only { Confidence::Medium } else { Confidence::High };
            let mut d = Draft::new(
                FindingCode::AcrPullRoleMissing,
                confidence,
                f,
                format!("The {} holds no role that lets it pull from registry {}.", principal.describe, registry.name),
            )
            .blame(
                Blame::new("Registry", registry.id.clone())
                    .note(format!("no {} for principal {}", role.name, principal.object_id)),
            )
            .line(principal_line)
            .line(format!(
                "registry {} ({mode}): no role assignment granting pull for principal {} at scope {} or above",
                registry.name, principal.object_id, registry.id
            ));
            if !principal.app {
                d = d.blame(Blame::new("ManagedIdentity", principal.id.clone()).note(format!("needs {}", role.name)));
            } else {
                d = d.blame(Blame::new("ServicePrincipal", principal.id.clone()).note(format!("needs {}", role.name)));
            }
            for ra in unknown {
                d = d.line(format!(
                    "the principal holds {}, a role the inventory does not define",
                    describe_assignment(inv, ra)
                ));
            }
            const SHOWN: usize = 6;
            if others.is_empty() {
                d = d.line(format!("no principal holds any role at the registry scope of {}", registry.name));
            } else {
                let more = others.len().saturating_sub(SHOWN);
                d = d.line(format!(
                    "other assignments at this scope: {}{}",
                    others[..others.len().min(SHOWN)].join("; "),
                    if more > 0 { format!("; and {more} more") } else { String::new() }
                ));
            }
            d = d.action(assign(registry, principal));
            out.add(&key, f, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::world::*;
    use crate::finding::{Confidence, FindingCode};
    use crate::plan::Action;

    const UNAUTHORIZED: &str = "401 Unauthorized";

    /// `sp-secret-expired` after a `fix` that added a secret (started `new_start`) but whose
    /// cluster reset failed: the application holds the expired secret and the new one.
    fn renewed_but_not_reset(new_start: &str) -> World {
        let mut w = scenario("sp-secret-expired");
        let mut app = CLUSTER_APP.application(&[EXPIRED]);
        app["passwordCredentials"].as_array_mut().expect("creds").push(serde_json::json!({
            "keyId": guid("pulldoctor-rotated"), "displayName": "pulldoctor-2025-06",
            "startDateTime": new_start, "endDateTime": "2027-06-02T10:05:00Z", "hint": "Zx~"
        }));
        w.azure["applications"] = serde_json::json!([CI_APP.application(&[VALID]), app]);
        w
    }

    /// Diagnoses `w` with its pulls last seen failing at `last` (every `Failed` event's
    /// `lastTimestamp`), as if the pods kept failing that long.
    fn diagnose_failing_until(w: &World, last: &str) -> crate::detect::Diagnosis {
        let mut ev = w.evidence();
        for e in ev.events.iter_mut().filter(|e| e.reason.as_deref() == Some("Failed")) {
            let mut v = serde_json::to_value(&*e).expect("serializable event");
            v["lastTimestamp"] = serde_json::json!(last);
            *e = serde_json::from_value(v).expect("valid event");
        }
        crate::detect::diagnose(&ev)
    }

    #[test]
    fn a_secret_added_after_the_failures_began_was_never_given_to_the_cluster() {
        // The pulls failed from 09:12:02 until 09:40:00; the new secret is from 09:13:30, so
        // the pulls kept failing well after a reset with it would have been over.
        let d = diagnose_failing_until(&renewed_but_not_reset("2025-06-02T09:13:30Z"), "2025-06-02T09:40:00Z");
        let codes: Vec<&str> = d.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["SP_SECRET_EXPIRED"], "{:#?}", d.findings);
        let f = &d.findings[0];
        assert_eq!(f.confidence, Confidence::Medium);
        let proof = f.evidence.join("\n");
        assert!(proof.contains(EXPIRED) && proof.contains("2025-06-02T09:13:30Z"), "{proof}");
        assert!(proof.contains("2025-06-02T09:12:02Z") && proof.contains("2025-06-02T09:40:00Z"), "{proof}");
        assert!(f.plan.actions.iter().any(|a| matches!(a,
            Action::RotateServicePrincipalSecret { app_id, cluster_id: Some(c) }
                if *app_id == CLUSTER_APP.app_id() && *c == cluster_id())));
    }

    #[test]
    fn failures_through_a_reset_and_the_pods_backoff_are_not_judged() {
        // `az aks update-credentials --reset-service-principal` creates the secret (09:13:30)
        // and then takes minutes; pods in ImagePullBackOff keep logging 401 through it and
        // their backoff. Failures within RESET_GRACE of the new secret say nothing.
        for last in ["2025-06-02T09:16:50Z", "2025-06-02T09:33:00Z"] {
            let d = diagnose_failing_until(&renewed_but_not_reset("2025-06-02T09:13:30Z"), last);
            assert!(d.findings.iter().all(|f| f.code != FindingCode::SpSecretExpired), "{last}: {:#?}", d.findings);
        }
        // Just beyond the grace, the cluster is judged not to hold the new secret.
        let d = diagnose_failing_until(&renewed_but_not_reset("2025-06-02T09:13:30Z"), "2025-06-02T09:34:00Z");
        assert!(d.findings.iter().any(|f| f.code == FindingCode::SpSecretExpired), "{:#?}", d.findings);
    }

    #[test]
    fn a_valid_secret_older_than_the_failures_or_newer_than_the_last_is_not_judged() {
        // The cluster may well hold a secret that existed before the pulls broke, or have been
        // reset with one created after the last failure: not judged.
        for start in ["2025-05-30T08:00:00Z", "2025-06-02T10:05:00Z"] {
            let d = diagnose(&renewed_but_not_reset(start));
            assert!(d.findings.iter().all(|f| f.code != FindingCode::SpSecretExpired), "{start}: {:#?}", d.findings);
        }
    }

    /// The kubelet identity lost AcrPull; `web` pulls with it.
    fn role_missing(rt: Runtime) -> World {
        let mut w = World::baseline("role-missing", rt);
        w.remove(&World::assignment_id(&registry_id(), "ra-kubelet-acrpull"));
        w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", UNAUTHORIZED, None));
        w
    }

    fn role_of(a: &Action) -> Option<&str> {
        match a {
            Action::CreateRoleAssignment { role_definition_guid, .. } => Some(role_definition_guid),
            _ => None,
        }
    }

    #[test]
    fn every_message_form_of_refused_credentials() {
        // containerd 1.6 (`unexpected status: 401`), 1.7 (`... from GET request to`), with
        // and without the `rpc error` prefix.
        for rt in [K124, K127, K131] {
            assert_eq!(codes(&role_missing(rt)), ["ACR_PULL_ROLE_MISSING"], "{rt:?}");
        }
        // The kubelet's `[anonymous, oauth]` pair.
        let mut w = role_missing(K127);
        w.break_rollout("web", None, |rt, img| {
            rt.aggregate(&[rt.token(img, "anonymous", UNAUTHORIZED, None), rt.token(img, "oauth", UNAUTHORIZED, None)])
        });
        assert_eq!(codes(&w), ["ACR_PULL_ROLE_MISSING"]);
    }

    #[test]
    fn the_plan_assigns_acrpull_to_the_kubelet_identity_at_the_registry() {
        let d = diagnose(&role_missing(K131));
        let f = &d.findings[0];
        assert_eq!(f.confidence, Confidence::High);
        assert_eq!(
            f.plan.actions,
            [Action::CreateRoleAssignment {
                scope: registry_id(),
                principal_id: kubelet_object_id(),
                principal_type: "ServicePrincipal".into(),
                role_definition_guid: ACR_PULL.into(),
                role_name: "AcrPull".into(),
            }]
        );
        assert!(f.evidence.iter().any(|e| e.contains("no role assignment granting pull for principal")));
        assert!(f.blamed.iter().any(|b| b.kind == "Registry" && b.id == registry_id()));
    }

    #[test]
    fn a_role_at_the_resource_group_or_subscription_counts() {
        for scope in [rg_id(RG_ACR), format!("/subscriptions/{SUB}")] {
            let mut w = role_missing(K131);
            w.add(role_assignment(&scope, "inherited-acrpull", ACR_PULL, &kubelet_object_id(), "ServicePrincipal"));
            // The identity may pull and the image exists: nothing to blame (undiagnosed).
            let d = diagnose(&w);
            assert!(d.findings.is_empty(), "{scope}: {:?}", d.findings);
            assert_eq!(d.failures.len(), 2);
        }
    }

    #[test]
    fn owner_and_contributor_pull_but_reader_does_not() {
        for (role, pulls) in [(OWNER, true), (CONTRIBUTOR, true), (ACR_PUSH, true), (READER, false)] {
            let mut w = role_missing(K131);
            w.add(role_assignment(&registry_id(), "other-role", role, &kubelet_object_id(), "ServicePrincipal"));
            let c = codes(&w);
            assert_eq!(c.is_empty(), pulls, "{role}: {c:?}");
        }
    }

    #[test]
    fn abac_mode_needs_repository_reader_not_acrpull() {
        let w = scenario("acrpull-abac-mode");
        let d = diagnose(&w);
        assert_eq!(role_of(&d.findings[0].plan.actions[0]), Some(REPOSITORY_READER));
        // Repository Reader fixes it; AcrPull alone in legacy mode pulls.
        let mut fixed = w.clone();
        fixed.add(role_assignment(&registry_id(), "rr", REPOSITORY_READER, &kubelet_object_id(), "ServicePrincipal"));
        assert!(codes(&fixed).is_empty());
        let mut legacy = w.clone();
        legacy.set(&registry_id(), "/properties/roleAssignmentMode", serde_json::json!("LegacyRegistryPermissions"));
        assert!(codes(&legacy).is_empty());
        // ABAC mode and no role at all: the role is missing, and the plan is still ABAC's.
        let mut none = w.clone();
        none.remove(&World::assignment_id(&registry_id(), "ra-kubelet-acrpull"));
        let d = diagnose(&none);
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::AcrPullRoleMissing]);
        assert_eq!(role_of(&d.findings[0].plan.actions[0]), Some(REPOSITORY_READER));
    }

    #[test]
    fn many_pods_with_one_cause_make_one_finding() {
        let mut w = role_missing(K131);
        w.workload("web").replicas = 7;
        w.workload("cart").error = Some(K131.token(&format!("{LOGIN}/shop/cart:2.0.1"), "oauth", UNAUTHORIZED, None));
        let d = diagnose(&w);
        assert_eq!(d.failures.len(), 8);
        assert_eq!(d.findings.len(), 1);
        assert_eq!(d.findings[0].pods.len(), 8);
        assert_eq!(d.findings[0].plan.actions.len(), 1);
        // The same kubelet message is quoted once.
        let quoted = d.findings[0].evidence.iter().filter(|e| e.starts_with("kubelet: ")).count();
        assert_eq!(quoted, 2, "one per distinct message (web and cart)");
    }

    #[test]
    fn a_registry_missing_from_the_inventory_lowers_confidence() {
        let mut w = role_missing(K131);
        w.remove(&registry_id());
        let d = diagnose(&w);
        assert_eq!(d.findings.len(), 1);
        let f = &d.findings[0];
        assert_eq!((f.code, f.confidence), (FindingCode::AcrPullRoleMissing, Confidence::Medium));
        assert!(f.plan.actions.iter().all(Action::needs_human));
    }

    #[test]
    fn stale_principal_is_reported_never_deleted() {
        let d = diagnose(&scenario("acrpull-on-stale-sp"));
        let f = &d.findings[0];
        assert_eq!((f.code, f.confidence), (FindingCode::AcrRoleOnStalePrincipal, Confidence::High));
        assert!(
            f.blamed
                .iter()
                .any(|b| b.kind == "RoleAssignment" && b.note.as_deref().unwrap_or("").contains("not deleted"))
        );
        // The only action grants the current principal; nothing removes the old assignment.
        assert_eq!(f.plan.actions.len(), 1);
        match &f.plan.actions[0] {
            Action::CreateRoleAssignment { principal_id, .. } => {
                assert_eq!(principal_id, &CLUSTER_APP_2025.object_id())
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn another_clusters_identity_on_the_registry_is_not_stale() {
        // A registry shared with another cluster: its kubelet identity holds AcrPull.
        let mut w = role_missing(K131);
        let other = guid("other-cluster-kubelet");
        w.add(role_assignment(&registry_id(), "other-kubelet", ACR_PULL, &other, "ServicePrincipal"));
        assert_eq!(codes(&w), ["ACR_PULL_ROLE_MISSING"]);
        // ... unless it is recognisably this cluster's former identity.
        w.azure["servicePrincipals"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": other, "appId": guid("x"), "displayName": "aks-shop-weu-agentpool-old"}));
        assert_eq!(codes(&w), ["ACR_ROLE_ON_STALE_PRINCIPAL"]);
    }

    #[test]
    fn an_expired_cluster_secret_is_named_instead_of_the_role() {
        let mut w = scenario("sp-secret-expired");
        w.remove(&World::assignment_id(&registry_id(), "ra-cluster-sp-acrpull"));
        assert_eq!(codes(&w), ["SP_SECRET_EXPIRED"]);
        let d = diagnose(&w);
        assert_eq!(
            d.findings[0].plan.actions,
            [Action::RotateServicePrincipalSecret { app_id: CLUSTER_APP.app_id(), cluster_id: Some(cluster_id()) }]
        );
        // With a valid secret again, nothing is wrong with the service principal.
        let mut renewed = scenario("sp-secret-expired");
        renewed.azure["applications"] = serde_json::json!([CLUSTER_APP.application(&[EXPIRED, VALID])]);
        assert!(codes(&renewed).is_empty());
        // An application the inventory lacks is not judged expired.
        let mut unknown = scenario("sp-secret-expired");
        unknown.azure["applications"] = serde_json::json!([]);
        assert!(codes(&unknown).is_empty());
    }

    /// Graph refused: neither the cluster's application nor its service principal was read.
    fn graph_refused(mut w: World) -> World {
        let app = CLUSTER_APP.app_id();
        w.azure["applications"] = serde_json::json!([]);
        w.azure["servicePrincipals"] = serde_json::json!([]);
        w.azure["unavailable"] = serde_json::json!([
            {"what": format!("azure: directory application {app}"), "reason": "403 Authorization_RequestDenied: Insufficient privileges to complete the operation."},
            {"what": format!("azure: directory service principal of {app}"), "reason": "403 Authorization_RequestDenied: Insufficient privileges to complete the operation."},
        ]);
        w
    }

    #[test]
    fn an_unreadable_application_still_names_the_expired_secret_at_low_confidence() {
        let d = diagnose(&graph_refused(scenario("sp-secret-expired")));
        let codes_of = |d: &crate::detect::Diagnosis| d.findings.iter().map(|f| f.code).collect::<Vec<_>>();
        assert_eq!(codes_of(&d), [FindingCode::SpSecretExpired, FindingCode::EvidenceUnavailable]);
        let f = &d.findings[0];
        assert_eq!(f.confidence, Confidence::Low);
        assert_eq!(f.pods.len(), 2);
        assert!(
            f.evidence.iter().any(|e| e.contains("could not be read (azure: directory application")
                && e.contains("403 Authorization_RequestDenied")),
            "{:#?}",
            f.evidence
        );
        // A guess: a person checks the secrets before rotating anything.
        assert!(f.plan.actions.iter().all(Action::needs_human));
        assert!(
            f.plan.actions[0].commands()[0]
                .starts_with(&format!("az ad app credential list --id {}", CLUSTER_APP.app_id()))
        );
        // The service principal read but the application not: the role allows pulling, so the
        // secret is still the suspect.
        let mut w = graph_refused(scenario("sp-secret-expired"));
        w.azure["servicePrincipals"] = serde_json::json!([CLUSTER_APP.service_principal()]);
        assert_eq!(codes(&w), ["SP_SECRET_EXPIRED", "EVIDENCE_UNAVAILABLE"]);
        // ... unless the role is missing: that is what the evidence shows.
        w.remove(&World::assignment_id(&registry_id(), "ra-cluster-sp-acrpull"));
        assert_eq!(codes(&w), ["ACR_PULL_ROLE_MISSING", "EVIDENCE_UNAVAILABLE"]);
    }

    #[test]
    fn an_unreadable_application_is_no_cause_elsewhere() {
        // Nothing unavailable: an application the inventory lacks is not judged.
        let mut w = scenario("sp-secret-expired");
        w.azure["applications"] = serde_json::json!([]);
        assert!(codes(&w).is_empty());
        // A healthy service-principal cluster: no failing pull, no finding.
        let w = graph_refused(World::sp_baseline("sp-healthy", K131));
        assert_eq!(codes(&w), ["EVIDENCE_UNAVAILABLE"]);
        // A managed-identity cluster: Graph is not what decides.
        let w = graph_refused(scenario("acrpull-role-missing"));
        assert_eq!(codes(&w), ["ACR_PULL_ROLE_MISSING", "EVIDENCE_UNAVAILABLE"]);
        // A 401 for an image known to be missing stays the image's.
        let mut w = graph_refused(World::sp_baseline("sp-missing-tag", K131));
        w.break_rollout("web", Some(&format!("{LOGIN}/shop/web:9.9.9")), |rt, img| {
            rt.token(img, "oauth", UNAUTHORIZED, None)
        });
        assert_eq!(codes(&w), ["EVIDENCE_UNAVAILABLE"], "undiagnosed: neither the secret nor the role is known");
        w.azure["servicePrincipals"] = serde_json::json!([CLUSTER_APP.service_principal()]);
        assert_eq!(codes(&w), ["IMAGE_NOT_FOUND", "EVIDENCE_UNAVAILABLE"]);
        // Every other fixture: the same codes with Graph refused, plus the meta code, except
        // where the application is what decides.
        for name in ["acrpull-abac-mode", "kubelet-identity-removed", "pull-secret-admin-stale", "image-tag-not-found"]
        {
            let w = graph_refused(scenario(name));
            let mut want = scenario(name).expected.clone();
            want.push("EVIDENCE_UNAVAILABLE");
            want.sort();
            let mut got = codes(&w);
            got.sort();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn kubelet_identity_missing_from_the_scale_set() {
        let d = diagnose(&scenario("kubelet-identity-removed"));
        assert_eq!(d.findings[0].plan.actions, [Action::ReconcileCluster { cluster_id: cluster_id() }]);
        // Credentials sent means IMDS worked: the scale set is not blamed then.
        let mut w = scenario("kubelet-identity-removed");
        w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", UNAUTHORIZED, None));
        assert!(codes(&w).is_empty());
        // Without the scale set in the inventory, no guess.
        let mut w = scenario("kubelet-identity-removed");
        w.remove(&vmss_id("aks-nodepool1-31415926-vmss"));
        assert!(codes(&w).is_empty());
    }

    #[test]
    fn an_anonymous_401_with_a_working_identity_blames_the_credential_provider() {
        // The identity is on the scale set and may pull, yet nothing was sent: the provider on
        // the node gave nothing. Medium: its config is out of the API's sight.
        let mut w = World::baseline("anon", K131);
        w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", UNAUTHORIZED, None));
        let d = diagnose(&w);
        assert_eq!(d.failures.len(), 2);
        assert_eq!(d.findings.len(), 1, "{:?}", d.findings);
        let f = &d.findings[0];
        assert_eq!((f.code, f.confidence), (FindingCode::CredentialProviderMisconfigured, Confidence::Medium));
        assert_eq!(f.blamed[0].kind, "VirtualMachineScaleSet", "{:?}", f.blamed);
        assert!(f.evidence.iter().any(|l| l.contains("--image-credential-provider-config")), "{:?}", f.evidence);
        match &f.plan.actions[..] {
            [Action::Manual { change: Some(c), commands, .. }] => {
                assert_eq!(c.to_string(), format!("update {}", f.blamed[0].id));
                assert!(commands[0].starts_with("az vmss reimage"), "{commands:?}");
            }
            a => panic!("{a:?}"),
        }
        // Credentials that were sent and refused are another story (the roles decide).
        let mut w = World::baseline("oauth", K131);
        w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", UNAUTHORIZED, None));
        assert!(!codes(&w).contains(&"CREDENTIAL_PROVIDER_MISCONFIGURED"), "{:?}", codes(&w));
    }
}
