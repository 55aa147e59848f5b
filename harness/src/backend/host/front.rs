//! The registry's endpoints as a node reaches them, served inside the network namespaces.
//!
//! ACR answers on one name for two things: the registry API (`/v2/`) and its token service
//! (`/oauth2/`). On the host backend the registry API is the real distribution registry (on a
//! unix socket) and the token service is the emulator (on loopback in the root namespace). This
//! front listens on the registry's private-endpoint and public addresses inside the registry
//! namespace, terminates TLS with a certificate for the login server, applies ACR's public
//! endpoint firewall to `/v2/` (403 `DENIED ... client with IP`), and forwards `/oauth2/` to the
//! emulator with the caller's address in `X-Forwarded-For` (the emulator trusts it only from
//! loopback). The IMDS front does the same for `169.254.169.254` in the node namespace.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pullproof_emulator::DataPlane;
use tokio::net::{TcpListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Which of the registry's endpoints a listener stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The private endpoint: no firewall (IP rules do not apply to private endpoint traffic).
    Private,
    /// The public endpoint: `publicNetworkAccess` and `networkRuleSet` apply.
    Public,
    /// The registry's data endpoint on a private endpoint (`REG.REGION.data.azurecr.io`): it
    /// serves only layer downloads the registry redirected there, by their signature.
    Data,
}

/// How long a redirect to the data endpoint stays valid (ACR's signed URLs last minutes).
const DATA_REDIRECT_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Shared state of the front.
struct Shared {
    login_server: String,
    dataplane: watch::Receiver<Arc<DataPlane>>,
    emulator_base: String,
    emulator: reqwest::Client,
    registry_socket: PathBuf,
    /// Redirects handed out to the data endpoint: signature -> the credentials the client
    /// presented to the registry, and when the signature expires. The signature is random and
    /// stands in for them (as ACR's signed URLs do); credentials never go into the URL.
    redirects: std::sync::Mutex<Redirects>,
}

/// Signature -> the credentials it stands for, and when it expires.
type Redirects = std::collections::HashMap<String, (Option<hyper::header::HeaderValue>, std::time::Instant)>;

/// The credentials a data-endpoint request's `sig` stands for: `None` when the query carries no
/// signature, an unknown one, or one that expired.
fn redeem(
    redirects: &Redirects,
    query: Option<&str>,
    now: std::time::Instant,
) -> Option<Option<hyper::header::HeaderValue>> {
    let sig = query?.split('&').find_map(|kv| kv.strip_prefix("sig="))?;
    redirects.get(sig).filter(|(_, until)| *until > now).map(|(auth, _)| auth.clone())
}

type Body = Full<Bytes>;

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// A running front; dropping it stops every listener.
pub struct Front {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Front {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Front {
    /// Serves the registry endpoints on `listeners` (bound inside the registry namespace).
    pub fn registry(
        listeners: Vec<(std::net::TcpListener, Endpoint)>,
        tls: Arc<rustls::ServerConfig>,
        login_server: &str,
        dataplane: watch::Receiver<Arc<DataPlane>>,
        emulator_base: &str,
        emulator: reqwest::Client,
        registry_socket: PathBuf,
    ) -> std::io::Result<Front> {
        let shared = Arc::new(Shared {
            login_server: login_server.to_ascii_lowercase(),
            dataplane,
            emulator_base: emulator_base.trim_end_matches('/').to_string(),
            emulator,
            registry_socket,
            redirects: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        let acceptor = TlsAcceptor::from(tls);
        let mut tasks = Vec::new();
        for (std_listener, kind) in listeners {
            std_listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(std_listener)?;
            let (shared, acceptor) = (shared.clone(), acceptor.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else { break };
                    let (shared, acceptor) = (shared.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else { return };
                        let svc = hyper::service::service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, std::convert::Infallible>(handle_registry(&shared, kind, peer, req).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    });
                }
            }));
        }
        Ok(Front { tasks })
    }

    /// Forwards TCP connections on `listener` to `target`, bytes untouched (TLS stays end to
    /// end). With `inside`, the outgoing connection is made from inside that network namespace
    /// (the API server reaching a node's kubelet); without, from the root namespace (a node
    /// reaching the run's API server through an address of its own world). Connections end with
    /// the front.
    pub fn tcp_forward(
        listener: std::net::TcpListener,
        target: SocketAddr,
        inside: Option<Arc<pullproof_host_net::Topology>>,
    ) -> std::io::Result<Front> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { break };
                        let inside = inside.clone();
                        connections.spawn(async move {
                            let outbound = match inside {
                                None => tokio::net::TcpStream::connect(target).await.ok(),
                                Some(t) => tokio::task::spawn_blocking(move || {
                                    let s = t.node().connect_tcp(target, std::time::Duration::from_secs(5)).ok()?;
                                    s.set_nonblocking(true).ok()?;
                                    Some(s)
                                })
                                .await
                                .ok()
                                .flatten()
                                .and_then(|s| tokio::net::TcpStream::from_std(s).ok()),
                            };
                            if let Some(mut outbound) = outbound {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Front { tasks: vec![task] })
    }

    /// Serves IMDS on `listener` (bound inside the node namespace at 169.254.169.254:80),
    /// forwarding to the emulator as the node at `node_ip`.
    pub fn imds(
        listener: std::net::TcpListener,
        node_ip: IpAddr,
        emulator_base: &str,
        emulator: reqwest::Client,
    ) -> std::io::Result<Front> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let base = emulator_base.trim_end_matches('/').to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { break };
                let (base, client) = (base.clone(), emulator.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (base, client) = (base.clone(), client.clone());
                        async move { Ok::<_, std::convert::Infallible>(forward(&client, &base, "", node_ip, req).await) }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(Front { tasks: vec![task] })
    }
}

async fn handle_registry(shared: &Shared, kind: Endpoint, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.starts_with("/oauth2/") {
        let prefix = format!("/acr/{}", shared.login_server);
        return forward(&shared.emulator, &shared.emulator_base, &prefix, peer.ip(), req).await;
    }
    if kind == Endpoint::Data {
        return from_data_endpoint(shared, req).await;
    }
    // Layer downloads of a registry with dedicated data endpoints are redirected there, as ACR
    // does: a 307 to `https://REG.REGION.data.azurecr.io/...` with a signature.
    let data_host =
        shared.dataplane.borrow().registry(&shared.login_server).and_then(|r| r.data_endpoints.first().cloned());
    if let Some(host) = data_host
        && req.method() == hyper::Method::GET
        && is_blob_path(&path)
    {
        let sig = signature();
        let auth = req.headers().get(hyper::header::AUTHORIZATION).cloned();
        if let Ok(mut r) = shared.redirects.lock() {
            let now = std::time::Instant::now();
            r.retain(|_, (_, until)| *until > now);
            r.insert(sig.clone(), (auth, now + DATA_REDIRECT_TTL));
        }
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(hyper::header::LOCATION, format!("https://{host}{path}?sig={sig}"))
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    }
    if kind == Endpoint::Public {
        let dp = shared.dataplane.borrow().clone();
        let allowed = dp.registry(&shared.login_server).is_some_and(|r| r.public_endpoint_allows(peer.ip()));
        if !allowed {
            let body = format!(
                r#"{{"errors":[{{"code":"DENIED","message":"client with IP '{}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}}]}}"#,
                peer.ip()
            );
            return text(StatusCode::FORBIDDEN, "application/json; charset=utf-8", body);
        }
    }
    match to_registry(&shared.registry_socket, req).await {
        Ok(r) => r,
        Err(e) => text(StatusCode::BAD_GATEWAY, "text/plain", format!("registry unavailable: {e}")),
    }
}

/// `/v2/NAME/blobs/DIGEST` (a layer or config download; uploads are `/blobs/uploads/`).
fn is_blob_path(path: &str) -> bool {
    path.strip_prefix("/v2/")
        .and_then(|rest| rest.rsplit_once("/blobs/"))
        .is_some_and(|(name, digest)| !name.is_empty() && digest.starts_with("sha256:") && !digest.contains('/'))
}

/// 128 random bits, hex.
fn signature() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A download at the data endpoint: served from the registry with the credentials the
/// redirect's signature stands for; anything else is refused as Azure storage refuses it.
async fn from_data_endpoint(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let granted = shared.redirects.lock().ok().and_then(|r| redeem(&r, req.uri().query(), std::time::Instant::now()));
    let (Some(auth), true) = (granted, req.method() == hyper::Method::GET && is_blob_path(req.uri().path())) else {
        return text(
            StatusCode::FORBIDDEN,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.</Message></Error>".into(),
        );
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = parts.uri.path().parse().unwrap_or_default();
    if let Some(a) = auth {
        parts.headers.insert(hyper::header::AUTHORIZATION, a);
    }
    match to_registry(&shared.registry_socket, Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => text(StatusCode::BAD_GATEWAY, "text/plain", format!("registry unavailable: {e}")),
    }
}

/// Forwards a request to distribution over its unix socket, as is.
async fn to_registry(socket: &PathBuf, req: Request<Incoming>) -> Result<Response<Body>, String> {
    let stream = UnixStream::connect(socket).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut out = Request::from_parts(parts, Full::new(body));
    out.headers_mut().insert(hyper::header::HOST, hyper::header::HeaderValue::from_static("registry"));
    let resp = sender.send_request(out).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Forwards a request to the emulator at `base + prefix + path?query`, naming the caller.
async fn forward(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    caller: IpAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return text(StatusCode::BAD_REQUEST, "text/plain", "unreadable body".into());
    };
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{base}{prefix}{pq}");
    let mut r = client.request(parts.method.clone(), &url).header("x-forwarded-for", caller.to_string()).body(body);
    for (k, v) in &parts.headers {
        if !matches!(k.as_str(), "host" | "content-length" | "connection" | "x-forwarded-for") {
            r = r.header(k, v);
        }
    }
    match r.send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut out = Response::builder().status(status.as_u16());
            for (k, v) in &headers {
                if !matches!(k.as_str(), "content-length" | "connection" | "transfer-encoding") {
                    out = out.header(k, v);
                }
            }
            out.body(Full::new(bytes)).unwrap_or_default()
        }
        Err(e) => text(StatusCode::BAD_GATEWAY, "text/plain", format!("emulator unavailable: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Redirects, is_blob_path, redeem};
    use std::time::{Duration, Instant};

    #[test]
    fn a_data_endpoint_download_needs_a_live_signature() {
        let now = Instant::now();
        let auth = hyper::header::HeaderValue::from_static("Bearer t");
        let mut r = Redirects::new();
        r.insert("live".into(), (Some(auth.clone()), now + Duration::from_secs(60)));
        r.insert("old".into(), (Some(auth.clone()), now - Duration::from_secs(1)));
        assert_eq!(redeem(&r, Some("sig=live"), now), Some(Some(auth)));
        assert_eq!(redeem(&r, Some("a=b&sig=old"), now), None, "expired");
        assert_eq!(redeem(&r, Some("sig=forged"), now), None, "unknown");
        assert_eq!(redeem(&r, Some("a=b"), now), None, "unsigned");
        assert_eq!(redeem(&r, None, now), None, "no query");
    }

    #[test]
    fn only_blob_downloads_are_redirected() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(is_blob_path(&format!("/v2/app/blobs/{digest}")));
        assert!(is_blob_path(&format!("/v2/team/app/blobs/{digest}")));
        assert!(!is_blob_path("/v2/app/blobs/uploads/"));
        assert!(!is_blob_path(&format!("/v2/app/blobs/uploads/{digest}")));
        assert!(!is_blob_path("/v2/app/manifests/v1"));
        assert!(!is_blob_path(&format!("/v2//blobs/{digest}")));
        assert!(!is_blob_path("/oauth2/token"));
    }
}
