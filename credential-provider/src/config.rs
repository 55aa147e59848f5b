//! The cluster's cloud config (`/etc/kubernetes/azure.json` on AKS nodes): which identity the
//! node uses to authenticate to ACR.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::ProviderError;

/// The `aadClientId` AKS writes for managed-identity clusters.
pub const MSI_CLIENT_ID: &str = "msi";

/// The fields of `azure.json` the plugin reads. Keys are matched case-insensitively, as Go's
/// `encoding/json` does; every other key is ignored.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudConfig {
    /// `cloud` (`AzurePublicCloud`, `AzureChinaCloud`, ...). Informational: the plugin accepts
    /// the login servers of every public Azure cloud, as the upstream plugin does.
    pub cloud: Option<String>,
    /// `tenantId`: sent to the ACR token exchange.
    pub tenant_id: String,
    /// `aadClientId`: the service principal's appId, or `msi`.
    pub aad_client_id: String,
    /// `aadClientSecret`: the service principal's secret (never printed by [`fmt::Debug`]).
    pub aad_client_secret: String,
    /// `useManagedIdentityExtension`.
    pub use_managed_identity_extension: bool,
    /// `userAssignedIdentityID`: the kubelet identity's client id (or resource id); empty for
    /// the system-assigned identity.
    pub user_assigned_identity_id: String,
}

impl fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudConfig")
            .field("cloud", &self.cloud)
            .field("tenant_id", &self.tenant_id)
            .field("aad_client_id", &self.aad_client_id)
            .field("aad_client_secret", &if self.aad_client_secret.is_empty() { "" } else { "<redacted>" })
            .field("use_managed_identity_extension", &self.use_managed_identity_extension)
            .field("user_assigned_identity_id", &self.user_assigned_identity_id)
            .finish()
    }
}

/// Which managed identity to ask IMDS for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityId {
    /// A user-assigned identity by client id (`client_id=`).
    ClientId(String),
    /// A user-assigned identity by ARM resource id (`msi_res_id=`).
    ResourceId(String),
}

/// How the node authenticates to ACR.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// IMDS token for the identity (system-assigned when `None`), exchanged for an ACR
    /// refresh token.
    ManagedIdentity {
        /// The identity; `None` for the system-assigned one.
        identity: Option<IdentityId>,
        /// The tenant sent to the exchange.
        tenant_id: String,
    },
    /// The service principal's appId and secret, handed to the kubelet as they are.
    ServicePrincipal {
        /// appId.
        client_id: String,
        /// Secret (never printed by [`fmt::Debug`]).
        client_secret: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ManagedIdentity { identity, tenant_id } => {
                f.debug_struct("ManagedIdentity").field("identity", identity).field("tenant_id", tenant_id).finish()
            }
            Credential::ServicePrincipal { client_id, .. } => f
                .debug_struct("ServicePrincipal")
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
        }
    }
}

impl CloudConfig {
    /// Reads `azure.json` from `path`.
    pub fn load(path: &Path) -> Result<Self, ProviderError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProviderError::Config { path: shown.clone(), reason: e.to_string() })?;
        Self::from_json(&text).map_err(|reason| ProviderError::Config { path: shown, reason })
    }

    /// Decodes the JSON text of `azure.json`.
    ///
    /// ```
    /// use acr_credential_provider::config::{CloudConfig, Credential, IdentityId};
    ///
    /// let cfg = CloudConfig::from_json(r#"{"cloud":"AzurePublicCloud","tenantId":"t","aadClientId":"msi",
    ///     "aadClientSecret":"msi","useManagedIdentityExtension":true,"userAssignedIdentityID":"c1"}"#).unwrap();
    /// assert_eq!(cfg.credential(), Credential::ManagedIdentity {
    ///     identity: Some(IdentityId::ClientId("c1".into())), tenant_id: "t".into() });
    /// ```
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("not a JSON object".to_owned());
        };
        Ok(Self {
            cloud: string(&map, "cloud")?.filter(|s| !s.is_empty()),
            tenant_id: string(&map, "tenantId")?.unwrap_or_default(),
            aad_client_id: string(&map, "aadClientId")?.unwrap_or_default(),
            aad_client_secret: string(&map, "aadClientSecret")?.unwrap_or_default(),
            use_managed_identity_extension: boolean(&map, "useManagedIdentityExtension")?.unwrap_or(false),
            user_assigned_identity_id: string(&map, "userAssignedIdentityID")?.unwrap_or_default(),
        })
    }

    /// The credential this config selects: a managed identity when
    /// `useManagedIdentityExtension` is true (or `aadClientId` is `msi`), else the service
    /// principal.
    pub fn credential(&self) -> Credential {
        if self.use_managed_identity_extension || self.aad_client_id.eq_ignore_ascii_case(MSI_CLIENT_ID) {
            let id = self.user_assigned_identity_id.trim();
            let identity = if id.is_empty() {
                None
            } else if id.to_ascii_uppercase().contains("/SUBSCRIPTIONS/") {
                Some(IdentityId::ResourceId(id.to_owned()))
            } else {
                Some(IdentityId::ClientId(id.to_owned()))
            };
            Credential::ManagedIdentity { identity, tenant_id: self.tenant_id.clone() }
        } else {
            Credential::ServicePrincipal {
                client_id: self.aad_client_id.clone(),
                client_secret: self.aad_client_secret.clone(),
            }
        }
    }
}

/// The value of `key`, matched case-insensitively (an exact match wins).
fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("{key} must be a boolean, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKS_MSI: &str = r#"{
        "cloud": "AzurePublicCloud",
        "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "subscriptionId": "00000000-0000-0000-0000-000000000001",
        "aadClientId": "msi",
        "aadClientSecret": "msi",
        "resourceGroup": "MC_rg_aks_westeurope",
        "location": "westeurope",
        "vmType": "vmss",
        "useManagedIdentityExtension": true,
        "userAssignedIdentityID": "5b8e2c2a-0000-4000-8000-000000000001",
        "useInstanceMetadata": true
    }"#;

    #[test]
    fn reads_an_aks_managed_identity_config() {
        let cfg = CloudConfig::from_json(AKS_MSI).unwrap();
        assert_eq!(cfg.cloud.as_deref(), Some("AzurePublicCloud"));
        assert!(cfg.use_managed_identity_extension);
        assert_eq!(
            cfg.credential(),
            Credential::ManagedIdentity {
                identity: Some(IdentityId::ClientId("5b8e2c2a-0000-4000-8000-000000000001".into())),
                tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            }
        );
    }

    #[test]
    fn reads_a_service_principal_config_and_hides_the_secret() {
        let cfg = CloudConfig::from_json(
            r#"{"tenantId":"t","aadClientId":"11111111-2222-3333-4444-555555555555","aadClientSecret":"s3cr3t~value","useManagedIdentityExtension":false}"#,
        )
        .unwrap();
        let credential = cfg.credential();
        assert_eq!(
            credential,
            Credential::ServicePrincipal {
                client_id: "11111111-2222-3333-4444-555555555555".into(),
                client_secret: "s3cr3t~value".into()
            }
        );
        assert!(!format!("{cfg:?}{credential:?}").contains("s3cr3t"));
    }

    #[test]
    fn keys_are_case_insensitive_and_resource_ids_are_recognised() {
        let cfg = CloudConfig::from_json(
            r#"{"TENANTID":"t","aadclientid":"msi","useManagedIdentityExtension":true,
                "userAssignedIdentityId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kubelet"}"#,
        )
        .unwrap();
        assert_eq!(cfg.tenant_id, "t");
        assert!(matches!(
            cfg.credential(),
            Credential::ManagedIdentity { identity: Some(IdentityId::ResourceId(_)), .. }
        ));
        // The system-assigned identity: no id at all; `aadClientId: msi` alone selects MSI.
        let cfg = CloudConfig::from_json(r#"{"tenantId":"t","aadClientId":"msi"}"#).unwrap();
        assert_eq!(cfg.credential(), Credential::ManagedIdentity { identity: None, tenant_id: "t".into() });
    }

    #[test]
    fn rejects_malformed_configs() {
        assert!(CloudConfig::from_json("[]").is_err());
        assert!(CloudConfig::from_json("{").is_err());
        assert!(CloudConfig::from_json(r#"{"useManagedIdentityExtension":"yes"}"#).unwrap_err().contains("boolean"));
        let err = CloudConfig::load(Path::new("/nonexistent/azure.json")).unwrap_err();
        assert!(err.to_string().starts_with("failed to load config /nonexistent/azure.json"));
    }
}
