//! Who pulldoctor itself ran as. When evidence could not be read, the fix names this identity
//! (a role assignment needs its object id, a Graph permission its application id).

/// The kind of principal pulldoctor authenticated as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Not known.
    #[default]
    Unknown,
    /// A user (`az login`).
    User,
    /// An application's service principal (client credentials).
    ServicePrincipal,
    /// A managed identity (no application registration to add permissions to).
    ManagedIdentity,
}

/// pulldoctor's own identity, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineIdentity {
    /// The Entra object id (what role assignments name).
    pub object_id: Option<String>,
    /// The application (client) id of a service principal.
    pub app_id: Option<String>,
    /// What kind of principal.
    pub kind: PrincipalKind,
    /// A user's sign-in name.
    pub name: Option<String>,
}

impl EngineIdentity {
    /// Reads the identity from the claims of an Entra access token (`oid`, `appid`/`azp`,
    /// `idtyp`, `xms_mirid`, `upn`). The signature is not checked: the token is pulldoctor's own,
    /// and only names it. `None` when the token is not a JWT.
    pub fn from_access_token(token: &str) -> Option<Self> {
        use base64::Engine;
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty()).map(str::to_string);
        let name = s("upn").or_else(|| s("unique_name")).or_else(|| s("preferred_username"));
        let app_only = s("idtyp").is_some_and(|t| t.eq_ignore_ascii_case("app"))
            || (claims.get("scp").is_none() && name.is_none() && s("oid").is_some() && s("oid") == s("sub"));
        let kind = if s("xms_mirid").is_some() {
            PrincipalKind::ManagedIdentity
        } else if app_only {
            PrincipalKind::ServicePrincipal
        } else if name.is_some() || claims.get("scp").is_some() {
            PrincipalKind::User
        } else {
            PrincipalKind::Unknown
        };
        Some(Self {
            object_id: s("oid"),
            app_id: if kind == PrincipalKind::User { None } else { s("appid").or_else(|| s("azp")) },
            kind,
            name: if kind == PrincipalKind::User { name } else { None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(claims: serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", enc(&serde_json::json!({"alg": "RS256"})), enc(&claims))
    }

    #[test]
    fn claims_name_the_caller() {
        let sp = EngineIdentity::from_access_token(&jwt(
            serde_json::json!({"oid": "o1", "sub": "o1", "appid": "a1", "idtyp": "app"}),
        ))
        .unwrap();
        assert_eq!(
            sp,
            EngineIdentity {
                object_id: Some("o1".into()),
                app_id: Some("a1".into()),
                kind: PrincipalKind::ServicePrincipal,
                name: None
            }
        );
        let user = EngineIdentity::from_access_token(&jwt(
            serde_json::json!({"oid": "o2", "sub": "x", "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "scp": "user_impersonation", "upn": "ana@contoso.com"}),
        ))
        .unwrap();
        assert_eq!(
            (user.kind, user.app_id, user.name.as_deref()),
            (PrincipalKind::User, None, Some("ana@contoso.com"))
        );
        let mi = EngineIdentity::from_access_token(&jwt(
            serde_json::json!({"oid": "o3", "sub": "o3", "appid": "a3", "idtyp": "app", "xms_mirid": "/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pd"}),
        ))
        .unwrap();
        assert_eq!(mi.kind, PrincipalKind::ManagedIdentity);
        assert!(EngineIdentity::from_access_token("opaque").is_none());
    }
}
