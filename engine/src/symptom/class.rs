//! Small vocabularies of the symptom parser: failure classes, how an attempt
//! authenticated, and which kind of message was read.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where in a pull an attempt failed: before the manifest resolved (token, manifest), or after
/// it, while downloading the config or a layer (from the registry, or from the storage or data
/// endpoint it redirects blob downloads to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullStage {
    /// Resolving the reference: the token, the manifest (`failed to resolve reference`,
    /// `/v2/.../manifests/...`).
    Resolve,
    /// Downloading a blob after the manifest resolved (`error pulling image configuration`,
    /// `failed to copy`, `httpReadSeeker`, `/blobs/sha256`, `download failed after attempts`).
    Blob,
}

/// What kind of failure an image pull message describes.
///
/// The names (see [`SymptomClass::as_str`]) are the `snake_case` variant names and are
/// also what serde and [`FromStr`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SymptomClass {
    /// The registry or its token service answered 401 / `unauthorized`.
    Unauthorized,
    /// The registry or its token service answered 403, `denied`, or ACR's firewall
    /// body (`client with IP '…' is not allowed access`).
    Forbidden,
    /// The repository or tag does not exist (`IMG: not found`, `manifest unknown`, 404).
    NotFound,
    /// The image index has no entry for the node's OS/architecture
    /// (`no match for platform in manifest`).
    PlatformMismatch,
    /// Packets went unanswered (`i/o timeout`, `context deadline exceeded`).
    Timeout,
    /// The connection was refused, reset, cut short (`EOF`) or had no route.
    Unreachable,
    /// The registry name did not resolve (`no such host`) or the resolver did not answer.
    Dns,
    /// The TLS handshake failed (`x509: …`, `tls: …`).
    Tls,
    /// The pull was rate limited (`pull QPS exceeded`, `429 Too Many Requests`, `toomanyrequests`).
    Throttled,
    /// Nothing recognisable.
    Unknown,
}

impl SymptomClass {
    /// Every class, in declaration order.
    pub const ALL: [SymptomClass; 10] = [
        SymptomClass::Unauthorized,
        SymptomClass::Forbidden,
        SymptomClass::NotFound,
        SymptomClass::PlatformMismatch,
        SymptomClass::Timeout,
        SymptomClass::Unreachable,
        SymptomClass::Dns,
        SymptomClass::Tls,
        SymptomClass::Throttled,
        SymptomClass::Unknown,
    ];

    /// The class's stable `snake_case` name, e.g. `"not_found"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SymptomClass::Unauthorized => "unauthorized",
            SymptomClass::Forbidden => "forbidden",
            SymptomClass::NotFound => "not_found",
            SymptomClass::PlatformMismatch => "platform_mismatch",
            SymptomClass::Timeout => "timeout",
            SymptomClass::Unreachable => "unreachable",
            SymptomClass::Dns => "dns",
            SymptomClass::Tls => "tls",
            SymptomClass::Throttled => "throttled",
            SymptomClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for SymptomClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string is not the name of a [`SymptomClass`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown symptom class {input:?} (expected one of: unauthorized, forbidden, not_found, platform_mismatch, timeout, unreachable, dns, tls, throttled, unknown)"
)]
pub struct ParseSymptomClassError {
    /// The string that was not recognised.
    pub input: String,
}

impl FromStr for SymptomClass {
    type Err = ParseSymptomClassError;

    /// Parses the exact `snake_case` name produced by [`SymptomClass::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SymptomClass::ALL
            .into_iter()
            .find(|class| class.as_str() == s)
            .ok_or_else(|| ParseSymptomClassError { input: s.to_owned() })
    }
}

/// How one pull attempt authenticated, as far as the message tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// Credentials were sent to the token endpoint and refused
    /// (`failed to fetch oauth token`).
    Oauth,
    /// No credentials were sent (`failed to fetch anonymous token`).
    Anonymous,
    /// The registry uses HTTP basic auth and refused the pull with 401
    /// (`pulling from host HOST failed with status code …: 401 Unauthorized`).
    /// containerd words this the same whether credentials were missing or wrong.
    Basic,
}

/// Which kind of Kubernetes message was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Event `Failed to pull image "IMG": ERR`.
    FailedToPull,
    /// Event `Error: ErrImagePull` (carries no cause).
    ErrImagePull,
    /// Event `Error: ImagePullBackOff` (carries no cause).
    ImagePullBackOff,
    /// Event or waiting message `Back-off pulling image "IMG"`, optionally with the
    /// Kubernetes >= 1.32 suffix `: ErrImagePull: ERR`.
    BackOff,
    /// Event `FailedToRetrieveImagePullSecret`:
    /// `Unable to retrieve some image pull secrets (NAME); attempting to pull the image may not succeed.`
    PullSecretMissing,
    /// Anything else, read as a bare ERR (e.g. the `ErrImagePull` waiting message).
    Raw,
}
