//! Which causes a symptom alone points at, ranked: what `pulldoctor explain` prints.

use serde::{Deserialize, Serialize};

use crate::finding::FindingCode;
use crate::symptom::{Credentials, Symptom, SymptomClass};

/// A cause a symptom is consistent with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The cause.
    pub code: FindingCode,
    /// 0..=100: how strongly the symptom alone points at it.
    pub score: u8,
    /// What would confirm it.
    pub confirm_with: String,
}

fn c(code: FindingCode, score: u8, confirm_with: &str) -> Candidate {
    Candidate { code, score, confirm_with: confirm_with.to_string() }
}

/// The causes consistent with `symptom`, best first.
pub fn candidates(symptom: &Symptom) -> Vec<Candidate> {
    use FindingCode::*;
    let acr = symptom
        .image
        .as_ref()
        .map(|i| azure_model::container_registry::is_acr_login_server(&i.registry))
        .unwrap_or(true);
    let mut out = match symptom.class {
        SymptomClass::Unauthorized if symptom.credentials_sent() => vec![
            c(AcrPullRoleMissing, 70, "role assignments at the registry scope for the kubelet identity"),
            c(
                PullSecretInvalidSp,
                55,
                "the pod's imagePullSecrets: username is an appId whose secret is wrong or expired",
            ),
            c(
                PullSecretStaleAdmin,
                55,
                "the pod's imagePullSecrets: username is the registry name; compare with `az acr credential show`",
            ),
            c(SpSecretExpired, 50, "servicePrincipalProfile.clientId and the app's passwordCredentials endDateTime"),
            c(AcrRoleOnStalePrincipal, 45, "the registry's role assignees against the cluster's current principal"),
            c(AcrAbacRoleMissing, 35, "registry roleAssignmentMode = AbacRepositoryPermissions"),
            c(ImageNotFound, 15, "the repository exists (ACR answers 401 for unknown repositories too)"),
        ],
        SymptomClass::Unauthorized => vec![
            c(
                KubeletIdentityNotOnVmss,
                65,
                "the node pool VMSS identity.userAssignedIdentities contains the kubelet identity",
            ),
            c(
                SpSecretExpired,
                45,
                "the cluster's service principal secret expiry (the credential provider may fail silently)",
            ),
            c(ImageNotFound, 40, "the repository name (ACR answers 401 to anonymous requests for any repository)"),
            c(LoginServerTypo, 30, "the image host against the registries' loginServer"),
            c(AcrPullRoleMissing, 25, "role assignments at the registry scope"),
        ],
        SymptomClass::Forbidden => {
            let firewall = symptom.attempts.iter().any(|a| a.client_ip.is_some());
            vec![
                c(
                    PrivateDnsZoneNotLinked,
                    if firewall { 50 } else { 70 },
                    "privatelink.azurecr.io virtualNetworkLinks include the cluster VNet",
                ),
                c(
                    AcrFirewallDeniesEgress,
                    if firewall { 80 } else { 60 },
                    "networkRuleSet.ipRules against the cluster's effectiveOutboundIPs",
                ),
            ]
        }
        SymptomClass::NotFound => vec![c(ImageNotFound, 90, "the registry's repositories and tags")],
        SymptomClass::PlatformMismatch => {
            vec![c(PlatformMismatch, 95, "the node's kubernetes.io/os and arch against the image index")]
        }
        SymptomClass::Timeout => vec![
            c(
                VnetPeeringMissing,
                60,
                "virtualNetworkPeerings between the cluster VNet and the private endpoint's VNet",
            ),
            c(VnetPeeringDisconnected, 60, "peeringState on both sides"),
            c(NsgBlocksRegistry, 50, "outbound NSG rules on the node subnet"),
            c(RouteBlackhole, 30, "route tables with nextHopType None on the node subnet"),
        ],
        SymptomClass::Unreachable => vec![
            c(RouteBlackhole, 60, "route tables on the node subnet"),
            c(NsgBlocksRegistry, 50, "outbound NSG rules on the node subnet"),
            c(VnetPeeringMissing, 30, "peerings to the private endpoint's VNet"),
        ],
        SymptomClass::Dns => vec![
            c(LoginServerTypo, if acr { 40 } else { 85 }, "the image host against the registries' loginServer"),
            c(PrivateDnsZoneNotLinked, 30, "the VNet's DNS view of the registry"),
        ],
        SymptomClass::Tls | SymptomClass::Throttled | SymptomClass::Unknown => vec![],
    };
    if symptom.attempts.iter().all(|a| a.credentials == Some(Credentials::Anonymous))
        && symptom.class == SymptomClass::Unauthorized
    {
        out.retain(|x| x.code != AcrRoleOnStalePrincipal);
    }
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.code.cmp(&b.code)));
    out
}
