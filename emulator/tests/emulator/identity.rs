//! Entra's token endpoint, Microsoft Graph and IMDS.

use std::net::{IpAddr, Ipv4Addr};

use azure_model::api_version;
use pullproof_emulator::{Clock, EmulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::common::{World, claims, client, json_of};

fn aadsts(body: &Value) -> (String, i64) {
    (body["error"].as_str().unwrap_or_default().to_string(), body["error_codes"][0].as_i64().unwrap_or_default())
}

#[tokio::test]
async fn client_credentials_like_entra() {
    let clock = Clock::system();
    let w = World::start_with(EmulatorConfig { clock: clock.clone(), ..EmulatorConfig::default() }).await;
    let app = w.emu.create_application("cluster-sp").unwrap();
    let scope = "https://management.azure.com/.default";

    let (status, body) = w.token_request(&app.client_id, app.client_secret.expose(), scope).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "https://management.azure.com");
    assert_eq!(c["appid"], app.client_id);
    assert_eq!(c["oid"], app.service_principal_object_id);
    assert_eq!(c["tid"], w.emu.tenant_id());
    assert!(c["exp"].as_i64().unwrap() > c["iat"].as_i64().unwrap());

    let (status, body) = w.token_request(&app.client_id, "wrong-secret", scope).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&body), ("invalid_client".into(), 7000215));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS7000215: Invalid client secret provided."), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }

    // The secret expires: same secret, another answer.
    clock.advance(Duration::days(800));
    let (status, body) = w.token_request(&app.client_id, app.client_secret.expose(), scope).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&body), ("invalid_client".into(), 7000222));
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!(
            "AADSTS7000222: The provided client secret keys for app '{}' are expired.",
            app.client_id
        )),
        "{description}"
    );
    clock.advance(Duration::days(-800));

    let (status, body) = w.token_request("6b1c0e0e-0000-4000-8000-000000000000", "x", scope).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(aadsts(&body).1, 700016);
    let (status, body) = w
        .token_request(&app.client_id, app.client_secret.expose(), "https://management.azure.com/user_impersonation")
        .await;
    assert_eq!((status, aadsts(&body).0.as_str()), (StatusCode::BAD_REQUEST, "invalid_scope"));
    let resp = w
        .client
        .post(w.url("/not-my-tenant/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", app.client_secret.expose()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!((status, aadsts(&body).1), (StatusCode::BAD_REQUEST, 90002));

    // A secret whose end date passed via Graph metadata (the fault pullproof injects).
    assert_eq!(w.emu.set_secret_expiry(&app.client_id, clock.now() - Duration::days(1)).unwrap(), 1);
    let (status, body) = w.token_request(&app.client_id, app.client_secret.expose(), scope).await;
    assert_eq!((status, aadsts(&body).1), (StatusCode::UNAUTHORIZED, 7000222));
}

#[tokio::test]
async fn graph_applications_and_password_credentials() {
    let w = World::start().await;
    let app = w.emu.create_application("cluster-sp").unwrap();
    let get = |path: String| {
        let w = &w;
        async move { json_of(w.client.get(w.url(&path)).bearer_auth(&w.graph_token).send().await.unwrap()).await }
    };
    let post = |path: String, body: Value| {
        let w = &w;
        async move {
            json_of(w.client.post(w.url(&path)).bearer_auth(&w.graph_token).json(&body).send().await.unwrap()).await
        }
    };

    let (status, body) = get(format!("/v1.0/applications/{}", app.application_object_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["@odata.context"], "https://graph.microsoft.com/v1.0/$metadata#applications/$entity");
    assert_eq!(body["appId"], app.client_id);
    assert_eq!(body["passwordCredentials"][0]["keyId"], app.key_id);
    assert!(body["passwordCredentials"][0]["secretText"].is_null());
    assert_eq!(body["passwordCredentials"][0]["hint"], &app.client_secret.expose()[..3]);
    let (status, by_app_id) = get(format!("/v1.0/applications(appId='{}')", app.client_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_app_id["id"], app.application_object_id);
    let (_, list) = get(format!("/v1.0/applications?$filter=appId%20eq%20'{}'", app.client_id)).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    let (status, cred) = post(
        format!("/v1.0/applications/{}/addPassword", app.application_object_id),
        json!({"passwordCredential": {"displayName": "rotated", "endDateTime": "2099-01-01T00:00:00Z"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let secret = cred["secretText"].as_str().unwrap().to_string();
    assert_eq!(cred["hint"], &secret[..3]);
    assert_eq!(cred["displayName"], "rotated");
    assert!(cred["endDateTime"].as_str().unwrap().starts_with("2099-01-01T00:00:00"));
    let (_, again) = get(format!("/v1.0/applications/{}", app.application_object_id)).await;
    assert_eq!(again["passwordCredentials"].as_array().unwrap().len(), 2);
    assert!(!again.to_string().contains(&secret), "the secret is returned once only");
    w.client_token(&app.client_id, &secret, "https://graph.microsoft.com/.default").await;

    let resp = w
        .client
        .post(w.url(&format!("/v1.0/applications(appId='{}')/removePassword", app.client_id)))
        .bearer_auth(&w.graph_token)
        .json(&json!({"keyId": cred["keyId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = w.token_request(&app.client_id, &secret, "https://graph.microsoft.com/.default").await;
    assert_eq!((status, body["error_codes"][0].as_i64()), (StatusCode::UNAUTHORIZED, Some(7000215)));

    let (status, sp) = get(format!("/v1.0/servicePrincipals(appId='{}')", app.client_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sp["id"], app.service_principal_object_id);
    let (_, sps) = get(format!("/v1.0/servicePrincipals?$filter=appId%20eq%20'{}'", app.client_id)).await;
    assert_eq!(sps["value"][0]["appId"], app.client_id);

    // What the harness does: create an application, its service principal, then a secret.
    let (status, created) = post("/v1.0/applications".into(), json!({"displayName": "made-by-graph"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let new_app = created["appId"].as_str().unwrap().to_string();
    let (status, _) = get(format!("/v1.0/servicePrincipals(appId='{new_app}')")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "Graph does not create the service principal");
    let (status, sp) = post("/v1.0/servicePrincipals".into(), json!({"appId": new_app})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, dup) = post("/v1.0/servicePrincipals".into(), json!({"appId": new_app})).await;
    assert_eq!(
        (status, dup["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("Request_MultipleObjectsWithSameKeyValue"))
    );
    let (_, cred) =
        post(format!("/v1.0/applications/{}/addPassword", created["id"].as_str().unwrap()), json!({})).await;
    let token =
        w.client_token(&new_app, cred["secretText"].as_str().unwrap(), "https://management.azure.com/.default").await;
    assert_eq!(claims(&token)["oid"], sp["id"]);
    let (status, body) = post("/v1.0/applications".into(), json!({"nope": 1})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BadRequest")));

    let (status, body) = get("/v1.0/applications/00000000-0000-0000-0000-000000000000".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let (status, body) = json_of(w.client.get(w.url("/v1.0/applications")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("InvalidAuthenticationToken"))
    );
    let (status, _) =
        json_of(w.client.get(w.url("/v1.0/applications")).bearer_auth(&w.arm_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an ARM token is not a Graph token");
}

#[tokio::test]
async fn imds_answers_only_for_the_node_scale_set_identities() {
    let w = World::start().await;
    let rg = w.group("aks").await;
    let kubelet = w.identity(&rg, "kubelet").await;
    let stranger = w.identity(&rg, "stranger").await;
    let cluster = w.cluster(&rg, "aks", kubelet["id"].as_str().unwrap()).await;
    let vmss = w.node_pool_vmss(cluster["properties"]["nodeResourceGroup"].as_str().unwrap()).await;
    w.emu.register_node(IpAddr::V4(Ipv4Addr::LOCALHOST), vmss["id"].as_str().unwrap());
    let imds = |c: &reqwest::Client, query: String, header: bool| {
        let mut req = c.get(w.url(&format!("/metadata/identity/oauth2/token?api-version=2018-02-01&{query}")));
        if header {
            req = req.header("Metadata", "true");
        }
        async move { json_of(req.send().await.unwrap()).await }
    };
    let kubelet_client = kubelet["properties"]["clientId"].as_str().unwrap().to_string();

    let (status, body) = imds(&w.client, "resource=https://containerregistry.azure.net".into(), false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );

    let (status, body) =
        imds(&w.client, format!("resource=https://containerregistry.azure.net&client_id={kubelet_client}"), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for field in [
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    ] {
        assert!(body[field].is_string(), "{field} is a string in {body}");
    }
    assert_eq!(body["client_id"], kubelet_client);
    assert_eq!(body["token_type"], "Bearer");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["oid"], kubelet["properties"]["principalId"]);
    assert_eq!(c["aud"], "https://containerregistry.azure.net");
    assert_eq!(c["xms_mirid"], kubelet["id"]);
    let (status, _) = imds(
        &w.client,
        format!("resource=https://management.azure.com/&mi_res_id={}", kubelet["id"].as_str().unwrap()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = imds(&w.client, "resource=https://management.azure.com/".into(), true).await;
    assert_eq!(status, StatusCode::OK, "the only user-assigned identity is the default");

    let not_found = json!({"error": "invalid_request", "error_description": "Identity not found"});
    let (status, body) = imds(
        &w.client,
        format!(
            "resource=https://containerregistry.azure.net&client_id={}",
            stranger["properties"]["clientId"].as_str().unwrap()
        ),
        true,
    )
    .await;
    assert_eq!((status, &body), (StatusCode::BAD_REQUEST, &not_found));
    let elsewhere = client(&w.emu.ca_pem, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))), &[]);
    let (status, body) =
        imds(&elsewhere, format!("resource=https://containerregistry.azure.net&client_id={kubelet_client}"), true)
            .await;
    assert_eq!((status, &body), (StatusCode::BAD_REQUEST, &not_found), "another address is another machine");
}

#[tokio::test]
async fn imds_plain_http_listener() {
    let config = EmulatorConfig { imds_listen: Some("127.0.0.1:0".parse().unwrap()), ..EmulatorConfig::default() };
    let w = World::start_with(config).await;
    let addr = w.emu.imds_addr.unwrap();
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = plain
        .get(format!("http://{addr}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_description"], "Required metadata header not specified");
    let resp = plain.get(format!("http://{addr}/subscriptions")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "only IMDS is served in plain HTTP");
}

#[tokio::test]
async fn a_reader_identity_reads_and_every_write_is_refused_as_azure_refuses_it() {
    let w = World::start().await;
    let rg = w.rg("rg-reader");
    w.ok_put(&rg, api_version::RESOURCES, json!({ "location": "westeurope" })).await;
    let reader = w.emu.create_reader("an-engine").expect("reader");
    let arm_token =
        w.client_token(&reader.client_id, reader.client_secret.expose(), "https://management.azure.com/.default").await;
    let graph_token =
        w.client_token(&reader.client_id, reader.client_secret.expose(), "https://graph.microsoft.com/.default").await;
    let call = |method: Method, path: String, token: &str, body: Option<Value>| {
        let mut req = w.client.request(method, w.url(&path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { json_of(req.send().await.expect("request")).await }
    };
    // Reads pass.
    let (status, body) =
        call(Method::GET, format!("{rg}?api-version={}", api_version::RESOURCES), &arm_token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A write is refused with Azure's code and message, naming the action and the scope.
    let (status, body) = call(
        Method::PATCH,
        format!("{rg}?api-version={}", api_version::RESOURCES),
        &arm_token,
        Some(json!({ "tags": { "a": "b" } })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "AuthorizationFailed");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'Microsoft.Resources/subscriptions/resourceGroups/write'") && message.contains(&rg),
        "{message}"
    );
    // Actions are not reads either.
    let (status, _) =
        call(Method::DELETE, format!("{rg}?api-version={}", api_version::RESOURCES), &arm_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, group) = w.get(&rg, api_version::RESOURCES).await;
    assert!(group["tags"].get("a").is_none(), "the refused write changed nothing: {group}");
    // Graph: reads pass, writes are denied.
    let (status, _) = call(Method::GET, "/v1.0/applications".into(), &graph_token, None).await;
    assert_eq!(status, StatusCode::OK);
    let app = w.emu.create_application("someone-else").expect("app");
    let (status, body) = call(
        Method::POST,
        format!("/v1.0/applications(appId='{}')/addPassword", app.client_id),
        &graph_token,
        Some(json!({ "passwordCredential": { "displayName": "mine" } })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    // Both attempts are on record; the reader itself is not exported.
    let refusals = w.emu.refusals();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals[0].starts_with("ARM PATCH ") && refusals[2].starts_with("Graph POST "), "{refusals:?}");
    let exported = w.emu.export();
    assert!(exported.applications.iter().all(|a| a.display_name.as_deref() != Some("an-engine")));
}
