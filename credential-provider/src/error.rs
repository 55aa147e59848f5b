//! Why the plugin could not produce credentials. Every message is safe to print: none carries a
//! token, a secret or a response body that could hold one.

/// A failure of the plugin. The binary prints it on stderr and exits with status 1, after which
/// the kubelet pulls without the plugin's credentials.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The command line was not understood.
    #[error("usage: acr-credential-provider CLOUD_CONFIG_PATH [--registry-mirror=SRC:DST,...]: {0}")]
    Usage(String),
    /// The request on stdin was not a valid `CredentialProviderRequest`.
    #[error("invalid CredentialProviderRequest: {0}")]
    Request(String),
    /// The cloud config (`azure.json`) could not be read or decoded.
    #[error("failed to load config {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be set up (CA bundle, connect-to override).
    #[error("failed to set up the HTTP client: {0}")]
    Client(String),
    /// IMDS could not be reached.
    #[error("ManagedIdentityCredential authentication failed: cannot reach IMDS at {url}: {reason}")]
    ImdsUnreachable {
        /// The token URL (without query).
        url: String,
        /// The transport error.
        reason: String,
    },
    /// IMDS refused to issue a token (e.g. 400 `Identity not found` when the identity is not
    /// assigned to the VM or scale set).
    #[error("ManagedIdentityCredential authentication failed: IMDS responded {status}: {detail}")]
    Imds {
        /// HTTP status with its reason phrase (`400 Bad Request`).
        status: String,
        /// `error: error_description` from IMDS's error body, or a short excerpt of the body.
        detail: String,
    },
    /// IMDS answered 200 without a usable `access_token`.
    #[error("ManagedIdentityCredential authentication failed: IMDS returned no access_token")]
    ImdsNoToken,
    /// `GET https://REGISTRY/v2/` could not be sent.
    #[error("failed to receive challenge: error reaching registry endpoint {url}, error: {reason}")]
    ChallengeUnreachable {
        /// `https://REGISTRY/v2/`.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The registry did not answer `/v2/` with a usable Bearer challenge.
    #[error("failed to receive challenge: {0}")]
    Challenge(String),
    /// `POST /oauth2/exchange` could not be sent.
    #[error("failed to perform token exchange: Www-Authenticate: failed to reach auth url {url}: {reason}")]
    ExchangeUnreachable {
        /// The exchange URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The exchange answered with another status than 200 (e.g. 401 when the identity has no
    /// pull permission or the token is for another tenant).
    #[error("failed to perform token exchange: Www-Authenticate: auth url {url} responded with status code {status}")]
    Exchange {
        /// The exchange URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// Getting credentials for one login server failed (wraps the cause).
    #[error("error getting credentials from ACR for {login_server}: {source}")]
    Acr {
        /// The ACR login server.
        login_server: String,
        /// The cause.
        source: Box<ProviderError>,
    },
    /// The exchange answered 200 without a `refresh_token`.
    #[error("failed to perform token exchange: Www-Authenticate: unable to read response from {url}")]
    ExchangeBody {
        /// The exchange URL.
        url: String,
    },
}
