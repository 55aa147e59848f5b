//! The role catalog: azure-model's built-in roles, the few more the emulator serves (push and
//! delete roles, so tests and the harness can push images), custom role definitions from the
//! store, and what each lets a principal do on a registry.

use azure_model::authorization::{
    self, BUILT_IN_ROLES, BuiltInRole, PULL_ACTION, Permission, REPOSITORY_CONTENT_READ, RoleDefinitionProperties,
    action_matches,
};
use azure_model::inventory::types;
use serde_json::{Value, json};

use crate::state::store::ResourceStore;

pub use azure_model::authorization::{
    ACR_DELETE, ACR_PUSH, DELETE_ACTION, PUSH_ACTION, REPOSITORY_CONTENT_WRITE, REPOSITORY_WRITER,
};

/// The data action that lets a principal delete repository content in ABAC mode.
pub const REPOSITORY_CONTENT_DELETE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/delete";

/// Every built-in role served (azure-model's table).
pub fn all_built_in() -> impl Iterator<Item = &'static BuiltInRole> {
    BUILT_IN_ROLES.iter()
}

/// A built-in role by GUID or full role definition id.
pub fn built_in(role_definition: &str) -> Option<&'static BuiltInRole> {
    authorization::built_in(role_definition)
}

/// What a caller asks to do in a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryOperation {
    /// Read manifests and blobs.
    Pull,
    /// Write manifests and blobs.
    Push,
    /// Delete artifacts.
    Delete,
}

/// A role as far as registry access goes.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    BuiltIn(&'static BuiltInRole),
    Custom(RoleDefinitionProperties),
}

fn wanted(op: RegistryOperation, abac: bool) -> &'static str {
    match (op, abac) {
        (RegistryOperation::Pull, false) => PULL_ACTION,
        (RegistryOperation::Push, false) => PUSH_ACTION,
        (RegistryOperation::Delete, false) => DELETE_ACTION,
        (RegistryOperation::Pull, true) => REPOSITORY_CONTENT_READ,
        (RegistryOperation::Push, true) => REPOSITORY_CONTENT_WRITE,
        (RegistryOperation::Delete, true) => REPOSITORY_CONTENT_DELETE,
    }
}

/// Whether an action list grants `action` (`*/read` never grants registry data access, as in
/// Azure where Reader cannot pull).
fn list_grants(allowed: &[&str], denied: &[&str], action: &str) -> bool {
    allowed.iter().any(|a| *a != "*/read" && action_matches(a, action))
        && !denied.iter().any(|d| action_matches(d, action))
}

impl Role {
    /// Whether the role allows `op` on a registry in legacy (`abac == false`) or ABAC mode.
    /// ABAC-mode registries honour only data actions; legacy ones only control-plane actions.
    pub fn grants(&self, op: RegistryOperation, abac: bool) -> bool {
        match self {
            Role::BuiltIn(r) if op == RegistryOperation::Pull => {
                if abac {
                    r.grants_abac_pull()
                } else {
                    r.grants_legacy_pull()
                }
            }
            Role::BuiltIn(r) => {
                let list = if abac { r.data_actions } else { r.actions };
                list_grants(list, &[], wanted(op, abac))
            }
            Role::Custom(d) => d.permissions.iter().any(|p: &Permission| {
                let (allowed, denied) =
                    if abac { (&p.data_actions, &p.not_data_actions) } else { (&p.actions, &p.not_actions) };
                let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let denied: Vec<&str> = denied.iter().map(String::as_str).collect();
                list_grants(&allowed, &denied, wanted(op, abac))
            }),
        }
    }
}

/// Resolves a `roleDefinitionId` to a built-in role or a custom definition in the store.
pub(crate) fn resolve(store: &ResourceStore, role_definition_id: &str) -> Option<Role> {
    if let Some(b) = built_in(role_definition_id) {
        return Some(Role::BuiltIn(b));
    }
    let guid = role_definition_id.rsplit('/').next().unwrap_or(role_definition_id);
    store
        .of_type(types::ROLE_DEFINITION)
        .find(|v| v.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(guid)))
        .and_then(|v| serde_json::from_value(v.get("properties").cloned().unwrap_or(Value::Null)).ok())
        .map(Role::Custom)
}

fn not_actions(role: &BuiltInRole) -> &'static [&'static str] {
    if role.id == authorization::CONTRIBUTOR.id {
        &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ]
    } else {
        &[]
    }
}

fn description(role: &BuiltInRole) -> &'static str {
    match role.name {
        "AcrPull" => "acr pull",
        "AcrPush" => "acr push",
        "AcrDelete" => "acr delete",
        "Owner" => "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        "Contributor" => {
            "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC."
        }
        "Reader" => "View all resources, but does not allow you to make any changes.",
        "Container Registry Repository Reader" => "Allows read access to repositories in a container registry.",
        "Container Registry Repository Writer" => {
            "Allows read and write access to repositories in a container registry."
        }
        _ => "",
    }
}

/// A built-in role definition's ARM body, with its id under `scope` (`""` for the tenant).
pub(crate) fn definition_body(role: &BuiltInRole, scope: &str) -> Value {
    json!({
        "id": format!("{}/providers/Microsoft.Authorization/roleDefinitions/{}", scope.trim_end_matches('/'), role.id),
        "name": role.id,
        "type": types::ROLE_DEFINITION,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": description(role),
            "assignableScopes": ["/"],
            "permissions": [{
                "actions": role.actions,
                "notActions": not_actions(role),
                "dataActions": role.data_actions,
                "notDataActions": [],
            }],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistryOperation::*;
    use azure_model::authorization::{ACR_PULL, OWNER, READER, REPOSITORY_READER};

    #[test]
    fn grants_by_mode() {
        let r = |b: &'static BuiltInRole| Role::BuiltIn(b);
        assert!(r(&ACR_PULL).grants(Pull, false));
        assert!(!r(&ACR_PULL).grants(Pull, true));
        assert!(!r(&ACR_PULL).grants(Push, false));
        assert!(r(&ACR_PUSH).grants(Push, false));
        assert!(r(&OWNER).grants(Push, false));
        assert!(!r(&READER).grants(Pull, false));
        assert!(r(&REPOSITORY_READER).grants(Pull, true));
        assert!(r(&REPOSITORY_WRITER).grants(Push, true));
        let custom = Role::Custom(RoleDefinitionProperties {
            role_name: "puller".into(),
            permissions: vec![Permission {
                actions: vec!["Microsoft.ContainerRegistry/registries/*".into()],
                not_actions: vec![PUSH_ACTION.into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(custom.grants(Pull, false));
        assert!(!custom.grants(Push, false));
        assert_eq!(built_in(&ACR_PUSH.definition_id("s")).unwrap().name, "AcrPush");
    }
}
