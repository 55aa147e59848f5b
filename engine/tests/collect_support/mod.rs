//! Test support: an in-process Kubernetes API server that answers from a recorded
//! `kubectl cluster-info dump` (lists paged with `limit`/`continue`, field and label selectors,
//! merge patches), with switchable 403s; and a started emulator loaded with a fixture's
//! inventory, with clients for it.
#![allow(dead_code)]

pub mod registry;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pulldoctor::collect::{AzureClients, AzureConfig};
use pulldoctor::credential::AzureAuth;
use pullproof_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence")
}

pub fn fixture_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

pub fn expected_codes(name: &str) -> BTreeSet<String> {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join(name).join("expected.json")).unwrap()).unwrap();
    v["findings"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

/// One stored object: (plural, namespace, body).
#[derive(Default)]
pub struct KubeState {
    pub objects: Vec<(String, Option<String>, Value)>,
    /// Plurals answered with 403.
    pub forbidden: BTreeSet<String>,
    pub page_size_cap: Option<usize>,
    /// `METHOD path?query` of every request.
    pub log: Vec<String>,
}

impl KubeState {
    /// Loads a dump directory; Deployments are made up from the ReplicaSets' owners.
    pub fn from_dump(dir: &Path) -> Self {
        let mut s = KubeState::default();
        let items = |p: PathBuf| -> Vec<Value> {
            std::fs::read_to_string(&p)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["items"].as_array().cloned())
                .unwrap_or_default()
        };
        for n in items(dir.join("nodes.json")) {
            s.objects.push(("nodes".into(), None, n));
        }
        for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
            let ns = e.file_name().to_string_lossy().to_string();
            for (file, plural) in [
                ("pods.json", "pods"),
                ("events.json", "events"),
                ("secrets.json", "secrets"),
                ("serviceaccounts.json", "serviceaccounts"),
                ("replicasets.json", "replicasets"),
            ] {
                for o in items(e.path().join(file)) {
                    if plural == "replicasets" {
                        for owner in o["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default() {
                            if owner["kind"] == "Deployment" {
                                s.objects.push((
                                    "deployments".into(),
                                    Some(ns.clone()),
                                    json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                        "metadata": {"name": owner["name"], "namespace": ns},
                                        "spec": {"replicas": 2, "template": o["spec"]["template"].clone()}}),
                                ));
                            }
                        }
                    }
                    s.objects.push((plural.into(), Some(ns.clone()), o));
                }
            }
        }
        s
    }

    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|(p, n, o)| p == plural && n.as_deref().is_none_or(|n| n == ns) && o["metadata"]["name"] == name)
            .map(|(_, _, o)| o)
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()})),
    )
        .into_response()
}

fn field_ok(o: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|kv| {
        let Some((k, v)) = kv.split_once('=') else { return true };
        let mut cur = o;
        for part in k.split('.') {
            cur = &cur[part];
        }
        cur.as_str() == Some(v)
    })
}

fn labels_ok(o: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|kv| match kv.split_once('=') {
        Some((k, v)) => o["metadata"]["labels"][k].as_str() == Some(v),
        None => true,
    })
}

fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if (k == "containers" || k == "initContainers") && v.is_array() {
                    // Strategic merge: by name.
                    let list = t.entry(k.clone()).or_insert(json!([]));
                    for item in v.as_array().unwrap() {
                        let arr = list.as_array_mut().unwrap();
                        match arr.iter_mut().find(|c| c["name"] == item["name"]) {
                            Some(c) => merge(c, item),
                            None => arr.push(item.clone()),
                        }
                    }
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// `apply`: the PATCH is a server-side apply, which creates a missing object (the body is the
/// whole object; its name and namespace must match the path, as the API server requires).
async fn handle(state: Arc<Mutex<KubeState>>, method: Method, uri: Uri, body: Bytes, apply: bool) -> Response {
    let query: Vec<(String, String)> = uri.query().map(url_decode_pairs).unwrap_or_default();
    let q = |k: &str| query.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let mut st = state.lock().unwrap();
    st.log.push(format!("{method} {uri}"));
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let rest: Vec<&str> = match segs.as_slice() {
        ["api", "v1", rest @ ..] => rest.to_vec(),
        ["apis", _, "v1", rest @ ..] => rest.to_vec(),
        _ => return status(StatusCode::NOT_FOUND, "NotFound", format!("no route {}", uri.path())),
    };
    let (ns, plural, name) = match rest.as_slice() {
        ["namespaces", ns, plural] => (Some(ns.to_string()), plural.to_string(), None),
        ["namespaces", ns, plural, name] => (Some(ns.to_string()), plural.to_string(), Some(name.to_string())),
        [plural] => (None, plural.to_string(), None),
        [plural, name] => (None, plural.to_string(), Some(name.to_string())),
        _ => return status(StatusCode::NOT_FOUND, "NotFound", "bad path".into()),
    };
    if st.forbidden.contains(&plural) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{plural} is forbidden: User \"pulldoctor\" cannot {} resource \"{plural}\"",
                method.as_str().to_lowercase()
            ),
        );
    }
    match (method, name) {
        (Method::GET, None) => {
            let mut items: Vec<Value> = st
                .objects
                .iter()
                .filter(|(p, n, _)| *p == plural && (ns.is_none() || n == &ns))
                .map(|(_, _, o)| o.clone())
                .filter(|o| q("fieldSelector").is_none_or(|f| field_ok(o, &f)))
                .filter(|o| q("labelSelector").is_none_or(|l| labels_ok(o, &l)))
                .collect();
            let start: usize = q("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
            let limit: usize = q("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
            let limit = st.page_size_cap.map_or(limit, |c| c.min(limit));
            let total = items.len();
            let end = (start + limit).min(total);
            let page: Vec<Value> = items.drain(start.min(total)..end).collect();
            let mut meta = json!({"resourceVersion": "1"});
            if end < total {
                meta["continue"] = json!(end.to_string());
            }
            axum::Json(json!({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": page})).into_response()
        }
        (Method::GET, Some(name)) => match st.get(&plural, ns.as_deref().unwrap_or(""), &name) {
            Some(o) => axum::Json(o.clone()).into_response(),
            None => status(StatusCode::NOT_FOUND, "NotFound", format!("{plural} \"{name}\" not found")),
        },
        (Method::PATCH, Some(name)) => {
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let nsv = ns.clone();
            let found = st
                .objects
                .iter_mut()
                .find(|(p, n, o)| *p == plural && n == &nsv && o["metadata"]["name"] == name.as_str());
            match found {
                Some((_, _, o)) => {
                    merge(o, &patch);
                    axum::Json(o.clone()).into_response()
                }
                None if apply => {
                    if patch["metadata"]["name"] != name.as_str()
                        || patch["metadata"]["namespace"].as_str().is_some_and(|n| Some(n) != nsv.as_deref())
                        || patch["apiVersion"].as_str().is_none()
                        || patch["kind"].as_str().is_none()
                    {
                        return status(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            "apply: apiVersion, kind and a matching name are required".into(),
                        );
                    }
                    st.objects.push((plural.clone(), nsv, patch.clone()));
                    (StatusCode::CREATED, axum::Json(patch)).into_response()
                }
                None => status(StatusCode::NOT_FOUND, "NotFound", format!("{plural} \"{name}\" not found")),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not supported here".into()),
    }
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A running mock API server.
pub struct MockKube {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<KubeState>>,
    _task: tokio::task::JoinHandle<()>,
}

impl MockKube {
    pub async fn start(state: KubeState) -> MockKube {
        let state = Arc::new(Mutex::new(state));
        let s = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
                let s = s.clone();
                let apply = headers
                    .get("content-type")
                    .is_some_and(|c| c.to_str().unwrap_or_default().starts_with("application/apply-patch"));
                async move { handle(s, method, uri, body, apply).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockKube { addr, state, _task: task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self, namespace: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().unwrap());
        config.default_namespace = namespace.to_string();
        kube::Client::try_from(config).unwrap()
    }

    /// A kubeconfig file pointing at this server.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: {}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: u\n    namespace: {namespace}\ncurrent-context: mock\n",
                self.url()
            ),
        )
        .unwrap();
        path
    }
}

/// The emulator loaded with a fixture's inventory.
pub async fn emulator(fixture: &str) -> RunningEmulator {
    let text = std::fs::read_to_string(fixtures().join(fixture).join("azure.json")).unwrap();
    let inv = azure_model::Inventory::from_json(&text).unwrap();
    Emulator::start(EmulatorConfig::default().with_state(inv)).await.expect("emulator starts")
}

pub fn token_url(emu: &RunningEmulator) -> String {
    format!("{}/{}/oauth2/v2.0/token", emu.base_url, emu.tenant_id())
}

/// pulldoctor's Azure configuration for the emulator (the operator's client credentials).
pub fn azure_config(emu: &RunningEmulator) -> AzureConfig {
    let op = emu.operator();
    AzureConfig {
        arm_endpoint: emu.base_url.clone(),
        graph_endpoint: emu.base_url.clone(),
        ca_pem: vec![emu.ca_pem.clone()],
        auth: AzureAuth::ClientCredentials {
            token_url: token_url(emu),
            client_id: op.client_id.clone(),
            client_secret: op.client_secret.expose().to_string(),
        },
        read_graph: true,
        backoff: Some(std::time::Duration::from_millis(5)),
    }
}

pub fn clients(emu: &RunningEmulator) -> AzureClients {
    azure_config(emu).clients().expect("clients")
}

/// A plain-HTTP proxy in front of the emulator that answers 403 `AuthorizationFailed` for
/// requests whose path contains one of `deny`, and logs every request it forwards.
pub struct DenyingProxy {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl DenyingProxy {
    pub async fn start(emu: &RunningEmulator, deny: &[&str]) -> DenyingProxy {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let base = emu.base_url.clone();
        let deny: Vec<String> = deny.iter().map(|d| d.to_ascii_lowercase()).collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
            let (http, base, deny, log) = (http.clone(), base.clone(), deny.clone(), l.clone());
            async move {
                let pq = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                log.lock().unwrap().push(format!("{method} {}", uri.path()));
                if deny.iter().any(|d| uri.path().to_ascii_lowercase().contains(d)) {
                    return (
                        StatusCode::FORBIDDEN,
                        axum::Json(json!({"error": {"code": "AuthorizationFailed", "message": format!("The client does not have authorization to perform action over scope '{}'.", uri.path())}})),
                    )
                        .into_response();
                }
                let m = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
                let mut req = http.request(m, format!("{base}{pq}")).body(body.to_vec());
                for (k, v) in headers.iter() {
                    if k == "authorization" || k == "content-type" {
                        req = req.header(k.as_str(), v.to_str().unwrap_or_default());
                    }
                }
                let resp = req.send().await.unwrap();
                let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                let bytes = resp.bytes().await.unwrap_or_default();
                (status, [("content-type", "application/json")], bytes.to_vec()).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        DenyingProxy { url, log, _task: task }
    }

    /// pulldoctor's configuration through the proxy.
    pub fn azure_config(&self, emu: &RunningEmulator) -> AzureConfig {
        AzureConfig { arm_endpoint: self.url.clone(), graph_endpoint: self.url.clone(), ..azure_config(emu) }
    }
}

/// Decides about a request before it is forwarded: `(method, path and query)` -> an answer
/// given instead (the emulator never sees the request), or `None` to forward it.
pub type Pre = Arc<dyn Fn(&str, &str) -> Option<(u16, Value)> + Send + Sync>;
/// Rewrites the emulator's answer: `(method, path and query, status, body)` -> `(status, body)`.
pub type Post = Arc<dyn Fn(&str, &str, u16, Value) -> (u16, Value) + Send + Sync>;

/// A plain-HTTP proxy in front of the emulator that can answer requests itself (`pre`) and
/// rewrite the emulator's answers (`post`); it logs `METHOD path?query` of every request.
pub struct RewritingProxy {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl RewritingProxy {
    pub async fn start(emu: &RunningEmulator, pre: Pre, post: Post) -> RewritingProxy {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let base = emu.base_url.clone();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
                let (http, base, log, pre, post) = (http.clone(), base.clone(), l.clone(), pre.clone(), post.clone());
                async move {
                    let pq = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                    log.lock().unwrap().push(format!("{method} {pq}"));
                    let answer = |status: u16, v: Value| {
                        let bytes = if v.is_null() { Vec::new() } else { serde_json::to_vec(&v).unwrap() };
                        (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], bytes)
                            .into_response()
                    };
                    if let Some((status, v)) = pre(method.as_str(), &pq) {
                        return answer(status, v);
                    }
                    let m = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
                    let mut req = http.request(m, format!("{base}{pq}")).body(body.to_vec());
                    for (k, v) in headers.iter() {
                        if k == "authorization" || k == "content-type" {
                            req = req.header(k.as_str(), v.to_str().unwrap_or_default());
                        }
                    }
                    let resp = req.send().await.unwrap();
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let (status, v) = post(method.as_str(), &pq, status, v);
                    answer(status, v)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RewritingProxy { url, log, _task: task }
    }

    /// Forwards everything, answering `status` with an ARM error envelope instead for the first
    /// `times` requests whose path contains `fragment` (case-insensitive).
    pub async fn failing(emu: &RunningEmulator, fragment: &str, status: u16, times: usize) -> RewritingProxy {
        let fragment = fragment.to_ascii_lowercase();
        let left = Arc::new(std::sync::atomic::AtomicUsize::new(times));
        let pre: Pre = Arc::new(move |_m, pq| {
            let path = pq.split('?').next().unwrap_or(pq).to_ascii_lowercase();
            if !path.contains(&fragment) {
                return None;
            }
            let ok = left.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                n.checked_sub(1)
            });
            ok.is_ok().then(|| {
                (status, json!({"error": {"code": "InternalServerError", "message": "injected failure (test proxy)"}}))
            })
        });
        RewritingProxy::start(emu, pre, Arc::new(|_, _, s, v| (s, v))).await
    }

    /// pulldoctor's configuration through the proxy.
    pub fn azure_config(&self, emu: &RunningEmulator) -> AzureConfig {
        AzureConfig { arm_endpoint: self.url.clone(), graph_endpoint: self.url.clone(), ..azure_config(emu) }
    }
}

/// Whether Entra (the emulator's token endpoint) accepts `secret` for application `client_id`.
pub async fn secret_works(emu: &RunningEmulator, client_id: &str, secret: &str) -> bool {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = http
        .post(token_url(emu))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    resp.status().is_success()
}
