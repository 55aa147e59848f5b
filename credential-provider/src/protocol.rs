//! The kubelet's image credential provider protocol, `credentialprovider.kubelet.k8s.io/v1`:
//! a [`CredentialProviderRequest`] arrives as JSON on stdin, a [`CredentialProviderResponse`]
//! leaves as JSON on stdout.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ProviderError;

/// The protocol version this plugin speaks.
pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// `kind` of a request.
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
/// `kind` of a response.
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";

/// What the kubelet sends: the image it is about to pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderRequest {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`REQUEST_KIND`].
    pub kind: String,
    /// The image, as the kubelet passes it: the repository without tag or digest
    /// (`myacr.azurecr.io/app`), though a full reference is accepted too.
    pub image: String,
}

impl CredentialProviderRequest {
    /// A request for `image`.
    pub fn new(image: impl Into<String>) -> Self {
        Self { api_version: API_VERSION.to_owned(), kind: REQUEST_KIND.to_owned(), image: image.into() }
    }

    /// Reads and checks a request: the version and kind must be the v1 ones and the image non-empty.
    ///
    /// ```
    /// use acr_credential_provider::protocol::CredentialProviderRequest;
    ///
    /// let req = CredentialProviderRequest::from_json(
    ///     r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"myacr.azurecr.io/app"}"#,
    /// ).unwrap();
    /// assert_eq!(req.image, "myacr.azurecr.io/app");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, ProviderError> {
        let request: CredentialProviderRequest =
            serde_json::from_str(text).map_err(|e| ProviderError::Request(format!("cannot decode request: {e}")))?;
        if request.api_version != API_VERSION {
            return Err(ProviderError::Request(format!(
                "unsupported apiVersion {:?} (expected {API_VERSION:?})",
                request.api_version
            )));
        }
        if request.kind != REQUEST_KIND {
            return Err(ProviderError::Request(format!(
                "unexpected kind {:?} (expected {REQUEST_KIND:?})",
                request.kind
            )));
        }
        if request.image.trim().is_empty() {
            return Err(ProviderError::Request("the request names no image".to_owned()));
        }
        Ok(request)
    }
}

/// How the kubelet keys its cache of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheKeyType {
    /// Per image.
    Image,
    /// Per registry host (what ACR's provider uses).
    Registry,
    /// One entry for every image.
    Global,
}

/// A username and password for registries matching a pattern.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// Username; empty together with the password for an anonymous entry.
    pub username: String,
    /// Password (a secret: never printed by [`fmt::Debug`]).
    pub password: String,
}

impl AuthConfig {
    /// The anonymous entry (empty username and password).
    pub fn anonymous() -> Self {
        Self { username: String::new(), password: String::new() }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "<redacted>" })
            .finish()
    }
}

/// What the plugin answers. Field order is Go's (`kind`, `apiVersion`, then the fields), and
/// `auth` keys are sorted, as Go's encoder writes maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderResponse {
    /// Always [`RESPONSE_KIND`].
    pub kind: String,
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// How the kubelet caches this answer.
    pub cache_key_type: CacheKeyType,
    /// How long the kubelet caches it, as a Go duration (`5m0s`); `0s` means "do not cache".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_duration: Option<String>,
    /// Credentials per registry pattern (`myacr.azurecr.io`, `*.azurecr.io`, `*.azurecr.*`).
    #[serde(default)]
    pub auth: BTreeMap<String, AuthConfig>,
}

impl CredentialProviderResponse {
    /// A response cached per registry for `cache_duration`.
    pub fn registry(cache_duration: Duration, auth: BTreeMap<String, AuthConfig>) -> Self {
        Self {
            kind: RESPONSE_KIND.to_owned(),
            api_version: API_VERSION.to_owned(),
            cache_key_type: CacheKeyType::Registry,
            cache_duration: Some(format_go_duration(cache_duration)),
            auth,
        }
    }

    /// The JSON the kubelet reads.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Formats a duration the way Go's `time.Duration.String` does (`5m0s`, `0s`, `1.5s`, `41ms`).
///
/// ```
/// use std::time::Duration;
/// use acr_credential_provider::protocol::format_go_duration;
///
/// assert_eq!(format_go_duration(Duration::from_secs(300)), "5m0s");
/// assert_eq!(format_go_duration(Duration::ZERO), "0s");
/// assert_eq!(format_go_duration(Duration::from_millis(41)), "41ms");
/// assert_eq!(format_go_duration(Duration::from_millis(3_723_500)), "1h2m3.5s");
/// ```
pub fn format_go_duration(duration: Duration) -> String {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (unit, precision) = match nanos {
            0..1_000 => return format!("{nanos}ns"),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (whole, fraction) = split_fraction(nanos, precision);
        return format!("{whole}{fraction}{unit}");
    }
    let (seconds, fraction) = split_fraction(nanos, 9);
    let minutes = seconds / 60;
    let mut out = String::new();
    if minutes > 0 {
        let hours = minutes / 60;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        out.push_str(&format!("{}m", minutes % 60));
    }
    out.push_str(&format!("{}{fraction}s", seconds % 60));
    out
}

/// Splits `value` at `precision` decimal digits: the whole part and `.digits` without
/// trailing zeros (empty when the fraction is zero).
fn split_fraction(value: u64, precision: u32) -> (u64, String) {
    let scale = 10u64.pow(precision);
    let fraction = value % scale;
    if fraction == 0 {
        return (value / scale, String::new());
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    (value / scale, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_is_checked() {
        let json = r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"myacr.azurecr.io/app"}"#;
        let request = CredentialProviderRequest::from_json(json).unwrap();
        assert_eq!(request, CredentialProviderRequest::new("myacr.azurecr.io/app"));
        assert_eq!(serde_json::to_string(&request).unwrap(), json);

        let wrong_version = json.replace("/v1", "/v1beta1");
        assert!(CredentialProviderRequest::from_json(&wrong_version).unwrap_err().to_string().contains("apiVersion"));
        let wrong_kind = json.replace("CredentialProviderRequest", "Nope");
        assert!(CredentialProviderRequest::from_json(&wrong_kind).unwrap_err().to_string().contains("kind"));
        assert!(CredentialProviderRequest::from_json("{").is_err());
        let no_image = json.replace("myacr.azurecr.io/app", " ");
        assert!(CredentialProviderRequest::from_json(&no_image).is_err());
    }

    #[test]
    fn response_has_the_kubelet_shape() {
        let auth = BTreeMap::from([
            ("myacr.azurecr.io".to_owned(), AuthConfig { username: "u".into(), password: "p".into() }),
            ("*.azurecr.*".to_owned(), AuthConfig::anonymous()),
        ]);
        let response = CredentialProviderResponse::registry(Duration::from_secs(300), auth);
        assert_eq!(
            response.to_json(),
            r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"5m0s","auth":{"*.azurecr.*":{"username":"","password":""},"myacr.azurecr.io":{"username":"u","password":"p"}}}"#
        );
        let back: CredentialProviderResponse = serde_json::from_str(&response.to_json()).unwrap();
        assert_eq!(back, response);
        assert!(!format!("{response:?}").contains("\"p\""));
    }

    #[test]
    fn go_durations() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(12), "12ns"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1234), "1.234s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(600), "10m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(61_010), "1m1.01s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_go_duration(duration), text, "{duration:?}");
        }
    }
}
