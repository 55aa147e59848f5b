//! Minimal HTTP/1.1 over a Unix socket (one connection per request).

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// A response with its body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Longest time one request (connect, send, read the whole answer) may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one request to `socket`. `path_and_query` starts with `/`. Headers are `(name, value)`.
pub(crate) async fn request(
    socket: &Path,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Response, String> {
    tokio::time::timeout(REQUEST_TIMEOUT, request_inner(socket, method, path_and_query, headers, body))
        .await
        .unwrap_or_else(|_| Err(format!("{}: no complete answer within {REQUEST_TIMEOUT:?}", socket.display())))
}

async fn request_inner(
    socket: &Path,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Response, String> {
    let stream = UnixStream::connect(socket).await.map_err(|e| format!("connect {}: {e}", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake on {}: {e}", socket.display()))?;
    let conn = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", "localhost")
        .header("content-length", body.len().to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body)).map_err(|e| format!("building request {path_and_query}: {e}"))?;
    let result = async {
        let res = sender.send_request(req).await.map_err(|e| format!("{}: {e}", socket.display()))?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading body from {}: {e}", socket.display()))?
            .to_bytes();
        Ok(Response { status, headers, body })
    }
    .await;
    drop(sender);
    conn.abort();
    result
}
