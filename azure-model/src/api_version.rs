//! The api-versions pullproof pins for each resource provider.
//!
//! Clients send these; the emulator accepts them (and the other versions listed in
//! [`accepted`]) and answers `InvalidApiVersionParameter` otherwise, as ARM does.

/// `Microsoft.Resources` (resource groups).
pub const RESOURCES: &str = "2025-04-01";
/// `Microsoft.ContainerService` (managed clusters).
pub const CONTAINER_SERVICE: &str = "2026-02-01";
/// `Microsoft.ContainerRegistry` (registries).
pub const CONTAINER_REGISTRY: &str = "2025-11-01";
/// `Microsoft.Authorization` (role assignments and definitions).
pub const AUTHORIZATION: &str = "2022-04-01";
/// `Microsoft.Network` (virtual networks, peerings, NSGs, route tables, private endpoints, IPs).
pub const NETWORK: &str = "2024-05-01";
/// `Microsoft.Network/privateDnsZones`.
pub const PRIVATE_DNS: &str = "2024-06-01";
/// `Microsoft.Compute` (virtual machine scale sets).
pub const COMPUTE: &str = "2024-07-01";

/// The api-versions accepted for a provider namespace (case-insensitive), newest first.
pub fn accepted(namespace: &str, resource_type: &str) -> &'static [&'static str] {
    let ns = namespace.to_ascii_lowercase();
    let ty = resource_type.to_ascii_lowercase();
    match ns.as_str() {
        "microsoft.resources" => &["2025-04-01", "2024-03-01", "2022-09-01", "2021-04-01"],
        "microsoft.containerservice" => &["2026-02-01", "2025-10-01", "2025-05-01", "2024-09-01"],
        "microsoft.containerregistry" => &["2025-11-01", "2025-04-01", "2023-07-01", "2023-01-01-preview"],
        "microsoft.authorization" => &["2022-04-01", "2020-04-01-preview"],
        "microsoft.network" if ty.starts_with("privatednszones") => &["2024-06-01", "2020-06-01"],
        "microsoft.network" => &["2026-03-01", "2026-01-01", "2025-07-01", "2024-05-01", "2023-09-01"],
        "microsoft.compute" => &["2025-11-01", "2024-07-01", "2024-03-01"],
        _ => &[],
    }
}
