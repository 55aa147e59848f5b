//! Enum-valued request fields: accepted case-insensitively (as the resource providers'
//! deserializers do), stored in their canonical spelling, and anything else refused with 400
//! and the provider's own error envelope.

use serde_json::Value;

use super::ArmFailure;

/// One enum a provider deserializes: its contract type name and its values (canonical spelling).
#[derive(Debug)]
pub(crate) struct Enum {
    /// The provider's type name, as its deserializer names it in errors.
    pub type_name: &'static str,
    /// The accepted values.
    pub values: &'static [&'static str],
}

/// Which resource provider answers, which decides the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// `Microsoft.Network` (NRP).
    Network,
    /// `Microsoft.ContainerRegistry`.
    ContainerRegistry,
}

macro_rules! enums {
    ($($(#[$doc:meta])* $name:ident = $ty:literal [$($v:literal),+ $(,)?];)+) => {
        $( $(#[$doc])* pub(crate) const $name: Enum = Enum { type_name: $ty, values: &[$($v),+] }; )+
    };
}

enums! {
    /// NSG rule `access`.
    SECURITY_RULE_ACCESS = "SecurityRuleAccess" ["Allow", "Deny"];
    /// NSG rule `direction`.
    SECURITY_RULE_DIRECTION = "SecurityRuleDirection" ["Inbound", "Outbound"];
    /// NSG rule `protocol`.
    SECURITY_RULE_PROTOCOL = "SecurityRuleProtocol" ["Tcp", "Udp", "Icmp", "Esp", "*", "Ah"];
    /// Route `nextHopType`.
    ROUTE_NEXT_HOP_TYPE = "RouteNextHopType" ["VirtualNetworkGateway", "VnetLocal", "Internet", "VirtualAppliance", "None"];
    /// Public IP `publicIPAllocationMethod`.
    IP_ALLOCATION_METHOD = "IPAllocationMethod" ["Static", "Dynamic"];
    /// Public IP `publicIPAddressVersion`.
    IP_VERSION = "IPVersion" ["IPv4", "IPv6"];
    /// Public IP `sku.name`.
    PUBLIC_IP_SKU_NAME = "PublicIPAddressSkuName" ["Basic", "Standard", "StandardV2"];
    /// Public IP `sku.tier`.
    PUBLIC_IP_SKU_TIER = "PublicIPAddressSkuTier" ["Regional", "Global"];
    /// Registry `sku.name` (`Classic` is refused on its own, see `container_registry`).
    REGISTRY_SKU_NAME = "SkuName" ["Basic", "Standard", "Premium"];
    /// Registry `publicNetworkAccess`.
    PUBLIC_NETWORK_ACCESS = "PublicNetworkAccess" ["Enabled", "Disabled"];
    /// Registry `roleAssignmentMode`.
    ROLE_ASSIGNMENT_MODE = "RoleAssignmentMode" ["LegacyRegistryPermissions", "AbacRepositoryPermissions"];
    /// Registry `networkRuleSet.defaultAction`.
    DEFAULT_ACTION = "DefaultAction" ["Allow", "Deny"];
    /// Registry `networkRuleSet.ipRules[].action`.
    IP_RULE_ACTION = "Action" ["Allow"];
    /// Registry `networkRuleBypassOptions`.
    NETWORK_RULE_BYPASS = "NetworkRuleBypassOptions" ["AzureServices", "None"];
    /// Registry `zoneRedundancy`.
    ZONE_REDUNDANCY = "ZoneRedundancy" ["Enabled", "Disabled"];
}

/// The NRP contract namespace its deserializer names in `InvalidJson` details (as seen in
/// Azure's answers, e.g. Azure/azure-cli#1619 and #2122).
const NRP_CONTRACT: &str = "Microsoft.WindowsAzure.Networking.Nrp.Frontend.Contract.Csm.Public";

/// The 400 a provider answers for a value its deserializer cannot convert.
///
/// - `Microsoft.Network`: `InvalidRequestFormat` "Cannot parse the request." with one
///   `InvalidJson` detail "Error converting value ... Path '...'" (the shape of real NRP answers,
///   see Azure/azure-cli#1619, #2122 and MicrosoftLearning/AZ-700#153).
/// - `Microsoft.ContainerRegistry`: no public example of ACR's answer to a bad enum value was
///   found, so this uses ARM's generic `InvalidRequestContent` ("The request content was invalid
///   and could not be deserialized: ..."), the code ARM-SDK based providers use for bodies that
///   do not deserialize.
pub(crate) fn conversion_error(provider: Provider, found: &Value, e: &Enum, path: &str) -> ArmFailure {
    let shown = match found {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    match provider {
        Provider::Network => {
            let mut f = ArmFailure::bad_request("InvalidRequestFormat", "Cannot parse the request.");
            f.error.error.details.push(azure_model::error::ArmErrorBody {
                code: "InvalidJson".into(),
                message: format!(
                    "Error converting value {shown} to type '{NRP_CONTRACT}.{}'. Path '{path}'.",
                    e.type_name
                ),
                ..Default::default()
            });
            f
        }
        Provider::ContainerRegistry => ArmFailure::bad_request(
            "InvalidRequestContent",
            format!(
                "The request content was invalid and could not be deserialized: 'Error converting value {shown} to type '{}'. Path '{path}'. Allowed values: {}.'.",
                e.type_name,
                e.values.join(", ")
            ),
        ),
    }
}

/// Checks the value at JSON `pointer` (absent or `null` is fine) against `e`,
/// case-insensitively, and rewrites it in its canonical spelling. `path` is the field's path in
/// the request body as the provider names it (`properties.securityRules[0].properties.access`).
pub(crate) fn canonical(
    value: &mut Value,
    pointer: &str,
    path: &str,
    e: &Enum,
    provider: Provider,
) -> Result<(), ArmFailure> {
    let Some(slot) = value.pointer_mut(pointer) else { return Ok(()) };
    if slot.is_null() {
        return Ok(());
    }
    let found = slot.as_str().and_then(|s| e.values.iter().find(|v| v.eq_ignore_ascii_case(s.trim())));
    match found {
        Some(v) => {
            *slot = Value::String((*v).to_string());
            Ok(())
        }
        None => Err(conversion_error(provider, slot, e, path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonicalises_or_refuses() {
        let mut v = json!({"properties": {"access": "allow", "direction": null}});
        canonical(&mut v, "/properties/access", "properties.access", &SECURITY_RULE_ACCESS, Provider::Network).unwrap();
        assert_eq!(v["properties"]["access"], "Allow");
        canonical(&mut v, "/properties/direction", "properties.direction", &SECURITY_RULE_DIRECTION, Provider::Network)
            .unwrap();
        canonical(&mut v, "/properties/protocol", "properties.protocol", &SECURITY_RULE_PROTOCOL, Provider::Network)
            .unwrap();
        let mut bad = json!({"properties": {"access": "Alow"}});
        let f =
            canonical(&mut bad, "/properties/access", "properties.access", &SECURITY_RULE_ACCESS, Provider::Network)
                .unwrap_err();
        assert_eq!(f.error.error.code, "InvalidRequestFormat");
        assert_eq!(f.error.error.details[0].code, "InvalidJson");
        assert!(f.error.error.details[0].message.contains("\"Alow\""), "{:?}", f.error);
        assert!(f.error.error.details[0].message.contains("SecurityRuleAccess"), "{:?}", f.error);
        let mut number = json!({"properties": {"publicNetworkAccess": 1}});
        let f = canonical(
            &mut number,
            "/properties/publicNetworkAccess",
            "properties.publicNetworkAccess",
            &PUBLIC_NETWORK_ACCESS,
            Provider::ContainerRegistry,
        )
        .unwrap_err();
        assert_eq!(f.error.error.code, "InvalidRequestContent");
        assert!(f.error.error.message.contains("Enabled, Disabled"), "{:?}", f.error);
    }
}
