//! The runtime side of a pull: the [`ImageService`] the harness implements (real containerd
//! over CRI, or `ctr` for a Windows node), and how the kubelet words the runtime's errors.
//!
//! The kubelet never invents the text of a pull error: every error text comes from a
//! [`RuntimeError`] returned by the runtime, and only the kubelet's own wrapping (the gRPC
//! prefix rule and the `[e1, e2]` aggregate) is applied here.

use std::fmt;
use std::future::Future;

use crate::version::KubeletVersion;

/// Registry credentials for one pull (CRI `AuthConfig` username/password).
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// Username.
    pub username: String,
    /// Password (never printed by [`fmt::Debug`]).
    pub password: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// A failed pull as the runtime reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeError {
    /// The gRPC status code name (`Unknown`, `NotFound`, `DeadlineExceeded`, ...); empty when the
    /// error did not come as a gRPC status (then the message is used as it is).
    pub grpc_code: String,
    /// The status message, verbatim.
    pub message: String,
}

impl RuntimeError {
    /// An error with this code and message.
    pub fn new(grpc_code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { grpc_code: grpc_code.into(), message: message.into() }
    }

    /// The text the kubelet shows for this error (see [`cri_error_text`]).
    pub fn text(&self, version: KubeletVersion) -> String {
        cri_error_text(self, version)
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.grpc_code.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "rpc error: code = {} desc = {}", self.grpc_code, self.message)
        }
    }
}

impl std::error::Error for RuntimeError {}

/// A successful pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The image reference the runtime returned (`sha256:…` or `repo@sha256:…`); shown as the
    /// container's `imageID`.
    pub image_ref: String,
    /// The image size in bytes (CRI `ImageStatus` size), shown in the `Pulled` event.
    pub size_bytes: u64,
}

/// The image half of a container runtime, as the kubelet uses it.
///
/// `pull` receives the image exactly as the kubelet passes it to CRI `PullImage` (with the
/// default tag applied) and `None` for an anonymous attempt (the kubelet would send an
/// `AuthConfig` with an empty username and password, which containerd treats the same way).
pub trait ImageService {
    /// Pulls `image` with `auth`.
    fn pull(&self, image: &str, auth: Option<&Auth>) -> impl Future<Output = Result<PulledImage, RuntimeError>> + Send;

    /// The image's reference if it is present on the node (CRI `ImageStatus`); used for
    /// `imagePullPolicy: IfNotPresent` and `Never`. The default says "never present", so every
    /// start pulls.
    fn image_ref(&self, image: &str) -> impl Future<Output = Result<Option<String>, RuntimeError>> + Send {
        let _ = image;
        async { Ok(None) }
    }
}

/// The text of a runtime error as the kubelet shows it: before Kubernetes 1.28 always
/// `rpc error: code = C desc = MSG`; from 1.28 the prefix is dropped for code `Unknown` and
/// kept for the others. An error without a gRPC code is its message.
///
/// ```
/// use pullproof_host_kubelet::pull::{RuntimeError, cri_error_text};
/// use pullproof_host_kubelet::KubeletVersion;
///
/// // containerd 1.6.20, token service answering 401 to an anonymous request:
/// let msg = r#"failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized"#;
/// let err = RuntimeError::new("Unknown", msg);
/// assert_eq!(cri_error_text(&err, KubeletVersion::new(1, 33, 0)), msg);
/// assert_eq!(cri_error_text(&err, KubeletVersion::new(1, 27, 0)), format!("rpc error: code = Unknown desc = {msg}"));
/// ```
pub fn cri_error_text(error: &RuntimeError, version: KubeletVersion) -> String {
    if error.grpc_code.is_empty() || (error.grpc_code == "Unknown" && version.drops_unknown_rpc_prefix()) {
        error.message.clone()
    } else {
        error.to_string()
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: nothing for no error, the error alone for one, and
/// `[e1, e2]` for several distinct ones (duplicates are shown once, and a list that collapses
/// to one distinct text loses its brackets).
///
/// See the table test in this module for real containerd texts.
pub fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for error in errors {
        if !seen.contains(&error.as_str()) {
            seen.push(error);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: &str = "myacr.azurecr.io/app:v1";

    fn unauthorized(kind: &str) -> RuntimeError {
        RuntimeError::new(
            "Unknown",
            format!(
                "failed to pull and unpack image \"{IMG}\": failed to resolve reference \"{IMG}\": failed to authorize: failed to fetch {kind} token: unexpected status: 401 Unauthorized"
            ),
        )
    }

    fn not_found() -> RuntimeError {
        RuntimeError::new(
            "NotFound",
            format!(
                "failed to pull and unpack image \"{IMG}\": failed to resolve reference \"{IMG}\": {IMG}: not found"
            ),
        )
    }

    fn platform_message() -> String {
        format!("failed to pull and unpack image \"{IMG}\": no match for platform in manifest: not found")
    }

    #[test]
    fn prefix_rule_table() {
        let v127 = KubeletVersion::new(1, 27, 16);
        let v128 = KubeletVersion::new(1, 28, 0);
        let v133 = KubeletVersion::new(1, 33, 2);
        let anon = unauthorized("anonymous");
        let cases = [
            (&anon, v127, format!("rpc error: code = Unknown desc = {}", anon.message)),
            (&anon, v128, anon.message.clone()),
            (&anon, v133, anon.message.clone()),
        ];
        for (err, version, expected) in cases {
            assert_eq!(cri_error_text(err, version), expected, "{version}");
        }
        let nf = not_found();
        for version in [v127, v128, v133] {
            assert_eq!(cri_error_text(&nf, version), format!("rpc error: code = NotFound desc = {}", nf.message));
        }
        let deadline = RuntimeError::new(
            "DeadlineExceeded",
            format!(
                "failed to pull and unpack image \"{IMG}\": failed to resolve reference \"{IMG}\": failed to do request: Head \"https://myacr.azurecr.io/v2/app/manifests/v1\": dial tcp 10.1.0.4:443: i/o timeout"
            ),
        );
        assert!(
            cri_error_text(&deadline, v133).starts_with("rpc error: code = DeadlineExceeded desc = failed to pull")
        );
        // An error that did not come as a gRPC status is shown as it is.
        let bare = RuntimeError::new("", platform_message());
        assert_eq!(cri_error_text(&bare, v127), platform_message());
    }

    #[test]
    fn aggregation_table() {
        let v133 = KubeletVersion::new(1, 33, 2);
        let oauth = cri_error_text(&unauthorized("oauth"), v133);
        let anon = cri_error_text(&unauthorized("anonymous"), v133);
        let cases: [(Vec<String>, String); 5] = [
            (vec![], String::new()),
            (vec![anon.clone()], anon.clone()),
            (vec![oauth.clone(), anon.clone()], format!("[{oauth}, {anon}]")),
            (vec![anon.clone(), anon.clone()], anon.clone()),
            (vec![oauth.clone(), anon.clone(), oauth.clone()], format!("[{oauth}, {anon}]")),
        ];
        for (errors, expected) in cases {
            assert_eq!(aggregate(&errors), expected);
        }
    }

    #[test]
    fn auth_hides_its_password() {
        let auth = Auth { username: "00000000-0000-0000-0000-000000000000".into(), password: "refresh-token".into() };
        assert!(!format!("{auth:?}").contains("refresh-token"));
    }
}
