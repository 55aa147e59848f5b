//! With `async_operations`, writes Azure runs asynchronously answer with ARM's long-running
//! operation protocol, and a raw client sees each step of it.

use azure_model::api_version;
use pullproof_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::World;

async fn raw(w: &World, method: Method, url: &str, body: Option<serde_json::Value>) -> reqwest::Response {
    let mut req = w.client.request(method, url).bearer_auth(&w.arm_token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn async_writes_speak_the_operation_protocol() {
    let w = World::start_with(EmulatorConfig { async_operations: true, ..Default::default() }).await;
    let rg = w.group("net").await;
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/v");
    let body = json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let url = w.url(&format!("{vnet}?api-version={}", api_version::NETWORK));
    let put = raw(&w, Method::PUT, &url, Some(body)).await;
    assert!(put.status().is_success());
    assert_eq!(put.headers()["retry-after"], "0");
    let op = put.headers()["azure-asyncoperation"].to_str().unwrap().to_string();
    assert!(op.starts_with(&w.emu.base_url), "{op}");
    let status = |r: serde_json::Value| r["status"].as_str().unwrap_or_default().to_string();
    assert_eq!(status(raw(&w, Method::GET, &op, None).await.json().await.unwrap()), "InProgress");
    assert_eq!(status(raw(&w, Method::GET, &op, None).await.json().await.unwrap()), "Succeeded");
    // Polls need ARM's token, like every ARM call.
    assert_eq!(w.client.get(&op).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // DELETE: 202 with both headers; the Location answers 202 while running, then 204.
    let del = raw(&w, Method::DELETE, &url, None).await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);
    let loc = del.headers()["location"].to_str().unwrap().to_string();
    assert!(del.headers().contains_key("azure-asyncoperation"));
    assert_eq!(raw(&w, Method::GET, &loc, None).await.status(), StatusCode::ACCEPTED);
    assert_eq!(raw(&w, Method::GET, &loc, None).await.status(), StatusCode::NO_CONTENT);

    // Synchronous ones are left alone: role assignments, resource groups.
    let rg_put = raw(
        &w,
        Method::PUT,
        &w.url(&format!("{}?api-version={}", w.rg("sync"), api_version::RESOURCES)),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert!(!rg_put.headers().contains_key("azure-asyncoperation"));
}

#[tokio::test]
async fn azure_rest_follows_the_emulators_operations_to_the_finished_resource() {
    let w = World::start_with(EmulatorConfig { async_operations: true, ..Default::default() }).await;
    let rg = w.group("net").await;
    let op = w.emu.operator().clone();
    let tokens = azure_rest::ClientCredentials::new(
        azure_rest::http_client(std::slice::from_ref(&w.emu.ca_pem)).unwrap(),
        format!("{}/{}/oauth2/v2.0/token", w.emu.base_url, w.emu.tenant_id()),
        op.client_id.clone(),
        op.client_secret.expose().to_string(),
    );
    let arm = azure_rest::Client::builder(&w.emu.base_url, azure_rest::ARM_SCOPE)
        .trust_pem(w.emu.ca_pem.clone())
        .token_source(tokens)
        .build()
        .unwrap();
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/n");
    let v = arm.put(&nsg, api_version::NETWORK, &json!({"location": "westeurope", "properties": {}})).await.unwrap();
    assert_eq!(v["name"], "n");
    // The create, two polls and the final read.
    assert_eq!(arm.requests_sent(), 4);
    arm.delete(&nsg, api_version::NETWORK).await.unwrap();
    assert_eq!(w.get(&nsg, api_version::NETWORK).await.0, StatusCode::NOT_FOUND);
}
