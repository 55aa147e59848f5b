//! The distribution registry (`docker-registry serve`) on a Unix socket, and a small client for
//! its HTTP API over that socket.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde::Serialize;

use crate::http;
use crate::image::{BuiltImage, Descriptor};
use crate::process::{DaemonError, Launcher, ProcessGuard, Stopped};

/// How the registry authenticates clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RegistryAuth {
    /// Anyone may pull and push.
    #[default]
    None,
    /// distribution's token auth: clients get a JWT from `realm` and the registry verifies it
    /// (`iss` = `issuer`, `aud` = `service`, signature chained through the header's `x5c` to
    /// `root_cert_bundle`).
    Token {
        /// The token endpoint clients are sent to (`WWW-Authenticate: Bearer realm=...`).
        realm: String,
        /// The `service` (token audience).
        service: String,
        /// The expected token issuer.
        issuer: String,
        /// PEM bundle of the certificates that may sign tokens (roots of the `x5c` chains).
        root_cert_bundle: PathBuf,
    },
    /// HTTP basic auth from an htpasswd file (bcrypt entries only).
    Htpasswd {
        /// The basic-auth realm.
        realm: String,
        /// The htpasswd file.
        path: PathBuf,
    },
}

/// How to start the registry. `Default`: no auth, a fresh temp dir, 10 s start-up budget.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The registry binary (Debian: `/usr/bin/docker-registry`).
    pub binary: PathBuf,
    /// Where the temp dir (socket, storage, config) is created; default `std::env::temp_dir()`.
    pub base_dir: Option<PathBuf>,
    /// Client authentication.
    pub auth: RegistryAuth,
    /// Where stdout+stderr go; default `<temp dir>/registry.log`. Give a path outside the temp
    /// dir to keep it as an artifact.
    pub log_file: Option<PathBuf>,
    /// How the registry is launched (it listens on a Unix socket, so any namespace works).
    pub launcher: Launcher,
    /// Start-up budget: how long `GET /v2/` is polled.
    pub startup_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            binary: "/usr/bin/docker-registry".into(),
            base_dir: None,
            auth: RegistryAuth::None,
            log_file: None,
            launcher: Launcher::direct(),
            startup_timeout: Duration::from_secs(10),
        }
    }
}

/// A running distribution registry serving HTTP on a Unix socket (`http.net: unix`), so that a
/// TLS front in any network namespace can proxy to it. Dropping it stops it and removes its
/// storage.
#[derive(Debug)]
pub struct Registry {
    process: ProcessGuard,
    socket: PathBuf,
    storage: PathBuf,
    config_file: PathBuf,
    startup: Duration,
    dir: tempfile::TempDir,
}

#[derive(Serialize)]
struct DistConfig<'a> {
    version: &'a str,
    log: DistLog<'a>,
    storage: serde_json::Value,
    http: DistHttp<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct DistLog<'a> {
    level: &'a str,
    formatter: &'a str,
}

#[derive(Serialize)]
struct DistHttp<'a> {
    net: &'a str,
    addr: &'a Path,
    secret: &'a str,
}

impl Registry {
    /// Writes the config, starts `docker-registry serve CONFIG` and waits until `GET /v2/`
    /// answers on the socket (any status: with auth it is 401).
    pub async fn start(config: RegistryConfig) -> Result<Self, DaemonError> {
        let base = config.base_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new().prefix("ppreg-").tempdir_in(&base).map_err(|e| prepare(&base, e))?;
        let socket = dir.path().join("registry.sock");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(|e| prepare(&storage, e))?;
        let config_file = dir.path().join("config.yml");
        let secret = http_secret(dir.path());
        let auth = match &config.auth {
            RegistryAuth::None => None,
            RegistryAuth::Token { realm, service, issuer, root_cert_bundle } => Some(serde_json::json!({"token": {
                "realm": realm, "service": service, "issuer": issuer,
                "rootcertbundle": root_cert_bundle,
            }})),
            RegistryAuth::Htpasswd { realm, path } => {
                Some(serde_json::json!({"htpasswd": {"realm": realm, "path": path}}))
            }
        };
        let dist = DistConfig {
            version: "0.1",
            log: DistLog { level: "info", formatter: "text" },
            storage: serde_json::json!({
                "filesystem": {"rootdirectory": storage},
                "delete": {"enabled": true},
                "maintenance": {"uploadpurging": {"enabled": false}},
            }),
            http: DistHttp { net: "unix", addr: &socket, secret: &secret },
            auth,
        };
        // YAML is a superset of JSON: distribution reads this as its YAML config.
        let text = serde_json::to_string_pretty(&dist).map_err(|e| prepare(&config_file, e.into()))?;
        std::fs::write(&config_file, text).map_err(|e| prepare(&config_file, e))?;
        let log = config.log_file.clone().unwrap_or_else(|| dir.path().join("registry.log"));

        let mut cmd = config.launcher.command(config.binary.as_os_str(), ["serve".as_ref(), config_file.as_os_str()]);
        // REGISTRY_* variables override the config file: keep the caller's out.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let started = Instant::now();
        let process = ProcessGuard::spawn("registry", &config.launcher, cmd, &log)?;
        crate::process::wait_ready(&process, &socket, config.startup_timeout, Duration::from_millis(10), || async {
            http::request(&socket, Method::GET, "/v2/", &[], Bytes::new()).await.map(|_| ())
        })
        .await?;
        let startup = started.elapsed();
        tracing::info!(pid = process.pid(), ?startup, socket = %socket.display(), "registry ready");
        Ok(Self { process, socket, storage, config_file, startup, dir })
    }

    /// The Unix socket the registry serves HTTP on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A client for this registry with no credentials.
    pub fn client(&self) -> RegistryClient {
        RegistryClient::unix(&self.socket)
    }

    /// From spawn to the first answer on `/v2/`.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The storage root (filesystem driver).
    pub fn storage(&self) -> &Path {
        &self.storage
    }

    /// The generated config file.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The registry's pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The registry's log file (stdout and stderr, including access logs).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Stops the registry (SIGTERM, SIGKILL after 2 s) and removes its temp dir.
    pub fn stop(mut self) -> Result<Stopped, DaemonError> {
        self.process.stop()
    }

    /// The registry's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn prepare(path: &Path, source: std::io::Error) -> DaemonError {
    DaemonError::Prepare { what: "registry", path: path.to_path_buf(), source }
}

/// A per-instance `http.secret` (only used to sign upload state between requests).
fn http_secret(dir: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(dir.as_os_str().as_encoded_bytes());
    h.update(format!("{:?}{}", std::time::SystemTime::now(), std::process::id()));
    hex(&h.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Credentials a [`RegistryClient`] sends. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Authorization: Bearer TOKEN` (a token from the token service, with the right scope).
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Basic { username, .. } => write!(f, "Basic({username}:<redacted>)"),
        }
    }
}

impl Authorization {
    fn header(&self) -> String {
        match self {
            Self::Bearer(t) => format!("Bearer {t}"),
            Self::Basic { username, password } => {
                format!("Basic {}", base64(format!("{username}:{password}").as_bytes()))
            }
        }
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A registry API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryApiError {
    /// The request could not be sent or its answer read.
    #[error("registry {op} {path} via {socket}: {detail}")]
    Transport {
        /// What was being done (`blob upload`, `manifest put`, ...).
        op: &'static str,
        /// The request path.
        path: String,
        /// The registry socket.
        socket: PathBuf,
        /// The transport error.
        detail: String,
    },
    /// The registry answered with an unexpected status; `body` is its error JSON, untouched.
    #[error("registry {op} {path} via {socket}: HTTP {status}: {body}")]
    Status {
        /// What was being done.
        op: &'static str,
        /// The request path.
        path: String,
        /// The registry socket.
        socket: PathBuf,
        /// The HTTP status code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The answer could not be understood.
    #[error("registry {op} {path} via {socket}: unexpected answer: {detail}")]
    Decode {
        /// What was being done.
        op: &'static str,
        /// The request path.
        path: String,
        /// The registry socket.
        socket: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// `repository:tag`.
    pub reference: String,
    /// The digest the tag now points at (the index).
    pub digest: String,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs the registry already had.
    pub blobs_present: usize,
    /// Manifests put (children and the index).
    pub manifests: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The answer to `GET /v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// HTTP status (200, or 401 with auth).
    pub status: u16,
    /// The `WWW-Authenticate` challenge, if any.
    pub www_authenticate: Option<String>,
}

/// A client for the registry HTTP API (v2) over its Unix socket.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    socket: PathBuf,
    authorization: Option<Authorization>,
}

impl RegistryClient {
    /// A client with no credentials.
    pub fn unix(socket: impl AsRef<Path>) -> Self {
        Self { socket: socket.as_ref().to_path_buf(), authorization: None }
    }

    /// Sends `Authorization: Bearer TOKEN` on every request.
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.authorization = Some(Authorization::Bearer(token.into()));
        self
    }

    /// Sends basic credentials on every request.
    pub fn with_basic(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.authorization = Some(Authorization::Basic { username: username.into(), password: password.into() });
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<http::Response, RegistryApiError> {
        let auth = self.authorization.as_ref().map(Authorization::header);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let accept = [
            crate::image::MEDIA_INDEX,
            crate::image::MEDIA_MANIFEST,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
        .join(", ");
        if path.contains("/manifests/") {
            headers.push(("accept", &accept));
        }
        http::request(&self.socket, method, path, &headers, body).await.map_err(|detail| RegistryApiError::Transport {
            op,
            path: path.to_string(),
            socket: self.socket.clone(),
            detail,
        })
    }

    fn expect(
        &self,
        op: &'static str,
        path: &str,
        res: &http::Response,
        want: &[StatusCode],
    ) -> Result<(), RegistryApiError> {
        if want.contains(&res.status) {
            Ok(())
        } else {
            Err(RegistryApiError::Status {
                op,
                path: path.to_string(),
                socket: self.socket.clone(),
                status: res.status.as_u16(),
                body: res.body_text(),
            })
        }
    }

    /// `GET /v2/`.
    pub async fn ping(&self) -> Result<Ping, RegistryApiError> {
        let res = self.call("ping", Method::GET, "/v2/", None, Bytes::new()).await?;
        Ok(Ping { status: res.status.as_u16(), www_authenticate: res.header("www-authenticate").map(str::to_string) })
    }

    /// Whether the repository has blob `digest` (`HEAD /v2/<repo>/blobs/<digest>`).
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool, RegistryApiError> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let res = self.call("blob check", Method::HEAD, &path, None, Bytes::new()).await?;
        match res.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => {
                self.expect("blob check", &path, &res, &[StatusCode::OK])?;
                Ok(false)
            }
        }
    }

    /// Uploads one blob: `POST /v2/<repo>/blobs/uploads/`, then `PUT <location>&digest=...`.
    pub async fn upload_blob(&self, repo: &str, digest: &str, bytes: Bytes) -> Result<(), RegistryApiError> {
        let op = "blob upload";
        let path = format!("/v2/{repo}/blobs/uploads/");
        let res = self.call(op, Method::POST, &path, None, Bytes::new()).await?;
        self.expect(op, &path, &res, &[StatusCode::ACCEPTED])?;
        let location = res.header("location").ok_or_else(|| RegistryApiError::Decode {
            op,
            path: path.clone(),
            socket: self.socket.clone(),
            detail: "202 without a Location header".into(),
        })?;
        let mut put = strip_origin(location).to_string();
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str("digest=");
        put.push_str(&digest.replace(':', "%3A"));
        let res = self.call(op, Method::PUT, &put, Some("application/octet-stream"), bytes).await?;
        self.expect(op, &put, &res, &[StatusCode::CREATED])
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the descriptor's media type.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String, RegistryApiError> {
        let op = "manifest put";
        let path = format!("/v2/{repo}/manifests/{reference}");
        let res = self.call(op, Method::PUT, &path, Some(media_type), bytes).await?;
        self.expect(op, &path, &res, &[StatusCode::CREATED])?;
        Ok(res.header("docker-content-digest").unwrap_or_default().to_string())
    }

    /// `GET /v2/<repo>/manifests/<reference>`: `Ok(None)` on 404, else (media type, bytes).
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<(String, Bytes)>, RegistryApiError> {
        let op = "manifest get";
        let path = format!("/v2/{repo}/manifests/{reference}");
        let res = self.call(op, Method::GET, &path, None, Bytes::new()).await?;
        if res.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.expect(op, &path, &res, &[StatusCode::OK])?;
        let ct = res.header("content-type").unwrap_or_default().to_string();
        Ok(Some((ct, res.body)))
    }

    /// Pushes a built image: every blob (skipping those present), every platform manifest by
    /// digest, then the index under the tag.
    pub async fn push(&self, image: &BuiltImage) -> Result<PushReport, RegistryApiError> {
        let start = Instant::now();
        let repo = &image.repository;
        let (mut uploaded, mut present) = (0, 0);
        for blob in &image.blobs {
            if self.has_blob(repo, &blob.descriptor.digest).await? {
                present += 1;
            } else {
                self.upload_blob(repo, &blob.descriptor.digest, blob.bytes.clone()).await?;
                uploaded += 1;
            }
        }
        for m in &image.manifests {
            let Descriptor { media_type, digest, .. } = &m.descriptor;
            self.put_manifest(repo, digest, media_type, m.bytes.clone()).await?;
        }
        self.put_manifest(repo, &image.tag, &image.index.descriptor.media_type, image.index.bytes.clone()).await?;
        let report = PushReport {
            reference: format!("{repo}:{}", image.tag),
            digest: image.index.descriptor.digest.clone(),
            blobs_uploaded: uploaded,
            blobs_present: present,
            manifests: image.manifests.len() + 1,
            elapsed: start.elapsed(),
        };
        tracing::debug!(?report, "pushed");
        Ok(report)
    }

    /// `GET /v2/<repo>/tags/list`: the repository's tags, sorted (an unknown repository is an error,
    /// with the registry's `NAME_UNKNOWN` body).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>, RegistryApiError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let op = "tag list";
        let path = format!("/v2/{repo}/tags/list");
        let res = self.call(op, Method::GET, &path, None, Bytes::new()).await?;
        self.expect(op, &path, &res, &[StatusCode::OK])?;
        let tags: Tags = serde_json::from_slice(&res.body).map_err(|e| RegistryApiError::Decode {
            op,
            path: path.clone(),
            socket: self.socket.clone(),
            detail: e.to_string(),
        })?;
        let mut tags = tags.tags.unwrap_or_default();
        tags.sort();
        Ok(tags)
    }
}

/// `http://localhost/v2/x?y` -> `/v2/x?y`; relative locations are kept.
fn strip_origin(location: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = location.strip_prefix(scheme) {
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn locations_lose_their_origin() {
        assert_eq!(strip_origin("http://localhost/v2/a/blobs/uploads/u?_state=x"), "/v2/a/blobs/uploads/u?_state=x");
        assert_eq!(strip_origin("/v2/a/b"), "/v2/a/b");
        assert_eq!(strip_origin("https://h:5000"), "/");
    }

    #[test]
    fn authorization_debug_hides_secrets() {
        let b = format!("{:?}", Authorization::Bearer("eyJhbGciOi.secret".into()));
        assert!(!b.contains("secret"));
        let a = Authorization::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert_eq!(a.header(), format!("Basic {}", base64(b"u:hunter2")));
    }
}
