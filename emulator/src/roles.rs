//! The role catalog the emulator authorises with: Azure's built-in roles as its documentation
//! defines them (GUIDs, `actions`, `notActions`, `dataActions`), custom role definitions from the
//! store, and what each lets a principal do on a registry.
//!
//! This table and its matcher are the emulator's own, written apart from `azure_model`'s role
//! table that pulldoctor reads: a wrong entry on either side shows up as a disagreement in the
//! differential test (`tests/tests/role_differential.rs`), not as a catalog that passes because
//! both sides share the mistake.

use azure_model::authorization::{Permission, RoleDefinitionProperties};
use azure_model::inventory::types;
use serde_json::{Value, json};

use crate::state::store::ResourceStore;

/// Legacy-mode pull (control-plane action).
pub const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// Legacy-mode push.
pub const PUSH_ACTION: &str = "Microsoft.ContainerRegistry/registries/push/write";
/// Legacy-mode delete.
pub const DELETE_ACTION: &str = "Microsoft.ContainerRegistry/registries/artifacts/delete";
/// ABAC-mode repository reads (data action).
pub const REPOSITORY_CONTENT_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
/// ABAC-mode repository writes.
pub const REPOSITORY_CONTENT_WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";
/// The data action that lets a principal delete repository content in ABAC mode.
pub const REPOSITORY_CONTENT_DELETE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/delete";

/// A built-in role definition, as Azure documents it.
#[derive(Debug)]
pub struct BuiltIn {
    /// The GUID, the same in every tenant.
    pub id: &'static str,
    /// The display name.
    pub name: &'static str,
    /// What the documentation says it is for.
    pub description: &'static str,
    /// Control-plane actions.
    pub actions: &'static [&'static str],
    /// Control-plane actions excluded from `actions`.
    pub not_actions: &'static [&'static str],
    /// Data-plane actions.
    pub data_actions: &'static [&'static str],
}

/// `AcrPush`, for tests and the harness's pushes.
pub const ACR_PUSH: BuiltIn = BuiltIn {
    id: "8311e382-0749-4cb8-b61a-304f252e45ec",
    name: "AcrPush",
    description: "acr push",
    actions: &[PULL_ACTION, PUSH_ACTION],
    not_actions: &[],
    data_actions: &[],
};

/// The built-in roles served (learn.microsoft.com, "Azure built-in roles" and "Azure Container
/// Registry roles and permissions").
pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ],
        data_actions: &[],
    },
    BuiltIn {
        id: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        id: "7f951dda-4ed3-4680-a7ca-43fe172d538d",
        name: "AcrPull",
        description: "acr pull",
        actions: &[PULL_ACTION],
        not_actions: &[],
        data_actions: &[],
    },
    ACR_PUSH,
    BuiltIn {
        id: "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
        name: "AcrDelete",
        description: "acr delete",
        actions: &[DELETE_ACTION],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        id: "b93aa761-3e63-49ed-ac28-beffa264f7ac",
        name: "Container Registry Repository Reader",
        description: "Allows read access to repositories in a container registry.",
        actions: &[],
        not_actions: &[],
        data_actions: &[REPOSITORY_CONTENT_READ, "Microsoft.ContainerRegistry/registries/repositories/metadata/read"],
    },
    BuiltIn {
        id: "2a1e307c-b015-4ebd-883e-5b7698a07328",
        name: "Container Registry Repository Writer",
        description: "Allows read and write access to repositories in a container registry.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            REPOSITORY_CONTENT_READ,
            REPOSITORY_CONTENT_WRITE,
            "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
        ],
    },
];

/// Every built-in role served.
pub fn all_built_in() -> impl Iterator<Item = &'static BuiltIn> {
    BUILT_INS.iter()
}

/// A built-in role by GUID or full role definition id.
pub fn built_in(role_definition: &str) -> Option<&'static BuiltIn> {
    let guid = role_definition.rsplit('/').next().unwrap_or(role_definition);
    BUILT_INS.iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

impl BuiltIn {
    /// The subscription-scoped role definition id used in role assignments.
    pub fn definition_id(&self, subscription: &str) -> String {
        format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}", self.id)
    }
}

/// Whether Azure's action pattern `pattern` covers `action`: case-insensitive, each `*` standing
/// for any run of characters.
pub fn covers(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((c, rest)) => a.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(rest, &a[1..]),
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
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
    BuiltIn(&'static BuiltIn),
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
    allowed.iter().any(|a| *a != "*/read" && covers(a, action)) && !denied.iter().any(|d| covers(d, action))
}

impl Role {
    /// Whether the role allows `op` on a registry in legacy (`abac == false`) or ABAC mode.
    /// ABAC-mode registries honour only data actions; legacy ones only control-plane actions.
    pub fn grants(&self, op: RegistryOperation, abac: bool) -> bool {
        match self {
            Role::BuiltIn(r) => {
                let (allowed, denied) = if abac { (r.data_actions, &[][..]) } else { (r.actions, r.not_actions) };
                list_grants(allowed, denied, wanted(op, abac))
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

/// Whether a role lets its holder pull, by the emulator's own table and matcher: `None` for a
/// GUID it does not know. (The authorisation the ACR token service enforces, exposed for the
/// differential test against pulldoctor's reading of the same roles.)
pub fn built_in_grants_pull(guid: &str, abac: bool) -> Option<bool> {
    built_in(guid).map(|r| Role::BuiltIn(r).grants(RegistryOperation::Pull, abac))
}

/// Whether a custom role definition lets its holder pull.
pub fn definition_grants_pull(definition: &RoleDefinitionProperties, abac: bool) -> bool {
    Role::Custom(definition.clone()).grants(RegistryOperation::Pull, abac)
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

/// A built-in role definition's ARM body, with its id under `scope` (`""` for the tenant).
pub(crate) fn definition_body(role: &BuiltIn, scope: &str) -> Value {
    json!({
        "id": format!("{}/providers/Microsoft.Authorization/roleDefinitions/{}", scope.trim_end_matches('/'), role.id),
        "name": role.id,
        "type": types::ROLE_DEFINITION,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [{
                "actions": role.actions,
                "notActions": role.not_actions,
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

    fn role(name: &str) -> Role {
        Role::BuiltIn(BUILT_INS.iter().find(|r| r.name == name).unwrap())
    }

    #[test]
    fn grants_by_mode() {
        assert!(role("AcrPull").grants(Pull, false));
        assert!(!role("AcrPull").grants(Pull, true));
        assert!(!role("AcrPull").grants(Push, false));
        assert!(role("AcrPush").grants(Push, false));
        assert!(role("Owner").grants(Push, false));
        assert!(role("Contributor").grants(Pull, false));
        assert!(!role("Reader").grants(Pull, false));
        assert!(role("Container Registry Repository Reader").grants(Pull, true));
        assert!(role("Container Registry Repository Writer").grants(Push, true));
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

    #[test]
    fn patterns_match_as_azure_documents() {
        assert!(covers("*", PULL_ACTION));
        assert!(covers("microsoft.containerregistry/*/read", PULL_ACTION));
        assert!(covers("Microsoft.ContainerRegistry/registries/*/read", PULL_ACTION));
        assert!(!covers("Microsoft.ContainerRegistry/registries/*/write", PULL_ACTION));
        assert!(covers("Microsoft.*/registries/*", PULL_ACTION));
        assert!(!covers("Microsoft.Network/*", PULL_ACTION));
    }
}
