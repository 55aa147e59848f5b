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
}

/// Shared state of the front.
struct Shared {
    login_server: String,
    dataplane: watch::Receiver<Arc<DataPlane>>,
    emulator_base: String,
    emulator: reqwest::Client,
    registry_socket: PathBuf,
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
