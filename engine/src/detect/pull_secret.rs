//! Pull secrets: `PULL_SECRET_STALE_ADMIN`, `PULL_SECRET_INVALID_SP`, `PULL_SECRET_MISSING` and
//! `PULL_SECRET_REGISTRY_MISMATCH`.
//!
//! A pod that names pull secrets the kubelet cannot use for the image (not in the namespace, or
//! with no key that serves the image as the kubelet matches keys) is pulled with the node's own
//! credentials instead; the refusal is then the secret's finding, not the node identity's.
//!
//! For `unauthorized` pulls where the pod (or its service account) holds a pull secret with a
//! login for the failing registry, the kubelet sent those credentials; the cluster identity is
//! then not judged. By username:
//! - the registry's name: admin credentials. Admin user disabled, or the registry's content
//!   has the image: `PULL_SECRET_STALE_ADMIN` (the password no longer matches).
//! - an application id: that service principal. No valid password credential: expired; valid
//!   ones but a pull role held and the image present: the secret is not among them. Both are
//!   `PULL_SECRET_INVALID_SP`. A service principal that lacks the role gets the role finding.
//! - the null GUID (an ACR refresh token) or anything else: not judged.
//!
//! Only usernames are read; secret values never reach a finding.

use super::Context;
use super::access::{AuthPath, RoleVerdict, SecretKind, SecretLogin, assess_auth};
use super::identity::rights;
use super::support::{Draft, Findings};
use crate::evidence::PullFailure;
use crate::finding::{Blame, Confidence, Finding, FindingCode};
use crate::plan::Action;

/// Runs the detector.
pub(super) fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Findings::default();
    for f in &ctx.failures {
        let Some(a) = assess_auth(ctx, f) else { continue };
        if let AuthPath::SecretsUnusable(u) = &a.path {
            unusable(&mut out, ctx, f, a.registry, u);
            continue;
        }
        let AuthPath::Secrets(logins) = &a.path else { continue };
        // Good credentials and a missing image: the image detector's.
        if a.credentials_fine() && a.absence.is_some() {
            continue;
        }
        for login in logins {
            judge(&mut out, ctx, f, a.registry, login);
        }
    }
    out.into_vec()
}

/// How the pod's secrets can be put right: from the registry's admin credentials when its admin
/// user is on (automatic), otherwise by hand.
fn secret_fix(namespace: &str, name: &str, host: &str, registry: Option<&super::access::Registry>) -> Action {
    if registry.is_some_and(|r| r.properties.admin_user_enabled == Some(true)) {
        return Action::ReplacePullSecret {
            namespace: namespace.to_string(),
            secret_name: name.to_string(),
            registry: host.to_string(),
            credential_source: "adminCredentials".into(),
        };
    }
    let registry_name =
        registry.map(|r| r.name.clone()).unwrap_or_else(|| host.split('.').next().unwrap_or(host).to_string());
    Action::Manual {
        change: None,
        description: format!(
            "create pull secret {namespace}/{name} with credentials for {host} (a service principal or token with pull rights), or drop the reference and give the kubelet identity AcrPull"
        ),
        commands: vec![
            format!(
                "kubectl create secret docker-registry {name} -n {namespace} --docker-server={host} --docker-username=<appId> --docker-password=<secret>"
            ),
            format!("az aks update -n <cluster> -g <resource-group> --attach-acr {registry_name}"),
        ],
    }
}

fn unusable(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    registry: Option<&super::access::Registry>,
    u: &super::access::UnusableSecrets<'_>,
) {
    let Some(host) = f.registry_host() else { return };
    let ns = f.pod.namespace.as_str();
    let repo = f.image.as_ref().map(|i| i.repository.as_str()).unwrap_or_default();
    let kubelet_lines: Vec<String> = ctx
        .evidence
        .events
        .iter()
        .filter(|ev| {
            ev.reason.as_deref() == Some("FailedToRetrieveImagePullSecret")
                && ev.involved_object.namespace.as_deref() == Some(ns)
                && ev.involved_object.name.as_deref() == Some(f.pod.name.as_str())
        })
        .filter_map(|ev| ev.message.as_deref())
        .map(|m| format!("kubelet (FailedToRetrieveImagePullSecret): {m}"))
        .take(1)
        .collect();
    let named = format!(
        "pod {ns}/{} names imagePullSecrets [{}] (with its service account's)",
        f.pod.name,
        f.pull_secret_names.join(", ")
    );
    for name in &u.missing {
        let secret_ref = format!("{ns}/{name}");
        let elsewhere: Vec<String> = ctx
            .evidence
            .secrets
            .iter()
            .filter(|s| s.metadata.name.as_deref() == Some(*name) && s.metadata.namespace.as_deref() != Some(ns))
            .filter_map(|s| s.metadata.namespace.clone())
            .collect();
        let mut d = Draft::new(
            FindingCode::PullSecretMissing,
            Confidence::High,
            f,
            format!(
                "Pod {ns}/{} names pull secret {name}, which is not in namespace {ns}: the kubelet pulled {host} without it, and the registry refused the node's own credentials.",
                f.pod.name
            ),
        )
        .blame(Blame::new("PullSecret", secret_ref.clone()).note(format!("not found in namespace {ns}")))
        .line(named.clone())
        .line(format!("secret {secret_ref}: not found"))
        .lines(kubelet_lines.clone());
        if !elsewhere.is_empty() {
            d = d.line(format!(
                "a secret named {name} exists in namespace(s) {} (secrets are per namespace)",
                elsewhere.join(", ")
            ));
        }
        d = d.action(secret_fix(ns, name, host, registry));
        out.add(&format!("{secret_ref}|missing"), f, d);
    }
    for s in &u.mismatched {
        let secret_ref = format!("{}/{}", s.namespace, s.name);
        let keys: Vec<String> = s.logins.iter().map(|l| format!("{}{}", l.registry, l.path)).collect();
        let d = Draft::new(
            FindingCode::PullSecretRegistryMismatch,
            Confidence::High,
            f,
            format!(
                "Pull secret {secret_ref} has entries for {} but none for {host}: the kubelet never uses it for {host}/{repo}, and the registry refused the node's own credentials.",
                keys.join(", ")
            ),
        )
        .blame(Blame::new("PullSecret", secret_ref.clone()).note(format!("no entry serves {host}")))
        .line(named.clone())
        .line(format!("pull secret {secret_ref}: auths keys [{}]", keys.join(", ")))
        .line(format!(
            "the image is {host}/{repo}; the kubelet uses a key only when its host labels match (globs allowed), its port is the same and its path is a prefix: no key does"
        ))
        .action(secret_fix(&s.namespace, &s.name, host, registry));
        out.add(&format!("{secret_ref}|mismatch"), f, d);
    }
}

fn judge(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    registry: Option<&super::access::Registry>,
    l: &SecretLogin<'_>,
) {
    let host = l.login.registry.as_str();
    let secret_ref = format!("{}/{}", l.secret.namespace, l.secret.name);
    let key = format!("{secret_ref}|{host}");
    let holds = format!("pull secret {secret_ref}: entry for {host} has username {}", l.login.username);
    let no_password =
        (!l.login.has_password).then(|| format!("pull secret {secret_ref}: the entry for {host} has no password"));
    match &l.kind {
        SecretKind::Admin { enabled } => {
            let registry_name = registry.map(|r| r.name.as_str()).unwrap_or(l.login.username.as_str());
            let (confidence, state) = match enabled {
                Some(false) => (Confidence::High, "the admin user is disabled (adminUserEnabled = false)"),
                Some(true) => (
                    Confidence::High,
                    "adminUserEnabled = true, so the stored password no longer matches (regenerated)",
                ),
                None => (Confidence::Medium, "the registry is not in the inventory; adminUserEnabled unknown"),
            };
            let mut d = Draft::new(
                FindingCode::PullSecretStaleAdmin,
                confidence,
                f,
                format!(
                    "Pull secret {secret_ref} holds admin credentials of registry {registry_name} that the registry refuses: {}.",
                    if *enabled == Some(false) { "its admin user is disabled" } else { "the password is out of date" }
                ),
            )
            .blame(Blame::new("PullSecret", secret_ref.clone()).note(format!("admin login for {host} is refused")))
            .line(holds)
            .line(format!("username {} is the registry's admin user; registry {registry_name}: {state}", l.login.username))
            .lines(no_password);
            if let Some(r) = registry {
                d = d.blame(Blame::new("Registry", r.id.clone()).note(state.to_string()));
            }
            if *enabled == Some(false) {
                d = d.action(Action::Manual {
                    change: None,
                    description: format!(
                        "the admin user of {registry_name} is disabled: enable it (then replace the secret) or switch {secret_ref} to a service principal or the kubelet identity"
                    ),
                    commands: vec![format!("az acr update -n {registry_name} --admin-enabled true")],
                });
            }
            d = d.action(Action::ReplacePullSecret {
                namespace: l.secret.namespace.clone(),
                secret_name: l.secret.name.clone(),
                registry: host.to_string(),
                credential_source: "adminCredentials".into(),
            });
            out.add(&key, f, d);
        }
        SecretKind::ServicePrincipal { app_id, app, expired, verdict, principal } => {
            if !expired
                && l.login.has_password
                && let (Some(registry), Some(principal), Some(v)) = (registry, principal, verdict)
                && !matches!(v, RoleVerdict::Granted(_))
            {
                // Valid credentials without the role: the role is what is missing.
                rights(out, ctx, f, registry, principal, v);
                return;
            }
            let name = app.and_then(|a| a.display_name.as_deref()).unwrap_or(app_id);
            let (confidence, why) = match (app, expired, l.login.has_password) {
                (_, _, false) => (Confidence::High, "the entry has no password".to_string()),
                (Some(_), true, _) => {
                    (Confidence::High, format!("every password credential of application {name} has expired"))
                }
                (Some(a), false, _) => (
                    if matches!(verdict, Some(RoleVerdict::Granted(_))) {
                        Confidence::High
                    } else {
                        Confidence::Medium
                    },
                    format!(
                        "application {name} has {} valid password credential(s), and the secret stored is not among them",
                        a.password_credentials.iter().filter(|c| c.is_valid_at(ctx.now)).count()
                    ),
                ),
                (None, _, _) => (
                    Confidence::Medium,
                    format!("application {app_id} is not in the inventory; its credentials cannot be checked"),
                ),
            };
            let mut d = Draft::new(
                FindingCode::PullSecretInvalidSp,
                confidence,
                f,
                format!(
                    "Pull secret {secret_ref} holds credentials of service principal {name} ({app_id}) that Entra ID refuses: {}.",
                    if *expired { "its secret has expired" } else { "the secret is wrong" }
                ),
            )
            .blame(Blame::new("PullSecret", secret_ref.clone()).note(why.clone()))
            .blame(Blame::new("ServicePrincipal", app_id.clone()).note(if *expired { "secret expired" } else { "secret in the pull secret not valid" }))
            .line(holds)
            .line(why);
            if let Some(a) = app {
                for c in &a.password_credentials {
                    d = d.line(format!(
                        "application {name} ({app_id}): password credential {} {} {}",
                        c.display_name.as_deref().or(c.key_id.as_deref()).unwrap_or("(unnamed)"),
                        if c.is_valid_at(ctx.now) { "valid until" } else { "ended" },
                        c.end_date_time.as_deref().unwrap_or("never")
                    ));
                }
            }
            if let Some(RoleVerdict::Granted(g)) = verdict {
                d = d.line(format!(
                    "the service principal holds {} on the registry, so the credentials, not the role, are refused",
                    g.iter().map(|ra| super::access::role_name(&ctx.evidence.azure, ra)).collect::<Vec<_>>().join(", ")
                ));
            }
            d = d
                .line(format!(
                    "Entra ID answers {} (never shown in kubelet events)",
                    if *expired { "AADSTS7000222 (expired secret)" } else { "AADSTS7000215 (invalid secret)" }
                ))
                .action(Action::RotateServicePrincipalSecret { app_id: app_id.clone(), cluster_id: None })
                .action(Action::ReplacePullSecret {
                    namespace: l.secret.namespace.clone(),
                    secret_name: l.secret.name.clone(),
                    registry: host.to_string(),
                    credential_source: format!("newServicePrincipalSecret:{app_id}"),
                });
            out.add(&key, f, d);
        }
        SecretKind::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::world::*;
    use crate::finding::{Confidence, FindingCode};
    use crate::plan::Action;

    const UNAUTHORIZED: &str = "401 Unauthorized";

    /// `web` pulls with a pull secret of `sp-shop-pull` whose credentials are `ends`; the
    /// service principal holds AcrPull when `role`.
    fn sp_secret(ends: &[&str], role: bool) -> World {
        let mut w = World::pull_secret_baseline("sp", K131, "acr-pull", &PULL_APP.app_id(), false);
        if role {
            w.add(role_assignment(
                &registry_id(),
                "ra-pull-sp-acrpull",
                ACR_PULL,
                &PULL_APP.object_id(),
                "ServicePrincipal",
            ));
        }
        w.azure["applications"].as_array_mut().unwrap().push(PULL_APP.application(ends));
        w.azure["servicePrincipals"].as_array_mut().unwrap().push(PULL_APP.service_principal());
        w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", UNAUTHORIZED, None));
        w
    }

    #[test]
    fn expired_versus_not_among_current_credentials() {
        let d = diagnose(&sp_secret(&[EXPIRED], true));
        assert_eq!(d.findings.len(), 1);
        let f = &d.findings[0];
        assert_eq!((f.code, f.confidence), (FindingCode::PullSecretInvalidSp, Confidence::High));
        assert!(f.summary.contains("expired"), "{}", f.summary);
        assert!(f.evidence.iter().any(|e| e.contains("AADSTS7000222")));

        let d = diagnose(&sp_secret(&[EXPIRED, VALID], true));
        let f = &d.findings[0];
        assert_eq!((f.code, f.confidence), (FindingCode::PullSecretInvalidSp, Confidence::High));
        assert!(
            f.evidence
                .iter()
                .any(|e| e.contains("1 valid password credential(s), and the secret stored is not among them")),
            "{:#?}",
            f.evidence
        );
        assert!(f.evidence.iter().any(|e| e.contains("AADSTS7000215")));
        assert_eq!(
            f.plan.actions,
            [
                Action::RotateServicePrincipalSecret { app_id: PULL_APP.app_id(), cluster_id: None },
                Action::ReplacePullSecret {
                    namespace: NS.into(),
                    secret_name: "acr-pull".into(),
                    registry: LOGIN.into(),
                    credential_source: format!("newServicePrincipalSecret:{}", PULL_APP.app_id()),
                },
            ]
        );
    }

    #[test]
    fn the_cluster_identity_is_not_judged_when_a_pull_secret_was_sent() {
        // The kubelet identity holds no AcrPull in this world: no role finding for it.
        let d = diagnose(&scenario("pull-secret-sp-invalid"));
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::PullSecretInvalidSp]);
        assert!(!format!("{:?}", d.findings).contains(&kubelet_object_id()));
    }

    #[test]
    fn a_valid_service_principal_without_the_role_gets_the_role_finding() {
        let d = diagnose(&sp_secret(&[VALID], false));
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::AcrPullRoleMissing]);
        match &d.findings[0].plan.actions[0] {
            Action::CreateRoleAssignment { principal_id, .. } => assert_eq!(principal_id, &PULL_APP.object_id()),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn good_credentials_and_a_missing_image_is_the_image() {
        let mut w = sp_secret(&[VALID], true);
        w.break_rollout("web", Some(&format!("{LOGIN}/shop/web:1.9.9")), |rt, img| {
            rt.token(img, "oauth", UNAUTHORIZED, None)
        });
        assert_eq!(codes(&w), ["IMAGE_NOT_FOUND"]);
    }

    #[test]
    fn admin_user_disabled_or_password_rotated() {
        let d = diagnose(&scenario("pull-secret-admin-stale"));
        let f = &d.findings[0];
        assert_eq!(
            f.plan.actions,
            [Action::ReplacePullSecret {
                namespace: NS.into(),
                secret_name: "acr-admin".into(),
                registry: LOGIN.into(),
                credential_source: "adminCredentials".into(),
            }]
        );
        let mut disabled = scenario("pull-secret-admin-stale");
        disabled.set(&registry_id(), "/properties/adminUserEnabled", serde_json::json!(false));
        let d = diagnose(&disabled);
        assert_eq!(d.findings[0].code, FindingCode::PullSecretStaleAdmin);
        assert!(d.findings[0].summary.contains("admin user is disabled"));
        assert!(d.findings[0].plan.actions[0].needs_human());
    }

    #[test]
    fn acr_tokens_and_unknown_usernames_are_not_judged() {
        for user in ["00000000-0000-0000-0000-000000000000", "ci-token"] {
            let mut w = World::pull_secret_baseline("t", K131, "acr-pull", user, false);
            w.break_rollout("web", None, |rt, img| rt.token(img, "oauth", UNAUTHORIZED, None));
            let d = diagnose(&w);
            assert_eq!(d.failures.len(), 2);
            assert!(d.findings.is_empty(), "{user}: {:?}", d.findings);
        }
    }
}
