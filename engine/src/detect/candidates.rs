//! Which causes a symptom alone points at, ranked: what `pulldoctor explain` prints.
//!
//! A person reads the first three, so the order matters more than the numbers. Each candidate's
//! score is **fit × prior × 2** (0..=100):
//!
//! - **fit** (1..=10): how specifically the message points at the cause, given how the cause
//!   breaks a pull (which request fails, with which status and which credentials). A cause that
//!   cannot produce the message is not listed at all.
//! - **prior** (1..=5, [`prior`]): how often the cause is behind failing pulls in practice.
//!
//! The priors come from two public sources, weighed together:
//!
//! | cause | prior | why |
//! |---|---|---|
//! | `ACR_PULL_ROLE_MISSING`, `IMAGE_NOT_FOUND` | 5 | the first two causes of Microsoft's "Fail to pull images from Azure Container Registry to AKS" article; the most frequent known causes in `fixtures/explain/corpus.json` |
//! | `PLATFORM_MISMATCH`, `PULL_SECRET_MISSING` | 4 | frequent in the corpus (platform: 5 threads; a missing `imagePullSecrets` is the usual answer to a bare `authentication required` outside AKS's kubelet identity) |
//! | `SP_SECRET_EXPIRED`, `ACR_FIREWALL_DENIES_EGRESS`, `PRIVATE_DNS_ZONE_NOT_LINKED`, `NSG_BLOCKS_REGISTRY` | 3 | each has its own section in Microsoft's AKS and ACR troubleshooting articles, and threads in the corpus |
//! | `KUBELET_IDENTITY_NOT_ON_VMSS`, `CREDENTIAL_PROVIDER_MISCONFIGURED`, `CUSTOM_DNS_NOT_FORWARDING`, `TLS_INTERCEPTED`, `TLS_HANDSHAKE_TIMEOUT`, `DATA_ENDPOINT_BLOCKED`, `ACR_ROLE_ON_STALE_PRINCIPAL`, `LOGIN_SERVER_TYPO`, `PULL_SECRET_INVALID_SP`, `PULL_SECRET_STALE_ADMIN`, `PULL_SECRET_REGISTRY_MISMATCH`, `VNET_PEERING_MISSING`, `VNET_PEERING_DISCONNECTED`, `ROUTE_BLACKHOLE`, `PRIVATE_ENDPOINT_NOT_APPROVED` | 2 | named by Microsoft's articles or seen in threads, but rarer |
//! | `ACR_ABAC_ROLE_MISSING` | 1 | a registry mode introduced in 2025; few clusters use it yet |
//!
//! `engine/tests/explain_corpus.rs` holds the ranking to the corpus: real messages from public
//! threads, each with its thread's URL and the cause the thread established.

use serde::{Deserialize, Serialize};

use crate::finding::FindingCode;
use crate::symptom::{PullStage, Symptom, SymptomClass};

/// A cause a symptom is consistent with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The cause.
    pub code: FindingCode,
    /// 0..=100: how strongly the symptom alone points at it (fit × prior × 2).
    pub score: u8,
    /// What would confirm it.
    pub confirm_with: String,
}

/// How often `code` is behind failing pulls in practice, 1..=5 (module docs: the table and its
/// sources).
pub fn prior(code: FindingCode) -> u8 {
    use FindingCode::*;
    match code {
        AcrPullRoleMissing | ImageNotFound => 5,
        PlatformMismatch | PullSecretMissing => 4,
        SpSecretExpired | AcrFirewallDeniesEgress | PrivateDnsZoneNotLinked | NsgBlocksRegistry => 3,
        KubeletIdentityNotOnVmss
        | CredentialProviderMisconfigured
        | CustomDnsNotForwarding
        | TlsIntercepted
        | TlsHandshakeTimeout
        | DataEndpointBlocked
        | AcrRoleOnStalePrincipal
        | LoginServerTypo
        | PullSecretInvalidSp
        | PullSecretStaleAdmin
        | PullSecretRegistryMismatch
        | VnetPeeringMissing
        | VnetPeeringDisconnected
        | RouteBlackhole
        | PrivateEndpointNotApproved => 2,
        AcrAbacRoleMissing => 1,
        EvidenceUnavailable => 0,
    }
}

/// A candidate with fit `fit` (1..=10).
fn c(code: FindingCode, fit: u8, confirm_with: &str) -> Candidate {
    let score = (u16::from(fit.min(10)) * u16::from(prior(code)) * 2).min(100) as u8;
    Candidate { code, score, confirm_with: confirm_with.to_string() }
}

const ROLES: &str =
    "role assignments at the registry scope for the kubelet identity (or the cluster's service principal)";
const SECRETS: &str = "the pod's imagePullSecrets exist in its namespace and hold an entry for this registry";
const SP_EXPIRY: &str = "servicePrincipalProfile.clientId and the app's passwordCredentials endDateTime";
const VMSS: &str = "the node pool VMSS identity.userAssignedIdentities contains the kubelet identity";
const STALE: &str = "the registry's role assignees against the cluster's current principal";
const TAGS: &str = "the repository and tag exist (ACR answers 401 for unknown repositories too)";
const TYPO: &str = "the image host against the registries' loginServer";

/// The causes consistent with `symptom`, best first.
pub fn candidates(symptom: &Symptom) -> Vec<Candidate> {
    use FindingCode::*;
    // The registry's host: the image's, else the host an attempt named (a message that quotes
    // no image may still name the URL it failed on); unknown counts as ACR.
    let acr = symptom
        .image
        .as_ref()
        .map(|i| i.registry.as_str())
        .or_else(|| symptom.attempts.iter().find_map(|a| a.registry_host.as_deref()))
        .map(|host| {
            // By suffix: documentation writes `<registry-name>.azurecr.io`.
            let host = host.to_ascii_lowercase();
            azure_model::container_registry::LOGIN_SERVER_SUFFIXES.iter().any(|s| host.ends_with(s))
        })
        .unwrap_or(true);
    let text = |needles: &[&str]| {
        symptom.attempts.iter().any(|a| {
            let lower = a.detail.to_ascii_lowercase();
            needles.iter().any(|n| lower.contains(n))
        })
    };
    let blob = symptom.attempts.iter().any(|a| a.stage == Some(PullStage::Blob));
    let data_host = symptom.attempts.iter().find_map(|a| a.data_host.clone());
    // Nothing produced credentials: containerd's anonymous token only, or Docker's `no basic
    // auth credentials` (the daemon had none for the host).
    let anonymous_only = symptom.only_anonymous() || text(&["no basic auth credentials"]);
    // The kubelet's own account of its credential provider failing (exec, config, request).
    let provider_failed =
        text(&["external registry credential provider", "credential provider plugin", "credentialproviderrequest"]);
    let mut out = match symptom.class {
        // The credential provider (or a pull secret) sent credentials and they were refused.
        SymptomClass::Unauthorized if symptom.credentials_sent() => vec![
            c(AcrPullRoleMissing, 9, ROLES),
            c(PullSecretMissing, 4, SECRETS),
            c(SpSecretExpired, 5, SP_EXPIRY),
            c(ImageNotFound, 3, TAGS),
            c(
                PullSecretInvalidSp,
                7,
                "the pod's imagePullSecrets: username is an appId whose secret is wrong or expired",
            ),
            c(
                PullSecretStaleAdmin,
                7,
                "the pod's imagePullSecrets: username is the registry name; compare with `az acr credential show`",
            ),
            c(AcrRoleOnStalePrincipal, 6, STALE),
            c(PullSecretRegistryMismatch, 4, "the pull secret's auths keys against the image's registry host"),
            c(AcrAbacRoleMissing, 6, "registry roleAssignmentMode = AbacRepositoryPermissions"),
        ],
        // Only the anonymous attempt: nothing produced credentials (no pull secret for this
        // host, the credential provider failed silently or found no identity).
        SymptomClass::Unauthorized if anonymous_only => vec![
            c(AcrPullRoleMissing, 5, ROLES),
            c(PullSecretMissing, 6, SECRETS),
            c(
                SpSecretExpired,
                7,
                "the cluster's service principal secret expiry (the credential provider fails silently)",
            ),
            c(ImageNotFound, 4, "the repository name (ACR answers 401 to anonymous requests for any repository)"),
            c(KubeletIdentityNotOnVmss, 8, VMSS),
            c(
                CredentialProviderMisconfigured,
                6,
                "the node's --image-credential-provider-config (matchImages, args) and the kubelet log for the plugin's error",
            ),
            c(AcrRoleOnStalePrincipal, 3, STALE),
            c(LoginServerTypo, 3, TYPO),
            c(PullSecretRegistryMismatch, 3, "the pull secret's auths keys against the image's registry host"),
        ],
        // A 401 that says nothing of the credentials (Docker-era `unauthorized: authentication
        // required`, a bare `401 Unauthorized`): any cause of a refused pull.
        SymptomClass::Unauthorized => vec![
            c(AcrPullRoleMissing, 8, ROLES),
            c(PullSecretMissing, 7, SECRETS),
            c(ImageNotFound, 4, TAGS),
            c(SpSecretExpired, 5, SP_EXPIRY),
            c(KubeletIdentityNotOnVmss, 5, VMSS),
            c(CredentialProviderMisconfigured, 3, "the node's credential provider config and the kubelet log"),
            c(AcrRoleOnStalePrincipal, 5, STALE),
            c(PullSecretInvalidSp, 5, "the pod's imagePullSecrets: an appId whose secret is wrong or expired"),
            c(
                PullSecretStaleAdmin,
                5,
                "the pod's imagePullSecrets: the registry's admin user and its current password",
            ),
            c(PullSecretRegistryMismatch, 4, "the pull secret's auths keys against the image's registry host"),
            c(LoginServerTypo, 2, TYPO),
            c(AcrAbacRoleMissing, 3, "registry roleAssignmentMode = AbacRepositoryPermissions"),
        ],
        // Docker Hub's answer for a repository that does not exist (or needs a login).
        SymptomClass::Forbidden if text(&["repository does not exist", "may require 'docker login'"]) => {
            vec![c(ImageNotFound, 8, "the repository name and tag"), c(PullSecretMissing, 5, SECRETS)]
        }
        SymptomClass::Forbidden => {
            let firewall = symptom.attempts.iter().any(|a| a.client_ip.is_some());
            let mut v = vec![
                c(
                    PrivateDnsZoneNotLinked,
                    if firewall { 3 } else { 7 },
                    "privatelink.azurecr.io virtualNetworkLinks include the cluster VNet",
                ),
                c(
                    AcrFirewallDeniesEgress,
                    if firewall { 10 } else { 6 },
                    "networkRuleSet.ipRules against the cluster's effectiveOutboundIPs",
                ),
                c(
                    CustomDnsNotForwarding,
                    if firewall { 2 } else { 6 },
                    "the cluster VNet's dhcpOptions.dnsServers: the VNet each server asks 168.63.129.16 from is linked to privatelink.azurecr.io",
                ),
            ];
            if blob {
                let host = data_host.as_deref().unwrap_or("the registry's storage or data endpoint");
                v.push(c(
                    DataEndpointBlocked,
                    8,
                    &format!("the manifest resolved and the download from {host} was refused: the registry's data endpoints (dataEndpointEnabled), their firewall and private DNS records"),
                ));
                v.push(c(
                    NsgBlocksRegistry,
                    3,
                    &format!("the manifest resolved and the download from {host} was refused: the rules for that host"),
                ));
            }
            v
        }
        SymptomClass::NotFound => vec![
            c(ImageNotFound, 10, "the registry's repositories and tags"),
            c(LoginServerTypo, 1, "the image host: another registry that lacks the repository"),
        ],
        SymptomClass::PlatformMismatch => {
            vec![c(PlatformMismatch, 10, "the node's kubernetes.io/os and arch against the image index")]
        }
        SymptomClass::Timeout | SymptomClass::Unreachable if blob => {
            // The manifest resolved; the blob download went elsewhere and was dropped.
            let host = data_host.as_deref().unwrap_or("the registry's storage or data endpoint");
            vec![
                c(
                    DataEndpointBlocked,
                    9,
                    &format!(
                        "the registry's data endpoints (dataEndpointEnabled) and the path to {host}: NSG rules, routes and its private DNS record"
                    ),
                ),
                c(
                    NsgBlocksRegistry,
                    8,
                    &format!("outbound NSG rules allow {host} (not only the registry's own address)"),
                ),
                c(RouteBlackhole, 6, &format!("route tables on the node subnet for {host}")),
                c(PrivateDnsZoneNotLinked, 3, &format!("the private DNS record for {host}")),
            ]
        }
        // The connection was made and TLS never completed: something on the path holds it.
        SymptomClass::Timeout if text(&["tls handshake timeout"]) => vec![
            c(
                TlsHandshakeTimeout,
                10,
                "route tables on the node subnet: a route with next hop VirtualAppliance for the registry's address, and that appliance's TLS inspection",
            ),
            c(NsgBlocksRegistry, 2, "NSG rules that allow the SYN but not the rest (rare)"),
        ],
        // A deadline with no address dialled: the time may have gone on resolving the name
        // (a custom DNS server that does not answer), before any connection.
        SymptomClass::Timeout if !symptom.attempts.iter().any(|a| a.dialed.is_some()) => vec![
            c(
                CustomDnsNotForwarding,
                7,
                "the cluster VNet's dhcpOptions.dnsServers answer and forward to 168.63.129.16 (time `nslookup REGISTRY` on a node)",
            ),
            c(VnetPeeringMissing, 5, "virtualNetworkPeerings between the cluster VNet and the private endpoint's VNet"),
            c(NsgBlocksRegistry, 5, "outbound NSG rules on the node subnet"),
            c(RouteBlackhole, 4, "route tables with nextHopType None on the node subnet"),
            c(VnetPeeringDisconnected, 4, "peeringState on both sides"),
        ],
        SymptomClass::Timeout => vec![
            c(VnetPeeringMissing, 6, "virtualNetworkPeerings between the cluster VNet and the private endpoint's VNet"),
            c(VnetPeeringDisconnected, 6, "peeringState on both sides"),
            c(NsgBlocksRegistry, 6, "outbound NSG rules on the node subnet"),
            c(RouteBlackhole, 4, "route tables with nextHopType None on the node subnet"),
            c(
                PrivateEndpointNotApproved,
                5,
                "the registry's privateEndpointConnections: privateLinkServiceConnectionState.status Approved",
            ),
        ],
        SymptomClass::Unreachable => vec![
            c(RouteBlackhole, 6, "route tables on the node subnet"),
            c(NsgBlocksRegistry, 5, "outbound NSG rules on the node subnet"),
            c(VnetPeeringMissing, 3, "peerings to the private endpoint's VNet"),
        ],
        SymptomClass::Dns => {
            // Azure's resolver is 168.63.129.16; a timeout or a refusal from another one is a
            // custom DNS server (or the path to it), not a misspelt name.
            let custom = symptom.attempts.iter().filter_map(|a| a.resolver.as_deref()).any(|r| {
                let ip = r.rsplit_once(':').map_or(r, |(ip, _)| ip);
                ip != "168.63.129.16" && !ip.starts_with("127.")
            });
            if custom && text(&["i/o timeout", "server misbehaving", "connection refused"]) {
                vec![
                    c(
                        CustomDnsNotForwarding,
                        8,
                        "the VNet's custom DNS servers answer, forward to 168.63.129.16, and their VNet sees privatelink.azurecr.io",
                    ),
                    c(
                        PrivateDnsZoneNotLinked,
                        4,
                        "privatelink.azurecr.io virtualNetworkLinks include the VNet the DNS servers resolve from",
                    ),
                    c(NsgBlocksRegistry, 4, "outbound NSG rules allow DNS (UDP and TCP 53) to the custom DNS servers"),
                    c(RouteBlackhole, 3, "routes to the custom DNS servers"),
                ]
            } else {
                vec![
                    c(LoginServerTypo, if acr { 7 } else { 10 }, TYPO),
                    c(PrivateDnsZoneNotLinked, 3, "the VNet's DNS view of the registry"),
                    c(
                        CustomDnsNotForwarding,
                        4,
                        "the VNet's custom DNS servers forward the registry's zone (a server that does not answers NXDOMAIN)",
                    ),
                ]
            }
        }
        // A certificate for *.azurecr.io presented to a `NAME.privatelink.azurecr.io` image:
        // the private link name was used as the login server.
        SymptomClass::Tls if text(&["privatelink.azurecr.io"]) => {
            vec![c(LoginServerTypo, 8, "the image host: use NAME.azurecr.io, never the privatelink name")]
        }
        // A certificate the node does not trust: something on the path re-signs the traffic.
        SymptomClass::Tls if text(&["unknown authority", "not standards compliant", "self-signed", "self signed"]) => {
            vec![c(
                TlsIntercepted,
                10,
                "route tables on the node subnet (next hop VirtualAppliance, or 0.0.0.0/0 forced tunnelling) and the appliance's TLS inspection; the issuer of the certificate the node got",
            )]
        }
        SymptomClass::Tls | SymptomClass::Throttled | SymptomClass::Unknown => vec![],
    };
    if anonymous_only && symptom.class == SymptomClass::Unauthorized {
        // Anonymous only: no credentials reached the registry, so no role was judged.
        out.retain(|x| !matches!(x.code, AcrAbacRoleMissing));
    }
    if !acr {
        // Another registry (ECR, Docker Hub...): Azure roles and the cluster's identities never
        // reach it.
        out.retain(|x| {
            !matches!(
                x.code,
                AcrPullRoleMissing
                    | AcrAbacRoleMissing
                    | SpSecretExpired
                    | AcrRoleOnStalePrincipal
                    | KubeletIdentityNotOnVmss
            )
        });
    }
    if provider_failed {
        out.retain(|x| x.code != CredentialProviderMisconfigured);
        out.push(c(
            CredentialProviderMisconfigured,
            10,
            "the kubelet's --image-credential-provider-config (provider name, apiVersion, args, matchImages) and the plugin binary in --image-credential-provider-bin-dir",
        ));
    }
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.code.cmp(&b.code)));
    out
}
