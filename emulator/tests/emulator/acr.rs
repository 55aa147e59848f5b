//! The ACR token service: managed identity (IMDS -> exchange -> token), service principal,
//! admin and anonymous credentials, ABAC mode, the registry firewall and private endpoints.

use std::net::{IpAddr, Ipv4Addr};

use azure_model::api_version::{CONTAINER_REGISTRY, NETWORK};
use azure_model::authorization::{ACR_PULL, REPOSITORY_READER};
use pullproof_emulator::REFRESH_TOKEN_USER;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::common::{World, acr, claims, client, header, json_of};

const LOGIN: &str = "pullproofacr.azurecr.io";
const PULL: &str = "repository:team/app:pull";

struct Acr {
    w: World,
    rg: String,
    registry: String,
    kubelet: Value,
}

async fn setup() -> Acr {
    let w = World::start().await;
    let rg = w.group("acr").await;
    let registry = w.registry(&rg, "pullproofacr", json!({})).await["id"].as_str().unwrap().to_string();
    let kubelet = w.identity(&rg, "kubelet").await;
    let cluster = w.cluster(&rg, "aks", kubelet["id"].as_str().unwrap()).await;
    let vmss = w.node_pool_vmss(cluster["properties"]["nodeResourceGroup"].as_str().unwrap()).await;
    w.emu.register_node(IpAddr::V4(Ipv4Addr::LOCALHOST), vmss["id"].as_str().unwrap());
    Acr { w, rg, registry, kubelet }
}

/// `GET {base}/oauth2/token?service=LOGIN&scope=...` with optional Basic credentials.
async fn token(c: &Client, base: &str, scope: &[&str], basic: Option<(&str, &str)>) -> (StatusCode, Value) {
    let mut query: Vec<(&str, &str)> = vec![("service", LOGIN)];
    query.extend(scope.iter().map(|s| ("scope", *s)));
    let mut req = c.get(format!("{base}/oauth2/token")).query(&query);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    json_of(req.send().await.unwrap()).await
}

fn access(body: &Value) -> Value {
    claims(body["access_token"].as_str().expect("access_token"))["access"].clone()
}

#[tokio::test]
async fn managed_identity_exchange_then_token() {
    let a = setup().await;
    let w = &a.w;
    // Routed by Host: the login server resolves to the emulator (SNI gets a minted certificate).
    let by_host = client(&w.emu.ca_pem, None, &[(LOGIN, w.emu.local_addr)]);
    let host_base = format!("https://{LOGIN}:{}", w.emu.local_addr.port());
    let client_id = a.kubelet["properties"]["clientId"].as_str().unwrap();
    let (status, mi) = json_of(
        w.client
            .get(w.url(&format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://containerregistry.azure.net&client_id={client_id}")))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mi}");
    let exchange = |base: String, token: String| {
        let by_host = by_host.clone();
        let tenant = w.emu.tenant_id().to_string();
        async move {
            json_of(
                by_host
                    .post(format!("{base}/oauth2/exchange"))
                    .form(&[
                        ("grant_type", "access_token"),
                        ("service", LOGIN),
                        ("tenant", &tenant),
                        ("access_token", &token),
                    ])
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) = exchange(host_base.clone(), mi["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let rc = claims(&refresh);
    assert_eq!(rc["aud"], LOGIN);
    assert_eq!(rc["grant_type"], "refresh_token");
    assert_eq!(rc["sub"], a.kubelet["properties"]["principalId"]);

    // No role yet: the oauth token request is refused the way ACR refuses it.
    let resp = by_host
        .get(format!("{host_base}/oauth2/token"))
        .query(&[("service", LOGIN), ("scope", PULL)])
        .basic_auth(REFRESH_TOKEN_USER, Some(&refresh))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(&format!("realm=\"https://{LOGIN}/oauth2/token\""))
    );
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(
        body["errors"][0]["message"],
        "authentication required, visit https://aka.ms/acr/authorization for more information."
    );
    assert_eq!(body["errors"][0]["detail"][0], json!({"Type": "repository", "Name": "team/app", "Action": "pull"}));

    w.assign(&a.registry, ACR_PULL.id, a.kubelet["properties"]["principalId"].as_str().unwrap()).await;
    let (status, body) = token(&by_host, &host_base, &[PULL], Some((REFRESH_TOKEN_USER, &refresh))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt = body["access_token"].as_str().unwrap();
    assert_eq!(header(jwt)["alg"], "ES256");
    assert!(header(jwt)["x5c"][0].as_str().unwrap().len() > 100);
    let c = claims(jwt);
    assert_eq!(c["iss"], "Azure Container Registry");
    assert_eq!(c["aud"], LOGIN);
    assert_eq!(c["access"], json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]));
    assert!(c["nbf"].as_i64().unwrap() <= c["exp"].as_i64().unwrap());
    // Push is not granted by AcrPull; the token only carries what is allowed.
    let (_, body) =
        token(&by_host, &host_base, &["repository:team/app:pull,push"], Some((REFRESH_TOKEN_USER, &refresh))).await;
    assert_eq!(access(&body)[0]["actions"], json!(["pull"]));

    // What containerd tries first: POST with a password grant gets 400, then it GETs.
    let (status, body) = json_of(
        by_host
            .post(format!("{host_base}/oauth2/token"))
            .form(&[
                ("grant_type", "password"),
                ("service", LOGIN),
                ("scope", PULL),
                ("username", REFRESH_TOKEN_USER),
                ("password", &refresh),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"][0]["code"].is_string());
    let (status, body) = json_of(
        w.client
            .post(format!("{}/oauth2/token", acr(w, LOGIN)))
            .form(&[("grant_type", "refresh_token"), ("service", LOGIN), ("scope", PULL), ("refresh_token", &refresh)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(access(&body)[0]["name"], "team/app");

    let (status, _) = exchange(host_base.clone(), "garbage".into()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = exchange(acr(w, LOGIN), w.arm_token.clone()).await;
    assert_eq!(status, StatusCode::OK, "ACR also exchanges ARM tokens");
    let (status, _) = exchange(host_base, w.graph_token.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "but not Graph tokens");
    let (status, _) = token(
        &by_host,
        &format!("https://{LOGIN}:{}", w.emu.local_addr.port()),
        &[PULL],
        Some((REFRESH_TOKEN_USER, "forged")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn service_principal_and_admin_credentials() {
    let a = setup().await;
    let w = &a.w;
    let base = acr(w, LOGIN);
    let app = w.emu.create_application("puller").unwrap();
    // Assigned at the resource group: an ancestor of the registry scope counts.
    w.assign(&a.rg, ACR_PULL.id, &app.service_principal_object_id).await;
    let (status, body) = token(&w.client, &base, &[PULL], Some((&app.client_id, app.client_secret.expose()))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["sub"], app.service_principal_object_id);
    let (status, _) = token(&w.client, &base, &[PULL], Some((&app.client_id, "wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    w.emu
        .set_password_validity(&app.client_id, &app.key_id, None, Some(w.emu.clock().now() - time::Duration::hours(1)))
        .unwrap();
    let (status, _) = token(&w.client, &base, &[PULL], Some((&app.client_id, app.client_secret.expose()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired secret");

    // Admin user: only when enabled, only with a current password.
    let (status, _) = token(&w.client, &base, &[PULL], Some(("pullproofacr", "anything"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    w.patch(&a.registry, CONTAINER_REGISTRY, json!({"properties": {"adminUserEnabled": true}})).await;
    let (_, creds) = w.post(&format!("{}/listCredentials", a.registry), CONTAINER_REGISTRY, None).await;
    let password = creds["passwords"][0]["value"].as_str().unwrap().to_string();
    let password2 = creds["passwords"][1]["value"].as_str().unwrap().to_string();
    let (status, body) =
        token(&w.client, &base, &["repository:team/app:pull,push"], Some(("PullProofAcr", &password))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(access(&body)[0]["actions"], json!(["pull", "push"]));
    w.post(&format!("{}/regenerateCredential", a.registry), CONTAINER_REGISTRY, Some(json!({"name": "password"})))
        .await;
    let (status, _) = token(&w.client, &base, &[PULL], Some(("pullproofacr", &password))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "stale admin password");
    let (status, _) = token(&w.client, &base, &[PULL], Some(("pullproofacr", &password2))).await;
    assert_eq!(status, StatusCode::OK);
    w.patch(&a.registry, CONTAINER_REGISTRY, json!({"properties": {"adminUserEnabled": false}})).await;
    let (status, _) = token(&w.client, &base, &[PULL], Some(("pullproofacr", &password2))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "admin disabled");
}

#[tokio::test]
async fn anonymous_pull_and_abac_mode() {
    let a = setup().await;
    let w = &a.w;
    let base = acr(w, LOGIN);
    let (status, body) = token(&w.client, &base, &[PULL], None).await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
    w.patch(&a.registry, CONTAINER_REGISTRY, json!({"properties": {"anonymousPullEnabled": true}})).await;
    let (status, body) = token(&w.client, &base, &[PULL], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(access(&body)[0]["actions"], json!(["pull"]));
    let (status, _) = token(&w.client, &base, &["repository:team/app:push"], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // ABAC mode: AcrPull is not enough; Container Registry Repository Reader is.
    let abac = w.registry(&a.rg, "abacacr", json!({"roleAssignmentMode": "AbacRepositoryPermissions"})).await;
    let abac_id = abac["id"].as_str().unwrap();
    let base = acr(w, "abacacr.azurecr.io");
    let app = w.emu.create_application("abac-puller").unwrap();
    w.assign(abac_id, ACR_PULL.id, &app.service_principal_object_id).await;
    let get = |c: &Client| {
        let (c, base, id, secret) =
            (c.clone(), base.clone(), app.client_id.clone(), app.client_secret.expose().to_string());
        async move {
            json_of(
                c.get(format!("{base}/oauth2/token"))
                    .query(&[("service", "abacacr.azurecr.io"), ("scope", PULL)])
                    .basic_auth(id, Some(secret))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(get(&w.client).await.0, StatusCode::UNAUTHORIZED);
    w.assign(abac_id, REPOSITORY_READER.id, &app.service_principal_object_id).await;
    let (status, body) = get(&w.client).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn firewall_denies_by_client_ip_and_private_endpoints_bypass_it() {
    let a = setup().await;
    let w = &a.w;
    let base = acr(w, LOGIN);
    let app = w.emu.create_application("puller").unwrap();
    w.assign(&a.registry, ACR_PULL.id, &app.service_principal_object_id).await;
    let node_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let node = client(&w.emu.ca_pem, Some(node_ip), &[]);
    let creds = Some((app.client_id.as_str(), app.client_secret.expose()));
    assert_eq!(token(&node, &base, &[PULL], creds).await.0, StatusCode::OK);

    w.patch(
        &a.registry,
        CONTAINER_REGISTRY,
        json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": []}}}),
    )
    .await;
    let (status, body) = token(&node, &base, &[PULL], creds).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"errors": [{"code": "DENIED", "message": "client with IP '127.0.0.2' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]})
    );
    let (status, _) = token(&node, &base, &[PULL], None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the firewall answers before authentication");
    let (status, _) = json_of(
        node.post(format!("{base}/oauth2/exchange"))
            .form(&[("grant_type", "access_token"), ("service", LOGIN), ("access_token", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    w.patch(&a.registry, CONTAINER_REGISTRY, json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "127.0.0.0/30"}]}}})).await;
    assert_eq!(token(&node, &base, &[PULL], creds).await.0, StatusCode::OK);
    let (status, body) =
        token(&client(&w.emu.ca_pem, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))), &[]), &base, &[PULL], creds).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("'127.0.0.9'"));

    // Public access off: only private endpoint traffic gets in, and only if there is an endpoint.
    w.patch(&a.registry, CONTAINER_REGISTRY, json!({"properties": {"publicNetworkAccess": "Disabled"}})).await;
    assert_eq!(token(&node, &base, &[PULL], creds).await.0, StatusCode::FORBIDDEN);
    w.emu.mark_private_source(node_ip);
    assert_eq!(token(&node, &base, &[PULL], creds).await.0, StatusCode::FORBIDDEN, "no private endpoint yet");
    let vnet = format!("{}/providers/Microsoft.Network/virtualNetworks/pe", a.rg);
    w.ok_put(
        &vnet,
        NETWORK,
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
        "subnets": [{"name": "pe", "properties": {"addressPrefix": "10.9.0.0/24"}}]}}),
    )
    .await;
    w.ok_put(
        &format!("{}/providers/Microsoft.Network/privateEndpoints/acr", a.rg),
        NETWORK,
        json!({"location": "westeurope", "properties": {
        "subnet": {"id": format!("{vnet}/subnets/pe")},
        "privateLinkServiceConnections": [{"name": "acr", "properties": {"privateLinkServiceId": a.registry}}]}}),
    )
    .await;
    assert_eq!(token(&node, &base, &[PULL], creds).await.0, StatusCode::OK);
    assert_eq!(token(&w.client, &base, &[PULL], creds).await.0, StatusCode::FORBIDDEN, "127.0.0.1 is public traffic");
    w.emu.unmark_private_source(node_ip);
    assert_eq!(token(&node, &base, &[PULL], creds).await.0, StatusCode::FORBIDDEN);
}
