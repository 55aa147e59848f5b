//! The client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{RestError, TokenSource};

/// HTTP methods the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// Read.
    Get,
    /// Create or replace.
    Put,
    /// Partial update.
    Patch,
    /// Actions (`listCredentials`, `resetServicePrincipalProfile`, Graph creates).
    Post,
    /// Delete.
    Delete,
}

impl Method {
    fn reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

impl Method {
    /// Whether sending the request twice has the effect of sending it once (RFC 9110 §9.2.2):
    /// every method but `POST` (`addPassword` twice makes two secrets).
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }
}

/// Whether a request may be sent again after the service may have received it.
///
/// Retrying after a timeout, a dropped connection or a 5xx answer may repeat a request the
/// service already carried out. That is harmless for idempotent requests and wrong for the rest
/// (a second `addPassword` creates a second secret whose value is lost). A request refused before
/// it reached the service (connection refused, 429 throttling) is retried either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Retry on timeouts, transport errors and 5xx (`GET`, `PUT`, `PATCH`, `DELETE`, and a `POST`
    /// that only reads, such as `listCredentials`).
    Safe,
    /// Retry only what the service refused before processing it (connection not established,
    /// 429).
    Unsafe,
}

impl Repeat {
    /// The default for a method.
    pub fn of(method: Method) -> Self {
        if method.is_idempotent() { Repeat::Safe } else { Repeat::Unsafe }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reqwest().as_str())
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    base: String,
    scope: String,
    token: Option<Arc<dyn TokenSource>>,
    ca_pem: Vec<String>,
    max_retries: u32,
    backoff: Duration,
    poll_interval: Duration,
    operation_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    /// Trust this PEM CA bundle in addition to the system roots (the emulator's CA).
    pub fn trust_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// The token source.
    pub fn token_source(mut self, token: Arc<dyn TokenSource>) -> Self {
        self.token = Some(token);
        self
    }

    /// How many times to retry 429/5xx answers and transport errors (default 4; non-idempotent
    /// requests only on 429 and refused connections, see [`Repeat`]).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first backoff delay (default 500 ms; doubles each retry).
    pub fn backoff(mut self, d: Duration) -> Self {
        self.backoff = d;
        self
    }

    /// How long to wait between polls of a long-running operation when the service sends no
    /// `Retry-After` (default 5 s).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// How long to follow a long-running operation before giving up (default 30 minutes: an AKS
    /// cluster update can take that long).
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
        self
    }

    /// Use this HTTP client as is (its TLS settings win over [`ClientBuilder::trust_pem`]).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, RestError> {
        let http = match self.http {
            Some(h) => h,
            None => http_client(&self.ca_pem)?,
        };
        let token = self.token.ok_or_else(|| RestError::Config("no token source configured".into()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base: self.base.trim_end_matches('/').to_string(),
                scope: self.scope,
                token,
                max_retries: self.max_retries,
                backoff: self.backoff,
                poll_interval: self.poll_interval,
                operation_timeout: self.operation_timeout,
                sent: AtomicU64::new(0),
            }),
        })
    }
}

/// A reqwest client that trusts the given PEM CAs besides the system roots.
pub fn http_client(ca_pem: &[String]) -> Result<reqwest::Client, RestError> {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(60)).connect_timeout(Duration::from_secs(10));
    for pem in ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| RestError::Config(format!("bad CA PEM: {e}")))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| RestError::Config(e.to_string()))
}

struct Inner {
    http: reqwest::Client,
    base: String,
    scope: String,
    token: Arc<dyn TokenSource>,
    max_retries: u32,
    backoff: Duration,
    poll_interval: Duration,
    operation_timeout: Duration,
    sent: AtomicU64,
}

/// A REST client for one service (ARM or Graph). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// A builder for a service at `base` (e.g. [`crate::ARM_ENDPOINT`]) whose tokens have `scope`.
    pub fn builder(base: impl Into<String>, scope: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            scope: scope.into(),
            token: None,
            ca_pem: Vec::new(),
            max_retries: 4,
            backoff: Duration::from_millis(500),
            poll_interval: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30 * 60),
            http: None,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.inner.base
    }

    /// How many HTTP requests this client (and its clones) has sent, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// The underlying HTTP client (same TLS trust).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Sends one request. `path` is a resource id or path (`/subscriptions/...`); `api_version`
    /// is appended as `api-version` unless empty (Graph). Returns the JSON body (`Null` when
    /// empty).
    ///
    /// Retries follow [`Repeat::of`] the method: a `POST` is not sent again once the service
    /// may have received it.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        self.send_with(method, path, api_version, body, Repeat::of(method)).await
    }

    /// [`Client::send`] for a request that is safe to repeat whatever its method (a `POST`
    /// that only reads, such as a registry's `listCredentials`).
    pub async fn send_idempotent(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        self.send_with(method, path, api_version, body, Repeat::Safe).await
    }

    /// [`Client::send`] with an explicit retry policy.
    ///
    /// A write that ARM answers `201`/`202` with `Azure-AsyncOperation` or `Location` is a
    /// long-running operation: the client polls it (honouring `Retry-After`) until it ends, and
    /// answers what the operation produced (the resource, for `PUT`/`PATCH`), so a caller never
    /// reads a half-made change. A `Failed` or `Canceled` operation is [`RestError::Operation`].
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Value, RestError> {
        let url = self.url(path, api_version);
        let shown = format!("{method} {}", strip_query(path));
        let first = self.exchange(method, &url, &shown, body, repeat).await?;
        // ARM's async protocol: `Azure-AsyncOperation` on 201/202, or `Location` on 202. (A 201
        // with only `Location` is a finished create, as Graph answers.)
        // ARM's async protocol: `Azure-AsyncOperation` on any success but 204 (an update of an
        // existing resource answers 200 with it), or `Location` on 202. A 201 with only
        // `Location` is a finished create, as Graph answers. Without headers, a PUT/PATCH whose
        // `provisioningState` is not terminal is followed by reading the resource.
        let running = method != Method::Get
            && match first.status {
                StatusCode::NO_CONTENT => false,
                StatusCode::ACCEPTED => {
                    first.header("azure-asyncoperation").is_some() || first.header("location").is_some()
                }
                s if s.is_success() => first.header("azure-asyncoperation").is_some(),
                _ => false,
            };
        let answer = if running {
            self.follow(method, &url, &shown, first).await?
        } else if matches!(method, Method::Put | Method::Patch) && !api_version.is_empty() && !first.settled() {
            self.settle(&url, &shown).await?
        } else {
            first
        };
        answer.json(&shown)
    }

    /// Reads the resource at `url` until its `provisioningState` is terminal.
    async fn settle(&self, url: &str, shown: &str) -> Result<Answer, RestError> {
        let started = std::time::Instant::now();
        let mut wait = None;
        loop {
            self.pause(shown, started, wait).await?;
            let now = self.exchange(Method::Get, url, shown, None, Repeat::Safe).await?;
            if now.settled() {
                if let Some(state) = now.provisioning_state().filter(|s| !s.eq_ignore_ascii_case("Succeeded")) {
                    return Err(RestError::Operation {
                        request: shown.to_string(),
                        status: state,
                        code: String::new(),
                        message: "the resource's provisioningState ended there".into(),
                    });
                }
                return Ok(now);
            }
            wait = now.retry_after();
        }
    }

    /// Refuses to send this client's token anywhere but its own service.
    fn same_service(&self, shown: &str, url: &str) -> Result<(), RestError> {
        let origin = |u: &str| {
            reqwest::Url::parse(u)
                .ok()
                .map(|u| (u.scheme().to_string(), u.host_str().map(str::to_ascii_lowercase), u.port_or_known_default()))
        };
        if origin(url).is_some() && origin(url) == origin(&self.inner.base) {
            Ok(())
        } else {
            Err(RestError::Config(format!(
                "{shown}: the service asked to poll {}, which is not {}; the token is not sent there",
                strip_query(url),
                self.inner.base
            )))
        }
    }

    /// Polls a long-running operation to its end (ARM's async operation protocol).
    async fn follow(&self, method: Method, url: &str, shown: &str, first: Answer) -> Result<Answer, RestError> {
        let started = std::time::Instant::now();
        let location = first.header("location").map(str::to_string);
        let mut wait = first.retry_after();
        if let Some(operation) = first.header("azure-asyncoperation").map(str::to_string) {
            self.same_service(shown, &operation)?;
            loop {
                self.pause(shown, started, wait).await?;
                let status = self.exchange(Method::Get, &operation, shown, None, Repeat::Safe).await?;
                wait = status.retry_after();
                let doc = status.json(shown)?;
                let state = doc.get("status").and_then(Value::as_str).unwrap_or_default();
                tracing::debug!(request = %shown, state, "long-running operation");
                if state.eq_ignore_ascii_case("Succeeded") {
                    break;
                }
                if state.eq_ignore_ascii_case("Failed") || state.eq_ignore_ascii_case("Canceled") {
                    let e = doc.get("error").cloned().unwrap_or(Value::Null);
                    let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    return Err(RestError::Operation {
                        request: shown.to_string(),
                        status: state.to_string(),
                        code: text("code"),
                        message: text("message"),
                    });
                }
            }
            return match (method, location) {
                (Method::Put | Method::Patch, _) => self.exchange(Method::Get, url, shown, None, Repeat::Safe).await,
                (Method::Post, Some(loc)) => self.exchange(Method::Get, &loc, shown, None, Repeat::Safe).await,
                _ => Ok(Answer::empty()),
            };
        }
        // Location only: it answers 202 while running, then the result (200, or 204 for none).
        let Some(loc) = location else { return Ok(first) };
        self.same_service(shown, &loc)?;
        loop {
            self.pause(shown, started, wait).await?;
            let next = self.exchange(Method::Get, &loc, shown, None, Repeat::Safe).await?;
            if next.status != StatusCode::ACCEPTED {
                // A PUT/PATCH answers the resource itself, not the operation's result.
                return match method {
                    Method::Put | Method::Patch => self.exchange(Method::Get, url, shown, None, Repeat::Safe).await,
                    _ => Ok(next),
                };
            }
            wait = next.retry_after();
        }
    }

    async fn pause(&self, shown: &str, started: std::time::Instant, wait: Option<Duration>) -> Result<(), RestError> {
        if started.elapsed() >= self.inner.operation_timeout {
            return Err(RestError::OperationTimeout {
                request: shown.to_string(),
                waited_secs: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(wait.unwrap_or(self.inner.poll_interval).min(Duration::from_secs(60))).await;
        Ok(())
    }

    /// One request (with retries) to an absolute URL; a success answer as it came.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        shown: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Answer, RestError> {
        let safe = repeat == Repeat::Safe;
        let shown = shown.to_string();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let token = self.inner.token.token(&self.inner.scope).await?;
            let mut req = self.inner.http.request(method.reqwest(), url).bearer_auth(&token.token);
            if let Some(b) = body {
                req = req.json(b);
            } else if matches!(method, Method::Post | Method::Put | Method::Patch) {
                req = req.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            self.inner.sent.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(request = %shown, attempt, "sending");
            let resp = match req.send().await {
                Ok(r) => r,
                // No connection: the request was never sent. A timeout may come after the
                // service received it.
                Err(e) if attempt <= self.inner.max_retries && (e.is_connect() || (safe && e.is_timeout())) => {
                    tracing::debug!(request = %shown, error = %e, "retrying");
                    tokio::time::sleep(self.delay(attempt, None)).await;
                    continue;
                }
                Err(source) => return Err(RestError::Transport { request: shown, source }),
            };
            let status = resp.status();
            // 429: throttled, refused before processing. 5xx: it may have been carried out.
            if (status == StatusCode::TOO_MANY_REQUESTS || (safe && status.is_server_error()))
                && attempt <= self.inner.max_retries
            {
                let retry_after = retry_after(resp.headers());
                tracing::debug!(request = %shown, %status, ?retry_after, "retrying");
                tokio::time::sleep(self.delay(attempt, retry_after)).await;
                continue;
            }
            let headers = resp.headers().clone();
            let text = resp.text().await.map_err(|source| RestError::Transport { request: shown.clone(), source })?;
            if !status.is_success() {
                return Err(api_error(shown, status, &text));
            }
            return Ok(Answer { status, headers, text });
        }
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.inner.backoff.saturating_mul(1 << (attempt - 1).min(6));
        retry_after.unwrap_or(exp).min(Duration::from_secs(60))
    }

    fn url(&self, path: &str, api_version: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        if api_version.is_empty() {
            format!("{}{}", self.inner.base, path)
        } else {
            format!("{}{}{sep}api-version={api_version}", self.inner.base, path)
        }
    }

    /// `GET` and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, api_version: &str) -> Result<T, RestError> {
        let v = self.send(Method::Get, path, api_version, None).await?;
        serde_json::from_value(v)
            .map_err(|source| RestError::Decode { request: format!("GET {}", strip_query(path)), source })
    }

    /// `GET` a collection, following `nextLink`, and decode every item of `value`.
    pub async fn list<T: DeserializeOwned>(&self, path: &str, api_version: &str) -> Result<Vec<T>, RestError> {
        let mut out = Vec::new();
        let mut page = self.send(Method::Get, path, api_version, None).await?;
        loop {
            let items = page.get("value").cloned().unwrap_or(Value::Array(vec![]));
            let decoded: Vec<T> = serde_json::from_value(items)
                .map_err(|source| RestError::Decode { request: format!("GET {}", strip_query(path)), source })?;
            out.extend(decoded);
            let next = page
                .get("nextLink")
                .or_else(|| page.get("@odata.nextLink"))
                .and_then(Value::as_str)
                .map(str::to_string);
            match next {
                Some(link) => {
                    let rel = link.strip_prefix(&self.inner.base).unwrap_or(&link).to_string();
                    page = self.send(Method::Get, &rel, "", None).await?;
                }
                None => return Ok(out),
            }
        }
    }

    /// `PUT` a body.
    pub async fn put(&self, path: &str, api_version: &str, body: &Value) -> Result<Value, RestError> {
        self.send(Method::Put, path, api_version, Some(body)).await
    }

    /// `POST`, with or without a body.
    pub async fn post(&self, path: &str, api_version: &str, body: Option<&Value>) -> Result<Value, RestError> {
        self.send(Method::Post, path, api_version, body).await
    }

    /// `DELETE`; a 404 counts as done.
    pub async fn delete(&self, path: &str, api_version: &str) -> Result<(), RestError> {
        match self.send(Method::Delete, path, api_version, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A success answer: status, headers, body text.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn empty() -> Self {
        Answer { status: StatusCode::NO_CONTENT, headers: Default::default(), text: String::new() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// `properties.provisioningState` of an ARM resource body.
    fn provisioning_state(&self) -> Option<String> {
        let v: Value = serde_json::from_str(&self.text).ok()?;
        v.pointer("/properties/provisioningState").and_then(Value::as_str).map(str::to_string)
    }

    /// Whether the body shows no operation in progress (no state, or a terminal one).
    fn settled(&self) -> bool {
        self.provisioning_state()
            .is_none_or(|s| ["Succeeded", "Failed", "Canceled"].iter().any(|t| s.eq_ignore_ascii_case(t)))
    }

    /// The body as JSON (`Null` when empty).
    fn json(self, shown: &str) -> Result<Value, RestError> {
        if self.text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.text).map_err(|source| RestError::Decode { request: shown.to_string(), source })
    }
}

/// `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn api_error(request: String, status: StatusCode, body: &str) -> RestError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = v.get("error").cloned().unwrap_or(Value::Null);
    let (code, message) = match &e {
        Value::Object(_) => (
            e.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
            e.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
        ),
        // OAuth-style bodies: {"error": "invalid_client", "error_description": "..."}
        Value::String(s) => {
            (s.clone(), v.get("error_description").and_then(Value::as_str).unwrap_or_default().to_string())
        }
        _ => (status.canonical_reason().unwrap_or("error").to_string(), body.chars().take(200).collect()),
    };
    RestError::Api { request, status: status.as_u16(), code, message }
}
