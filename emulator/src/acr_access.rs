//! What ACR lets a caller do: network filtering of the login server and the repository actions a
//! caller's credentials and role assignments grant. Pure functions of the state.

use std::net::IpAddr;

use azure_model::Inventory;
use azure_model::Resource;
use azure_model::container_registry::RegistryProperties;
use serde::Serialize;

use crate::roles::{self, RegistryOperation};
use crate::state::store::ResourceStore;

/// Who asks for a registry token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No credentials.
    Anonymous,
    /// An Entra principal (object id), from an ACR refresh token or a service principal secret.
    Principal(String),
    /// The registry's admin user.
    Admin,
}

/// One requested or granted scope: `repository:team/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Parses `scope` values (each may hold several space-separated scopes).
pub(crate) fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Access> {
    let mut out = Vec::new();
    for scope in values.into_iter().flat_map(str::split_whitespace) {
        let Some((kind, rest)) = scope.split_once(':') else { continue };
        let Some((name, actions)) = rest.rsplit_once(':') else { continue };
        let kind = kind.split('(').next().unwrap_or(kind);
        out.push(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
        });
    }
    out
}

/// Whether a client at `ip` may reach the registry: traffic through an approved private endpoint
/// is exempt from the public rules, as in Azure.
pub(crate) fn network_allows(registry: &Resource<RegistryProperties>, ip: IpAddr, via_private_endpoint: bool) -> bool {
    let has_endpoint = registry.properties.private_endpoint_connections.iter().any(|c| {
        c.properties
            .private_link_service_connection_state
            .as_ref()
            .is_some_and(|s| s.status.eq_ignore_ascii_case("Approved"))
    });
    (via_private_endpoint && has_endpoint) || registry.properties.public_endpoint_allows(ip)
}

/// The registry operations `caller` may perform.
pub(crate) fn allowed_operations(
    inv: &Inventory,
    store: &ResourceStore,
    registry: &Resource<RegistryProperties>,
    caller: &Caller,
) -> Vec<RegistryOperation> {
    use RegistryOperation::*;
    match caller {
        Caller::Admin => vec![Pull, Push, Delete],
        Caller::Anonymous if registry.properties.anonymous_pull_enabled.unwrap_or(false) => vec![Pull],
        Caller::Anonymous => vec![],
        Caller::Principal(object_id) => {
            let abac = registry.properties.abac_mode();
            let roles: Vec<roles::Role> = inv
                .role_assignments_at(&registry.id)
                .filter(|a| a.properties.principal_id.eq_ignore_ascii_case(object_id))
                .filter_map(|a| roles::resolve(store, &a.properties.role_definition_id))
                .collect();
            [Pull, Push, Delete].into_iter().filter(|op| roles.iter().any(|r| r.grants(*op, abac))).collect()
        }
    }
}

/// The part of `requested` that `allowed` covers (scopes with nothing granted are dropped).
pub(crate) fn grant(requested: &[Access], allowed: &[RegistryOperation]) -> Vec<Access> {
    use RegistryOperation::*;
    requested
        .iter()
        .filter_map(|r| {
            let actions: Vec<String> = r
                .actions
                .iter()
                .filter(|a| match (r.kind.as_str(), a.as_str()) {
                    ("repository", "pull") => allowed.contains(&Pull),
                    ("repository", "push") => allowed.contains(&Push),
                    ("repository", "delete") => allowed.contains(&Delete),
                    ("repository", "*") => {
                        allowed.contains(&Pull) && allowed.contains(&Push) && allowed.contains(&Delete)
                    }
                    ("registry", "*") => allowed.contains(&Pull),
                    _ => false,
                })
                .cloned()
                .collect();
            (!actions.is_empty()).then(|| Access { actions, ..r.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistryOperation::*;

    #[test]
    fn scopes_and_grants() {
        let s = parse_scopes(["repository:team/app:pull,push registry:catalog:*", "repository(plugin):x:pull"]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "team/app");
        assert_eq!(s[2].kind, "repository");
        let g = grant(&s, &[Pull]);
        assert_eq!(g[0].actions, vec!["pull"]);
        assert_eq!(g[1].actions, vec!["*"]);
        assert!(grant(&s, &[]).is_empty());
    }
}
