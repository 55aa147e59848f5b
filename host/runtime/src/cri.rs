//! A CRI client over containerd's Unix socket, making the calls the kubelet makes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    AuthConfig, ImageSpec as CriImageSpec, ImageStatusRequest, ListImagesRequest, ListPodSandboxRequest,
    PullImageRequest, RemoveImageRequest, RemovePodSandboxRequest, StopPodSandboxRequest, VersionRequest,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Registry credentials as the kubelet passes them to `PullImage` (`AuthConfig{username,password}`).
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The user name (for ACR: a service principal id, `00000000-0000-0000-0000-000000000000` with
    /// a refresh token, or the admin user).
    pub username: String,
    /// The password or token. Never logged.
    pub password: String,
}

impl Auth {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into() }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The image reference a successful pull returns: containerd's image id (`sha256:...` of the
/// config) for CRI pulls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(pub String);

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A failed pull, with the runtime's words untouched.
///
/// For [`PullError::Status`] the `Display` form is the Go gRPC form the kubelet shows
/// (`rpc error: code = NotFound desc = ...`), built only from the two fields the runtime sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    /// The runtime answered with an error status: what the kubelet receives.
    #[error("rpc error: code = {code} desc = {message}")]
    Status {
        /// The gRPC code's Go name (`NotFound`, `Unknown`, `DeadlineExceeded`, ...).
        code: String,
        /// The status message exactly as containerd sent it.
        message: String,
    },
    /// `ctr images pull` exited non-zero.
    #[error("ctr images pull {image} failed ({status}): {message}")]
    Ctr {
        /// The image reference pulled.
        image: String,
        /// ctr's exit status.
        status: String,
        /// ctr's error line, untouched: the last stderr line starting with `ctr: ` (e.g.
        /// `ctr: failed to resolve reference "IMG": IMG: not found`), or all of stderr, trimmed,
        /// if there is no such line.
        message: String,
        /// All of ctr's stderr (its log lines, such as `level=info msg="trying next host"`,
        /// come before the error line).
        stderr: String,
    },
    /// The runtime could not be reached or the pull could not be started at all; the text is
    /// this client's, not the runtime's.
    #[error("could not pull {image} through {socket}: {detail}")]
    Unreachable {
        /// The image reference.
        image: String,
        /// The runtime's socket.
        socket: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl PullError {
    /// The gRPC code name, for runtime statuses only.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The runtime's (or ctr's) own text; for [`PullError::Unreachable`], this client's detail.
    pub fn message(&self) -> &str {
        match self {
            Self::Status { message, .. } | Self::Ctr { message, .. } => message,
            Self::Unreachable { detail, .. } => detail,
        }
    }
}

/// A CRI call other than a pull failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CriError {
    /// The socket could not be connected.
    #[error("CRI: could not connect to {socket}: {detail}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The transport error.
        detail: String,
    },
    /// A call returned an error status.
    #[error("CRI {call} on {socket}: rpc error: code = {code} desc = {message}")]
    Call {
        /// The CRI method.
        call: &'static str,
        /// The socket.
        socket: PathBuf,
        /// The gRPC code's Go name.
        code: String,
        /// The status message, untouched.
        message: String,
    },
}

/// What CRI `ImageStatus` knows about a present image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image id (`sha256:...`).
    pub id: String,
    /// Tags (`host/repo:tag`).
    pub repo_tags: Vec<String>,
    /// Digests (`host/repo@sha256:...`).
    pub repo_digests: Vec<String>,
    /// Unpacked size in bytes as the runtime reports it.
    pub size: u64,
}

impl From<k8s_cri::v1::Image> for ImageInfo {
    fn from(i: k8s_cri::v1::Image) -> Self {
        Self { id: i.id, repo_tags: i.repo_tags, repo_digests: i.repo_digests, size: i.size }
    }
}

/// The runtime's `Version` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// e.g. `containerd`.
    pub runtime_name: String,
    /// e.g. `1.6.20~ds1`.
    pub runtime_version: String,
    /// e.g. `v1`.
    pub runtime_api_version: String,
}

/// A CRI v1 client (RuntimeService `Version`, ImageService) over a Unix socket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cri {
    socket: PathBuf,
    channel: Channel,
    request_timeout: Option<Duration>,
}

/// The Go name of a gRPC code, as `status.Error` prints it.
pub(crate) fn go_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// Whether a status came from the server (true) or was made up by the client's transport.
fn from_server(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_none()
}

impl Cri {
    /// Connects to the CRI socket (e.g. containerd's gRPC socket). Fails if nothing listens.
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Self, CriError> {
        let socket = socket.as_ref().to_path_buf();
        let path = socket.clone();
        // The URI is required by tonic but never used: the connector dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }))
            .await
            .map_err(|e| CriError::Connect { socket: socket.clone(), detail: error_chain(&e) })?;
        Ok(Self { socket, channel, request_timeout: None })
    }

    /// Sends every request with a gRPC deadline (`grpc-timeout`), as the kubelet does with its
    /// runtime request timeout; an expired deadline comes back as the runtime's own
    /// `DeadlineExceeded` status.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(t) = self.request_timeout {
            req.set_timeout(t);
        }
        req
    }

    fn call_error(&self, call: &'static str, s: tonic::Status) -> CriError {
        CriError::Call {
            call,
            socket: self.socket.clone(),
            code: go_code_name(s.code()).to_string(),
            message: s.message().to_string(),
        }
    }

    /// RuntimeService `Version`: also the readiness probe.
    pub async fn version(&self) -> Result<RuntimeVersion, CriError> {
        let v = RuntimeServiceClient::new(self.channel.clone())
            .version(self.request(VersionRequest { version: "v1".into() }))
            .await
            .map_err(|s| self.call_error("Version", s))?
            .into_inner();
        Ok(RuntimeVersion {
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
            runtime_api_version: v.runtime_api_version,
        })
    }

    /// ImageService `PullImage`, as the kubelet calls it: the image reference and, if any,
    /// `AuthConfig{username, password}`. On failure the runtime's code and message are returned
    /// untouched.
    pub async fn pull_image(&self, image: &str, auth: Option<&Auth>) -> Result<ImageRef, PullError> {
        let req = PullImageRequest {
            image: Some(spec(image)),
            auth: auth.map(|a| AuthConfig {
                username: a.username.clone(),
                password: a.password.clone(),
                ..Default::default()
            }),
            sandbox_config: None,
        };
        tracing::debug!(image, with_auth = auth.is_some(), "CRI PullImage");
        match ImageServiceClient::new(self.channel.clone()).pull_image(self.request(req)).await {
            Ok(r) => Ok(ImageRef(r.into_inner().image_ref)),
            Err(s) if from_server(&s) => {
                Err(PullError::Status { code: go_code_name(s.code()).to_string(), message: s.message().to_string() })
            }
            Err(s) => Err(PullError::Unreachable {
                image: image.to_string(),
                socket: self.socket.clone(),
                detail: error_chain(&s),
            }),
        }
    }

    /// ImageService `ImageStatus`: `Ok(None)` if the runtime does not have the image.
    pub async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>, CriError> {
        let r = ImageServiceClient::new(self.channel.clone())
            .image_status(self.request(ImageStatusRequest { image: Some(spec(image)), verbose: false }))
            .await
            .map_err(|s| self.call_error("ImageStatus", s))?;
        Ok(r.into_inner().image.map(ImageInfo::from))
    }

    /// ImageService `ListImages` (no filter).
    pub async fn list_images(&self) -> Result<Vec<ImageInfo>, CriError> {
        let r = ImageServiceClient::new(self.channel.clone())
            .list_images(self.request(ListImagesRequest { filter: None }))
            .await
            .map_err(|s| self.call_error("ListImages", s))?;
        Ok(r.into_inner().images.into_iter().map(ImageInfo::from).collect())
    }

    /// RuntimeService `ListPodSandbox` (no filter): the ids of every pod sandbox.
    pub async fn pod_sandboxes(&self) -> Result<Vec<String>, CriError> {
        let r = RuntimeServiceClient::new(self.channel.clone())
            .list_pod_sandbox(self.request(ListPodSandboxRequest { filter: None }))
            .await
            .map_err(|s| self.call_error("ListPodSandbox", s))?;
        Ok(r.into_inner().items.into_iter().map(|p| p.id).collect())
    }

    /// Stops and removes every pod sandbox (its containers, shims and network namespace go with
    /// it): what a node that is being deleted leaves behind otherwise. Returns how many.
    pub async fn remove_all_pods(&self) -> Result<usize, CriError> {
        let ids = self.pod_sandboxes().await?;
        for id in &ids {
            let mut client = RuntimeServiceClient::new(self.channel.clone());
            client
                .stop_pod_sandbox(self.request(StopPodSandboxRequest { pod_sandbox_id: id.clone() }))
                .await
                .map_err(|s| self.call_error("StopPodSandbox", s))?;
            client
                .remove_pod_sandbox(self.request(RemovePodSandboxRequest { pod_sandbox_id: id.clone() }))
                .await
                .map_err(|s| self.call_error("RemovePodSandbox", s))?;
        }
        Ok(ids.len())
    }

    /// ImageService `RemoveImage` (removing an absent image succeeds, as in the CRI contract).
    pub async fn remove_image(&self, image: &str) -> Result<(), CriError> {
        ImageServiceClient::new(self.channel.clone())
            .remove_image(self.request(RemoveImageRequest { image: Some(spec(image)) }))
            .await
            .map_err(|s| self.call_error("RemoveImage", s))?;
        Ok(())
    }
}

fn spec(image: &str) -> CriImageSpec {
    CriImageSpec { image: image.to_string(), ..Default::default() }
}

/// `e: cause: cause` for an error and its sources.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_debug_hides_the_password() {
        let a = Auth::new("user", "s3cret-value");
        let d = format!("{a:?}");
        assert!(d.contains("user") && !d.contains("s3cret"));
    }

    #[test]
    fn status_display_is_the_go_grpc_form() {
        let e = PullError::Status {
            code: go_code_name(tonic::Code::NotFound).into(),
            message: "no match for platform in manifest: not found".into(),
        };
        assert_eq!(e.to_string(), "rpc error: code = NotFound desc = no match for platform in manifest: not found");
        assert_eq!(e.code(), Some("NotFound"));
        assert_eq!(go_code_name(tonic::Code::Cancelled), "Canceled");
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let err = Cri::connect(dir.path().join("nothing.sock")).await.unwrap_err();
        assert!(matches!(err, CriError::Connect { .. }), "{err}");
    }
}
