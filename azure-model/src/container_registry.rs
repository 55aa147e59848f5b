//! `Microsoft.ContainerRegistry/registries`.

use serde::{Deserialize, Serialize};

use crate::resource::SubResource;

/// The registry properties that decide who may pull from where.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    /// `NAME.azurecr.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Whether the admin user (username = registry name) may log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_enabled: Option<bool>,
    /// `Enabled` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_network_access: Option<String>,
    /// Whether layers are served from dedicated data endpoints (`REG.REGION.data.azurecr.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_endpoint_enabled: Option<bool>,
    /// The data endpoints' host names, one per region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_endpoint_host_names: Vec<String>,
    /// Firewall rules for public access (Premium).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_set: Option<NetworkRuleSet>,
    /// `AzureServices` or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_bypass_options: Option<String>,
    /// `LegacyRegistryPermissions` or `AbacRepositoryPermissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_assignment_mode: Option<String>,
    /// Whether anonymous pull is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_pull_enabled: Option<bool>,
    /// Private endpoint connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_endpoint_connections: Vec<PrivateEndpointConnection>,
}

/// `roleAssignmentMode` for ABAC-enabled registries.
pub const ABAC_MODE: &str = "AbacRepositoryPermissions";

impl RegistryProperties {
    /// Whether public network access is enabled (absent means enabled, as in ARM).
    pub fn public_access_enabled(&self) -> bool {
        !self.public_network_access.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("Disabled"))
    }

    /// Whether the registry is in ABAC repository-permissions mode.
    pub fn abac_mode(&self) -> bool {
        self.role_assignment_mode.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(ABAC_MODE))
    }

    /// Whether a client at `ip` may reach the public endpoint (public access on, and the
    /// firewall's default action `Allow` or an IP rule matching).
    pub fn public_endpoint_allows(&self, ip: std::net::IpAddr) -> bool {
        if !self.public_access_enabled() {
            return false;
        }
        match &self.network_rule_set {
            None => true,
            Some(set) => set.allows(ip),
        }
    }
}

/// `networkRuleSet`: `{defaultAction, ipRules: [{action, value}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRuleSet {
    /// `Allow` or `Deny`.
    pub default_action: String,
    /// IP or CIDR rules.
    #[serde(default)]
    pub ip_rules: Vec<IpRule>,
}

impl NetworkRuleSet {
    /// Whether `ip` is let through.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.default_action.eq_ignore_ascii_case("Allow") || self.ip_rules.iter().any(|r| r.matches(ip))
    }
}

/// One IP rule: `{"action": "Allow", "value": "203.0.113.7" | "203.0.113.0/24"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IpRule {
    /// Always `Allow`.
    #[serde(default = "allow")]
    pub action: String,
    /// An IPv4 address or CIDR range.
    pub value: String,
}

fn allow() -> String {
    "Allow".to_string()
}

impl IpRule {
    /// Whether `ip` falls in this rule's address or range.
    pub fn matches(&self, ip: std::net::IpAddr) -> bool {
        crate::network::cidr_contains(&self.value, ip)
    }
}

/// A private endpoint connection as embedded in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpointConnection {
    /// The connection's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: PrivateEndpointConnectionProperties,
}

/// `{privateEndpoint: {id}, privateLinkServiceConnectionState: {status, description}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpointConnectionProperties {
    /// The endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_endpoint: Option<SubResource>,
    /// Approval state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link_service_connection_state: Option<ConnectionState>,
}

/// `{status: Approved|Pending|Rejected|Disconnected, description}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionState {
    /// `Approved`, `Pending`, `Rejected`, `Disconnected`.
    pub status: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Answer of `POST .../listCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistryCredentials {
    /// The admin username (the registry name).
    pub username: String,
    /// `password` and `password2`.
    pub passwords: Vec<RegistryPassword>,
}

/// `{name: "password"|"password2", value}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistryPassword {
    /// `password` or `password2`.
    pub name: String,
    /// The secret value.
    pub value: String,
}

/// Body of `POST .../regenerateCredential`: `{"name": "password"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegenerateCredential {
    /// Which password to regenerate.
    pub name: String,
}

/// The repositories and tags a registry holds (ACR's data plane `/v2/_catalog` and tag lists),
/// carried in inventories so tags can be suggested offline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryContent {
    /// The login server.
    pub login_server: String,
    /// Repositories with their tags.
    #[serde(default)]
    pub repositories: Vec<Repository>,
}

/// A repository and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Repository {
    /// Repository name, e.g. `team/app`.
    pub name: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Platforms (`linux/amd64`, `windows/amd64`) the repository's images are built for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// The public Azure clouds' registry domain suffixes.
pub const LOGIN_SERVER_SUFFIXES: &[&str] = &[".azurecr.io", ".azurecr.cn", ".azurecr.de", ".azurecr.us"];

/// Whether `host` is shaped like an ACR login server (`NAME.azurecr.io` and sovereign clouds).
pub fn is_acr_login_server(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    LOGIN_SERVER_SUFFIXES.iter().any(|s| {
        host.strip_suffix(s).is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_are_case_insensitive() {
        let with = |access: Option<&str>| RegistryProperties {
            public_network_access: access.map(str::to_string),
            ..Default::default()
        };
        assert!(with(None).public_access_enabled());
        assert!(with(Some("Enabled")).public_access_enabled());
        for off in ["Disabled", "disabled", "DISABLED"] {
            assert!(!with(Some(off)).public_access_enabled(), "{off}");
        }
        let abac =
            RegistryProperties { role_assignment_mode: Some("abacrepositorypermissions".into()), ..Default::default() };
        assert!(abac.abac_mode());
        let set = NetworkRuleSet { default_action: "allow".into(), ip_rules: vec![] };
        assert!(set.allows("192.0.2.1".parse().unwrap()));
        let set = NetworkRuleSet { default_action: "deny".into(), ip_rules: vec![] };
        assert!(!set.allows("192.0.2.1".parse().unwrap()));
    }
}
