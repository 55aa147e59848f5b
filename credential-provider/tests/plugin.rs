//! Runs the real `acr-credential-provider` binary against a local stand-in for IMDS (plain
//! HTTP) and an ACR login server (HTTPS with a throw-away CA, reached through
//! `ACR_CREDENTIAL_PROVIDER_CONNECT_TO`).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const KUBELET_CLIENT_ID: &str = "3f1b5c1e-0000-4000-8000-00000000c11d";
const AAD_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.aad-token-for-kubelet.sig";
const REFRESH_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.acr-refresh-token.sig";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SP_SECRET: &str = "Xy8Q~sp-secret-value";

/// What the stand-in saw: one line per request.
type Log = Arc<Mutex<Vec<String>>>;

fn json(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_owned()).into_response()
}

async fn imds(State(log): State<Log>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let id = q.get("client_id").cloned().unwrap_or_default();
    log.lock()
        .unwrap()
        .push(format!("imds client_id={id} resource={}", q.get("resource").cloned().unwrap_or_default()));
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#,
        );
    }
    if q.get("api-version").map(String::as_str) != Some("2018-02-01")
        || q.get("resource").map(String::as_str) != Some("https://containerregistry.azure.net/")
    {
        return json(StatusCode::BAD_REQUEST, r#"{"error":"invalid_request","error_description":"bad query"}"#);
    }
    if id != KUBELET_CLIENT_ID {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
        );
    }
    json(
        StatusCode::OK,
        &format!(
            r#"{{"access_token":"{AAD_TOKEN}","refresh_token":"","expires_in":"86399","expires_on":"1906484173","not_before":"1506480273","resource":"https://containerregistry.azure.net/","token_type":"Bearer"}}"#
        ),
    )
}

async fn challenge(State(log): State<Log>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    log.lock().unwrap().push(format!("challenge host={host}"));
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, format!(r#"Bearer realm="https://{host}/oauth2/token",service="{host}""#))],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    )
        .into_response()
}

async fn exchange(State(log): State<Log>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    log.lock().unwrap().push(format!(
        "exchange host={host} grant_type={} service={} tenant={} token_ok={}",
        field("grant_type"),
        field("service"),
        field("tenant"),
        field("access_token") == AAD_TOKEN
    ));
    let ok = field("grant_type") == "access_token"
        && field("service") == host
        && field("tenant") == TENANT
        && field("access_token") == AAD_TOKEN
        && host.starts_with("myacr.");
    if !ok {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information."}]}"#,
        );
    }
    json(StatusCode::OK, &format!(r#"{{"refresh_token":"{REFRESH_TOKEN}"}}"#))
}

/// The stand-in servers, on a runtime of their own.
struct StandIn {
    _runtime: tokio::runtime::Runtime,
    imds: SocketAddr,
    registry: SocketAddr,
    log: Log,
    dir: tempfile::TempDir,
}

impl StandIn {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A throw-away CA and a server certificate for the registries.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["myacr.azurecr.io".into(), "denyacr.azurecr.io".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let log: Log = Arc::default();
        let router = Router::new()
            .route("/metadata/identity/oauth2/token", get(imds))
            .route("/v2/", get(challenge))
            .route("/oauth2/exchange", post(exchange))
            .with_state(log.clone());

        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (imds, registry) = runtime.block_on(async {
            let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let secure = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addrs = (plain.local_addr().unwrap(), secure.local_addr().unwrap());
            let plain_router = router.clone();
            tokio::spawn(async move { axum::serve(plain, plain_router).await.unwrap() });
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = secure.accept().await else { continue };
                    let (acceptor, router) = (acceptor.clone(), router.clone());
                    tokio::spawn(async move {
                        // Clients that reject the certificate end the handshake: not an error here.
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                            .await;
                    });
                }
            });
            addrs
        });
        Self { _runtime: runtime, imds, registry, log, dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn config(&self, name: &str, json: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, json).unwrap();
        path
    }

    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// Runs the plugin for `image` with `config`; returns (exit code, stdout, stderr).
    fn run(&self, config: &Path, image: &str, trust_ca: bool) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_acr-credential-provider"));
        cmd.arg(config)
            .env("ACR_CREDENTIAL_PROVIDER_IMDS_ENDPOINT", format!("http://{}", self.imds))
            .env(
                "ACR_CREDENTIAL_PROVIDER_CONNECT_TO",
                format!("myacr.azurecr.io:443:{0},denyacr.azurecr.io:443:{0}", self.registry),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE"]
        {
            cmd.env_remove(var);
        }
        if trust_ca {
            cmd.env("SSL_CERT_FILE", self.ca());
        }
        let mut child = cmd.spawn().unwrap();
        let request = format!(
            r#"{{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"{image}"}}"#
        );
        child.stdin.take().unwrap().write_all(request.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

fn msi_config(client_id: &str) -> String {
    format!(
        r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"msi","aadClientSecret":"msi","useManagedIdentityExtension":true,"userAssignedIdentityID":"{client_id}"}}"#
    )
}

fn assert_no_secrets(text: &str) {
    for secret in [AAD_TOKEN, REFRESH_TOKEN, SP_SECRET, "aad-token-for-kubelet", "acr-refresh-token"] {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }
}

#[test]
fn plugin_against_a_local_imds_and_registry() {
    let stand_in = StandIn::start();
    let msi = stand_in.config("msi.json", &msi_config(KUBELET_CLIENT_ID));

    // Managed identity: IMDS -> challenge -> exchange -> refresh token for the login server.
    let (code, stdout, stderr) = stand_in.run(&msi, "myacr.azurecr.io/team/app", true);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_no_secrets(&stderr);
    let response: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(response["kind"], "CredentialProviderResponse");
    assert_eq!(response["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(response["cacheKeyType"], "Registry");
    assert_eq!(response["cacheDuration"], "5m0s");
    assert_eq!(
        response["auth"],
        serde_json::json!({
            "myacr.azurecr.io": {"username": "00000000-0000-0000-0000-000000000000", "password": REFRESH_TOKEN},
            "*.azurecr.*": {"username": "", "password": ""},
        })
    );
    assert_eq!(
        stand_in.requests(),
        [
            format!("imds client_id={KUBELET_CLIENT_ID} resource=https://containerregistry.azure.net/"),
            "challenge host=myacr.azurecr.io".to_owned(),
            format!(
                "exchange host=myacr.azurecr.io grant_type=access_token service=myacr.azurecr.io tenant={TENANT} token_ok=true"
            ),
        ]
    );

    // The identity is not assigned to the node: IMDS 400 `Identity not found`, exit 1.
    let removed = stand_in.config("removed.json", &msi_config("9d0c0000-0000-4000-8000-0000000000aa"));
    let (code, stdout, stderr) = stand_in.run(&removed, "myacr.azurecr.io/team/app", true);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("IMDS responded 400 Bad Request: invalid_request: Identity not found"), "{stderr}");
    assert!(stderr.contains("error getting credentials from ACR for myacr.azurecr.io"), "{stderr}");
    assert_eq!(stand_in.requests().len(), 1, "nothing after IMDS");

    // The exchange refuses the token (no pull permission): 401, exit 1, no token printed.
    let (code, stdout, stderr) = stand_in.run(&msi, "denyacr.azurecr.io/team/app", true);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("auth url https://denyacr.azurecr.io/oauth2/exchange responded with status code 401"),
        "{stderr}"
    );
    assert_no_secrets(&stderr);
    assert_eq!(stand_in.requests().len(), 3);

    // The registry's certificate is not trusted without SSL_CERT_FILE.
    let (code, _, stderr) = stand_in.run(&msi, "myacr.azurecr.io/team/app", false);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("failed to receive challenge: error reaching registry endpoint https://myacr.azurecr.io/v2/"),
        "{stderr}"
    );
    assert_no_secrets(&stderr);
    stand_in.requests();

    // Service principal: appId and secret handed over as they are, with no network call.
    let sp = stand_in.config(
        "sp.json",
        &format!(
            r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"11111111-2222-3333-4444-555555555555","aadClientSecret":"{SP_SECRET}","useManagedIdentityExtension":false}}"#
        ),
    );
    let (code, stdout, stderr) = stand_in.run(&sp, "myacr.azurecr.io/team/app", true);
    assert_eq!(code, 0, "{stderr}");
    let response: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let sp_entry = serde_json::json!({"username": "11111111-2222-3333-4444-555555555555", "password": SP_SECRET});
    assert_eq!(
        response["auth"],
        serde_json::json!({
            "*.azurecr.io": sp_entry, "*.azurecr.cn": sp_entry, "*.azurecr.de": sp_entry, "*.azurecr.us": sp_entry,
            "*.azurecr.*": {"username": "", "password": ""},
        })
    );
    assert!(stand_in.requests().is_empty());

    // Not an ACR image: no credentials, not cached, no network call.
    for config in [&msi, &sp] {
        let (code, stdout, stderr) = stand_in.run(config, "docker.io/library/nginx", true);
        assert_eq!(code, 0, "{stderr}");
        let response: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(response["auth"], serde_json::json!({}));
        assert_eq!(response["cacheDuration"], "0s");
    }
    assert!(stand_in.requests().is_empty());
}
