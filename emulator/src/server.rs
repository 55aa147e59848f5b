//! The HTTP(S) listeners: routes, TLS handshakes, the caller's address, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::control_plane::ControlPlane;
use crate::{acr_token, arm, entra, graph, imds};

/// The caller's socket address, attached to every request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": {"code": "NotFound", "message": "No such endpoint in the pullproof emulator."}})))
        .into_response()
}

/// Every endpoint.
pub(crate) fn router(cp: Arc<ControlPlane>) -> Router {
    Router::new()
        .route("/subscriptions", any(arm::handle))
        .route("/subscriptions/{*rest}", any(arm::handle))
        .route("/providers/{*rest}", any(arm::handle))
        .route("/v1.0/{*rest}", any(graph::handle))
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token_v2))
        .route("/{tenant}/oauth2/token", post(entra::token_v1))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(entra::openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(entra::keys))
        .route("/common/discovery/instance", get(entra::instance_discovery))
        .route("/metadata/identity/oauth2/token", get(imds::token))
        .route("/oauth2/exchange", post(acr_token::exchange_by_host))
        .route("/oauth2/token", get(acr_token::token_get_by_host).post(acr_token::token_post_by_host))
        .route("/acr/{login_server}/oauth2/exchange", post(acr_token::exchange_by_path))
        .route(
            "/acr/{login_server}/oauth2/token",
            get(acr_token::token_get_by_path).post(acr_token::token_post_by_path),
        )
        .fallback(not_found)
        .with_state(cp)
}

/// Only IMDS, for the plain-HTTP listener.
pub(crate) fn imds_router(cp: Arc<ControlPlane>) -> Router {
    Router::new().route("/metadata/identity/oauth2/token", get(imds::token)).fallback(not_found).with_state(cp)
}

async fn serve_connection<I>(io: I, peer: SocketAddr, router: Router, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let caller = caller_of(peer, req.headers());
        req.extensions_mut().insert(PeerAddr(caller));
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The caller's address: the peer, or, when the peer is on loopback, the address a local proxy
/// names in `X-Forwarded-For` (the host backend's fronts inside network namespaces forward the
/// node's traffic this way). Remote peers cannot claim another address.
pub(crate) fn caller_of(peer: SocketAddr, headers: &hyper::HeaderMap) -> SocketAddr {
    if !peer.ip().is_loopback() {
        return peer;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, peer.port()))
        .unwrap_or(peer)
}

/// Accepts connections until `shutdown` turns true, then drains open connections.
pub(crate) fn spawn(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let router = router.clone();
                    let watcher = graceful.watcher();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            None => serve_connection(stream, peer, router, watcher).await,
                            Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => serve_connection(stream, peer, router, watcher).await,
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            },
                        }
                    });
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        drop(listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
            tracing::warn!("open connections did not finish in time; closing them");
        }
    })
}

#[cfg(test)]
mod caller_tests {
    use super::caller_of;

    #[test]
    fn forwarded_for_is_trusted_only_from_loopback() {
        let mut h = hyper::HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.10, 10.0.0.1".parse().unwrap());
        let local = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(caller_of(local, &h).ip().to_string(), "203.0.113.10");
        let remote = "192.0.2.7:5000".parse().unwrap();
        assert_eq!(caller_of(remote, &h), remote);
        assert_eq!(caller_of(local, &hyper::HeaderMap::new()), local);
    }
}
