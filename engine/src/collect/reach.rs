//! The engine's reach: evidence that could not be collected lowers the confidence of the
//! findings that rest on it, and says so in their proof.
//!
//! A missing read is not a missing resource: when the role assignments at a registry cannot be
//! read, "no assignment grants pull" is a guess, not a fact. Each [`Unavailable`] entry is mapped
//! (by the prefix of its `what`, see [`super::azure::what`]) to the finding codes whose
//! conclusions depend on it; those findings drop one confidence level (high -> medium -> low).

use azure_model::inventory::Unavailable;

use super::azure::what;
use crate::finding::{Confidence, Finding, FindingCode};

use FindingCode::*;

const IDENTITY: &[FindingCode] =
    &[AcrPullRoleMissing, AcrAbacRoleMissing, AcrRoleOnStalePrincipal, SpSecretExpired, KubeletIdentityNotOnVmss];
const ROLES: &[FindingCode] =
    &[AcrPullRoleMissing, AcrAbacRoleMissing, AcrRoleOnStalePrincipal, PullSecretInvalidSp, ImageNotFound];
const SECRETS: &[FindingCode] = &[
    PullSecretInvalidSp,
    PullSecretStaleAdmin,
    AcrPullRoleMissing,
    AcrAbacRoleMissing,
    AcrRoleOnStalePrincipal,
    SpSecretExpired,
    KubeletIdentityNotOnVmss,
    ImageNotFound,
];
const NETWORK: &[FindingCode] = &[
    PrivateDnsZoneNotLinked,
    AcrFirewallDeniesEgress,
    VnetPeeringMissing,
    VnetPeeringDisconnected,
    NsgBlocksRegistry,
    RouteBlackhole,
];
const DIRECTORY: &[FindingCode] = &[SpSecretExpired, PullSecretInvalidSp, AcrRoleOnStalePrincipal, AcrPullRoleMissing];
const NODES: &[FindingCode] = &[
    PlatformMismatch,
    KubeletIdentityNotOnVmss,
    NsgBlocksRegistry,
    RouteBlackhole,
    VnetPeeringMissing,
    VnetPeeringDisconnected,
    PrivateDnsZoneNotLinked,
];

/// The codes whose conclusions may depend on the evidence `u` describes ([`depends_on`] decides
/// for one finding).
pub fn codes_depending_on(u: &Unavailable) -> &'static [FindingCode] {
    let w = u.what.to_ascii_lowercase();
    let has = |p: &str| w.starts_with(p);
    if has(what::ARM)
        || has(what::SUBSCRIPTION)
        || has(what::CLUSTER)
        || has(what::REGISTRY)
        || has("kubernetes: events")
    {
        FindingCode::ALL
    } else if has(what::ROLE_ASSIGNMENTS) || has(what::ROLE_DEFINITION) {
        ROLES
    } else if has(what::SCALE_SETS) {
        IDENTITY
    } else if has(what::NETWORK) {
        NETWORK
    } else if has(what::DIRECTORY) || has(what::GRAPH) {
        DIRECTORY
    } else if has("kubernetes: secret") || has("kubernetes: service account") {
        SECRETS
    } else if has("kubernetes: nodes") {
        NODES
    } else {
        &[]
    }
}

fn lower(c: Confidence) -> Confidence {
    match c {
        Confidence::High => Confidence::Medium,
        Confidence::Medium | Confidence::Low => Confidence::Low,
    }
}

/// Whether `f`'s conclusion depends on the evidence `u` describes: its code is among
/// [`codes_depending_on`], and for Microsoft Graph (applications, service principals) the finding
/// is about a service principal. Graph decides nothing about a managed identity: a role finding
/// on a managed-identity cluster stands whether or not Graph could be read.
pub fn depends_on(f: &Finding, u: &Unavailable) -> bool {
    if !codes_depending_on(u).contains(&f.code) {
        return false;
    }
    let w = u.what.to_ascii_lowercase();
    let graph = w.starts_with(what::DIRECTORY) || w.starts_with(what::GRAPH);
    match f.code {
        AcrPullRoleMissing | AcrRoleOnStalePrincipal if graph => rests_on_service_principal(f),
        _ => true,
    }
}

/// The finding's principal is a service principal (not a managed identity): it blames one, or
/// names one as the principal in its summary or proof.
fn rests_on_service_principal(f: &Finding) -> bool {
    f.blamed.iter().any(|b| b.kind == "ServicePrincipal")
        || f.summary.contains("service principal")
        || f.evidence.iter().any(|e| e.starts_with("service principal "))
}

/// Lowers the confidence of every finding that rests on unavailable evidence (once per finding,
/// however many entries apply) and adds a proof line naming what was missing.
pub fn apply(findings: &mut [Finding], unavailable: &[Unavailable]) {
    for f in findings {
        let relevant: Vec<&Unavailable> = unavailable.iter().filter(|u| depends_on(f, u)).collect();
        if relevant.is_empty() {
            continue;
        }
        f.confidence = lower(f.confidence);
        const SHOWN: usize = 3;
        for u in relevant.iter().take(SHOWN) {
            f.evidence.push(format!("evidence unavailable: {} ({}); confidence lowered", u.what, u.reason));
        }
        if relevant.len() > SHOWN {
            f.evidence.push(format!("and {} more unavailable reads", relevant.len() - SHOWN));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::plan::Plan;

    fn finding(code: FindingCode) -> Finding {
        Finding {
            code,
            severity: Severity::Error,
            confidence: Confidence::High,
            summary: "s".into(),
            blamed: vec![],
            evidence: vec!["kubelet: x".into()],
            pods: vec![],
            plan: Plan::default(),
        }
    }

    #[test]
    fn only_dependent_findings_are_lowered() {
        let mut fs = vec![finding(AcrPullRoleMissing), finding(PlatformMismatch)];
        let u = Unavailable {
            what: format!(
                "{} at /subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerRegistry/registries/a",
                what::ROLE_ASSIGNMENTS
            ),
            reason: "403 AuthorizationFailed: no".into(),
        };
        apply(&mut fs, &[u.clone(), u]);
        assert_eq!(fs[0].confidence, Confidence::Medium);
        assert!(fs[0].evidence.iter().any(|e| e.starts_with("evidence unavailable: azure: role assignments")));
        assert_eq!(fs[1].confidence, Confidence::High);
        assert_eq!(fs[1].evidence.len(), 1);
    }

    fn graph_unavailable() -> Unavailable {
        Unavailable {
            what: format!("{}: service principals of application 0b61", what::DIRECTORY),
            reason: "403 Authorization_RequestDenied: no".into(),
        }
    }

    #[test]
    fn graph_lowers_only_service_principal_findings() {
        use crate::finding::Blame;
        let mut mi = finding(AcrPullRoleMissing);
        mi.summary = "The kubelet identity aks-agentpool of cluster aks holds no role that lets it pull.".into();
        mi.blamed = vec![Blame::new("ManagedIdentity", "/subscriptions/s/.../aks-agentpool")];
        mi.evidence.push("kubelet identity aks-agentpool of cluster aks has object id o1 (resource r)".into());
        let mut mi_stale = finding(AcrRoleOnStalePrincipal);
        mi_stale.summary =
            "Registry a grants pull to a principal cluster aks no longer uses, not to its current kubelet identity k."
                .into();
        let mut sp = finding(AcrPullRoleMissing);
        sp.summary = "The service principal app (appId a) of cluster aks holds no role that lets it pull.".into();
        sp.blamed = vec![Blame::new("ServicePrincipal", "a")];
        let mut sp_stale = finding(AcrRoleOnStalePrincipal);
        sp_stale.evidence.push("service principal app (appId a) of cluster aks has object id o2".into());
        let mut fs = vec![
            mi,
            mi_stale,
            sp,
            sp_stale,
            finding(SpSecretExpired),
            finding(PullSecretInvalidSp),
            finding(PlatformMismatch),
        ];
        apply(&mut fs, &[graph_unavailable()]);
        let got: Vec<_> = fs.iter().map(|f| (f.code, f.confidence)).collect();
        assert_eq!(
            got,
            [
                (AcrPullRoleMissing, Confidence::High),
                (AcrRoleOnStalePrincipal, Confidence::High),
                (AcrPullRoleMissing, Confidence::Medium),
                (AcrRoleOnStalePrincipal, Confidence::Medium),
                (SpSecretExpired, Confidence::Medium),
                (PullSecretInvalidSp, Confidence::Medium),
                (PlatformMismatch, Confidence::High),
            ]
        );
        // Other reads still lower a managed identity's role finding.
        let mut mi = vec![fs[0].clone()];
        apply(&mut mi, &[Unavailable { what: format!("{} at /x", what::ROLE_ASSIGNMENTS), reason: "403".into() }]);
        assert_eq!(mi[0].confidence, Confidence::Medium);
    }

    #[test]
    fn a_missing_secret_lowers_pull_secret_findings() {
        let mut fs = vec![finding(PullSecretStaleAdmin)];
        fs[0].confidence = Confidence::Medium;
        apply(
            &mut fs,
            &[Unavailable { what: "kubernetes: secret shop/acr".into(), reason: "403 Forbidden: no".into() }],
        );
        assert_eq!(fs[0].confidence, Confidence::Low);
    }
}
