//! `Microsoft.Authorization/roleAssignments` and `roleDefinitions`.

use serde::{Deserialize, Serialize};

/// `properties` of a role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    /// `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
    pub role_definition_id: String,
    /// The assignee's object id.
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// The scope the role applies to (returned by ARM; derived from the URL on PUT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// An ABAC condition, where set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RoleAssignmentProperties {
    /// The role definition's GUID (the last segment of `roleDefinitionId`).
    pub fn role_guid(&self) -> &str {
        self.role_definition_id.rsplit('/').next().unwrap_or_default()
    }
}

/// `properties` of a role definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionProperties {
    /// Display name (`AcrPull`).
    pub role_name: String,
    /// `BuiltInRole` or `CustomRole`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub role_type: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Allowed actions.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Where it may be assigned.
    #[serde(default)]
    pub assignable_scopes: Vec<String>,
}

/// One permission block of a role definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// Control-plane actions (wildcards allowed).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Excluded control-plane actions.
    #[serde(default)]
    pub not_actions: Vec<String>,
    /// Data-plane actions.
    #[serde(default)]
    pub data_actions: Vec<String>,
    /// Excluded data-plane actions.
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// A built-in role pullproof knows by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltInRole {
    /// The role's GUID, the same in every tenant.
    pub id: &'static str,
    /// Its display name.
    pub name: &'static str,
    /// Control-plane actions.
    pub actions: &'static [&'static str],
    /// Data-plane actions.
    pub data_actions: &'static [&'static str],
}

/// `AcrPull`: `Microsoft.ContainerRegistry/registries/pull/read`.
pub const ACR_PULL: BuiltInRole = BuiltInRole {
    id: "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    name: "AcrPull",
    actions: &["Microsoft.ContainerRegistry/registries/pull/read"],
    data_actions: &[],
};

/// `Container Registry Repository Reader` (what ABAC-mode registries require).
pub const REPOSITORY_READER: BuiltInRole = BuiltInRole {
    id: "b93aa761-3e63-49ed-ac28-beffa264f7ac",
    name: "Container Registry Repository Reader",
    actions: &[],
    data_actions: &[
        "Microsoft.ContainerRegistry/registries/repositories/content/read",
        "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
    ],
};

/// `Owner`.
pub const OWNER: BuiltInRole =
    BuiltInRole { id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", name: "Owner", actions: &["*"], data_actions: &[] };

/// `Contributor` (its actions include registry pull).
pub const CONTRIBUTOR: BuiltInRole =
    BuiltInRole { id: "b24988ac-6180-42a0-ab88-20f7382dd24c", name: "Contributor", actions: &["*"], data_actions: &[] };

/// `Reader`: reads the registry resource but may not pull.
pub const READER: BuiltInRole =
    BuiltInRole { id: "acdd72a7-3385-48ef-bd42-f606fba81ae7", name: "Reader", actions: &["*/read"], data_actions: &[] };

/// `AcrPush`: pull and push.
pub const ACR_PUSH: BuiltInRole = BuiltInRole {
    id: "8311e382-0749-4cb8-b61a-304f252e45ec",
    name: "AcrPush",
    actions: &[PULL_ACTION, PUSH_ACTION],
    data_actions: &[],
};

/// `AcrDelete`: delete artifacts.
pub const ACR_DELETE: BuiltInRole = BuiltInRole {
    id: "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
    name: "AcrDelete",
    actions: &[DELETE_ACTION],
    data_actions: &[],
};

/// `Container Registry Repository Writer`: read and write repository content (ABAC mode).
pub const REPOSITORY_WRITER: BuiltInRole = BuiltInRole {
    id: "2a1e307c-b015-4ebd-883e-5b7698a07328",
    name: "Container Registry Repository Writer",
    actions: &[],
    data_actions: &[
        REPOSITORY_CONTENT_READ,
        REPOSITORY_CONTENT_WRITE,
        "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
        "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
    ],
};

/// Every built-in role pullproof knows.
pub const BUILT_IN_ROLES: &[BuiltInRole] =
    &[ACR_PULL, REPOSITORY_READER, OWNER, CONTRIBUTOR, READER, ACR_PUSH, ACR_DELETE, REPOSITORY_WRITER];

/// The control-plane action that lets a principal pull in legacy (non-ABAC) mode.
pub const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// The data action that lets a principal read repository content in ABAC mode.
pub const REPOSITORY_CONTENT_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
/// The control-plane action that lets a principal push in legacy mode.
pub const PUSH_ACTION: &str = "Microsoft.ContainerRegistry/registries/push/write";
/// The control-plane action that lets a principal delete artifacts in legacy mode.
pub const DELETE_ACTION: &str = "Microsoft.ContainerRegistry/registries/artifacts/delete";
/// The data action that lets a principal write repository content in ABAC mode.
pub const REPOSITORY_CONTENT_WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";

/// Looks a built-in role up by GUID (or by a full role definition id).
pub fn built_in(role_definition: &str) -> Option<&'static BuiltInRole> {
    let guid = role_definition.rsplit('/').next().unwrap_or(role_definition);
    BUILT_IN_ROLES.iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

/// Looks a built-in role up by its display name (case-insensitive).
pub fn built_in_by_name(name: &str) -> Option<&'static BuiltInRole> {
    BUILT_IN_ROLES.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

impl BuiltInRole {
    /// The subscription-scoped role definition id ARM uses in role assignments.
    pub fn definition_id(&self, subscription: &str) -> String {
        format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}", self.id)
    }

    /// Whether the role grants pull in legacy mode (control-plane `pull/read`, or a wildcard that
    /// covers it; `*/read` does not, as in Azure where Reader cannot pull).
    pub fn grants_legacy_pull(&self) -> bool {
        self.actions.iter().any(|a| action_matches(a, PULL_ACTION) && *a != "*/read")
    }

    /// Whether the role grants repository reads in ABAC mode.
    pub fn grants_abac_pull(&self) -> bool {
        self.data_actions.iter().any(|a| action_matches(a, REPOSITORY_CONTENT_READ))
    }
}

/// Whether an action pattern covers `action`, case-insensitively; every `*` stands for any run
/// of characters (`Microsoft.*/registries/*` has two). Found by the role differential test: an
/// earlier version honoured only the first `*`.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let a = action.to_ascii_lowercase();
    let mut parts = p.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = a.strip_prefix(first) else { return false };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else { return rest.is_empty() };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_anywhere() {
        assert!(action_matches("Microsoft.*/registries/*", PULL_ACTION));
        assert!(action_matches("*", PULL_ACTION));
        assert!(action_matches("*/read", PULL_ACTION));
        assert!(!action_matches("Microsoft.*/registries/*/write", PULL_ACTION));
        assert!(action_matches("microsoft.containerregistry/registries/pull/read", PULL_ACTION));
        assert!(!action_matches("Microsoft.ContainerRegistry/registries/pull/rea", PULL_ACTION));
        assert!(action_matches("*registries*", PULL_ACTION));
    }

    #[test]
    fn who_can_pull() {
        assert!(ACR_PULL.grants_legacy_pull());
        assert!(OWNER.grants_legacy_pull());
        assert!(CONTRIBUTOR.grants_legacy_pull());
        assert!(!READER.grants_legacy_pull());
        assert!(!REPOSITORY_READER.grants_legacy_pull());
        assert!(REPOSITORY_READER.grants_abac_pull());
        assert!(!ACR_PULL.grants_abac_pull());
        assert!(ACR_PUSH.grants_legacy_pull());
        assert!(REPOSITORY_WRITER.grants_abac_pull());
        assert!(!ACR_DELETE.grants_legacy_pull() && !ACR_DELETE.grants_abac_pull());
    }

    #[test]
    fn lookup() {
        let id = ACR_PULL.definition_id("s1");
        assert_eq!(built_in(&id).unwrap().name, "AcrPull");
        assert_eq!(built_in_by_name("acrpull").unwrap().id, ACR_PULL.id);
        assert!(built_in("nope").is_none());
    }
}
