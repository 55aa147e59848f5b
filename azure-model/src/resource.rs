//! The ARM resource envelope shared by every tracked resource.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An ARM resource: `{id, name, type, location, tags, sku, identity, etag, properties}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource<P> {
    /// The full resource id.
    #[serde(default)]
    pub id: String,
    /// The resource name (last id segment).
    #[serde(default)]
    pub name: String,
    /// The full resource type, e.g. `Microsoft.ContainerRegistry/registries`.
    #[serde(rename = "type", default)]
    pub resource_type: String,
    /// The Azure region (`global` for private DNS resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Resource tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The SKU, where the type has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// The managed identity block, where the type has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ManagedServiceIdentity>,
    /// The entity tag.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "eTag")]
    pub etag: Option<String>,
    /// The resource-specific properties.
    pub properties: P,
}

/// A reference to another resource: `{"id": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubResource {
    /// The referenced resource's id.
    pub id: String,
}

impl SubResource {
    /// A reference to `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// A SKU: `{"name": "Premium", "tier": "Premium"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sku {
    /// SKU name.
    pub name: String,
    /// SKU tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// The `identity` block of a resource (clusters, scale sets, registries).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedServiceIdentity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    /// The system-assigned identity's principal (object) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// The tenant of the system-assigned identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// User-assigned identities, keyed by the identity's resource id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_assigned_identities: BTreeMap<String, UserAssignedIdentity>,
}

impl ManagedServiceIdentity {
    /// Whether the user-assigned identity `resource_id` is attached (ids compare case-insensitively).
    pub fn has_user_assigned(&self, resource_id: &str) -> bool {
        self.user_assigned_identities.keys().any(|k| crate::id::same_id(k, resource_id))
    }
}

/// A user-assigned identity attached to a resource: `{principalId, clientId}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// The identity's principal (object) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// The identity's client (application) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `provisioningState` values.
pub const SUCCEEDED: &str = "Succeeded";
