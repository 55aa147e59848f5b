//! Errors of this crate. None of them is ever shown as a pull error: those come from the
//! runtime (see [`crate::pull::RuntimeError`]).

/// What the kubelet or the cluster store could not do.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// A version string could not be read.
    #[error("invalid Kubernetes version {0:?} (expected vMAJOR.MINOR[.PATCH])")]
    Version(String),
    /// The credential provider configuration is invalid.
    #[error("invalid credential provider config: {0}")]
    PluginConfig(String),
    /// An object the operation needs does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        /// `Pod`, `Deployment`, ...
        kind: &'static str,
        /// Namespace ("" for cluster-scoped objects).
        namespace: String,
        /// Name.
        name: String,
    },
    /// An object already exists.
    #[error("{kind} {namespace}/{name} already exists")]
    AlreadyExists {
        /// `Node`, `Deployment`, ...
        kind: &'static str,
        /// Namespace ("" for cluster-scoped objects).
        namespace: String,
        /// Name.
        name: String,
    },
    /// The request is not valid (e.g. an unknown container name).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Why a credential provider plugin produced no credentials. The kubelet logs it and pulls
/// without the plugin's credentials; it never reaches a pull error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The binary could not be started.
    #[error("failed to start {binary}: {reason}")]
    Spawn {
        /// The binary.
        binary: String,
        /// The OS error.
        reason: String,
    },
    /// The plugin did not finish in time.
    #[error("plugin {name} timed out after {seconds}s")]
    Timeout {
        /// The provider name.
        name: String,
        /// The timeout.
        seconds: u64,
    },
    /// The plugin exited with a failure.
    #[error("{status}: {stderr}")]
    Exit {
        /// `exit status 1` (Go's wording).
        status: String,
        /// What the plugin wrote on stderr (trimmed).
        stderr: String,
    },
    /// The plugin's stdout was not a valid response.
    #[error("error decoding credential provider plugin response from stdout: {0}")]
    Decode(String),
    /// The response is of another version or kind, or has no valid cache key type.
    #[error("{0}")]
    Invalid(String),
    /// I/O with the plugin process failed.
    #[error("error talking to plugin {name}: {reason}")]
    Io {
        /// The provider name.
        name: String,
        /// The I/O error.
        reason: String,
    },
}

/// Why a dump directory could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct DumpError {
    /// The file or directory.
    pub path: String,
    /// The I/O error.
    pub source: std::io::Error,
}
