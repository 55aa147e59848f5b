//! Errors, with the request that failed.

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The service answered with an error status and (usually) an error envelope.
    #[error("{request} answered {status}: {code}: {message}")]
    Api {
        /// `GET /subscriptions/...`
        request: String,
        /// HTTP status.
        status: u16,
        /// The envelope's code (`ResourceNotFound`, `AuthorizationFailed`...), or the status text.
        code: String,
        /// The envelope's message.
        message: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("{request} failed: {source}")]
    Transport {
        /// The request.
        request: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The answer was not the expected JSON.
    #[error("{request}: unexpected answer: {source}")]
    Decode {
        /// The request.
        request: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// A long-running operation (`Azure-AsyncOperation`) ended `Failed` or `Canceled`.
    #[error("{request}: the operation ended {status}: {code}: {message}")]
    Operation {
        /// The request that started it.
        request: String,
        /// `Failed` or `Canceled`.
        status: String,
        /// The operation's error code.
        code: String,
        /// The operation's error message.
        message: String,
    },
    /// A long-running operation did not finish in time.
    #[error("{request}: still running after {waited_secs}s (it may yet finish; check the resource)")]
    OperationTimeout {
        /// The request that started it.
        request: String,
        /// How long the client waited.
        waited_secs: u64,
    },
    /// No token could be obtained.
    #[error("cannot get a token for {scope}: {reason}")]
    Token {
        /// The scope.
        scope: String,
        /// Why.
        reason: String,
    },
    /// The client is misconfigured (bad CA, bad URL).
    #[error("client configuration: {0}")]
    Config(String),
}

impl RestError {
    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The ARM error code, for API errors and failed operations.
    pub fn code(&self) -> Option<&str> {
        match self {
            RestError::Api { code, .. } | RestError::Operation { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the caller lacks permission (`AuthorizationFailed`, 403).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}
