//! Who pulls, and may they? Role evaluation at a registry's scope, the cluster's pulling
//! principal, and the one assessment of an `unauthorized` pull that the identity, pull-secret
//! and image detectors all read, so that exactly one of them names the cause.

use std::sync::LazyLock;

use azure_model::authorization::{
    ACR_PULL, BuiltInRole, PULL_ACTION, REPOSITORY_CONTENT_READ, REPOSITORY_READER, RoleAssignmentProperties,
    action_matches, built_in,
};
use azure_model::compute::{POOL_NAME_TAG, VirtualMachineScaleSetProperties};
use azure_model::container_registry::{RegistryProperties, is_acr_login_server};
use azure_model::graph::{Application, PasswordCredential, parse_time};
use azure_model::inventory::Unavailable;
use azure_model::{Inventory, Resource};
use regex::Regex;
use time::{Duration, OffsetDateTime};

use super::Context;
use super::image::{Absence, image_absence};
use super::support::{RegistryMatch, match_registry, name_of, registry_name_of_host, resource_group_of};
use crate::evidence::{PullFailure, PullSecret, RegistryLogin};
use crate::symptom::SymptomClass;

pub(crate) type Assignment = Resource<RoleAssignmentProperties>;
pub(crate) type Registry = Resource<RegistryProperties>;

/// The null GUID: the username of ACR refresh tokens.
pub(crate) const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Whether a role assignment lets its principal pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    Yes,
    No,
    /// The role (or its ABAC condition) is not known to the inventory.
    Unknown,
}

fn known_role(guid: &str) -> Option<&'static BuiltInRole> {
    built_in(guid)
}

/// The display name of an assignment's role.
pub(crate) fn role_name(inv: &Inventory, ra: &Assignment) -> String {
    let guid = ra.properties.role_guid();
    if let Some(r) = known_role(guid) {
        return r.name.to_string();
    }
    inv.role_definitions
        .iter()
        .find(|d| name_of(&d.id).eq_ignore_ascii_case(guid) || d.name.eq_ignore_ascii_case(guid))
        .map(|d| d.properties.role_name.clone())
        .unwrap_or_else(|| format!("role {guid}"))
}

/// (legacy pull, ABAC pull) a role grants, or `None` when the role is unknown (neither built
/// in nor among the inventory's role definitions).
pub fn role_pull(inv: &Inventory, guid: &str) -> Option<(bool, bool)> {
    if let Some(r) = known_role(guid) {
        return Some((r.grants_legacy_pull(), r.grants_abac_pull()));
    }
    let def = inv
        .role_definitions
        .iter()
        .find(|d| name_of(&d.id).eq_ignore_ascii_case(guid) || d.name.eq_ignore_ascii_case(guid))?;
    let mut legacy = false;
    let mut abac = false;
    for p in &def.properties.permissions {
        let covers = |list: &[String], action: &str, skip_read_all: bool| {
            list.iter().any(|a| action_matches(a, action) && !(skip_read_all && a == "*/read"))
        };
        legacy |= covers(&p.actions, PULL_ACTION, true) && !covers(&p.not_actions, PULL_ACTION, false);
        abac |= covers(&p.data_actions, REPOSITORY_CONTENT_READ, false)
            && !covers(&p.not_data_actions, REPOSITORY_CONTENT_READ, false);
    }
    Some((legacy, abac))
}

static REPO_CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)repositories:name\]\s*(StringEqualsIgnoreCase|StringEquals|StringStartsWithIgnoreCase|StringStartsWith|StringLikeIgnoreCase|StringLike)\s*'([^']*)'")
        .expect("valid regex")
});

/// Whether an ABAC condition lets `repo` be read: `None` when it names repositories in a way
/// this reading does not understand.
pub(crate) fn condition_allows(condition: &str, repo: &str) -> Option<bool> {
    if !condition.to_ascii_lowercase().contains("repositories:name") {
        return Some(true);
    }
    let mut any = false;
    for c in REPO_CONDITION.captures_iter(condition) {
        any = true;
        let (op, value) = (c[1].to_ascii_lowercase(), &c[2]);
        let fold = op.ends_with("ignorecase");
        let (r, v) = if fold {
            (repo.to_ascii_lowercase(), value.to_ascii_lowercase())
        } else {
            (repo.to_string(), value.to_string())
        };
        let hit = if op.starts_with("stringequals") {
            r == v
        } else if op.starts_with("stringstartswith") {
            r.starts_with(&v)
        } else {
            match v.split_once('*') {
                Some((pre, post)) => r.len() >= pre.len() + post.len() && r.starts_with(pre) && r.ends_with(post),
                None => r == v,
            }
        };
        if hit {
            return Some(true);
        }
    }
    any.then_some(false)
}

/// Whether `ra` lets its principal pull `repo` from a registry in the given mode.
pub(crate) fn grants_pull(inv: &Inventory, ra: &Assignment, abac: bool, repo: Option<&str>) -> Grant {
    let Some((legacy, abac_pull)) = role_pull(inv, ra.properties.role_guid()) else { return Grant::Unknown };
    if !abac {
        return if legacy { Grant::Yes } else { Grant::No };
    }
    if !abac_pull {
        return Grant::No;
    }
    match (ra.properties.condition.as_deref(), repo) {
        (Some(cond), Some(repo)) => match condition_allows(cond, repo) {
            Some(true) => Grant::Yes,
            Some(false) => Grant::No,
            None => Grant::Unknown,
        },
        _ => Grant::Yes,
    }
}

/// The role a principal needs on `registry`.
pub(crate) fn needed_role(registry: &Registry) -> &'static BuiltInRole {
    if registry.properties.abac_mode() { &REPOSITORY_READER } else { &ACR_PULL }
}

/// `RoleName -> principal (type) at scope` for evidence.
pub(crate) fn describe_assignment(inv: &Inventory, ra: &Assignment) -> String {
    let scope =
        ra.properties.scope.clone().unwrap_or_else(|| {
            ra.id.split("/providers/Microsoft.Authorization").next().unwrap_or_default().to_string()
        });
    format!(
        "{} -> {} ({}) at {}{}",
        role_name(inv, ra),
        ra.properties.principal_id,
        ra.properties.principal_type.as_deref().unwrap_or("unknown type"),
        scope,
        ra.properties.condition.as_ref().map(|_| " with an ABAC condition").unwrap_or_default()
    )
}

/// A principal that pulls.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// The object id role assignments name.
    pub object_id: String,
    /// `kubelet identity NAME`, `service principal NAME (appId X)`.
    pub describe: String,
    /// The kubelet identity's resource id or the application id.
    pub id: String,
    /// A cluster's kubelet identity or service principal (not a pull secret's).
    pub of_cluster: bool,
    /// An application registration's service principal.
    pub app: bool,
}

/// What the role assignments at a registry say about one principal.
#[derive(Debug)]
pub(crate) enum RoleVerdict<'a> {
    /// These assignments let it pull.
    Granted(Vec<&'a Assignment>),
    /// ABAC mode: it holds roles that pull only in legacy mode.
    AbacMissing { legacy: Vec<&'a Assignment> },
    /// It holds nothing that pulls, but a principal the cluster used before does.
    Stale { assignments: Vec<&'a Assignment>, strong: bool },
    /// It holds nothing that pulls. `unknown`: its assignments whose role could not be read.
    Missing { unknown: Vec<&'a Assignment> },
}

/// Judges `principal`'s pull rights on `registry` for `repo`.
pub(crate) fn role_verdict<'a>(
    ctx: &Context<'a>,
    registry: &'a Registry,
    principal: &Principal,
    repo: Option<&str>,
) -> RoleVerdict<'a> {
    let inv = &ctx.evidence.azure;
    let abac = registry.properties.abac_mode();
    let mine: Vec<&Assignment> = inv
        .role_assignments_at(&registry.id)
        .filter(|ra| ra.properties.principal_id.eq_ignore_ascii_case(&principal.object_id))
        .collect();
    let granting: Vec<&Assignment> =
        mine.iter().copied().filter(|ra| grants_pull(inv, ra, abac, repo) == Grant::Yes).collect();
    if !granting.is_empty() {
        return RoleVerdict::Granted(granting);
    }
    let unknown: Vec<&Assignment> =
        mine.iter().copied().filter(|ra| grants_pull(inv, ra, abac, repo) == Grant::Unknown).collect();
    if abac {
        let legacy: Vec<&Assignment> =
            mine.iter().copied().filter(|ra| grants_pull(inv, ra, false, repo) == Grant::Yes).collect();
        if !legacy.is_empty() {
            return RoleVerdict::AbacMissing { legacy };
        }
    }
    if principal.of_cluster
        && let Some((assignments, strong)) = stale_assignments(ctx, registry, principal)
    {
        return RoleVerdict::Stale { assignments, strong };
    }
    RoleVerdict::Missing { unknown }
}

/// Pull roles (AcrPull, Repository Reader) held on `registry` by service principals that are
/// not `current` and not the current identity of any cluster in the inventory, when they look
/// like a former identity of this cluster. `strong`: the inventory shows why.
fn stale_assignments<'a>(
    ctx: &Context<'a>,
    registry: &'a Registry,
    current: &Principal,
) -> Option<(Vec<&'a Assignment>, bool)> {
    let inv = &ctx.evidence.azure;
    let cluster = ctx.cluster?;
    let in_use: Vec<String> = inv
        .managed_clusters
        .iter()
        .flat_map(|c| {
            let kubelet = c.properties.kubelet_identity().and_then(|k| k.object_id.clone());
            let sp = c
                .properties
                .service_principal_client_id()
                .and_then(|app| inv.service_principal_of_app(app))
                .map(|sp| sp.id.clone());
            [kubelet, sp].into_iter().flatten()
        })
        .collect();
    let sp_cluster = cluster.properties.service_principal_client_id().is_some();
    let cluster_name = cluster.name.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut strong = false;
    for ra in inv.role_assignments_at(&registry.id) {
        let p = &ra.properties;
        if p.principal_id.eq_ignore_ascii_case(&current.object_id)
            || in_use.iter().any(|u| u.eq_ignore_ascii_case(&p.principal_id))
            || !p.principal_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("ServicePrincipal"))
        {
            continue;
        }
        let guid = p.role_guid();
        if !(guid.eq_ignore_ascii_case(ACR_PULL.id) || guid.eq_ignore_ascii_case(REPOSITORY_READER.id)) {
            continue;
        }
        let sp = inv.service_principals.iter().find(|s| s.id.eq_ignore_ascii_case(&p.principal_id));
        let named_after_cluster =
            sp.and_then(|s| s.display_name.as_deref()).is_some_and(|n| n.to_ascii_lowercase().contains(&cluster_name));
        let registered_app = sp.is_some_and(|s| inv.application(&s.app_id).is_some());
        let this_strong = named_after_cluster || (sp_cluster && registered_app);
        // A managed-identity cluster's registry may serve other clusters: only a principal that
        // is recognisably this cluster's counts there.
        if this_strong || sp_cluster {
            strong |= this_strong;
            found.push(ra);
        }
    }
    (!found.is_empty()).then_some((found, strong))
}

/// What went wrong with the cluster's own way of pulling.
#[derive(Debug)]
pub(crate) enum ClusterOutcome<'a> {
    /// The cluster's service principal has no valid secret.
    SpExpired { app_id: String, app: &'a Application },
    /// The cluster's service principal has an expired secret, and every valid one was created
    /// after the pulls began failing (a `fix` whose cluster reset failed): the cluster cannot
    /// have been given it before it broke, so it still sends the expired one.
    SpRenewedNotApplied {
        app_id: String,
        app: &'a Application,
        expired: Vec<&'a PasswordCredential>,
        renewed: Vec<&'a PasswordCredential>,
        since: OffsetDateTime,
        last: OffsetDateTime,
    },
    /// The cluster's service principal was refused, and its application could not be read
    /// (`missing`), so the expiry of its secrets is unknown; nothing else explains the 401.
    SpUnverified { app_id: String, missing: Vec<&'a Unavailable> },
    /// The kubelet identity is missing from these scale sets.
    NotOnVmss { identity_id: String, scale_sets: Vec<&'a Resource<VirtualMachineScaleSetProperties>> },
    /// The pull went without credentials to an ACR login server although the cluster's
    /// principal may pull there and (a kubelet identity) is on every scale set of the pool:
    /// the node's credential provider gave the kubelet nothing.
    ProviderGaveNothing {
        principal: Principal,
        granted: Vec<&'a Assignment>,
        scale_sets: Vec<&'a Resource<VirtualMachineScaleSetProperties>>,
    },
    /// The principal's rights on the registry.
    Rights { principal: Principal, verdict: RoleVerdict<'a> },
    /// The registry is not in the inventory: its role assignments cannot be read.
    NoRegistry { principal: Principal },
    /// Nothing can be said (no cluster, principal unknown...).
    Unknown,
}

/// What one pull secret login for the failing registry says.
#[derive(Debug)]
pub(crate) enum SecretKind<'a> {
    /// Registry admin credentials. `enabled`: the registry's `adminUserEnabled`.
    Admin { enabled: Option<bool> },
    /// A service principal's credentials.
    ServicePrincipal {
        app_id: String,
        app: Option<&'a Application>,
        /// No password credential of the application is valid now.
        expired: bool,
        /// Its rights on the registry (when both are in the inventory).
        verdict: Option<RoleVerdict<'a>>,
        principal: Option<Principal>,
    },
    /// An ACR refresh token (null GUID) or a repository-scoped token: not judged.
    Other,
}

/// One login of a pull secret for the failing registry.
#[derive(Debug)]
pub(crate) struct SecretLogin<'a> {
    pub secret: &'a PullSecret,
    pub login: &'a RegistryLogin,
    pub kind: SecretKind<'a>,
}

impl SecretLogin<'_> {
    /// Whether these credentials check out as far as the inventory can tell.
    pub fn fine(&self) -> bool {
        self.login.has_password
            && match &self.kind {
                SecretKind::Admin { enabled } => *enabled == Some(true),
                SecretKind::ServicePrincipal { expired, verdict, .. } => {
                    !expired && matches!(verdict, Some(RoleVerdict::Granted(_)))
                }
                SecretKind::Other => false,
            }
    }
}

/// Pull secrets the pod names that the kubelet could not use for this image.
#[derive(Debug, Default)]
pub(crate) struct UnusableSecrets<'a> {
    /// Named by the pod or its service account, and not in its namespace.
    pub missing: Vec<&'a str>,
    /// In the namespace, but with no entry that serves the image (as the kubelet matches
    /// keys), while holding one for another ACR registry: meant for this pull, keyed wrong.
    pub mismatched: Vec<&'a PullSecret>,
}

impl UnusableSecrets<'_> {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }
}

/// Which credentials an `unauthorized` pull used.
#[derive(Debug)]
pub(crate) enum AuthPath<'a> {
    /// The pod's pull secrets carry a login for the registry: the kubelet sent those.
    Secrets(Vec<SecretLogin<'a>>),
    /// The pod names pull secrets for this pull that the kubelet could not use (missing, or
    /// keyed for another registry), so it fell back to the node's own credentials. The pod's
    /// author meant the secret to be used: that is the cause, not the node identity's rights.
    SecretsUnusable(UnusableSecrets<'a>),
    /// The cluster's identity (kubelet identity or service principal).
    Cluster(ClusterOutcome<'a>),
}

/// The assessment of one `unauthorized` pull from an ACR registry.
#[derive(Debug)]
pub(crate) struct AuthAssessment<'a> {
    /// The registry, when the inventory has it.
    pub registry: Option<&'a Registry>,
    /// The credentials and what is wrong with them.
    pub path: AuthPath<'a>,
    /// The repository or tag is known to be missing (ACR answers 401 for those too).
    pub absence: Option<Absence>,
}

impl AuthAssessment<'_> {
    /// Whether the credentials check out, so the 401 must have another cause.
    pub fn credentials_fine(&self) -> bool {
        match &self.path {
            AuthPath::Secrets(logins) => !logins.is_empty() && logins.iter().all(SecretLogin::fine),
            AuthPath::Cluster(ClusterOutcome::Rights { verdict: RoleVerdict::Granted(_), .. }) => true,
            AuthPath::Cluster(_) | AuthPath::SecretsUnusable(_) => false,
        }
    }
}

/// Assesses an `unauthorized` pull from an ACR registry (or one shaped like it). `None` for
/// other symptoms, other registries, and hosts that are a misspelt login server.
pub(crate) fn assess_auth<'a>(ctx: &Context<'a>, failure: &'a PullFailure) -> Option<AuthAssessment<'a>> {
    if failure.symptom.class != SymptomClass::Unauthorized {
        return None;
    }
    let inv = &ctx.evidence.azure;
    let host = failure.registry_host()?;
    let registry = match match_registry(inv, host) {
        RegistryMatch::Known(r) => Some(r),
        RegistryMatch::Unknown { acr: true } => None,
        RegistryMatch::Typo(_) | RegistryMatch::Unknown { acr: false } => return None,
    };
    let repo = failure.image.as_ref().map(|i| i.repository.as_str());
    let absence = failure.image.as_ref().and_then(|i| image_absence(inv, i));
    let logins: Vec<(&PullSecret, &RegistryLogin)> = failure
        .pull_secrets
        .iter()
        .filter_map(|s| s.login_for_image(host, repo.unwrap_or_default()).map(|l| (s, l)))
        .collect();
    let unusable = unusable_secrets(ctx, failure, host, repo.unwrap_or_default());
    let path = if logins.is_empty() && !unusable.is_empty() {
        AuthPath::SecretsUnusable(unusable)
    } else if logins.is_empty() {
        AuthPath::Cluster(assess_cluster(ctx, failure, registry, repo, absence.is_some()))
    } else {
        AuthPath::Secrets(
            logins
                .into_iter()
                .map(|(secret, login)| SecretLogin {
                    secret,
                    login,
                    kind: assess_login(ctx, host, registry, repo, login),
                })
                .collect(),
        )
    };
    Some(AuthAssessment { registry, path, absence })
}

/// The pod's pull secrets that the kubelet could not use for a pull from `host`. A missing one
/// counts when the evidence shows it missing: other secrets were exported (so secrets were
/// read), or the kubelet said so (`FailedToRetrieveImagePullSecret` naming it).
fn unusable_secrets<'a>(ctx: &Context<'a>, failure: &'a PullFailure, host: &str, repo: &str) -> UnusableSecrets<'a> {
    let kubelet_says_missing = |name: &str| {
        ctx.evidence.events.iter().any(|ev| {
            ev.reason.as_deref() == Some("FailedToRetrieveImagePullSecret")
                && ev.involved_object.namespace.as_deref() == Some(failure.pod.namespace.as_str())
                && ev.involved_object.name.as_deref() == Some(failure.pod.name.as_str())
                && ev.message.as_deref().is_some_and(|m| mentions(m, name))
        })
    };
    let mut out = UnusableSecrets::default();
    for name in &failure.pull_secret_names {
        let found = failure.pull_secrets.iter().any(|s| &s.name == name);
        if !found && (failure.missing_pull_secrets.contains(name) || kubelet_says_missing(name)) {
            out.missing.push(name.as_str());
        }
    }
    if azure_model::container_registry::is_acr_login_server(host) {
        let acr_key = |l: &RegistryLogin| azure_model::container_registry::is_acr_login_server(&l.registry);
        out.mismatched = failure
            .pull_secrets
            .iter()
            .filter(|s| s.logins.iter().all(|l| !l.serves(host, repo)) && s.logins.iter().any(acr_key))
            .collect();
    }
    out
}

/// Whether `message` names `name` as a whole word (secret names hold `-` and `.`).
fn mentions(message: &str, name: &str) -> bool {
    message.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')).any(|w| w == name)
}

fn assess_login<'a>(
    ctx: &Context<'a>,
    host: &str,
    registry: Option<&'a Registry>,
    repo: Option<&str>,
    login: &RegistryLogin,
) -> SecretKind<'a> {
    let inv = &ctx.evidence.azure;
    let user = login.username.trim();
    let registry_name = registry.map(|r| r.name.as_str()).unwrap_or_else(|| registry_name_of_host(host));
    if user.eq_ignore_ascii_case(registry_name) {
        return SecretKind::Admin { enabled: registry.and_then(|r| r.properties.admin_user_enabled) };
    }
    if is_guid(user) && !user.eq_ignore_ascii_case(NULL_GUID) {
        let app = inv.application(user);
        let principal = inv.service_principal_of_app(user).map(|sp| Principal {
            object_id: sp.id.clone(),
            describe: format!(
                "service principal {} (appId {user})",
                sp.display_name.as_deref().or(app.and_then(|a| a.display_name.as_deref())).unwrap_or(user)
            ),
            id: user.to_string(),
            of_cluster: false,
            app: true,
        });
        let verdict = match (registry, &principal) {
            (Some(r), Some(p)) => Some(role_verdict(ctx, r, p, repo)),
            _ => None,
        };
        return SecretKind::ServicePrincipal {
            app_id: user.to_string(),
            app,
            expired: app.is_some_and(|a| !a.has_valid_secret(ctx.now)),
            verdict,
            principal,
        };
    }
    SecretKind::Other
}

/// The cluster's pulling principal: its kubelet identity, or its service principal.
pub(crate) fn cluster_principal(ctx: &Context<'_>) -> Option<Principal> {
    let inv = &ctx.evidence.azure;
    let cluster = ctx.cluster?;
    if let Some(app_id) = cluster.properties.service_principal_client_id() {
        let sp = inv.service_principal_of_app(app_id)?;
        let name = sp.display_name.as_deref().or(inv.application(app_id).and_then(|a| a.display_name.as_deref()));
        return Some(Principal {
            object_id: sp.id.clone(),
            describe: format!(
                "service principal {} (appId {app_id}) of cluster {}",
                name.unwrap_or(app_id),
                cluster.name
            ),
            id: app_id.to_string(),
            of_cluster: true,
            app: true,
        });
    }
    let k = cluster.properties.kubelet_identity()?;
    let object_id = k.object_id.clone()?;
    let id = k.resource_id.clone().unwrap_or_else(|| object_id.clone());
    Some(Principal {
        describe: format!("kubelet identity {} of cluster {}", name_of(&id), cluster.name),
        object_id,
        id,
        of_cluster: true,
        app: false,
    })
}

fn assess_cluster<'a>(
    ctx: &Context<'a>,
    failure: &PullFailure,
    registry: Option<&'a Registry>,
    repo: Option<&str>,
    image_absent: bool,
) -> ClusterOutcome<'a> {
    let inv = &ctx.evidence.azure;
    let Some(cluster) = ctx.cluster else { return ClusterOutcome::Unknown };
    let sp_app = cluster.properties.service_principal_client_id();
    if let Some(app_id) = sp_app
        && let Some(app) = inv.application(app_id)
        && !app.has_valid_secret(ctx.now)
    {
        return ClusterOutcome::SpExpired { app_id: app_id.to_string(), app };
    }
    // Credentials were sent: the credential provider worked, so the identity reached the node.
    if !failure.symptom.credentials_sent()
        && let Some(k) = cluster.properties.kubelet_identity()
        && let Some(identity_id) = k.resource_id.clone()
    {
        let lacking: Vec<_> = scale_sets_of(ctx, failure)
            .into_iter()
            .filter(|v| !v.identity.as_ref().is_some_and(|i| i.has_user_assigned(&identity_id)))
            .collect();
        if !lacking.is_empty() {
            return ClusterOutcome::NotOnVmss { identity_id, scale_sets: lacking };
        }
    }
    // A service principal whose application could not be read: its secrets cannot be judged.
    // When nothing else explains the 401 (the principal's roles allow pulling, or cannot be
    // judged either, and the image is not known to be missing), the secret is the suspect.
    let unverified = sp_app
        .filter(|app_id| inv.application(app_id).is_none() && !image_absent)
        .map(|app_id| (app_id, unreadable_application(inv, app_id)))
        .filter(|(_, missing)| !missing.is_empty())
        .map(|(app_id, missing)| ClusterOutcome::SpUnverified { app_id: app_id.to_string(), missing });
    // A service principal whose only valid secrets were created after the pulls began failing:
    // when its rights allow pulling (or cannot be read), the cluster still holds the old one.
    let renewed = sp_app
        .filter(|_| !image_absent)
        .and_then(|app_id| inv.application(app_id).map(|app| (app_id, app)))
        .and_then(|(app_id, app)| renewed_after_failure(ctx, failure, app_id, app));
    let Some(principal) = cluster_principal(ctx) else { return unverified.unwrap_or(ClusterOutcome::Unknown) };
    match registry {
        Some(r) => match role_verdict(ctx, r, &principal, repo) {
            RoleVerdict::Granted(g) => match (unverified, renewed) {
                (Some(u), _) | (None, Some(u)) => u,
                // Nothing was sent to a host the AKS credential provider serves, by a principal
                // that may pull (and, for a kubelet identity, is on the scale sets: checked
                // above): the provider on the node gave the kubelet nothing.
                // A kubelet identity's scale sets must be in the inventory: without them, the
                // identity missing from them (IMDS refusing) is as likely, and nothing is said.
                (None, None)
                    if failure.symptom.only_anonymous()
                        && !image_absent
                        && failure.registry_host().is_some_and(is_acr_login_server)
                        && (sp_app.is_some() || !scale_sets_of(ctx, failure).is_empty()) =>
                {
                    ClusterOutcome::ProviderGaveNothing {
                        principal,
                        granted: g,
                        scale_sets: scale_sets_of(ctx, failure),
                    }
                }
                (None, None) => ClusterOutcome::Rights { verdict: RoleVerdict::Granted(g), principal },
            },
            verdict => ClusterOutcome::Rights { verdict, principal },
        },
        None => renewed.unwrap_or(ClusterOutcome::NoRegistry { principal }),
    }
}

/// How long before the first failure an expired secret may have ended and still be the one
/// that broke the pulls: clocks of nodes, the API server and Entra ID disagree a little.
const CLOCK_SKEW: Duration = Duration::minutes(10);

/// How long after the newest valid secret started the pulls must still have failed before the
/// cluster is judged not to hold it. `az aks update-credentials --reset-service-principal`
/// creates the secret first and the reset then takes minutes, and pods in `ImagePullBackOff`
/// keep logging 401 through the reset and their backoff (up to 5 minutes): failures within this
/// window of the new secret are the tail of a reset that may well have succeeded.
const RESET_GRACE: Duration = Duration::minutes(20);

/// [`ClusterOutcome::SpRenewedNotApplied`] when `app` (the cluster's service principal) has a
/// secret that had ended by the time the pulls began failing and every secret valid now started
/// after that, the pulls were still failing more than [`RESET_GRACE`] after the newest of them
/// started, and the pull was refused as a service principal with a dead secret is (401, or no
/// credentials at all).
fn renewed_after_failure<'a>(
    ctx: &Context<'a>,
    failure: &PullFailure,
    app_id: &str,
    app: &'a Application,
) -> Option<ClusterOutcome<'a>> {
    let (since, last) = (failure.first_seen?, failure.last_seen?);
    let symptom = &failure.symptom;
    if !(symptom.status() == Some(401) || symptom.only_anonymous()) {
        return None;
    }
    let (valid, dead): (Vec<&PasswordCredential>, Vec<&PasswordCredential>) =
        app.password_credentials.iter().partition(|c| c.is_valid_at(ctx.now));
    let expired: Vec<&PasswordCredential> =
        dead.into_iter().filter(|c| c.end().is_some_and(|e| e <= ctx.now && e <= since + CLOCK_SKEW)).collect();
    let started_after =
        |c: &&PasswordCredential| c.start_date_time.as_deref().and_then(parse_time).is_some_and(|s| s > since);
    if expired.is_empty() || valid.is_empty() || !valid.iter().all(started_after) {
        return None;
    }
    // The pulls still failed well after the newest valid secret existed: a cluster given it
    // would have pulled (after a successful reset the old failures stop, once the reset and
    // the pods' backoff are over: RESET_GRACE).
    let newest = valid.iter().filter_map(|c| c.start_date_time.as_deref().and_then(parse_time)).max()?;
    if last <= newest + RESET_GRACE {
        return None;
    }
    Some(ClusterOutcome::SpRenewedNotApplied { app_id: app_id.to_string(), app, expired, renewed: valid, since, last })
}

/// The unavailable reads that would have shown application `app_id` (its password
/// credentials): Microsoft Graph as a whole, or the application itself.
pub(crate) fn unreadable_application<'a>(inv: &'a Inventory, app_id: &str) -> Vec<&'a Unavailable> {
    use crate::collect::azure::what;
    let app_id = app_id.to_ascii_lowercase();
    inv.unavailable
        .iter()
        .filter(|u| {
            let w = u.what.to_ascii_lowercase();
            w.starts_with(what::GRAPH)
                || (w.starts_with(what::DIRECTORY) && w.contains("application") && w.contains(&app_id))
        })
        .collect()
}

/// The scale sets backing the failing pod's node pool (every pool's when the pool is unknown).
pub(crate) fn scale_sets_of<'a>(
    ctx: &Context<'a>,
    failure: &PullFailure,
) -> Vec<&'a Resource<VirtualMachineScaleSetProperties>> {
    let Some(node_rg) = ctx.cluster.and_then(|c| c.properties.node_resource_group.as_deref()) else { return vec![] };
    let pool = failure.platform.pool.as_deref();
    ctx.evidence
        .azure
        .virtual_machine_scale_sets
        .iter()
        .filter(|v| resource_group_of(&v.id).is_some_and(|rg| rg.eq_ignore_ascii_case(node_rg)))
        .filter(|v| match (pool, v.tags.get(POOL_NAME_TAG)) {
            (Some(p), Some(t)) => t.eq_ignore_ascii_case(p),
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect()
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits).
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_model::authorization::{CONTRIBUTOR, OWNER, READER};

    fn ra(role: &str, principal: &str, condition: Option<&str>) -> Assignment {
        Resource {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/x".into(),
            name: "x".into(),
            resource_type: "Microsoft.Authorization/roleAssignments".into(),
            location: None,
            tags: Default::default(),
            sku: None,
            identity: None,
            etag: None,
            properties: RoleAssignmentProperties {
                role_definition_id: format!(
                    "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}"
                ),
                principal_id: principal.into(),
                principal_type: Some("ServicePrincipal".into()),
                scope: Some("/subscriptions/s/resourceGroups/rg".into()),
                condition: condition.map(str::to_string),
                description: None,
            },
        }
    }

    #[test]
    fn which_roles_pull_in_each_mode() {
        let inv = Inventory::default();
        let g = |role: &str, abac| grants_pull(&inv, &ra(role, "p", None), abac, Some("shop/web"));
        // Legacy mode: AcrPull, AcrPush, Owner, Contributor pull; Reader and Repository Reader do not.
        assert_eq!(g(ACR_PULL.id, false), Grant::Yes);
        assert_eq!(g(azure_model::authorization::ACR_PUSH.id, false), Grant::Yes);
        assert_eq!(g(OWNER.id, false), Grant::Yes);
        assert_eq!(g(CONTRIBUTOR.id, false), Grant::Yes);
        assert_eq!(g(READER.id, false), Grant::No);
        assert_eq!(g(REPOSITORY_READER.id, false), Grant::No);
        // ABAC mode: only the repository roles.
        assert_eq!(g(ACR_PULL.id, true), Grant::No);
        assert_eq!(g(OWNER.id, true), Grant::No);
        assert_eq!(g(REPOSITORY_READER.id, true), Grant::Yes);
        assert_eq!(g(azure_model::authorization::REPOSITORY_WRITER.id, true), Grant::Yes);
        assert_eq!(g(azure_model::authorization::REPOSITORY_WRITER.id, false), Grant::No);
        // A role nobody knows.
        assert_eq!(g("11111111-2222-3333-4444-555555555555", false), Grant::Unknown);
    }

    #[test]
    fn custom_roles_are_read_from_the_inventory() {
        let inv = Inventory::from_json(
            r#"{"resources": [
              {"id": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/aaaaaaaa-0000-0000-0000-000000000001",
               "name": "aaaaaaaa-0000-0000-0000-000000000001", "type": "Microsoft.Authorization/roleDefinitions",
               "properties": {"roleName": "Image puller", "permissions": [{"actions": ["Microsoft.ContainerRegistry/registries/*"], "notActions": []}]}},
              {"id": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/aaaaaaaa-0000-0000-0000-000000000002",
               "name": "aaaaaaaa-0000-0000-0000-000000000002", "type": "Microsoft.Authorization/roleDefinitions",
               "properties": {"roleName": "No pull", "permissions": [{"actions": ["Microsoft.ContainerRegistry/registries/*"], "notActions": ["Microsoft.ContainerRegistry/registries/pull/read"]}]}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(grants_pull(&inv, &ra("aaaaaaaa-0000-0000-0000-000000000001", "p", None), false, None), Grant::Yes);
        assert_eq!(grants_pull(&inv, &ra("aaaaaaaa-0000-0000-0000-000000000002", "p", None), false, None), Grant::No);
        assert_eq!(role_name(&inv, &ra("aaaaaaaa-0000-0000-0000-000000000001", "p", None)), "Image puller");
    }

    #[test]
    fn abac_conditions_scope_repositories() {
        let cond = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'shop/'))";
        assert_eq!(condition_allows(cond, "shop/web"), Some(true));
        assert_eq!(condition_allows(cond, "billing/api"), Some(false));
        assert_eq!(condition_allows("@Resource[...repositories:name] ForAnyOfAnyValues:StringEquals {'a'}", "a"), None);
        assert_eq!(condition_allows("@Request[something:else] StringEquals 'x'", "a"), Some(true));
        let inv = Inventory::default();
        let reader = ra(REPOSITORY_READER.id, "p", Some(cond));
        assert_eq!(grants_pull(&inv, &reader, true, Some("shop/web")), Grant::Yes);
        assert_eq!(grants_pull(&inv, &reader, true, Some("billing/api")), Grant::No);
    }

    #[test]
    fn guids() {
        assert!(is_guid("0f6c1d1e-2b3a-4c5d-8e9f-a0b1c2d3e4f5"));
        assert!(is_guid(NULL_GUID));
        assert!(!is_guid("acrshop"));
        assert!(!is_guid("0f6c1d1e-2b3a-4c5d-8e9f-a0b1c2d3e4fz"));
    }
}
