//! A small in-process ACR over TLS for one login server: `/oauth2/*` is forwarded to the
//! emulator's token service (as ACR serves both on one host), `/v2/` answers from fixed content
//! and accepts only bearer tokens the emulator issued for this registry and repository.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use pullproof_emulator::RunningEmulator;
use serde_json::{Value, json};
use tokio_rustls::rustls;

/// One repository's content.
#[derive(Clone, Default)]
pub struct FakeRepo {
    pub tags: Vec<String>,
    /// Reference (tag or digest) -> manifest (its `mediaType` is the answer's content type).
    pub manifests: BTreeMap<String, Value>,
    /// Digest -> blob (JSON image configs).
    pub blobs: BTreeMap<String, Value>,
}

impl FakeRepo {
    pub fn tags(tags: &[&str]) -> Self {
        Self { tags: tags.iter().map(|t| t.to_string()).collect(), ..Default::default() }
    }

    /// `reference` is a single-platform image whose config says `os`/`arch`.
    pub fn single(mut self, reference: &str, os: &str, arch: &str) -> Self {
        let digest = format!("sha256:{:0>64}", self.blobs.len() + 1);
        self.blobs.insert(digest.clone(), json!({"os": os, "architecture": arch, "rootfs": {"type": "layers"}}));
        self.manifests.insert(
            reference.to_string(),
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest, "size": 100},
                "layers": []
            }),
        );
        self
    }

    /// `reference` is an index of `platforms` (`os/arch`), plus an attestation entry.
    pub fn index(mut self, reference: &str, platforms: &[&str]) -> Self {
        let mut manifests: Vec<Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (os, arch) = p.split_once('/').unwrap();
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{:0>64}", i + 100), "size": 500, "platform": {"os": os, "architecture": arch}})
            })
            .collect();
        manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{:0>64}", 999), "size": 500, "platform": {"os": "unknown", "architecture": "unknown"}}));
        self.manifests.insert(
            reference.to_string(),
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}),
        );
        self
    }
}

/// A running fake registry.
pub struct FakeAcr {
    pub addr: SocketAddr,
    pub login: String,
    /// `METHOD path?query` of every request.
    pub log: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeAcr {
    pub fn requests(&self, fragment: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(fragment)).count()
    }
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"errors": [{"code": code, "message": message}]}))).into_response()
}

/// The claims of a JWT (signature not checked: the claims must be the emulator's).
fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn granted(claims: &Value, kind: &str, name: &str, action: &str) -> bool {
    claims["access"].as_array().into_iter().flatten().any(|a| {
        a["type"] == kind && a["name"] == name && a["actions"].as_array().into_iter().flatten().any(|x| x == action)
    })
}

fn page(items: &[String], query: &str, path: &str, key: &str) -> Response {
    let q: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2F", "/")))
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let n: usize = get("n").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let start = get("last").and_then(|l| items.iter().position(|t| *t == l)).map_or(0, |i| i + 1);
    let end = start.saturating_add(n).min(items.len());
    let chunk = &items[start.min(end)..end];
    let mut resp = axum::Json(json!({ key: chunk })).into_response();
    if end < items.len() {
        let link = format!("<{path}?last={}&n={n}>; rel=\"next\"", chunk.last().unwrap());
        resp.headers_mut().insert("link", link.parse().unwrap());
    }
    resp
}

impl FakeAcr {
    pub async fn start(emu: &RunningEmulator, login: &str, repos: BTreeMap<String, FakeRepo>) -> FakeAcr {
        pullproof_emulator::tls::install_default_crypto_provider();
        let cert = emu.issue_server_cert(&[login.to_string()]).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![rustls::pki_types::CertificateDer::from(cert.cert_der.clone())],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
                )
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let (base, issuer, login) = (emu.base_url.clone(), emu.registry_token_issuer().to_string(), login.to_string());
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let repos = Arc::new(repos);
        let login2 = login.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (http, base, issuer, login, log, repos) =
                (http.clone(), base.clone(), issuer.clone(), login2.clone(), l.clone(), repos.clone());
            async move {
                let path = uri.path().to_string();
                let query = uri.query().unwrap_or_default().to_string();
                log.lock().unwrap().push(format!("{method} {path}?{query}"));
                if path.starts_with("/oauth2/") {
                    let m = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
                    let mut req = http.request(m, format!("{base}/acr/{login}{path}?{query}")).body(body.to_vec());
                    if let Some(ct) = headers.get("content-type") {
                        req = req.header("content-type", ct.to_str().unwrap_or_default());
                    }
                    let resp = req.send().await.unwrap();
                    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    return (status, [("content-type", "application/json")], bytes.to_vec()).into_response();
                }
                let Some(rest) = path.strip_prefix("/v2/") else {
                    return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry path");
                };
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .and_then(claims)
                    .filter(|c| c["iss"] == issuer.as_str() && c["aud"] == login.as_str());
                let Some(token) = token else {
                    return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required");
                };
                if rest == "_catalog" {
                    if !granted(&token, "registry", "catalog", "*") {
                        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "catalog not granted");
                    }
                    let names: Vec<String> = repos.keys().cloned().collect();
                    return page(&names, &query, "/v2/_catalog", "repositories");
                }
                let (repo, kind, reference) = if let Some(repo) = rest.strip_suffix("/tags/list") {
                    (repo, "tags", "")
                } else if let Some((repo, r)) = rest.split_once("/manifests/") {
                    (repo, "manifests", r)
                } else if let Some((repo, r)) = rest.split_once("/blobs/") {
                    (repo, "blobs", r)
                } else {
                    return error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown path");
                };
                if !granted(&token, "repository", repo, "pull") {
                    return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "pull not granted");
                }
                let Some(r) = repos.get(repo) else {
                    return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry");
                };
                match kind {
                    "tags" => page(&r.tags, &query, &path, "tags"),
                    "manifests" => match r.manifests.get(reference) {
                        Some(m) => {
                            let ct = m["mediaType"].as_str().unwrap_or("application/json").to_string();
                            (StatusCode::OK, [("content-type", ct)], serde_json::to_vec(m).unwrap()).into_response()
                        }
                        None => error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown"),
                    },
                    _ => match r.blobs.get(reference) {
                        Some(b) => axum::Json(b.clone()).into_response(),
                        None => error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
                    },
                }
            }
        });
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(TlsListener { tcp, acceptor }, app).await;
        });
        FakeAcr { addr, login, log, _task: task }
    }
}
