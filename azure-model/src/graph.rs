//! Microsoft Graph v1.0: applications and service principals with their password credentials.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A Graph `application` (only what secret expiry needs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The application object's id.
    pub id: String,
    /// The application (client) id.
    pub app_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Client secrets (metadata only: Graph never returns secret values on reads).
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
}

/// A Graph `passwordCredential`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    /// The credential's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Start of validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    /// End of validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// The first three characters of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The secret itself: only in the answer to `addPassword`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_text: Option<String>,
}

impl PasswordCredential {
    /// The end of validity, when it parses as RFC 3339.
    pub fn end(&self) -> Option<OffsetDateTime> {
        parse_time(self.end_date_time.as_deref()?)
    }

    /// Whether the credential is valid at `now` (no end date means valid).
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        let started = self.start_date_time.as_deref().and_then(parse_time).is_none_or(|s| s <= now);
        started && self.end().is_none_or(|e| e > now)
    }
}

impl Application {
    /// Whether at least one password credential is valid at `now`.
    pub fn has_valid_secret(&self, now: OffsetDateTime) -> bool {
        self.password_credentials.iter().any(|c| c.is_valid_at(now))
    }

    /// The latest end date among the password credentials.
    pub fn latest_secret_end(&self) -> Option<OffsetDateTime> {
        self.password_credentials.iter().filter_map(PasswordCredential::end).max()
    }
}

/// A Graph `servicePrincipal` (the tenant-local object of an application).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// The object id: what role assignments name as `principalId`.
    pub id: String,
    /// The application (client) id.
    pub app_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let now = parse_time("2026-11-22T00:00:00Z").unwrap();
        let expired = PasswordCredential { end_date_time: Some("2026-01-01T00:00:00Z".into()), ..Default::default() };
        let current =
            PasswordCredential { end_date_time: Some("2027-01-01T00:00:00.0000000Z".into()), ..Default::default() };
        assert!(!expired.is_valid_at(now));
        assert!(current.is_valid_at(now));
        let app = Application { password_credentials: vec![expired.clone()], ..Default::default() };
        assert!(!app.has_valid_secret(now));
    }
}
