//! Stable finding codes: the engine contract names causes with these.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The cause of an image-pull failure, as a stable machine-readable code.
///
/// Codes never change meaning; new causes get new codes. `SCREAMING_SNAKE_CASE` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingCode {
    /// The pulling identity holds no role that grants pull on the registry.
    AcrPullRoleMissing,
    /// The registry is in ABAC repository-permissions mode and the identity only holds AcrPull.
    AcrAbacRoleMissing,
    /// The cluster's service principal has no valid secret.
    SpSecretExpired,
    /// The pull role is assigned to a principal that is not the cluster's current one.
    AcrRoleOnStalePrincipal,
    /// The kubelet identity is not attached to the node pool's scale set.
    KubeletIdentityNotOnVmss,
    /// The node's credential provider gave the kubelet no credentials for an ACR image though
    /// the cluster's identity could pull (its config or plugin is broken on the node).
    CredentialProviderMisconfigured,
    /// A pull secret holds service principal credentials that are wrong or expired.
    PullSecretInvalidSp,
    /// A pull secret holds admin credentials that no longer match the registry.
    PullSecretStaleAdmin,
    /// The pod names a pull secret that is not in its namespace.
    PullSecretMissing,
    /// The pod's pull secret has no entry the kubelet matches to the image's registry.
    PullSecretRegistryMismatch,
    /// The repository or tag does not exist in the registry.
    ImageNotFound,
    /// The image's registry host is a misspelt login server.
    LoginServerTypo,
    /// The private DNS zone is not linked to the cluster's VNet.
    PrivateDnsZoneNotLinked,
    /// The cluster VNet's custom DNS server resolves the registry publicly: the VNet it asks
    /// Azure's resolver from is not linked to the private DNS zone, or it is outside Azure.
    CustomDnsNotForwarding,
    /// The registry firewall does not allow the cluster's egress IP.
    AcrFirewallDeniesEgress,
    /// No VNet peering connects the cluster VNet to the private endpoint's VNet.
    VnetPeeringMissing,
    /// A VNet peering on the path to the private endpoint is Disconnected.
    VnetPeeringDisconnected,
    /// The registry has not approved its private endpoint's connection (Pending, Rejected).
    PrivateEndpointNotApproved,
    /// An NSG rule drops the node's traffic to the registry.
    NsgBlocksRegistry,
    /// Layer downloads, redirected to the registry's dedicated data endpoint, cannot reach it
    /// (an NSG rule, or its private DNS record is missing), though the manifest resolved.
    DataEndpointBlocked,
    /// A route sends traffic to the registry nowhere (`nextHopType: None`).
    RouteBlackhole,
    /// A route sends registry traffic through an appliance that intercepts TLS with a
    /// certificate the nodes do not trust.
    TlsIntercepted,
    /// A route sends registry traffic through an appliance that never completes the TLS
    /// handshake.
    TlsHandshakeTimeout,
    /// The image has no variant for the node's OS/architecture.
    PlatformMismatch,
    /// Not a cause: pulldoctor could not read evidence it needs (a missing permission), so
    /// findings that depend on it have lower confidence or could not be made.
    EvidenceUnavailable,
}

impl FindingCode {
    /// Codes about the engine itself rather than a cause.
    pub const META: &'static [FindingCode] = &[Self::EvidenceUnavailable];

    /// Whether the code names a cause of failing pulls (every code but [`FindingCode::META`]).
    pub fn is_cause(self) -> bool {
        !Self::META.contains(&self)
    }

    /// Every cause code, in catalog order (the meta codes are in [`FindingCode::META`]).
    pub const ALL: &'static [FindingCode] = &[
        Self::AcrPullRoleMissing,
        Self::AcrAbacRoleMissing,
        Self::SpSecretExpired,
        Self::AcrRoleOnStalePrincipal,
        Self::KubeletIdentityNotOnVmss,
        Self::CredentialProviderMisconfigured,
        Self::PullSecretInvalidSp,
        Self::PullSecretStaleAdmin,
        Self::PullSecretMissing,
        Self::PullSecretRegistryMismatch,
        Self::ImageNotFound,
        Self::LoginServerTypo,
        Self::PrivateDnsZoneNotLinked,
        Self::CustomDnsNotForwarding,
        Self::AcrFirewallDeniesEgress,
        Self::VnetPeeringMissing,
        Self::VnetPeeringDisconnected,
        Self::PrivateEndpointNotApproved,
        Self::NsgBlocksRegistry,
        Self::DataEndpointBlocked,
        Self::RouteBlackhole,
        Self::TlsIntercepted,
        Self::TlsHandshakeTimeout,
        Self::PlatformMismatch,
    ];

    /// The wire name, e.g. `ACR_PULL_ROLE_MISSING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AcrPullRoleMissing => "ACR_PULL_ROLE_MISSING",
            Self::AcrAbacRoleMissing => "ACR_ABAC_ROLE_MISSING",
            Self::SpSecretExpired => "SP_SECRET_EXPIRED",
            Self::AcrRoleOnStalePrincipal => "ACR_ROLE_ON_STALE_PRINCIPAL",
            Self::KubeletIdentityNotOnVmss => "KUBELET_IDENTITY_NOT_ON_VMSS",
            Self::CredentialProviderMisconfigured => "CREDENTIAL_PROVIDER_MISCONFIGURED",
            Self::PullSecretInvalidSp => "PULL_SECRET_INVALID_SP",
            Self::PullSecretStaleAdmin => "PULL_SECRET_STALE_ADMIN",
            Self::PullSecretMissing => "PULL_SECRET_MISSING",
            Self::PullSecretRegistryMismatch => "PULL_SECRET_REGISTRY_MISMATCH",
            Self::ImageNotFound => "IMAGE_NOT_FOUND",
            Self::LoginServerTypo => "LOGIN_SERVER_TYPO",
            Self::PrivateDnsZoneNotLinked => "PRIVATE_DNS_ZONE_NOT_LINKED",
            Self::CustomDnsNotForwarding => "CUSTOM_DNS_NOT_FORWARDING",
            Self::AcrFirewallDeniesEgress => "ACR_FIREWALL_DENIES_EGRESS",
            Self::VnetPeeringMissing => "VNET_PEERING_MISSING",
            Self::VnetPeeringDisconnected => "VNET_PEERING_DISCONNECTED",
            Self::PrivateEndpointNotApproved => "PRIVATE_ENDPOINT_NOT_APPROVED",
            Self::NsgBlocksRegistry => "NSG_BLOCKS_REGISTRY",
            Self::DataEndpointBlocked => "DATA_ENDPOINT_BLOCKED",
            Self::RouteBlackhole => "ROUTE_BLACKHOLE",
            Self::TlsIntercepted => "TLS_INTERCEPTED",
            Self::TlsHandshakeTimeout => "TLS_HANDSHAKE_TIMEOUT",
            Self::PlatformMismatch => "PLATFORM_MISMATCH",
            Self::EvidenceUnavailable => "EVIDENCE_UNAVAILABLE",
        }
    }

    /// One line on what the code means.
    pub fn title(self) -> &'static str {
        match self {
            Self::AcrPullRoleMissing => "the pulling identity has no AcrPull role on the registry",
            Self::AcrAbacRoleMissing => {
                "the registry uses ABAC repository permissions and the identity lacks Repository Reader"
            }
            Self::SpSecretExpired => "the cluster's service principal secret has expired",
            Self::AcrRoleOnStalePrincipal => "AcrPull is assigned to a principal the cluster no longer uses",
            Self::KubeletIdentityNotOnVmss => "the kubelet identity is not assigned to the node pool's scale set",
            Self::CredentialProviderMisconfigured => {
                "the node's credential provider gave the kubelet no registry credentials (its config or plugin is broken)"
            }
            Self::PullSecretInvalidSp => "the pull secret's service principal credentials are wrong or expired",
            Self::PullSecretStaleAdmin => "the pull secret holds outdated registry admin credentials",
            Self::PullSecretMissing => "the pod names a pull secret that does not exist in its namespace",
            Self::PullSecretRegistryMismatch => {
                "the pull secret has no entry for the image's registry (its key names another registry)"
            }
            Self::ImageNotFound => "the repository or tag does not exist in the registry",
            Self::LoginServerTypo => "the image names a registry host that does not exist (login server typo)",
            Self::PrivateDnsZoneNotLinked => "the private DNS zone is not linked to the cluster's VNet",
            Self::CustomDnsNotForwarding => {
                "the cluster VNet's custom DNS server does not resolve the registry's private endpoint"
            }
            Self::AcrFirewallDeniesEgress => "the registry firewall does not allow the cluster's egress IP",
            Self::VnetPeeringMissing => "no VNet peering connects the cluster to the registry's private endpoint",
            Self::VnetPeeringDisconnected => "the VNet peering to the private endpoint's VNet is Disconnected",
            Self::PrivateEndpointNotApproved => {
                "the registry has not approved its private endpoint's connection (Pending or Rejected)"
            }
            Self::NsgBlocksRegistry => "a network security group rule blocks traffic to the registry",
            Self::DataEndpointBlocked => {
                "layer downloads cannot reach the registry's data endpoint, though the manifest resolved"
            }
            Self::RouteBlackhole => "a route table sends registry traffic nowhere",
            Self::TlsIntercepted => {
                "a route sends registry traffic through an appliance that intercepts TLS with a certificate the nodes do not trust"
            }
            Self::TlsHandshakeTimeout => {
                "a route sends registry traffic through an appliance that never completes the TLS handshake"
            }
            Self::PlatformMismatch => "the image has no variant for the node's operating system or architecture",
            Self::EvidenceUnavailable => {
                "pulldoctor could not read evidence it needs; its other findings are less certain"
            }
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown finding code, with the closest known one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding code `{given}`{}", .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct UnknownFindingCode {
    /// What was given.
    pub given: String,
    /// The closest valid code.
    pub suggestion: Option<&'static str>,
}

impl FromStr for FindingCode {
    type Err = UnknownFindingCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        if let Some(code) = Self::ALL.iter().chain(Self::META).find(|c| c.as_str() == wanted) {
            return Ok(*code);
        }
        let suggestion = Self::ALL
            .iter()
            .chain(Self::META)
            .map(|c| (strsim::levenshtein(c.as_str(), &wanted), c.as_str()))
            .min()
            .filter(|(d, _)| *d <= wanted.len() / 2 + 2)
            .map(|(_, c)| c);
        Err(UnknownFindingCode { given: s.to_string(), suggestion })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for code in FindingCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(code.as_str().parse::<FindingCode>().unwrap(), *code);
        }
        assert_eq!(FindingCode::ALL.len(), 24);
    }

    #[test]
    fn suggests_close_codes() {
        let err = "ACR_PULL_ROLE_MISING".parse::<FindingCode>().unwrap_err();
        assert_eq!(err.suggestion, Some("ACR_PULL_ROLE_MISSING"));
        assert!(err.to_string().contains("did you mean"));
    }
}
