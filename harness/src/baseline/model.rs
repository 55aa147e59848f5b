//! The baseline's declarative types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A healthy world: the Azure resource graph plus the Kubernetes workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Baseline {
    /// The baseline's name (the file stem).
    pub name: String,
    /// What the world looks like and why.
    pub description: String,
    /// Azure region of every resource.
    #[serde(default = "default_location")]
    pub location: String,
    /// Resource groups to create.
    pub resource_groups: Vec<String>,
    /// The AKS cluster.
    pub cluster: Cluster,
    /// The registry.
    pub registry: Registry,
    /// Virtual networks.
    #[serde(default)]
    pub vnets: Vec<VirtualNetwork>,
    /// Peerings (each creates both directions).
    #[serde(default)]
    pub peerings: Vec<Peering>,
    /// Private DNS zones with their VNet links.
    #[serde(default)]
    pub private_dns_zones: Vec<PrivateDnsZone>,
    /// Network security groups.
    #[serde(default)]
    pub nsgs: Vec<NetworkSecurityGroup>,
    /// Route tables.
    #[serde(default)]
    pub route_tables: Vec<RouteTable>,
    /// Network virtual appliances (a hub firewall's VM), which routes with next hop
    /// `VirtualAppliance` can send traffic through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appliances: Vec<Appliance>,
    /// Public IP addresses.
    #[serde(default)]
    pub public_ips: Vec<PublicIp>,
    /// Entra applications (service principals).
    #[serde(default)]
    pub applications: Vec<Application>,
    /// Role assignments.
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignment>,
    /// The workload that pulls from the registry.
    pub workload: Workload,
}

fn default_location() -> String {
    "westeurope".into()
}

/// The AKS cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// Cluster name.
    pub name: String,
    /// Its resource group.
    pub resource_group: String,
    /// Kubernetes version (`1.33`).
    #[serde(default = "default_k8s")]
    pub kubernetes_version: String,
    /// How nodes authenticate to ACR.
    pub identity: ClusterIdentity,
    /// Node pools.
    pub pools: Vec<NodePool>,
    /// Public IPs (names) the cluster's egress uses.
    #[serde(default)]
    pub egress_ips: Vec<String>,
}

fn default_k8s() -> String {
    "1.33".into()
}

/// How the cluster's nodes authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", tag = "kind")]
pub enum ClusterIdentity {
    /// A user-assigned kubelet identity, fetched by nodes from IMDS.
    ManagedIdentity,
    /// A service principal whose id and secret are in the nodes' cloud config.
    #[serde(rename_all = "camelCase")]
    ServicePrincipal {
        /// The application (by name in `applications`).
        application: String,
    },
}

/// A node pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodePool {
    /// Pool name.
    pub name: String,
    /// `Linux` (default) or `Windows`.
    #[serde(default)]
    pub os: OsType,
    /// Node count.
    #[serde(default = "one")]
    pub count: u32,
    /// `VNET/SUBNET` the nodes sit in.
    pub subnet: String,
}

fn one() -> u32 {
    1
}

/// The registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Registry {
    /// Registry name; the login server is `NAME.azurecr.io`.
    pub name: String,
    /// Its resource group.
    pub resource_group: String,
    /// `Basic`, `Standard` or `Premium` (default).
    #[serde(default)]
    pub sku: RegistrySku,
    /// Whether the admin user is enabled.
    #[serde(default)]
    pub admin_user_enabled: bool,
    /// Whether the public endpoint answers.
    #[serde(default = "yes")]
    pub public_network_access: bool,
    /// The firewall for public access.
    #[serde(default)]
    pub firewall: Option<Firewall>,
    /// `LegacyRegistryPermissions` (default) or `AbacRepositoryPermissions`.
    #[serde(default)]
    pub role_assignment_mode: RoleAssignmentMode,
    /// A private endpoint, if the registry has one.
    #[serde(default)]
    pub private_endpoint: Option<PrivateEndpoint>,
    /// Dedicated data endpoints (`REG.REGION.data.azurecr.io`, Premium): the registry answers
    /// layer downloads with a redirect there.
    #[serde(default)]
    pub data_endpoint_enabled: bool,
    /// Images to push.
    pub repositories: Vec<Repository>,
}

fn yes() -> bool {
    true
}

impl Registry {
    /// `NAME.azurecr.io`.
    pub fn login_server(&self) -> String {
        format!("{}.azurecr.io", self.name.to_ascii_lowercase())
    }
}

/// The registry firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Firewall {
    /// `Allow` or `Deny`.
    pub default_action: Access,
    /// Allowed sources: a public IP name from `publicIps`, or a literal address/CIDR.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A private endpoint for the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivateEndpoint {
    /// Endpoint name.
    pub name: String,
    /// `VNET/SUBNET`.
    pub subnet: String,
    /// Its private address.
    pub ip: String,
    /// The address of the registry's data endpoint on it (its `registry_data_REGION` member),
    /// when the registry has dedicated data endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_ip: Option<String>,
}

/// An image to push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Repository {
    /// Repository name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Platforms in its index (`linux/amd64`, `windows/amd64`).
    #[serde(default = "linux_amd64")]
    pub platforms: Vec<String>,
}

fn linux_amd64() -> Vec<String> {
    vec!["linux/amd64".into()]
}

/// A VNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualNetwork {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Address space.
    pub address_space: String,
    /// Subnets.
    pub subnets: Vec<Subnet>,
    /// Custom DNS servers (`dhcpOptions.dnsServers`), each a DNS forwarder VM at that address in
    /// one of the baseline's subnets, forwarding every query to Azure's resolver
    /// (168.63.129.16) from its own VNet. Empty: Azure-provided DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<String>,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Subnet {
    /// Name.
    pub name: String,
    /// Prefix.
    pub prefix: String,
    /// NSG name.
    #[serde(default)]
    pub nsg: Option<String>,
    /// Route table name.
    #[serde(default)]
    pub route_table: Option<String>,
}

/// A peering between two VNets (both directions are created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Peering {
    /// The two VNets.
    pub between: [String; 2],
}

impl Peering {
    /// The name of the peering from `from` to `to`: `FROM-to-TO`.
    pub fn name(from: &str, to: &str) -> String {
        format!("{from}-to-{to}")
    }
}

/// A private DNS zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivateDnsZone {
    /// Zone name (`privatelink.azurecr.io`).
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// VNets linked to it (a link named `VNET-link` each).
    #[serde(default)]
    pub links: Vec<String>,
}

/// An NSG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkSecurityGroup {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Rules.
    #[serde(default)]
    pub rules: Vec<SecurityRule>,
}

/// An NSG rule (TCP unless `protocol` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityRule {
    /// Name.
    pub name: String,
    /// 100..4096.
    pub priority: u32,
    /// `Inbound` or `Outbound` (default).
    #[serde(default = "outbound")]
    pub direction: Direction,
    /// `Allow` or `Deny`.
    pub access: Access,
    /// `Tcp` (default), `Udp`, `Icmp` or `*` (any).
    #[serde(default, skip_serializing_if = "Protocol::is_tcp")]
    pub protocol: Protocol,
    /// Destination CIDR, address or `*`.
    pub destination: String,
    /// Destination port or `*`.
    #[serde(default = "https_port")]
    pub port: String,
}

fn outbound() -> Direction {
    Direction::Outbound
}
fn https_port() -> String {
    "443".into()
}

/// A route table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteTable {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A user-defined route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Name.
    pub name: String,
    /// Destination prefix.
    pub address_prefix: String,
    /// `VnetLocal`, `VirtualNetworkGateway`, `Internet`, `VirtualAppliance` or `None`.
    pub next_hop_type: NextHopType,
    /// The appliance's address, for `VirtualAppliance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_ip_address: Option<String>,
}

/// A network virtual appliance: a VM that forwards what routes send it, and what it does with
/// TLS on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Appliance {
    /// Name.
    pub name: String,
    /// The subnet holding it (`VNET/SUBNET`).
    pub subnet: String,
    /// Its address there (a route's `nextHopIpAddress`).
    pub ip: String,
    /// What it does with HTTPS it forwards.
    pub tls: ApplianceTls,
}

/// What an appliance does with the HTTPS connections it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApplianceTls {
    /// TLS inspection: it terminates TLS with a certificate from its own CA (which the nodes
    /// do not trust) and re-encrypts towards the destination.
    Intercept,
    /// It accepts the TCP connection and never answers the TLS handshake (an inspection engine
    /// that is overloaded or waiting on a licence).
    Stall,
}

/// A public IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicIp {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// The address (documentation ranges only: 203.0.113.0/24, 198.51.100.0/24).
    pub ip: String,
}

/// An Entra application with a service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Application {
    /// Name (display name).
    pub name: String,
    /// When its secret expires (RFC 3339). Default: one year after provisioning.
    #[serde(default)]
    pub secret_expires: Option<String>,
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleAssignment {
    /// `kubelet` or `application:NAME`.
    pub principal: String,
    /// A built-in role name (`AcrPull`, `Container Registry Repository Reader`...).
    pub role: String,
    /// `registry` (default) or `registryResourceGroup`.
    #[serde(default)]
    pub scope: RoleScope,
}

/// Where a role is assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RoleScope {
    /// The registry itself.
    #[default]
    Registry,
    /// The registry's resource group.
    RegistryResourceGroup,
}

/// The workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub name: String,
    /// Container name.
    #[serde(default = "app")]
    pub container: String,
    /// Image; `{loginServer}` is replaced by the registry's login server.
    pub image: String,
    /// A pull secret the pod uses.
    #[serde(default)]
    pub pull_secret: Option<PullSecretSpec>,
    /// Node selector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

fn app() -> String {
    "app".into()
}

impl Workload {
    /// The image with `{loginServer}` filled in.
    pub fn image_for(&self, registry: &Registry) -> String {
        self.image.replace("{loginServer}", &registry.login_server())
    }
}

/// A pull secret and where its credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PullSecretSpec {
    /// Secret name.
    pub name: String,
    /// Credential source.
    pub from: PullSecretSource,
}

/// Where a pull secret's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", tag = "kind")]
pub enum PullSecretSource {
    /// The registry's admin user.
    Admin,
    /// An application's client id and secret.
    #[serde(rename_all = "camelCase")]
    Application {
        /// The application's name.
        application: String,
    },
}

/// Enums whose values are Azure's own spellings: each serializes as its ARM value, displays as
/// it, and reads as a `&str` where code compares spellings.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as ARM spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

wire_enum! {
    /// A node pool's operating system (`osType`).
    #[derive(Default)]
    OsType {
        /// Linux nodes.
        #[default]
        Linux = "Linux",
        /// Windows nodes.
        Windows = "Windows",
    }
}

wire_enum! {
    /// The registry's SKU (`sku.name`).
    #[derive(Default)]
    RegistrySku {
        /// Basic.
        Basic = "Basic",
        /// Standard.
        Standard = "Standard",
        /// Premium: the only SKU with private endpoints and firewall rules.
        #[default]
        Premium = "Premium",
    }
}

wire_enum! {
    /// Who a registry's role assignments grant access to (`roleAssignmentMode`).
    #[derive(Default)]
    RoleAssignmentMode {
        /// Classic registry roles (`AcrPull`...).
        #[default]
        LegacyRegistryPermissions = "LegacyRegistryPermissions",
        /// ABAC: repository-scoped roles (`Container Registry Repository Reader`...).
        AbacRepositoryPermissions = "AbacRepositoryPermissions",
    }
}

wire_enum! {
    /// Allow or deny: an NSG rule's `access`, a registry firewall's `defaultAction`.
    Access {
        /// Allow.
        Allow = "Allow",
        /// Deny.
        Deny = "Deny",
    }
}

wire_enum! {
    /// The direction of traffic an NSG rule applies to.
    Direction {
        /// Traffic into the subnet.
        Inbound = "Inbound",
        /// Traffic out of the subnet.
        Outbound = "Outbound",
    }
}

wire_enum! {
    /// The protocol an NSG rule matches.
    #[derive(Default)]
    Protocol {
        /// TCP.
        #[default]
        Tcp = "Tcp",
        /// UDP.
        Udp = "Udp",
        /// ICMP.
        Icmp = "Icmp",
        /// Any protocol.
        Any = "*",
    }
}

impl Protocol {
    /// Whether this is TCP (the default, left out when serializing).
    pub fn is_tcp(&self) -> bool {
        *self == Protocol::Tcp
    }

    /// How people write it: `TCP`, `UDP`, `ICMP`, `any-protocol`.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::Any => "any-protocol",
        }
    }
}

wire_enum! {
    /// Where a route sends matching traffic.
    NextHopType {
        /// A VPN or ExpressRoute gateway.
        VirtualNetworkGateway = "VirtualNetworkGateway",
        /// Within the VNet (and its peers).
        VnetLocal = "VnetLocal",
        /// The internet.
        Internet = "Internet",
        /// A network virtual appliance.
        VirtualAppliance = "VirtualAppliance",
        /// Nowhere: the traffic is dropped.
        None = "None",
    }
}
