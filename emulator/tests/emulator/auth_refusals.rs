//! Every credential the emulator and its ACR token service must refuse, refused with Azure's own
//! status and error code: expired tokens, the wrong audience, tenant or issuer, a tampered
//! signature, a token for another registry, a token cached from before a role was removed, and
//! an IMDS request from a node whose scale set lacks the identity.

use std::net::{IpAddr, Ipv4Addr};

use azure_model::api_version;
use base64::Engine as _;
use pullproof_emulator::{Clock, EmulatorConfig, REFRESH_TOKEN_USER};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{World, acr, json_of};

/// `GET /subscriptions/{id}` with `token`: the status and the ARM error code.
async fn arm_with(w: &World, token: &str) -> (StatusCode, Value) {
    let url = w.url(&format!("{}/resourcegroups?api-version={}", w.sub(), api_version::RESOURCES));
    json_of(w.client.get(url).bearer_auth(token).send().await.unwrap()).await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// `token` with one payload byte changed, signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["oid"] = json!("00000000-0000-0000-0000-00000000beef");
    format!("{}.{}.{}", parts[0], engine.encode(claims.to_string()), parts[2])
}

#[tokio::test]
async fn arm_and_graph_refuse_bad_tokens_as_azure_does() {
    let clock = Clock::manual(time::OffsetDateTime::now_utc());
    let w = World::start_with(EmulatorConfig { clock: clock.clone(), ..Default::default() }).await;
    assert_eq!(arm_with(&w, &w.arm_token).await.0, StatusCode::OK, "the control: a good token passes");

    let cases: Vec<(&str, String, &str)> = vec![
        ("tampered signature", tampered(&w.arm_token), "InvalidAuthenticationToken"),
        ("a Graph token on ARM", w.graph_token.clone(), "InvalidAuthenticationTokenAudience"),
        (
            "another tenant",
            w.emu.forge_access_token(&json!({ "tid": "11111111-2222-3333-4444-555555555555" })),
            "InvalidAuthenticationTokenTenant",
        ),
        (
            "another issuer",
            w.emu
                .forge_access_token(&json!({ "iss": "https://sts.windows.net/11111111-2222-3333-4444-555555555555/" })),
            "InvalidAuthenticationTokenTenant",
        ),
        ("garbage", "not.a.token".into(), "InvalidAuthenticationToken"),
    ];
    for (what, token, want) in &cases {
        let (status, body) = arm_with(&w, token).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, *want), "{what}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    }
    let (status, body) =
        json_of(w.client.get(w.url("/v1.0/applications")).bearer_auth(&w.arm_token).send().await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"),
        "an ARM token on Graph: {body}"
    );

    // An hour and a bit later the operator's token has expired.
    clock.advance(time::Duration::minutes(61));
    let (status, body) = arm_with(&w, &w.arm_token).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "ExpiredAuthenticationToken"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("is earlier than current UTC time"), "{body}");
    let (status, body) =
        json_of(w.client.get(w.url("/v1.0/applications")).bearer_auth(&w.graph_token).send().await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"),
        "expired on Graph: {body}"
    );
}

/// ACR's refusal: 401 with `errors[0].code == "UNAUTHORIZED"`.
fn acr_refused(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::UNAUTHORIZED && body["errors"][0]["code"] == "UNAUTHORIZED"
}

#[tokio::test]
async fn the_registry_token_service_refuses_stale_and_foreign_credentials() {
    let w = World::start().await;
    let rg = w.group("acr").await;
    let a = w.registry(&rg, "pullproofacr", json!({})).await;
    let b = w.registry(&rg, "otheracr", json!({})).await;
    let (login_a, login_b) = ("pullproofacr.azurecr.io", "otheracr.azurecr.io");
    let kubelet = w.identity(&rg, "kubelet").await;
    let principal = kubelet["properties"]["principalId"].as_str().unwrap().to_string();
    let cluster = w.cluster(&rg, "aks", kubelet["id"].as_str().unwrap()).await;
    let vmss = w.node_pool_vmss(cluster["properties"]["nodeResourceGroup"].as_str().unwrap()).await;
    w.emu.register_node(IpAddr::V4(Ipv4Addr::LOCALHOST), vmss["id"].as_str().unwrap());
    // AcrPull on both: a refusal at B can only come from the token being A's.
    let acr_pull = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    let assignment = w.assign(a["id"].as_str().unwrap(), acr_pull, &principal).await;
    w.assign(b["id"].as_str().unwrap(), acr_pull, &principal).await;

    // The node's managed identity token, exchanged for registry A's refresh token.
    let client_id = kubelet["properties"]["clientId"].as_str().unwrap();
    let (_, mi) = json_of(
        w.client
            .get(w.url(&format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://containerregistry.azure.net&client_id={client_id}")))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (status, body) = json_of(
        w.client
            .post(format!("{}/oauth2/exchange", acr(&w, login_a)))
            .form(&[
                ("grant_type", "access_token"),
                ("service", login_a),
                ("tenant", w.emu.tenant_id()),
                ("access_token", mi["access_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let token = |login: &'static str, refresh: String| {
        let req = w
            .client
            .get(format!("{}/oauth2/token", acr(&w, login)))
            .query(&[("service", login), ("scope", "repository:app:pull")])
            .basic_auth(REFRESH_TOKEN_USER, Some(refresh));
        async move { json_of(req.send().await.unwrap()).await }
    };
    let (status, body) = token(login_a, refresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "the control: registry A, with the role: {body}");

    // A refresh token for registry A at registry B.
    let (status, body) = token(login_b, refresh.clone()).await;
    assert!(acr_refused(status, &body), "another registry's refresh token: {status} {body}");
    // A tampered refresh token.
    let (status, body) = token(login_a, tampered(&refresh)).await;
    assert!(acr_refused(status, &body), "tampered: {status} {body}");
    // The role removed: the refresh token the node cached from before no longer gets access.
    assert!(w.delete(&assignment, api_version::AUTHORIZATION).await.is_success());
    let (status, body) = token(login_a, refresh.clone()).await;
    assert!(acr_refused(status, &body), "a cached refresh token after the role was removed: {status} {body}");

    // IMDS on a node whose scale set does not carry the identity.
    let stranger = w.identity(&rg, "stranger").await;
    let (status, body) = json_of(
        w.client
            .get(w.url(&format!(
                "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://containerregistry.azure.net&client_id={}",
                stranger["properties"]["clientId"].as_str().unwrap()
            )))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_request", "error_description": "Identity not found"}))
    );
}
