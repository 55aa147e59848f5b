//! The engine's reach: evidence it could not read becomes one finding that says what was
//! missing, why, and exactly which grant would let pulldoctor see it. It names no cause.
//!
//! One grant per kind of missing read, each the least that covers it:
//! - ARM reads: the `Reader` role at the resource groups (or the subscription) of what was
//!   refused;
//! - Microsoft Graph (applications, service principals): `Application.Read.All` for a service
//!   principal or managed identity, the `Directory Readers` Entra role for a user;
//! - Kubernetes nodes (cluster-scoped): a ClusterRole with `get`/`list` on nodes (`view` does
//!   not cover nodes);
//! - pull secrets: `get` on exactly the secrets named, in their namespace (`view` does not
//!   cover secrets);
//! - events, service accounts, replica sets: `get`/`list` in the pods' namespace;
//! - a registry's tags and platforms (its data plane): `AcrPull` on the registry, or
//!   `Container Registry Repository Reader` in ABAC mode, and a network path to it.
//!
//! The identity is named when pulldoctor knows it ([`Evidence::engine_identity`]); otherwise the
//! commands use `$PULLDOCTOR_PRINCIPAL_ID` / `$PULLDOCTOR_KUBE_USER` and say how to find them.

use std::collections::{BTreeMap, BTreeSet};

use azure_model::inventory::Unavailable;

use super::Context;
use crate::collect::azure::what;
use crate::evidence::{EngineIdentity, Evidence, PrincipalKind};
use crate::finding::{Blame, Confidence, Finding, FindingCode, Severity};
use crate::plan::{Action, Plan};

/// Microsoft Graph's application id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The `Application.Read.All` application permission (app role) of Microsoft Graph.
pub const APPLICATION_READ_ALL: &str = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";
/// The `Directory Readers` Entra role (template id).
pub const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

const PRINCIPAL_VAR: &str = "$PULLDOCTOR_PRINCIPAL_ID";
const KUBE_USER_VAR: &str = "$PULLDOCTOR_KUBE_USER";

/// `EVIDENCE_UNAVAILABLE` when any read was refused or failed.
pub fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let missing = &ctx.evidence.azure.unavailable;
    if missing.is_empty() {
        return vec![];
    }
    let skipped = missing.iter().filter(|u| what::skipped_on_request(u)).count();
    let refused = missing.len() - skipped;
    let what_happened = match (refused, skipped) {
        (0, s) => format!("{s} piece(s) of evidence were skipped on request"),
        (r, 0) => format!("pulldoctor could not read {r} piece(s) of evidence"),
        (r, s) => format!("pulldoctor could not read {r} piece(s) of evidence, and {s} were skipped on request"),
    };
    let note = |u: &Unavailable| {
        if what::skipped_on_request(u) { format!("{} (skipped on request)", u.reason) } else { u.reason.clone() }
    };
    vec![Finding {
        code: FindingCode::EvidenceUnavailable,
        severity: Severity::Warning,
        confidence: Confidence::High,
        summary: format!(
            "{what_happened}; findings that depend on them have lower confidence, and some causes may be missed"
        ),
        blamed: missing.iter().map(|u| Blame::new("Evidence", u.what.clone()).note(note(u))).collect(),
        evidence: missing.iter().map(|u| format!("{}: {}", u.what, note(u))).collect(),
        pods: ctx.failures.iter().map(|f| f.pod.clone()).collect(),
        plan: Plan::new(grants(ctx.evidence)),
    }]
}

/// The kinds of missing reads, each with what it was about.
#[derive(Default)]
struct Missing<'a> {
    no_token: Option<&'a Unavailable>,
    subscription: Option<&'a Unavailable>,
    /// subscription -> resource groups (`None`: a subscription-level read).
    arm: BTreeMap<String, BTreeSet<Option<String>>>,
    graph: bool,
    nodes: bool,
    /// namespace -> secret names.
    secrets: BTreeMap<String, BTreeSet<String>>,
    /// namespace -> resources (`events`, `serviceaccounts`, `replicasets.apps`).
    namespaced: BTreeMap<String, BTreeSet<&'static str>>,
    other_kube: bool,
    /// login server -> the registry data-plane reads that failed.
    registries: BTreeMap<String, Vec<&'a Unavailable>>,
    /// Registries found in none of the subscriptions searched ([`what::UNKNOWN_REGISTRY`]).
    unknown_registries: Vec<&'a Unavailable>,
    /// Private DNS zones the engine's bound left unsearched ([`what::UNSEARCHED_ZONES`]).
    unsearched_zones: Vec<&'a Unavailable>,
}

/// Whether `s` starts with `prefix`, ignoring ASCII case.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

fn sort(missing: &[Unavailable]) -> Missing<'_> {
    let mut m = Missing::default();
    // Skipped on request (`--no-graph`): the user chose it, no grant is proposed.
    for u in missing.iter().filter(|u| !what::skipped_on_request(u)) {
        let w = u.what.as_str();
        let lower = w.to_ascii_lowercase();
        if let Some(k) = w.strip_prefix("kubernetes: ") {
            let ns_of = |rest: &str| rest.split('/').next().unwrap_or_default().to_string();
            if k == "nodes" {
                m.nodes = true;
            } else if let Some(rest) = k.strip_prefix("secret ") {
                if let Some((ns, name)) = rest.split_once('/') {
                    m.secrets.entry(ns.to_string()).or_default().insert(name.to_string());
                }
            } else if let Some(rest) = k.strip_prefix("events of pod ") {
                m.namespaced.entry(ns_of(rest)).or_default().insert("events");
            } else if let Some(ns) = k.strip_prefix("events in namespace ") {
                m.namespaced.entry(ns.to_string()).or_default().insert("events");
            } else if let Some(rest) = k.strip_prefix("service account ") {
                m.namespaced.entry(ns_of(rest)).or_default().insert("serviceaccounts");
            } else if let Some(rest) = k.strip_prefix("replica set ") {
                m.namespaced.entry(ns_of(rest)).or_default().insert("replicasets.apps");
            } else {
                m.other_kube = true;
            }
        } else if let Some(rest) = lower.strip_prefix(crate::collect::registry::WHAT) {
            let login = rest.trim().split('/').next().unwrap_or_default().to_string();
            m.registries.entry(login).or_default().push(u);
        } else if starts_with_ci(w, what::UNKNOWN_REGISTRY) {
            // Its subscription was not among those read: no grant on the ones that were helps.
            m.unknown_registries.push(u);
        } else if starts_with_ci(w, what::UNSEARCHED_ZONES) {
            // Bounded by pulldoctor itself, not refused.
            m.unsearched_zones.push(u);
        } else if lower == what::ARM {
            m.no_token = Some(u);
        } else if lower.starts_with(what::DIRECTORY) || lower.starts_with(what::GRAPH) {
            m.graph = true;
        } else if let Some((sub, rg)) = arm_scope(w) {
            m.arm.entry(sub).or_default().insert(rg);
        } else if lower.starts_with(what::SUBSCRIPTION) {
            m.subscription = Some(u);
        } else {
            // An ARM read without a path: the whole subscription (unknown) is the scope.
            m.arm.entry(String::new()).or_default().insert(None);
        }
    }
    m
}

/// `(subscription, resource group)` of the ARM path quoted in `what`.
fn arm_scope(what: &str) -> Option<(String, Option<String>)> {
    let start = what.to_ascii_lowercase().find("/subscriptions/")?;
    let path = what[start..].split(['?', ' ']).next().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    let after = |key: &str| {
        parts.iter().position(|p| p.eq_ignore_ascii_case(key)).and_then(|i| parts.get(i + 1)).filter(|s| !s.is_empty())
    };
    let sub = after("subscriptions")?.to_string();
    Some((sub, after("resourceGroups").map(|s| s.to_string())))
}

/// The principal's object id for `az role assignment create`, and a line saying how to find
/// it when pulldoctor does not know it.
fn principal(id: Option<&EngineIdentity>) -> (String, Option<&'static str>, Vec<String>) {
    match id.and_then(|i| i.object_id.as_deref().map(|o| (o, i.kind))) {
        Some((oid, kind)) => {
            let ty = match kind {
                PrincipalKind::User => Some("User"),
                PrincipalKind::ServicePrincipal | PrincipalKind::ManagedIdentity => Some("ServicePrincipal"),
                PrincipalKind::Unknown => None,
            };
            (oid.to_string(), ty, vec![])
        }
        None => (
            format!("\"{PRINCIPAL_VAR}\""),
            None,
            vec![format!(
                "# {}: the object id of the identity pulldoctor runs as. Signed in as that user: `az ad signed-in-user show --query id -o tsv`; a service principal: `az ad sp show --id APP_ID --query id -o tsv`",
                &PRINCIPAL_VAR[1..]
            )],
        ),
    }
}

fn kube_user_note() -> String {
    format!(
        "# {}: the user pulldoctor's kubeconfig authenticates as: `kubectl auth whoami -o jsonpath='{{.status.userInfo.username}}'` with that kubeconfig (for a service account, bind with --serviceaccount=NAMESPACE:NAME instead of --user)",
        &KUBE_USER_VAR[1..]
    )
}

/// One exact grant per kind of missing read.
fn grants(evidence: &Evidence) -> Vec<Action> {
    let m = sort(&evidence.azure.unavailable);
    let id = evidence.engine_identity.as_ref();
    let mut actions = Vec::new();

    if let Some(u) = m.no_token {
        actions.push(Action::Manual {
            change: None,
            description: format!("pulldoctor could not get a token for Azure ({}): sign in, or give it a credential", u.reason),
            commands: vec![
                "az login".into(),
                "# or a service principal: export AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; or pass --token-url, --client-id and --client-secret".into(),
            ],
        });
    }
    if let Some(u) = m.subscription {
        actions.push(Action::Manual {
            change: None,
            description: format!("pick the subscription of the cluster ({})", u.reason),
            commands: vec![
                "az account list --query \"[].{name: name, id: id}\" -o table".into(),
                "# then run pulldoctor again with --subscription SUBSCRIPTION_ID (or AZURE_SUBSCRIPTION_ID set)".into(),
            ],
        });
    }
    if !m.arm.is_empty() {
        let (assignee, ty, mut commands) = principal(id);
        let ty = ty.map(|t| format!(" --assignee-principal-type {t}")).unwrap_or_default();
        let mut scopes = Vec::new();
        for (sub, rgs) in &m.arm {
            if sub.is_empty() {
                scopes.push("/subscriptions/$(az account show --query id -o tsv)".to_string());
            } else if rgs.contains(&None) {
                scopes.push(format!("/subscriptions/{sub}"));
            } else {
                scopes.extend(rgs.iter().flatten().map(|rg| format!("/subscriptions/{sub}/resourceGroups/{rg}")));
            }
        }
        commands.extend(scopes.iter().map(|scope| {
            format!("az role assignment create --assignee-object-id {assignee}{ty} --role Reader --scope {scope}")
        }));
        actions.push(Action::Manual {
            change: None,
            description: "give pulldoctor's identity the Reader role where its Azure reads were refused".into(),
            commands,
        });
    }
    for u in &m.unknown_registries {
        let name = u.what[what::UNKNOWN_REGISTRY.len()..].trim();
        let (assignee, ty, notes) = principal(id);
        let ty = ty.map(|t| format!(" --assignee-principal-type {t}")).unwrap_or_default();
        let mut commands = vec![
            format!("# {name}: {}", u.reason),
            format!(
                "# find the subscription that holds {name} (as someone who can see it; its id is /subscriptions/SUBSCRIPTION_ID/...)"
            ),
            format!("REGISTRY_SUBSCRIPTION=$(az acr show -n {name} --query id -o tsv | cut -d/ -f3)"),
        ];
        commands.extend(notes);
        commands.push(format!(
            "az role assignment create --assignee-object-id {assignee}{ty} --role Reader --scope /subscriptions/$REGISTRY_SUBSCRIPTION"
        ));
        actions.push(Action::Manual {
            change: None,
            description: format!(
                "registry {name} is in none of the subscriptions pulldoctor read: find its subscription and let pulldoctor's identity read it (the Reader role there)"
            ),
            commands,
        });
    }
    if !m.unsearched_zones.is_empty() {
        let mut commands = Vec::new();
        for u in &m.unsearched_zones {
            commands.push(format!("# {}: {}", u.what, u.reason));
            let subs = u.what[what::UNSEARCHED_ZONES.len()..].split(',').map(str::trim).filter(|s| !s.is_empty());
            commands.extend(subs.map(|s| {
                format!(
                    "az network private-dns zone list --subscription {s} --query \"[?name=='{}'].id\" -o tsv",
                    azure_model::network::ACR_PRIVATE_ZONE
                )
            }));
        }
        actions.push(Action::Manual {
            change: None,
            description: format!(
                "pulldoctor searched only some subscriptions for the {} zone: look for it in the others yourself (no grant would change this)",
                azure_model::network::ACR_PRIVATE_ZONE
            ),
            commands,
        });
    }
    if m.graph {
        actions.push(graph_grant(id));
    }
    if m.nodes {
        actions.push(Action::Manual {
            change: None,
            description: "let pulldoctor's Kubernetes user get and list nodes (cluster-scoped: the view role does not cover them)".into(),
            commands: vec![
                kube_user_note(),
                "kubectl create clusterrole pulldoctor-nodes --verb=get,list --resource=nodes".into(),
                format!(
                    "kubectl create clusterrolebinding pulldoctor-nodes --clusterrole=pulldoctor-nodes --user=\"{KUBE_USER_VAR}\""
                ),
            ],
        });
    }
    if !m.secrets.is_empty() {
        let mut commands = vec![kube_user_note()];
        for (ns, names) in &m.secrets {
            let names: Vec<String> = names.iter().map(|n| format!(" --resource-name={n}")).collect();
            commands.push(format!(
                "kubectl create role pulldoctor-pull-secrets -n {ns} --verb=get --resource=secrets{}",
                names.concat()
            ));
            commands.push(format!(
                "kubectl create rolebinding pulldoctor-pull-secrets -n {ns} --role=pulldoctor-pull-secrets --user=\"{KUBE_USER_VAR}\""
            ));
        }
        actions.push(Action::Manual {
            change: None,
            description: "let pulldoctor's Kubernetes user get the pods' pull secrets (only those; the view role does not cover secrets)".into(),
            commands,
        });
    }
    if !m.namespaced.is_empty() {
        let mut commands = vec![kube_user_note()];
        for (ns, resources) in &m.namespaced {
            let resources: Vec<&str> = resources.iter().copied().collect();
            commands.push(format!(
                "kubectl create role pulldoctor-read -n {ns} --verb=get,list --resource={}",
                resources.join(",")
            ));
            commands.push(format!(
                "kubectl create rolebinding pulldoctor-read -n {ns} --role=pulldoctor-read --user=\"{KUBE_USER_VAR}\""
            ));
        }
        actions.push(Action::Manual {
            change: None,
            description: "let pulldoctor's Kubernetes user read the pods' events, service accounts and replica sets"
                .into(),
            commands,
        });
    }
    for (login, reads) in &m.registries {
        let (assignee, ty, mut commands) = principal(id);
        let ty = ty.map(|t| format!(" --assignee-principal-type {t}")).unwrap_or_default();
        let reasons: Vec<&str> = reads.iter().map(|u| u.reason.as_str()).collect();
        commands.insert(0, format!("# {login}: {}", reasons.join("; ")));
        match evidence.azure.registry_by_login_server(login) {
            Some(r) => {
                let role = if r.properties.abac_mode() { "\"Container Registry Repository Reader\"" } else { "AcrPull" };
                commands.push(format!(
                    "az role assignment create --assignee-object-id {assignee}{ty} --role {role} --scope {}",
                    r.id
                ));
            }
            None => commands.push(format!(
                "az role assignment create --assignee-object-id {assignee}{ty} --role AcrPull --scope $(az acr show -n {} --query id -o tsv)",
                login.split('.').next().unwrap_or(login)
            )),
        }
        commands.push(format!(
            "# behind a private endpoint or firewall: run pulldoctor where the nodes reach {login}, or pass --registry-address {login}=IP:443 (--no-registry skips these reads)"
        ));
        actions.push(Action::Manual {
            change: None,
            description: format!(
                "let pulldoctor read {login}'s tags and platforms: a pull role for its identity and a network path to the registry"
            ),
            commands,
        });
    }
    if m.other_kube {
        actions.push(Action::Manual {
            change: None,
            description: "let pulldoctor's Kubernetes user read the cluster (the view role)".into(),
            commands: vec![
                kube_user_note(),
                format!(
                    "kubectl create clusterrolebinding pulldoctor-view --clusterrole=view --user=\"{KUBE_USER_VAR}\""
                ),
            ],
        });
    }
    actions
}

/// Reading applications (their password credentials) and service principals in Microsoft Graph.
fn graph_grant(id: Option<&EngineIdentity>) -> Action {
    let description = "let pulldoctor's identity read applications and service principals in Microsoft Graph";
    let admin = "# run as a Privileged Role Administrator (or Global Administrator)";
    match id {
        Some(EngineIdentity { kind: PrincipalKind::ServicePrincipal, app_id: Some(app), .. }) => Action::Manual {
            change: None,
            description: format!("{description}: the Application.Read.All application permission, with admin consent"),
            commands: vec![
                admin.into(),
                format!(
                    "az ad app permission add --id {app} --api {GRAPH_APP_ID} --api-permissions {APPLICATION_READ_ALL}=Role"
                ),
                format!("az ad app permission admin-consent --id {app}"),
            ],
        },
        Some(EngineIdentity { kind: PrincipalKind::ManagedIdentity, object_id: Some(oid), .. }) => Action::Manual {
            change: None,
            description: format!(
                "{description}: the Application.Read.All application permission, assigned to the managed identity"
            ),
            commands: vec![
                admin.into(),
                format!(
                    "az rest --method POST --uri https://graph.microsoft.com/v1.0/servicePrincipals/{oid}/appRoleAssignments --headers Content-Type=application/json --body \"{{\\\"principalId\\\": \\\"{oid}\\\", \\\"resourceId\\\": \\\"$(az ad sp show --id {GRAPH_APP_ID} --query id -o tsv)\\\", \\\"appRoleId\\\": \\\"{APPLICATION_READ_ALL}\\\"}}\""
                ),
            ],
        },
        _ => {
            let (assignee, _, mut commands) = principal(id);
            let assignee = assignee.trim_matches('"').to_string();
            commands.insert(0, admin.into());
            commands.push(format!(
                "az rest --method POST --uri https://graph.microsoft.com/v1.0/roleManagement/directory/roleAssignments --headers Content-Type=application/json --body \"{{\\\"principalId\\\": \\\"{assignee}\\\", \\\"roleDefinitionId\\\": \\\"{DIRECTORY_READERS}\\\", \\\"directoryScopeId\\\": \\\"/\\\"}}\""
            ));
            Action::Manual { description: format!("{description}: the Directory Readers role"), commands, change: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(what: &str) -> Unavailable {
        Unavailable { what: what.into(), reason: "403 Forbidden: no".into() }
    }

    fn commands(evidence: &Evidence) -> Vec<String> {
        grants(evidence).iter().flat_map(Action::commands).collect()
    }

    fn with(missing: &[&str], id: Option<EngineIdentity>) -> Evidence {
        let mut e = Evidence { engine_identity: id, ..Default::default() };
        e.azure.unavailable = missing.iter().map(|w| u(w)).collect();
        e
    }

    const REGISTRY: &str = "/subscriptions/s1/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/a";

    #[test]
    fn an_unknown_registry_or_unsearched_zones_get_no_reader_on_the_subscription_already_read() {
        let id = EngineIdentity { object_id: Some("o1".into()), kind: PrincipalKind::User, ..Default::default() };
        let unknown = with(&["azure: unknown registry acrshopweu"], Some(id.clone()));
        let c = commands(&unknown);
        assert!(c.iter().all(|c| !c.contains("az account show")), "{c:#?}");
        assert!(
            c.contains(
                &"REGISTRY_SUBSCRIPTION=$(az acr show -n acrshopweu --query id -o tsv | cut -d/ -f3)".to_string()
            ),
            "{c:#?}"
        );
        assert!(
            c.contains(&"az role assignment create --assignee-object-id o1 --assignee-principal-type User --role Reader --scope /subscriptions/$REGISTRY_SUBSCRIPTION".to_string()),
            "{c:#?}"
        );
        let zones = with(&["azure: network private DNS zones of subscription(s) s5, s6"], Some(id));
        let c = commands(&zones);
        assert!(c.iter().all(|c| !c.contains("--role Reader")), "{c:#?}");
        for s in ["s5", "s6"] {
            assert!(
                c.iter().any(|c| c.starts_with(&format!("az network private-dns zone list --subscription {s} "))),
                "{c:#?}"
            );
        }
    }

    #[test]
    fn graph_gets_a_graph_permission_not_an_arm_role() {
        let sp = EngineIdentity {
            object_id: Some("o1".into()),
            app_id: Some("a1".into()),
            kind: PrincipalKind::ServicePrincipal,
            name: None,
        };
        let c = commands(&with(&["azure: directory application x"], Some(sp)));
        assert!(c.iter().all(|c| !c.contains("--role Reader")), "{c:#?}");
        assert!(c.contains(
            &"az ad app permission add --id a1 --api 00000003-0000-0000-c000-000000000000 --api-permissions 9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30=Role"
                .to_string()
        ));
        assert!(c.contains(&"az ad app permission admin-consent --id a1".to_string()));
        // A user, or nobody known: the Directory Readers role for the named principal.
        let c = commands(&with(&["azure: directory application x"], None));
        let rest = c.iter().find(|c| c.starts_with("az rest --method POST")).unwrap();
        assert!(rest.contains(DIRECTORY_READERS) && rest.contains("$PULLDOCTOR_PRINCIPAL_ID"), "{rest}");
        assert!(c.iter().any(|c| c.contains("az ad signed-in-user show --query id -o tsv")));
        let mi =
            EngineIdentity { object_id: Some("o3".into()), kind: PrincipalKind::ManagedIdentity, ..Default::default() };
        let c = commands(&with(&["azure: microsoft graph"], Some(mi)));
        assert!(
            c.iter()
                .any(|c| c.contains("/servicePrincipals/o3/appRoleAssignments") && c.contains(APPLICATION_READ_ALL))
        );
    }

    #[test]
    fn graph_skipped_on_request_gets_no_grant() {
        let mut e = with(&[], None);
        e.azure.unavailable.push(Unavailable { what: what::GRAPH.into(), reason: what::SKIPPED_NO_GRAPH.into() });
        assert!(commands(&e).is_empty());
        let ctx = crate::detect::Context { evidence: &e, failures: vec![], cluster: None, now: e.now() };
        let f = detect(&ctx).pop().expect("a finding");
        assert!(f.plan.actions.is_empty(), "{:#?}", f.plan.actions);
        assert!(f.summary.contains("1 piece(s) of evidence were skipped on request"), "{}", f.summary);
        assert!(!f.summary.contains("could not read"), "{}", f.summary);
        assert_eq!(f.evidence, ["azure: microsoft graph: not read: --no-graph (skipped on request)"]);
        // A refused Graph read beside it still gets its grant.
        e.azure.unavailable.push(u("azure: directory application x"));
        assert!(commands(&e).iter().any(|c| c.contains(DIRECTORY_READERS)));
    }

    #[test]
    fn arm_reads_get_reader_at_their_scope() {
        let user = EngineIdentity { object_id: Some("o2".into()), kind: PrincipalKind::User, ..Default::default() };
        let c = commands(&with(&[&format!("azure: role assignments at {REGISTRY}")], Some(user)));
        assert_eq!(
            c,
            [
                "az role assignment create --assignee-object-id o2 --assignee-principal-type User --role Reader --scope /subscriptions/s1/resourceGroups/rg-acr"
            ]
        );
        // A subscription-level list widens the scope to the subscription; unknown principal.
        let c = commands(&with(
            &[
                &format!("azure: role assignments at {REGISTRY}"),
                "azure: managed cluster /subscriptions/s1/providers/Microsoft.ContainerService/managedClusters",
            ],
            None,
        ));
        assert_eq!(c.len(), 2, "{c:#?}");
        assert!(c[0].starts_with("# PULLDOCTOR_PRINCIPAL_ID:"));
        assert_eq!(
            c[1],
            "az role assignment create --assignee-object-id \"$PULLDOCTOR_PRINCIPAL_ID\" --role Reader --scope /subscriptions/s1"
        );
    }

    #[test]
    fn nodes_need_a_cluster_role_on_nodes_not_view() {
        let c = commands(&with(&["kubernetes: nodes"], None));
        assert!(
            c.contains(&"kubectl create clusterrole pulldoctor-nodes --verb=get,list --resource=nodes".to_string())
        );
        assert!(c.contains(
            &"kubectl create clusterrolebinding pulldoctor-nodes --clusterrole=pulldoctor-nodes --user=\"$PULLDOCTOR_KUBE_USER\""
                .to_string()
        ));
        assert!(c.iter().all(|c| !c.contains("--clusterrole=view") && !c.starts_with("az ")), "{c:#?}");
        assert!(c.iter().any(|c| c.contains("kubectl auth whoami")));
    }

    #[test]
    fn secrets_and_events_get_namespaced_roles() {
        let c = commands(&with(
            &[
                "kubernetes: secret shop/acr-pull",
                "kubernetes: secret shop/acr-admin",
                "kubernetes: events of pod shop/web-1",
                "kubernetes: replica set shop/web-5d",
            ],
            None,
        ));
        assert!(c.contains(
            &"kubectl create role pulldoctor-pull-secrets -n shop --verb=get --resource=secrets --resource-name=acr-admin --resource-name=acr-pull"
                .to_string()
        ));
        assert!(
            c.contains(
                &"kubectl create role pulldoctor-read -n shop --verb=get,list --resource=events,replicasets.apps"
                    .to_string()
            )
        );
        assert!(
            c.iter()
                .any(|c| c.starts_with("kubectl create rolebinding pulldoctor-read -n shop --role=pulldoctor-read"))
        );
    }

    #[test]
    fn no_token_is_not_a_permission() {
        let c = commands(&with(&["azure: resource manager"], None));
        assert_eq!(c[0], "az login");
        assert!(c.iter().all(|c| !c.contains("role assignment")));
    }

    #[test]
    fn an_unreadable_registry_gets_a_pull_role_not_reader() {
        let c = commands(&with(&["registry: myacr.azurecr.io/shop/web"], None));
        assert!(c.iter().all(|c| !c.contains("--role Reader")), "{c:#?}");
        assert!(
            c.iter().any(|c| c.contains("--role AcrPull --scope $(az acr show -n myacr --query id -o tsv)")),
            "{c:#?}"
        );
        assert!(c.iter().any(|c| c.contains("--registry-address myacr.azurecr.io=IP:443")), "{c:#?}");
    }
}
