//! Shared helpers: a started emulator, HTTPS clients trusting its CA, ARM calls with tokens,
//! and a small world (resource group, kubelet identity, cluster, registry).

use std::net::{IpAddr, SocketAddr};

use azure_model::api_version;
use base64::Engine as _;
use pullproof_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

pub const MI_API: &str = "2023-01-31";

pub struct World {
    pub emu: RunningEmulator,
    pub client: Client,
    pub arm_token: String,
    pub graph_token: String,
}

/// A client that trusts only the emulator's CA, optionally bound to a source address and with
/// names resolved to the emulator.
pub fn client(ca_pem: &str, local: Option<IpAddr>, resolve: &[(&str, SocketAddr)]) -> Client {
    let cert = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    let mut b = Client::builder().tls_certs_only([cert]).no_proxy();
    if let Some(ip) = local {
        b = b.local_address(ip);
    }
    for (name, addr) in resolve {
        b = b.resolve(name, *addr);
    }
    b.build().expect("client")
}

/// The claims of a JWT (not verified).
pub fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url"))
        .expect("JSON")
}

/// The header of a JWT.
pub fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url"))
        .expect("JSON")
}

pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

impl World {
    pub async fn start() -> World {
        World::start_with(EmulatorConfig::default()).await
    }

    pub async fn start_with(config: EmulatorConfig) -> World {
        let emu = Emulator::start(config).await.expect("emulator starts");
        let client = client(&emu.ca_pem, None, &[]);
        let op = emu.operator().clone();
        let mut w = World { emu, client, arm_token: String::new(), graph_token: String::new() };
        w.arm_token =
            w.client_token(&op.client_id, op.client_secret.expose(), "https://management.azure.com/.default").await;
        w.graph_token =
            w.client_token(&op.client_id, op.client_secret.expose(), "https://graph.microsoft.com/.default").await;
        w
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url)
    }

    pub fn sub(&self) -> String {
        format!("/subscriptions/{}", self.emu.subscription_id())
    }

    pub fn rg(&self, name: &str) -> String {
        format!("{}/resourceGroups/{name}", self.sub())
    }

    /// `POST /{tenant}/oauth2/v2.0/token` (client credentials): the raw answer.
    pub async fn token_request(&self, client_id: &str, secret: &str, scope: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url(&format!("/{}/oauth2/v2.0/token", self.emu.tenant_id())))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("token request");
        json_of(resp).await
    }

    pub async fn client_token(&self, client_id: &str, secret: &str, scope: &str) -> String {
        let (status, body) = self.token_request(client_id, secret, scope).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("access_token").to_string()
    }

    /// An ARM call with the operator's token; `path` includes the query.
    pub async fn arm(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(&self.arm_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        json_of(req.send().await.expect("ARM request")).await
    }

    pub async fn put(&self, id: &str, api: &str, body: Value) -> (StatusCode, Value) {
        self.arm(Method::PUT, &format!("{id}?api-version={api}"), Some(body)).await
    }

    pub async fn patch(&self, id: &str, api: &str, body: Value) -> (StatusCode, Value) {
        self.arm(Method::PATCH, &format!("{id}?api-version={api}"), Some(body)).await
    }

    pub async fn get(&self, id: &str, api: &str) -> (StatusCode, Value) {
        self.arm(Method::GET, &format!("{id}?api-version={api}"), None).await
    }

    pub async fn delete(&self, id: &str, api: &str) -> StatusCode {
        self.arm(Method::DELETE, &format!("{id}?api-version={api}"), None).await.0
    }

    pub async fn post(&self, id: &str, api: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.arm(Method::POST, &format!("{id}?api-version={api}"), body).await
    }

    /// PUT that must succeed; returns the body.
    pub async fn ok_put(&self, id: &str, api: &str, body: Value) -> Value {
        let (status, value) = self.put(id, api, body).await;
        assert!(status.is_success(), "PUT {id}: {status} {value}");
        value
    }

    pub async fn group(&self, name: &str) -> String {
        let id = self.rg(name);
        self.ok_put(&id, api_version::RESOURCES, json!({"location": "westeurope"})).await;
        id
    }

    pub async fn identity(&self, rg: &str, name: &str) -> Value {
        let id = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}");
        self.ok_put(&id, MI_API, json!({"location": "westeurope"})).await
    }

    pub async fn registry(&self, rg: &str, name: &str, properties: Value) -> Value {
        let id = format!("{rg}/providers/Microsoft.ContainerRegistry/registries/{name}");
        self.ok_put(
            &id,
            api_version::CONTAINER_REGISTRY,
            json!({"location": "westeurope", "sku": {"name": "Premium"}, "properties": properties}),
        )
        .await
    }

    /// A managed-identity cluster whose kubelet identity is `kubelet` (an identity resource id).
    pub async fn cluster(&self, rg: &str, name: &str, kubelet: &str) -> Value {
        let id = format!("{rg}/providers/Microsoft.ContainerService/managedClusters/{name}");
        self.ok_put(
            &id,
            api_version::CONTAINER_SERVICE,
            json!({
                "location": "westeurope",
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "dnsPrefix": name,
                    "agentPoolProfiles": [{"name": "nodepool1", "count": 2, "vmSize": "Standard_D2s_v5"}],
                    "identityProfile": {"kubeletidentity": {"resourceId": kubelet}},
                }
            }),
        )
        .await
    }

    /// Assigns `role` (a GUID) to `principal` at `scope`; returns the assignment id.
    pub async fn assign(&self, scope: &str, role: &str, principal: &str) -> String {
        let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", uuid_v4());
        self.ok_put(
            &id,
            api_version::AUTHORIZATION,
            json!({"properties": {
                "roleDefinitionId": format!("{}/providers/Microsoft.Authorization/roleDefinitions/{role}", self.sub()),
                "principalId": principal,
            }}),
        )
        .await;
        id
    }

    /// The first scale set in `node_rg` (the node pool's).
    pub async fn node_pool_vmss(&self, node_rg: &str) -> Value {
        let (status, list) = self
            .get(
                &format!("{}/providers/Microsoft.Compute/virtualMachineScaleSets", self.rg(node_rg)),
                api_version::COMPUTE,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["value"][0].clone()
    }
}

/// A random GUID (for role assignment names).
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The ACR base URL for `login_server` through the path prefix.
pub fn acr(w: &World, login_server: &str) -> String {
    w.url(&format!("/acr/{login_server}"))
}
