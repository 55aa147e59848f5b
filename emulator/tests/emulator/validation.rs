//! Request validation as Azure does it: enum values (case-insensitive, canonicalised, anything
//! else a 400 in the provider's envelope), SKU-gated features, provider-specific 404s, read-only
//! fields, and Graph's credential date checks.

use azure_model::api_version::{CONTAINER_REGISTRY, CONTAINER_SERVICE, NETWORK};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{World, json_of};

fn rule(access: &str, direction: &str, protocol: &str) -> Value {
    json!({"protocol": protocol, "sourceAddressPrefix": "*", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "443",
        "access": access, "priority": 200, "direction": direction})
}

/// Asserts a Microsoft.Network conversion error naming `value` and `path`.
fn assert_nrp_refused(status: StatusCode, body: &Value, value: &str, path: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "InvalidRequestFormat", "{body}");
    assert_eq!(body["error"]["message"], "Cannot parse the request.");
    let detail = &body["error"]["details"][0];
    assert_eq!(detail["code"], "InvalidJson", "{body}");
    let message = detail["message"].as_str().unwrap();
    assert!(message.contains(&format!("\"{value}\"")) && message.contains(&format!("Path '{path}'")), "{message}");
}

#[tokio::test]
async fn network_enums_are_checked_case_insensitively() {
    let w = World::start().await;
    let rg = w.group("net").await;
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/nodes");

    // Embedded in the NSG: the path names the rule's index.
    for (r, value, field) in [
        (rule("Alow", "Outbound", "Tcp"), "Alow", "access"),
        (rule("Allow", "Outbund", "Tcp"), "Outbund", "direction"),
        (rule("Allow", "Outbound", "TCPP"), "TCPP", "protocol"),
    ] {
        let (status, body) = w
            .put(
                &nsg,
                NETWORK,
                json!({"location": "westeurope", "properties": {"securityRules": [
                    {"name": "ok", "properties": rule("Deny", "Inbound", "*")},
                    {"name": "bad", "properties": r},
                ]}}),
            )
            .await;
        assert_nrp_refused(status, &body, value, &format!("properties.securityRules[1].properties.{field}"));
    }
    assert_eq!(w.get(&nsg, NETWORK).await.0, StatusCode::NOT_FOUND, "a refused PUT creates nothing");

    // Any casing is accepted and stored canonically, as NRP's deserializer does.
    let created = w
        .ok_put(
            &nsg,
            NETWORK,
            json!({"location": "westeurope", "properties": {"securityRules": [
                {"name": "lower", "properties": rule("deny", "OUTBOUND", "tcp")},
            ]}}),
        )
        .await;
    let p = &created["properties"]["securityRules"][0]["properties"];
    assert_eq!(
        (p["access"].as_str(), p["direction"].as_str(), p["protocol"].as_str()),
        (Some("Deny"), Some("Outbound"), Some("Tcp"))
    );

    // A rule on its own.
    let (status, body) = w
        .put(&format!("{nsg}/securityRules/alone"), NETWORK, json!({"properties": rule("Allow", "Sideways", "*")}))
        .await;
    assert_nrp_refused(status, &body, "Sideways", "properties.direction");
    let (status, body) = w
        .put(
            &format!("{nsg}/securityRules/alone"),
            NETWORK,
            json!({"properties": {"protocol": "*", "access": 1, "priority": 300, "direction": "Inbound"}}),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidRequestFormat")));

    // Routes.
    let routes = format!("{rg}/providers/Microsoft.Network/routeTables/nodes");
    let (status, body) = w
        .put(
            &routes,
            NETWORK,
            json!({"location": "westeurope", "properties": {"routes": [
                {"name": "hub", "properties": {"addressPrefix": "10.2.0.0/16", "nextHopType": "VnetLokal"}}]}}),
        )
        .await;
    assert_nrp_refused(status, &body, "VnetLokal", "properties.routes[0].properties.nextHopType");
    w.ok_put(&routes, NETWORK, json!({"location": "westeurope"})).await;
    let (status, body) = w
        .put(
            &format!("{routes}/routes/hole"),
            NETWORK,
            json!({"properties": {"addressPrefix": "10.2.0.0/24", "nextHopType": "Blackhole"}}),
        )
        .await;
    assert_nrp_refused(status, &body, "Blackhole", "properties.nextHopType");
    let route = w
        .ok_put(
            &format!("{routes}/routes/local"),
            NETWORK,
            json!({"properties": {"addressPrefix": "10.2.0.0/16", "nextHopType": "vnetlocal"}}),
        )
        .await;
    assert_eq!(route["properties"]["nextHopType"], "VnetLocal");

    // Public IPs.
    let pip = format!("{rg}/providers/Microsoft.Network/publicIPAddresses/egress");
    let (status, body) =
        w.put(&pip, NETWORK, json!({"location": "westeurope", "sku": {"name": "Standrd"}, "properties": {}})).await;
    assert_nrp_refused(status, &body, "Standrd", "sku.name");
    let (status, body) = w
        .put(&pip, NETWORK, json!({"location": "westeurope", "properties": {"publicIPAllocationMethod": "Fixed"}}))
        .await;
    assert_nrp_refused(status, &body, "Fixed", "properties.publicIPAllocationMethod");
    let ip = w
        .ok_put(
            &pip,
            NETWORK,
            json!({"location": "westeurope", "sku": {"name": "standard"}, "properties": {"publicIPAllocationMethod": "static"}}),
        )
        .await;
    assert_eq!(ip["sku"], json!({"name": "Standard", "tier": "Regional"}));
    assert_eq!(ip["properties"]["publicIPAllocationMethod"], "Static");
}

#[tokio::test]
async fn registry_enums_and_skus_are_checked() {
    let w = World::start().await;
    let rg = w.group("acr").await;
    let acr = format!("{rg}/providers/Microsoft.ContainerRegistry/registries/pullproofacr");
    let put = |sku: &str, properties: Value| {
        let (w, acr) = (&w, acr.clone());
        let body = json!({"location": "westeurope", "sku": {"name": sku}, "properties": properties});
        async move { w.put(&acr, CONTAINER_REGISTRY, body).await }
    };

    for (sku, properties, value) in [
        ("Premium", json!({"publicNetworkAccess": "Disabeld"}), "Disabeld"),
        ("Premium", json!({"roleAssignmentMode": "Abac"}), "Abac"),
        ("Premium", json!({"networkRuleSet": {"defaultAction": "Dney", "ipRules": []}}), "Dney"),
        (
            "Premium",
            json!({"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Block", "value": "1.2.3.4"}]}}),
            "Block",
        ),
        ("Premium", json!({"networkRuleBypassOptions": "Everything"}), "Everything"),
        ("Premium", json!({"zoneRedundancy": "Maybe"}), "Maybe"),
        ("Premum", json!({}), "Premum"),
    ] {
        let (status, body) = put(sku, properties).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "InvalidRequestContent", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&format!("\"{value}\"")), "{body}");
    }
    let (status, body) = put("Classic", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("ClassicSkuDeprecated")));
    assert_eq!(w.get(&acr, CONTAINER_REGISTRY).await.0, StatusCode::NOT_FOUND, "a refused PUT creates nothing");

    // Case-insensitive on input, canonical on output.
    let (status, body) = put(
        "premium",
        json!({"publicNetworkAccess": "disabled", "roleAssignmentMode": "abacrepositorypermissions",
            "networkRuleSet": {"defaultAction": "deny", "ipRules": [{"action": "allow", "value": "1.2.3.4"}]}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["sku"], json!({"name": "Premium", "tier": "Premium"}));
    let p = &body["properties"];
    assert_eq!(p["publicNetworkAccess"], "Disabled");
    assert_eq!(p["roleAssignmentMode"], "AbacRepositoryPermissions");
    assert_eq!(
        p["networkRuleSet"],
        json!({"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "1.2.3.4"}]})
    );
    let typed: azure_model::Resource<azure_model::container_registry::RegistryProperties> =
        serde_json::from_value(body.clone()).unwrap();
    assert!(!typed.properties.public_access_enabled());
}

#[tokio::test]
async fn network_rules_and_private_only_access_need_premium() {
    let w = World::start().await;
    let rg = w.group("acr").await;
    let acr = format!("{rg}/providers/Microsoft.ContainerRegistry/registries/basicacr");
    let body = |sku: &str, properties: Value| json!({"location": "westeurope", "sku": {"name": sku}, "properties": properties});

    for sku in ["Basic", "Standard"] {
        for properties in [
            json!({"networkRuleSet": {"defaultAction": "Deny", "ipRules": []}}),
            json!({"networkRuleSet": {"defaultAction": "Allow", "ipRules": [{"action": "Allow", "value": "1.2.3.4"}]}}),
        ] {
            let (status, err) = w.put(&acr, CONTAINER_REGISTRY, body(sku, properties)).await;
            assert_eq!(
                (status, err["error"]["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("NetworkRuleNotSupported"))
            );
            assert!(err["error"]["message"].as_str().unwrap().contains(sku), "{err}");
        }
        let (status, err) =
            w.put(&acr, CONTAINER_REGISTRY, body(sku, json!({"publicNetworkAccess": "Disabled"}))).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("DisablingPublicNetworkAccessNotSupported"))
        );
    }
    // The default rule set (Allow, no rules) is what every tier shows.
    let (status, created) = w
        .put(
            &acr,
            CONTAINER_REGISTRY,
            body("Basic", json!({"networkRuleSet": {"defaultAction": "Allow", "ipRules": []}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["sku"]["name"], "Basic");
    // A PUT without a SKU keeps the registry's, so the firewall is still refused...
    let (status, err) = w
        .put(
            &acr,
            CONTAINER_REGISTRY,
            json!({"location": "westeurope", "properties": {"networkRuleSet": {"defaultAction": "Deny"}}}),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("NetworkRuleNotSupported")));
    // ...until the registry is upgraded.
    let upgraded =
        w.ok_put(&acr, CONTAINER_REGISTRY, body("Premium", json!({"networkRuleSet": {"defaultAction": "Deny"}}))).await;
    assert_eq!(upgraded["properties"]["networkRuleSet"], json!({"defaultAction": "Deny", "ipRules": []}));
}

#[tokio::test]
async fn registry_get_has_the_read_only_fields_of_azure() {
    let w = World::start().await;
    let rg = w.group("acr").await;
    let registry = w.registry(&rg, "pullproofacr", json!({})).await;
    let p = &registry["properties"];
    assert_eq!(p["policies"]["quarantinePolicy"]["status"], "disabled");
    assert_eq!(p["policies"]["trustPolicy"], json!({"type": "Notary", "status": "disabled"}));
    assert_eq!(p["policies"]["retentionPolicy"]["days"], 7);
    assert_eq!(p["policies"]["retentionPolicy"]["status"], "disabled");
    assert_eq!(p["policies"]["exportPolicy"]["status"], "enabled");
    assert_eq!(p["policies"]["azureADAuthenticationAsArmPolicy"]["status"], "enabled");
    assert_eq!(p["encryption"], json!({"status": "disabled"}));
    assert!(p.get("status").is_some_and(Value::is_null), "{p}");
    assert_eq!(p["dataEndpointHostNames"], json!([]));
    assert_eq!(p["networkRuleBypassAllowedForTasks"], false);
    assert_eq!(p["zoneRedundancy"], "Disabled");
    assert_eq!(p["anonymousPullEnabled"], false);
    let id = registry["id"].as_str().unwrap();
    let (_, updated) = w.patch(id, CONTAINER_REGISTRY, json!({"properties": {"dataEndpointEnabled": true}})).await;
    assert_eq!(updated["properties"]["dataEndpointHostNames"], json!(["pullproofacr.westeurope.data.azurecr.io"]));
    assert_eq!(updated["properties"]["creationDate"], p["creationDate"]);
    assert_eq!(updated["properties"]["policies"], p["policies"]);
}

#[tokio::test]
async fn missing_network_children_are_nrp_not_found() {
    let w = World::start().await;
    let rg = w.group("net").await;
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/aks");
    let (status, body) = w.get(&vnet, NETWORK).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("ResourceNotFound")));
    w.ok_put(
        &vnet,
        NETWORK,
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}),
    )
    .await;
    for child in ["subnets/nodes", "virtualNetworkPeerings/to-hub"] {
        let id = format!("{vnet}/{child}");
        let (status, body) = w.get(&id, NETWORK).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "NotFound", "{body}");
        assert_eq!(body["error"]["message"], format!("Resource {id} not found."));
        let (status, body) = w.patch(&id, NETWORK, json!({"properties": {}})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
    }
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/nodes");
    w.ok_put(&nsg, NETWORK, json!({"location": "westeurope"})).await;
    let (status, body) = w.get(&format!("{nsg}/securityRules/nope"), NETWORK).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
}

#[tokio::test]
async fn managed_clusters_carry_etags_and_read_only_fields() {
    let w = World::start().await;
    let rg = w.group("aks").await;
    let kubelet = w.identity(&rg, "kubelet").await;
    let cluster = w.cluster(&rg, "aks", kubelet["id"].as_str().unwrap()).await;
    let etag = cluster["eTag"].as_str().expect("eTag").to_string();
    assert!(cluster["properties"]["agentPoolProfiles"][0]["eTag"].is_string(), "{cluster}");
    let p = &cluster["properties"];
    assert!(p["azurePortalFQDN"].as_str().unwrap().contains(".portal.hcp.westeurope.azmk8s.io"), "{p}");
    assert_eq!(p["enableRBAC"], true);
    assert_eq!(p["networkProfile"]["serviceCidr"], "10.0.0.0/16");
    assert_eq!(p["networkProfile"]["dnsServiceIP"], "10.0.0.10");
    // A client PUTting back what it read gets a new eTag (the old one in the body is ignored).
    let id = cluster["id"].as_str().unwrap();
    let again = w.ok_put(id, CONTAINER_SERVICE, cluster.clone()).await;
    assert_ne!(again["eTag"], json!(etag));
    assert_eq!(again["properties"]["fqdn"], p["fqdn"]);
}

#[tokio::test]
async fn graph_refuses_password_credentials_that_end_before_they_start() {
    let w = World::start().await;
    let app = w.emu.create_application("ci").unwrap();
    let add = |body: Value| {
        let w = &w;
        let path = format!("/v1.0/applications/{}/addPassword", app.application_object_id);
        async move {
            json_of(w.client.post(w.url(&path)).bearer_auth(&w.graph_token).json(&body).send().await.unwrap()).await
        }
    };
    for credential in [
        json!({"displayName": "old", "endDateTime": "2001-01-01T00:00:00Z"}),
        json!({"startDateTime": "2098-01-01T00:00:00Z", "endDateTime": "2097-01-01T00:00:00Z"}),
    ] {
        let (status, body) = add(json!({"passwordCredential": credential})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "KeyCredentialsInvalidEndDate");
        assert_eq!(body["error"]["message"], "Key credential end date is invalid.");
    }
    assert_eq!(w.emu.application(&app.client_id).unwrap().password_credentials.len(), 1, "nothing was added");
    let (status, body) = add(json!({"passwordCredential": {"endDateTime": "2099-01-01T00:00:00Z"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
