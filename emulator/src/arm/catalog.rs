//! The resource types the ARM subset serves, how each is stored and which server fields it gets.

use azure_model::inventory::types;

/// Where a type's resources live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// A tracked resource directly in a resource group.
    ResourceGroup,
    /// A child resource stored on its own (zone links, record sets).
    Child,
    /// A child ARM embeds in its parent's `properties[array]` (subnets, peerings, rules, routes).
    Embedded(&'static str),
    /// An extension resource at any scope (role assignments and definitions).
    Extension,
}

/// How `location` is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    Required,
    Global,
    Absent,
}

/// How `etag` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Etag {
    None,
    /// `W/"guid"` (Microsoft.Network).
    Weak,
    /// `guid` (private DNS).
    Plain,
}

/// One served resource type.
#[derive(Debug)]
pub(crate) struct TypeSpec {
    /// The canonical type, e.g. `Microsoft.Network/virtualNetworks/subnets`.
    pub name: &'static str,
    pub placement: Placement,
    pub location: Location,
    pub etag: Etag,
    /// Whether `properties.provisioningState` is set.
    pub provisioning: bool,
    /// Whether clients may only read it.
    pub read_only: bool,
}

impl TypeSpec {
    /// The provider namespace.
    pub fn namespace(&self) -> &'static str {
        self.name.split('/').next().unwrap_or_default()
    }

    /// The type without the namespace (`virtualNetworks/subnets`).
    pub fn local_type(&self) -> &'static str {
        self.name.split_once('/').map(|(_, t)| t).unwrap_or_default()
    }
}

/// The user-assigned identity type (not in azure-model's inventory types).
pub(crate) const USER_ASSIGNED_IDENTITY: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
/// A registry's private endpoint connections (derived from private endpoints; a PUT approves or
/// rejects one, nothing else writes them).
pub(crate) const REGISTRY_PE_CONNECTION: &str = "Microsoft.ContainerRegistry/registries/privateEndpointConnections";

const fn spec(
    name: &'static str,
    placement: Placement,
    location: Location,
    etag: Etag,
    provisioning: bool,
) -> TypeSpec {
    TypeSpec { name, placement, location, etag, provisioning, read_only: false }
}

/// Every served type.
pub(crate) static CATALOG: &[TypeSpec] = &[
    spec(types::MANAGED_CLUSTER, Placement::ResourceGroup, Location::Required, Etag::None, true),
    spec(types::REGISTRY, Placement::ResourceGroup, Location::Required, Etag::None, true),
    TypeSpec {
        read_only: true,
        ..spec(
            REGISTRY_PE_CONNECTION,
            Placement::Embedded("privateEndpointConnections"),
            Location::Absent,
            Etag::None,
            true,
        )
    },
    spec(types::ROLE_ASSIGNMENT, Placement::Extension, Location::Absent, Etag::None, false),
    spec(types::ROLE_DEFINITION, Placement::Extension, Location::Absent, Etag::None, false),
    spec(types::VIRTUAL_NETWORK, Placement::ResourceGroup, Location::Required, Etag::Weak, true),
    spec(types::SUBNET, Placement::Embedded("subnets"), Location::Absent, Etag::Weak, true),
    spec(types::PEERING, Placement::Embedded("virtualNetworkPeerings"), Location::Absent, Etag::Weak, true),
    spec(types::PRIVATE_DNS_ZONE, Placement::ResourceGroup, Location::Global, Etag::Plain, true),
    spec(types::VIRTUAL_NETWORK_LINK, Placement::Child, Location::Global, Etag::Plain, true),
    spec(types::A_RECORD_SET, Placement::Child, Location::Absent, Etag::Plain, false),
    spec(types::PRIVATE_ENDPOINT, Placement::ResourceGroup, Location::Required, Etag::Weak, true),
    spec(types::NETWORK_SECURITY_GROUP, Placement::ResourceGroup, Location::Required, Etag::Weak, true),
    spec(
        "Microsoft.Network/networkSecurityGroups/securityRules",
        Placement::Embedded("securityRules"),
        Location::Absent,
        Etag::Weak,
        true,
    ),
    spec(types::ROUTE_TABLE, Placement::ResourceGroup, Location::Required, Etag::Weak, true),
    spec("Microsoft.Network/routeTables/routes", Placement::Embedded("routes"), Location::Absent, Etag::Weak, true),
    spec(types::PUBLIC_IP_ADDRESS, Placement::ResourceGroup, Location::Required, Etag::Weak, true),
    spec(types::VIRTUAL_MACHINE_SCALE_SET, Placement::ResourceGroup, Location::Required, Etag::None, true),
    spec(USER_ASSIGNED_IDENTITY, Placement::ResourceGroup, Location::Required, Etag::None, false),
];

/// The served type named `full` (case-insensitive).
pub(crate) fn lookup(full: &str) -> Option<&'static TypeSpec> {
    CATALOG.iter().find(|s| s.name.eq_ignore_ascii_case(full))
}

/// Whether any served type is in namespace `ns`.
pub(crate) fn namespace_known(ns: &str) -> bool {
    CATALOG.iter().any(|s| s.namespace().eq_ignore_ascii_case(ns)) || ns.eq_ignore_ascii_case("Microsoft.Resources")
}

/// The accepted api-versions for a type: azure-model's table, plus Microsoft.ManagedIdentity,
/// which azure-model does not list.
pub(crate) fn api_versions(namespace: &str, local_type: &str) -> &'static [&'static str] {
    if namespace.eq_ignore_ascii_case("Microsoft.ManagedIdentity") {
        return &["2024-11-30", "2023-01-31", "2018-11-30"];
    }
    azure_model::api_version::accepted(namespace, local_type)
}
