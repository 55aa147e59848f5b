//! Image pull secrets (`kubernetes.io/dockerconfigjson` and legacy `kubernetes.io/dockercfg`).
//!
//! Only usernames and registry hosts are kept: passwords are read to check they exist and then
//! dropped, so they can never reach a report or a log.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Serialize;

/// One registry entry of a pull secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryLogin {
    /// The registry host the entry is for (scheme and path stripped, lowercase).
    pub registry: String,
    /// The username (an appId, a registry name, or the null GUID for ACR tokens).
    pub username: String,
    /// Whether a password was present.
    pub has_password: bool,
}

/// A pull secret with its registry logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullSecret {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Entries.
    pub logins: Vec<RegistryLogin>,
}

impl PullSecret {
    /// Reads a Secret; `None` when it is not a docker config secret or cannot be decoded.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let (raw, nested) = if let Some(v) = data.get(".dockerconfigjson") {
            (&v.0, true)
        } else {
            (&data.get(".dockercfg")?.0, false)
        };
        let doc: serde_json::Value = serde_json::from_slice(raw).ok()?;
        let auths = if nested { doc.get("auths")? } else { &doc };
        let mut logins = Vec::new();
        for (host, entry) in auths.as_object()? {
            let mut username = entry.get("username").and_then(|u| u.as_str()).unwrap_or_default().to_string();
            let mut has_password = entry.get("password").and_then(|p| p.as_str()).is_some_and(|p| !p.is_empty());
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str())
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(auth.trim())
                && let Ok(text) = String::from_utf8(bytes)
                && let Some((u, p)) = text.split_once(':')
            {
                if username.is_empty() {
                    username = u.to_string();
                }
                has_password |= !p.is_empty();
            }
            logins.push(RegistryLogin { registry: normalize_host(host), username, has_password });
        }
        Some(Self {
            namespace: secret.metadata.namespace.clone().unwrap_or_default(),
            name: secret.metadata.name.clone().unwrap_or_default(),
            logins,
        })
    }

    /// The entry for `host`, if any.
    pub fn login_for(&self, host: &str) -> Option<&RegistryLogin> {
        let host = host.to_ascii_lowercase();
        self.logins.iter().find(|l| l.registry == host)
    }
}

fn normalize_host(h: &str) -> String {
    let h = h.trim();
    let h = h.strip_prefix("https://").or_else(|| h.strip_prefix("http://")).unwrap_or(h);
    h.split('/').next().unwrap_or_default().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(key: &str, body: &str) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("acr".into()),
                namespace: Some("app".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(key.to_string(), ByteString(body.as_bytes().to_vec()))])),
            ..Default::default()
        }
    }

    #[test]
    fn reads_dockerconfigjson_with_auth_field() {
        // "myacr:s3cret" in base64.
        let s =
            secret(".dockerconfigjson", r#"{"auths":{"https://MyAcr.azurecr.io/v2/":{"auth":"bXlhY3I6czNjcmV0"}}}"#);
        let ps = PullSecret::from_secret(&s).unwrap();
        assert_eq!(
            ps.logins,
            vec![RegistryLogin { registry: "myacr.azurecr.io".into(), username: "myacr".into(), has_password: true }]
        );
        assert!(!format!("{ps:?}").contains("s3cret"));
    }

    #[test]
    fn reads_legacy_dockercfg_and_ignores_others() {
        let s = secret(".dockercfg", r#"{"myacr.azurecr.io":{"username":"u","password":"p"}}"#);
        assert_eq!(PullSecret::from_secret(&s).unwrap().login_for("MYACR.azurecr.io").unwrap().username, "u");
        assert!(PullSecret::from_secret(&secret("token", "x")).is_none());
        assert!(PullSecret::from_secret(&secret(".dockerconfigjson", "not json")).is_none());
    }
}
