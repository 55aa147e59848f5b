//! ARM: authentication, api-version checks, the generic lifecycle, and per-provider behaviour.

use azure_model::api_version::{
    AUTHORIZATION, COMPUTE, CONTAINER_REGISTRY, CONTAINER_SERVICE, NETWORK, PRIVATE_DNS, RESOURCES,
};
use azure_model::authorization::{ACR_PULL, READER};
use pullproof_emulator::EmulatorConfig;
use pullproof_emulator::data_plane::Resolution;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{World, json_of};

#[tokio::test]
async fn arm_requires_an_arm_token() {
    let w = World::start().await;
    let url = w.url(&format!("{}/resourcegroups?api-version={RESOURCES}", w.sub()));
    let (status, body) = json_of(w.client.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    let resp = w.client.get(&url).bearer_auth("not.a.token").send().await.unwrap();
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer authorization_uri="));
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let (status, body) = json_of(w.client.get(&url).bearer_auth(&w.graph_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationTokenAudience");
    let (status, body) = w.arm(Method::GET, &format!("{}/resourcegroups?api-version={RESOURCES}", w.sub()), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["value"].is_array());
}

#[tokio::test]
async fn api_version_is_checked_like_arm() {
    let w = World::start().await;
    let (status, body) = w.arm(Method::GET, &format!("{}/resourcegroups/rg", w.sub()), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");
    let (status, body) = w.get(&w.rg("rg"), "2099-01-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "InvalidApiVersionParameter");
    assert!(body["error"]["message"].as_str().unwrap().contains(RESOURCES), "{body}");
    // Each provider has its own versions.
    let (status, body) =
        w.get(&format!("{}/providers/Microsoft.Network/virtualNetworks/v", w.rg("rg")), PRIVATE_DNS).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidApiVersionParameter")));
}

#[tokio::test]
async fn generic_lifecycle_and_errors() {
    let w = World::start().await;
    let rg = w.rg("App-RG");
    let (status, body) = w.put(&rg, RESOURCES, json!({"location": "West Europe", "tags": {"team": "a"}})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["id"], rg);
    assert_eq!(body["name"], "App-RG");
    assert_eq!(body["type"], "Microsoft.Resources/resourceGroups");
    assert_eq!(body["location"], "westeurope");
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(w.put(&rg, RESOURCES, json!({"location": "westeurope"})).await.0, StatusCode::OK);
    let (status, _) = w.put(&w.rg("nowhere"), RESOURCES, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Resources in a missing group; a missing resource; ids are case-insensitive.
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/Hub");
    let (status, body) = w
        .put(
            &format!("{}/providers/Microsoft.Network/virtualNetworks/x", w.rg("missing")),
            NETWORK,
            json!({"location": "westeurope"}),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("ResourceGroupNotFound")));
    let (status, body) = w.get(&vnet, NETWORK).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("ResourceNotFound")));
    let created = w
        .ok_put(
            &vnet,
            NETWORK,
            json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
        )
        .await;
    assert!(created["etag"].as_str().unwrap().starts_with("W/\""));
    let (status, body) = w.get(&vnet.to_uppercase().replace("/SUBSCRIPTIONS/", "/subscriptions/"), NETWORK).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], vnet, "ARM keeps the creating request's casing");

    // Collections, bad bodies, unknown types, PATCH.
    let (status, list) = w.get(&format!("{rg}/providers/Microsoft.Network/virtualNetworks"), NETWORK).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let raw = w
        .client
        .put(w.url(&format!("{vnet}?api-version={NETWORK}")))
        .bearer_auth(&w.arm_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(raw).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidRequestContent")));
    let (status, body) =
        w.put(&vnet, NETWORK, json!({"location": "westeurope", "properties": {"subnets": "nope"}})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidRequestContent")));
    let (status, body) = w.get(&format!("{rg}/providers/Microsoft.Network/widgets/w"), NETWORK).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidResourceType")));
    let (status, body) = w.patch(&vnet, NETWORK, json!({"tags": {"env": "test"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"]["env"], "test");
    assert_eq!(body["properties"]["addressSpace"]["addressPrefixes"][0], "10.0.0.0/16");

    // Deleting the group takes its resources.
    assert_eq!(w.delete(&vnet, NETWORK).await, StatusCode::OK);
    assert_eq!(w.delete(&vnet, NETWORK).await, StatusCode::NO_CONTENT);
    w.ok_put(&vnet, NETWORK, json!({"location": "westeurope"})).await;
    assert_eq!(w.delete(&rg, RESOURCES).await, StatusCode::OK);
    assert_eq!(w.get(&rg, RESOURCES).await.1["error"]["code"], "ResourceGroupNotFound");
    assert!(w.emu.resource(&vnet).is_none());
    let (status, body) = w.get("/subscriptions/00000000-0000-0000-0000-00000000dead/resourcegroups/x", RESOURCES).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("SubscriptionNotFound")));
}

#[tokio::test]
async fn peering_states_follow_azure() {
    let w = World::start().await;
    let rg = w.group("net").await;
    let a = format!("{rg}/providers/Microsoft.Network/virtualNetworks/aks");
    let b = format!("{rg}/providers/Microsoft.Network/virtualNetworks/hub");
    w.ok_put(
        &a,
        NETWORK,
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}),
    )
    .await;
    w.ok_put(
        &b,
        NETWORK,
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.2.0.0/16"]}}}),
    )
    .await;
    let ab = format!("{a}/virtualNetworkPeerings/aks-to-hub");
    let ba = format!("{b}/virtualNetworkPeerings/hub-to-aks");
    let peer = |remote: &str| json!({"properties": {"remoteVirtualNetwork": {"id": remote}, "allowVirtualNetworkAccess": true}});
    let state = |v: &serde_json::Value| v["properties"]["peeringState"].as_str().unwrap_or_default().to_string();

    let (status, body) = w.put(&ab, NETWORK, peer(&b)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(state(&body), "Initiated");
    assert_eq!(body["properties"]["remoteAddressSpace"]["addressPrefixes"][0], "10.2.0.0/16");
    assert!(!w.emu.data_plane().peered(&a, &b));

    assert_eq!(state(&w.ok_put(&ba, NETWORK, peer(&a)).await), "Connected");
    assert_eq!(state(&w.get(&ab, NETWORK).await.1), "Connected");
    assert!(w.emu.data_plane().peered(&a, &b));
    let (_, list) = w.get(&format!("{a}/virtualNetworkPeerings"), NETWORK).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, vnet) = w.get(&a, NETWORK).await;
    assert_eq!(state(&vnet["properties"]["virtualNetworkPeerings"][0]), "Connected");

    // Deleting one side disconnects the other; re-creating it is not enough.
    let mut changes = w.emu.subscribe();
    changes.borrow_and_update();
    assert_eq!(w.delete(&ba, NETWORK).await, StatusCode::OK);
    tokio::time::timeout(std::time::Duration::from_secs(2), changes.changed()).await.unwrap().unwrap();
    assert!(!changes.borrow().peered(&a, &b));
    assert_eq!(state(&w.get(&ab, NETWORK).await.1), "Disconnected");
    assert_eq!(state(&w.ok_put(&ba, NETWORK, peer(&a)).await), "Initiated");
    assert_eq!(state(&w.get(&ab, NETWORK).await.1), "Disconnected");
    assert!(!w.emu.data_plane().peered(&a, &b));
    // Re-syncing the disconnected side connects both.
    assert_eq!(state(&w.ok_put(&ab, NETWORK, peer(&b)).await), "Connected");
    assert_eq!(state(&w.get(&ba, NETWORK).await.1), "Connected");
    assert!(w.emu.data_plane().peered(&b, &a));
    // Deleting a VNet disconnects peerings pointing at it.
    assert_eq!(w.delete(&b, NETWORK).await, StatusCode::OK);
    assert_eq!(state(&w.get(&ab, NETWORK).await.1), "Disconnected");
}

#[tokio::test]
async fn role_assignments_scopes_filters_and_conflicts() {
    let w = World::start().await;
    let rg = w.group("acr-rg").await;
    let other_rg = w.group("other-rg").await;
    let registry = w.registry(&rg, "pullproofacr", json!({})).await;
    let acr = registry["id"].as_str().unwrap().to_string();
    let kubelet = "11111111-1111-1111-1111-111111111111";
    let other = "22222222-2222-2222-2222-222222222222";

    let at_registry = w.assign(&acr, ACR_PULL.id, kubelet).await;
    let (status, body) = w.get(&at_registry, AUTHORIZATION).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["type"], "Microsoft.Authorization/roleAssignments");
    assert_eq!(body["properties"]["scope"], acr);
    assert_eq!(body["properties"]["principalId"], kubelet);
    assert_eq!(body["properties"]["principalType"], "ServicePrincipal");
    let at_rg = w.assign(&rg, READER.id, other).await;
    let at_sub = w.assign(&w.sub(), READER.id, kubelet).await;
    let elsewhere = w.assign(&other_rg, READER.id, kubelet).await;

    let list = |filter: &str| {
        let w = &w;
        let acr = acr.clone();
        let filter = filter.to_string();
        async move {
            let q = if filter.is_empty() {
                String::new()
            } else {
                format!("&$filter={}", filter.replace(' ', "%20").replace('\'', "%27"))
            };
            let (status, body) = w
                .arm(
                    Method::GET,
                    &format!("{acr}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHORIZATION}{q}"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let mut ids: Vec<String> =
                body["value"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
            ids.sort();
            ids
        }
    };
    let mut expected = vec![at_registry.clone(), at_rg.clone(), at_sub.clone()];
    expected.sort();
    assert_eq!(list("atScope()").await, expected, "at the scope and its ancestors, not siblings");
    let mut by_principal = vec![at_registry.clone(), at_sub.clone()];
    by_principal.sort();
    assert_eq!(list(&format!("atScope() and principalId eq '{kubelet}'")).await, by_principal);
    // Without atScope(), assignments below the scope count too (from the subscription).
    let (_, body) = w
        .arm(Method::GET, &format!("{}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHORIZATION}&$filter=principalId%20eq%20%27{kubelet}%27", w.sub()), None)
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 3, "{body}");
    assert!(body["value"].as_array().unwrap().iter().any(|v| v["id"] == elsewhere));

    // The same principal, role and scope under another name.
    let dup = format!("{acr}/providers/Microsoft.Authorization/roleAssignments/{}", crate::common::uuid_v4());
    let body = json!({"properties": {"roleDefinitionId": ACR_PULL.definition_id(w.emu.subscription_id()), "principalId": kubelet}});
    let (status, err) = w.put(&dup, AUTHORIZATION, body.clone()).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("RoleAssignmentExists")));
    let (status, err) = w
        .put(&format!("{acr}/providers/Microsoft.Authorization/roleAssignments/not-a-guid"), AUTHORIZATION, body)
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidRoleAssignmentId")));
    let bogus = json!({"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-0000-0000-000000000001", "principalId": kubelet}});
    let (status, err) = w.put(&dup, AUTHORIZATION, bogus).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("RoleDefinitionDoesNotExist")));

    assert_eq!(w.delete(&at_registry, AUTHORIZATION).await, StatusCode::OK);
    assert_eq!(w.delete(&at_registry, AUTHORIZATION).await, StatusCode::NO_CONTENT);
    assert_eq!(w.get(&at_registry, AUTHORIZATION).await.0, StatusCode::NOT_FOUND);

    // Role definitions: the built-ins with their real ids and actions.
    let (status, def) = w.get(&ACR_PULL.definition_id(w.emu.subscription_id()), AUTHORIZATION).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(def["name"], ACR_PULL.id);
    assert_eq!(def["type"], "Microsoft.Authorization/roleDefinitions");
    assert_eq!(def["properties"]["roleName"], "AcrPull");
    assert_eq!(def["properties"]["type"], "BuiltInRole");
    assert_eq!(def["properties"]["permissions"][0]["actions"][0], "Microsoft.ContainerRegistry/registries/pull/read");
    assert!(def["properties"]["permissions"][0]["dataActions"].is_array());
    let (_, defs) = w
        .arm(Method::GET, &format!("{}/providers/Microsoft.Authorization/roleDefinitions?api-version={AUTHORIZATION}&$filter=roleName%20eq%20%27AcrPush%27", w.sub()), None)
        .await;
    assert_eq!(defs["value"][0]["name"], "8311e382-0749-4cb8-b61a-304f252e45ec");
}

#[tokio::test]
async fn registry_defaults_credentials_and_private_endpoint() {
    let w = World::start().await;
    let rg = w.group("acr").await;
    let registry = w.registry(&rg, "PullProofAcr", json!({})).await;
    let acr = registry["id"].as_str().unwrap().to_string();
    let p = &registry["properties"];
    assert_eq!(p["loginServer"], "pullproofacr.azurecr.io");
    assert_eq!(p["adminUserEnabled"], false);
    assert_eq!(p["publicNetworkAccess"], "Enabled");
    assert_eq!(p["networkRuleSet"]["defaultAction"], "Allow");
    assert_eq!(p["roleAssignmentMode"], "LegacyRegistryPermissions");
    assert_eq!(p["provisioningState"], "Succeeded");

    let (status, err) = w.post(&format!("{acr}/listCredentials"), CONTAINER_REGISTRY, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    w.patch(&acr, CONTAINER_REGISTRY, json!({"properties": {"adminUserEnabled": true}})).await;
    let (status, creds) = w.post(&format!("{acr}/listCredentials"), CONTAINER_REGISTRY, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(creds["username"], "PullProofAcr");
    assert_eq!(creds["passwords"][0]["name"], "password");
    assert_eq!(creds["passwords"][1]["name"], "password2");
    let (status, regenerated) =
        w.post(&format!("{acr}/regenerateCredential"), CONTAINER_REGISTRY, Some(json!({"name": "password"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(regenerated["passwords"][0]["value"], creds["passwords"][0]["value"]);
    assert_eq!(regenerated["passwords"][1]["value"], creds["passwords"][1]["value"]);

    // A private endpoint in a subnet: the registry shows the connection, the endpoint its IPs.
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/endpoints");
    w.ok_put(
        &vnet,
        NETWORK,
        json!({"location": "westeurope", "properties": {
        "addressSpace": {"addressPrefixes": ["10.2.0.0/16"]},
        "subnets": [{"name": "pe", "properties": {"addressPrefix": "10.2.0.0/24"}}]}}),
    )
    .await;
    let pe = format!("{rg}/providers/Microsoft.Network/privateEndpoints/acr-pe");
    let (status, endpoint) = w
        .put(&pe, NETWORK, json!({"location": "westeurope", "properties": {
            "subnet": {"id": format!("{vnet}/subnets/pe")},
            "privateLinkServiceConnections": [{"name": "acr", "properties": {"privateLinkServiceId": acr, "groupIds": ["registry"]}}]}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let dns = endpoint["properties"]["customDnsConfigs"].as_array().unwrap();
    assert_eq!(dns[0]["fqdn"], "pullproofacr.azurecr.io");
    assert_eq!(dns[0]["ipAddresses"][0], "10.2.0.4");
    assert_eq!(dns[1]["ipAddresses"][0], "10.2.0.5");
    let (_, registry) = w.get(&acr, CONTAINER_REGISTRY).await;
    let conn = &registry["properties"]["privateEndpointConnections"][0];
    assert_eq!(conn["properties"]["privateEndpoint"]["id"], pe);
    assert_eq!(conn["properties"]["privateLinkServiceConnectionState"]["status"], "Approved");
    let (status, conns) = w.get(&format!("{acr}/privateEndpointConnections"), CONTAINER_REGISTRY).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(conns["value"].as_array().unwrap().len(), 1);
    let plane = w.emu.data_plane();
    let reg = plane.registry("pullproofacr.azurecr.io").unwrap();
    assert_eq!(reg.private_endpoints[0].ip_addresses[0].to_string(), "10.2.0.4");
    // The subnet is in use.
    let (status, err) = w.arm(Method::DELETE, &format!("{vnet}/subnets/pe?api-version={NETWORK}"), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InUseSubnetCannotBeDeleted")));
    assert_eq!(w.delete(&pe, NETWORK).await, StatusCode::OK);
    assert!(
        w.get(&acr, CONTAINER_REGISTRY).await.1["properties"]["privateEndpointConnections"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A manual connection request waits for the registry's owner, and carries no traffic.
    let manual = |connection: serde_json::Value| {
        let mut props = json!({"privateLinkServiceId": acr, "groupIds": ["registry"]});
        props.as_object_mut().unwrap().extend(connection.as_object().unwrap().clone());
        json!({"location": "westeurope", "properties": {
            "subnet": {"id": format!("{vnet}/subnets/pe")},
            "manualPrivateLinkServiceConnections": [{"name": "acr", "properties": props}]}})
    };
    let (status, endpoint) = w.put(&pe, NETWORK, manual(json!({"requestMessage": "for the cluster"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let state = &endpoint["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]["privateLinkServiceConnectionState"];
    assert_eq!((state["status"].as_str(), state["description"].as_str()), (Some("Pending"), Some("for the cluster")));
    // The endpoint's owner cannot approve its own request: the state in its PUT is ignored.
    let approved = json!({"privateLinkServiceConnectionState": {"status": "Approved"}});
    let (status, endpoint) = w.put(&pe, NETWORK, manual(approved)).await;
    assert_eq!(status, StatusCode::OK, "{endpoint}");
    let state = &endpoint["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]["privateLinkServiceConnectionState"];
    assert_eq!(state["status"], "Pending");
    let (_, conns) = w.get(&format!("{acr}/privateEndpointConnections"), CONTAINER_REGISTRY).await;
    let conn = conns["value"][0].clone();
    assert_eq!(conn["properties"]["privateLinkServiceConnectionState"]["status"], "Pending");
    assert_eq!(w.emu.data_plane().registry("pullproofacr.azurecr.io").unwrap().private_endpoints[0].status, "Pending");
    let conn_id = conn["id"].as_str().unwrap().to_string();
    // Only Approved and Rejected may be set; an unknown connection is 404.
    let (status, err) = w
        .put(
            &conn_id,
            CONTAINER_REGISTRY,
            json!({"properties": {"privateLinkServiceConnectionState": {"status": "Pending"}}}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidPrivateEndpointConnectionStatus"))
    );
    let (status, _) = w
        .put(
            &format!("{acr}/privateEndpointConnections/nope"),
            CONTAINER_REGISTRY,
            json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The owner approves: both sides show it, and the endpoint carries traffic.
    let (status, approved) = w
        .put(
            &conn_id,
            CONTAINER_REGISTRY,
            json!({"properties": {"privateLinkServiceConnectionState": {
            "status": "Approved", "description": "ok"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["properties"]["privateLinkServiceConnectionState"]["status"], "Approved");
    let (_, endpoint) = w.get(&pe, NETWORK).await;
    assert_eq!(
        endpoint["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]["privateLinkServiceConnectionState"]
            ["status"],
        "Approved"
    );
    assert_eq!(w.emu.data_plane().registry("pullproofacr.azurecr.io").unwrap().private_endpoints[0].status, "Approved");
}

#[tokio::test]
async fn cluster_fills_identity_and_reconciles_node_pools() {
    let w = World::start().await;
    let rg = w.group("aks").await;
    let kubelet = w.identity(&rg, "kubelet").await;
    let kubelet_id = kubelet["id"].as_str().unwrap().to_string();
    let cluster = w.cluster(&rg, "aks1", &kubelet_id).await;
    let p = &cluster["properties"];
    assert_eq!(p["provisioningState"], "Succeeded");
    assert_eq!(p["servicePrincipalProfile"]["clientId"], "msi");
    assert_eq!(p["identityProfile"]["kubeletidentity"]["clientId"], kubelet["properties"]["clientId"]);
    assert_eq!(p["identityProfile"]["kubeletidentity"]["objectId"], kubelet["properties"]["principalId"]);
    assert_eq!(p["agentPoolProfiles"][0]["osType"], "Linux");
    assert!(cluster["identity"]["principalId"].is_string());
    let node_rg = p["nodeResourceGroup"].as_str().unwrap().to_string();
    assert_eq!(node_rg, "MC_aks_aks1_westeurope");
    let pip = p["networkProfile"]["loadBalancerProfile"]["effectiveOutboundIPs"][0]["id"].as_str().unwrap().to_string();
    let (_, ip) = w.get(&pip, NETWORK).await;
    assert!(ip["properties"]["ipAddress"].as_str().unwrap().starts_with("203.0.113."), "{ip}");

    let vmss = w.node_pool_vmss(&node_rg).await;
    assert_eq!(vmss["tags"]["aks-managed-poolName"], "nodepool1");
    assert!(vmss["identity"]["userAssignedIdentities"][&kubelet_id]["clientId"].is_string(), "{vmss}");
    let plane = w.emu.data_plane();
    assert_eq!(plane.clusters[0].egress_ips[0].to_string(), ip["properties"]["ipAddress"].as_str().unwrap());
    assert_eq!(plane.clusters[0].pools[0].vmss_id.as_deref(), vmss["id"].as_str());

    // The fault: the kubelet identity is removed from the scale set; the fix: a cluster PUT.
    let vmss_id = vmss["id"].as_str().unwrap().to_string();
    let (status, patched) =
        w.patch(&vmss_id, COMPUTE, json!({"identity": {"userAssignedIdentities": {&kubelet_id: null}}})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["identity"]["type"], "None");
    let (_, current) = w.get(cluster["id"].as_str().unwrap(), CONTAINER_SERVICE).await;
    let (status, _) = w.put(current["id"].as_str().unwrap(), CONTAINER_SERVICE, current.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, vmss) = w.get(&vmss_id, COMPUTE).await;
    assert!(vmss["identity"]["userAssignedIdentities"].get(&kubelet_id).is_some(), "re-attached: {vmss}");

    // A service principal cluster: the secret is write-only; reset updates it.
    let app = w.emu.create_application("aks-sp").unwrap();
    let egress = format!("{rg}/providers/Microsoft.Network/publicIPAddresses/egress");
    w.ok_put(&egress, NETWORK, json!({"location": "westeurope", "properties": {"ipAddress": "198.51.100.7"}})).await;
    let sp_cluster = format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks-sp");
    let (status, body) = w
        .put(
            &sp_cluster,
            CONTAINER_SERVICE,
            json!({"location": "westeurope", "properties": {
            "agentPoolProfiles": [{"name": "np"}],
            "networkProfile": {"loadBalancerProfile": {"outboundIPs": {"publicIPs": [{"id": egress}]}}},
            "servicePrincipalProfile": {"clientId": app.client_id, "secret": app.client_secret.expose()}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["properties"]["servicePrincipalProfile"].get("secret").is_none());
    assert!(body["properties"].get("identityProfile").is_none());
    assert!(!w.get(&sp_cluster, CONTAINER_SERVICE).await.1.to_string().contains(app.client_secret.expose()));
    let plane = w.emu.data_plane();
    let sp_plane = plane.clusters.iter().find(|c| c.id == sp_cluster).unwrap();
    assert_eq!(sp_plane.egress_ips[0].to_string(), "198.51.100.7", "customer outbound IPs are the effective ones");
    let sp = sp_plane.service_principal.clone().unwrap();
    assert_eq!(sp.secret.unwrap().expose(), app.client_secret.expose());
    let (status, _) = w
        .post(
            &format!("{sp_cluster}/resetServicePrincipalProfile"),
            CONTAINER_SERVICE,
            Some(json!({"clientId": app.client_id, "secret": "rotated"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let plane = w.emu.data_plane();
    let sp = plane.clusters.iter().find(|c| c.id == sp_cluster).unwrap().service_principal.clone().unwrap();
    assert_eq!(sp.secret.unwrap().expose(), "rotated");
    let (status, err) = w
        .post(
            &format!("{}/resetServicePrincipalProfile", cluster["id"].as_str().unwrap()),
            CONTAINER_SERVICE,
            Some(json!({"clientId": "x", "secret": "y"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
}

#[tokio::test]
async fn private_dns_network_rules_and_the_data_plane() {
    let w = World::start().await;
    let rg = w.group("dns").await;
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/nodes");
    w.ok_put(&nsg, NETWORK, json!({"location": "westeurope", "properties": {"securityRules": [{"name": "deny-acr", "properties": {
        "protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "10.2.0.0/24",
        "destinationPortRange": "443", "access": "Deny", "priority": 200, "direction": "Outbound"}}]}})).await;
    let (status, err) = w
        .put(
            &format!("{nsg}/securityRules/bad"),
            NETWORK,
            json!({"properties": {"access": "Allow", "priority": 5, "direction": "Outbound"}}),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("SecurityRuleInvalidPriority")));
    let routes = format!("{rg}/providers/Microsoft.Network/routeTables/nodes");
    w.ok_put(&routes, NETWORK, json!({"location": "westeurope"})).await;
    let (status, route) = w
        .put(
            &format!("{routes}/routes/hole"),
            NETWORK,
            json!({"properties": {"addressPrefix": "10.2.0.0/24", "nextHopType": "None"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(route["type"], "Microsoft.Network/routeTables/routes");
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/aks");
    w.ok_put(
        &vnet,
        NETWORK,
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}),
    )
    .await;
    let (status, subnet) = w
        .put(
            &format!("{vnet}/subnets/nodes"),
            NETWORK,
            json!({"properties": {"addressPrefix": "10.1.0.0/24",
            "networkSecurityGroup": {"id": nsg}, "routeTable": {"id": routes}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{subnet}");
    assert_eq!(subnet["id"], format!("{vnet}/subnets/nodes"));
    let (status, err) = w
        .put(
            &format!("{vnet}/subnets/bad"),
            NETWORK,
            json!({"properties": {"networkSecurityGroup": {"id": format!("{nsg}-missing")}}}),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("InvalidResourceReference")));

    let zone = format!("{rg}/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io");
    let (status, z) = w.put(&zone, PRIVATE_DNS, json!({"location": "global"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(z["location"], "global");
    let (_, record) = w
        .put(
            &format!("{zone}/A/PullProofAcr"),
            PRIVATE_DNS,
            json!({"properties": {"ttl": 10, "aRecords": [{"ipv4Address": "10.2.0.4"}]}}),
        )
        .await;
    assert_eq!(record["name"], "pullproofacr");
    assert_eq!(record["properties"]["fqdn"], "pullproofacr.privatelink.azurecr.io.");
    let link = format!("{zone}/virtualNetworkLinks/aks");
    let (status, l) = w
        .put(
            &link,
            PRIVATE_DNS,
            json!({"location": "global", "properties": {"virtualNetwork": {"id": vnet}, "registrationEnabled": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(l["properties"]["virtualNetworkLinkState"], "Completed");
    let (_, z) = w.get(&zone, PRIVATE_DNS).await;
    assert_eq!(z["properties"]["numberOfRecordSets"], 2);
    assert_eq!(z["properties"]["numberOfVirtualNetworkLinks"], 1);

    let plane = w.emu.data_plane();
    let v = plane.vnet(&vnet).unwrap();
    assert_eq!(v.private_zones[0].zone, "privatelink.azurecr.io");
    let (_, s) = plane.subnet(&format!("{vnet}/subnets/nodes")).unwrap();
    assert_eq!(s.security_rules[0].name, "deny-acr");
    assert_eq!(s.routes[0].name, "hole");
    assert_eq!(
        plane.resolve(&vnet, "pullproofacr.privatelink.azurecr.io"),
        Resolution::Private(vec!["10.2.0.4".parse().unwrap()])
    );
    assert_eq!(
        plane.resolve(&vnet, "missing.privatelink.azurecr.io"),
        Resolution::NxDomain { zone: "privatelink.azurecr.io".into() }
    );

    let mut changes = w.emu.subscribe();
    changes.borrow_and_update();
    assert_eq!(w.delete(&link, PRIVATE_DNS).await, StatusCode::OK);
    tokio::time::timeout(std::time::Duration::from_secs(2), changes.changed()).await.unwrap().unwrap();
    assert_eq!(changes.borrow().resolve(&vnet, "pullproofacr.privatelink.azurecr.io"), Resolution::Public);
}

#[tokio::test]
async fn export_keeps_no_secrets_and_imports_back() {
    let w = World::start().await;
    let rg = w.group("world").await;
    let registry = w.registry(&rg, "exportacr", json!({"adminUserEnabled": true})).await;
    let acr = registry["id"].as_str().unwrap().to_string();
    let kubelet = w.identity(&rg, "kubelet").await;
    w.cluster(&rg, "aks", kubelet["id"].as_str().unwrap()).await;
    w.assign(&acr, ACR_PULL.id, kubelet["properties"]["principalId"].as_str().unwrap()).await;
    let app = w.emu.create_application("puller").unwrap();
    w.emu.push_repository("exportacr.azurecr.io", "team/app", &["v1", "v2"], &["linux/amd64"]);
    let (_, creds) = w.post(&format!("{acr}/listCredentials"), CONTAINER_REGISTRY, None).await;

    let inventory = w.emu.export();
    let text = inventory.to_json();
    assert!(!text.contains(app.client_secret.expose()));
    assert!(!text.contains(creds["passwords"][0]["value"].as_str().unwrap()));
    assert!(!text.contains("pullproof-emulator-operator"));
    assert_eq!(inventory.registries.len(), 1);
    assert_eq!(inventory.managed_clusters.len(), 1);
    assert_eq!(inventory.role_assignments.len(), 1);
    assert_eq!(inventory.virtual_machine_scale_sets.len(), 1);
    assert!(inventory.application(&app.client_id).unwrap().password_credentials[0].secret_text.is_none());
    assert_eq!(inventory.content_of("exportacr.azurecr.io").unwrap().repositories[0].tags, vec!["v1", "v2"]);
    let reread = azure_model::Inventory::from_json(&text).unwrap();
    assert_eq!(reread, inventory);

    let again = World::start_with(EmulatorConfig::default().with_state(reread)).await;
    assert_eq!(again.emu.subscription_id(), w.emu.subscription_id());
    let (status, body) = again.get(&acr, CONTAINER_REGISTRY).await;
    assert_eq!(status, StatusCode::OK);
    // Fields outside azure-model's typed shapes (e.g. `creationDate`) are not part of an inventory.
    type Registry = azure_model::Resource<azure_model::container_registry::RegistryProperties>;
    let typed = |v: serde_json::Value| serde_json::from_value::<Registry>(v).unwrap();
    assert_eq!(typed(body), typed(w.get(&acr, CONTAINER_REGISTRY).await.1));
    // Admin passwords are new after an import.
    let (_, new_creds) = again.post(&format!("{acr}/listCredentials"), CONTAINER_REGISTRY, None).await;
    assert_ne!(new_creds["passwords"][0]["value"], creds["passwords"][0]["value"]);
}

#[tokio::test]
async fn malformed_bodies_are_answered_not_crashed_on() {
    let w = World::start().await;
    let rg = w.group("fuzz").await;
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/v");
    w.ok_put(&vnet, NETWORK, json!({"location": "westeurope", "properties": {"subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}})).await;
    let zone = format!("{rg}/providers/Microsoft.Network/privateDnsZones/example.internal");
    w.ok_put(&zone, PRIVATE_DNS, json!({"location": "global"})).await;
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/n");
    w.ok_put(&nsg, NETWORK, json!({"location": "westeurope"})).await;
    let targets = [
        (rg.clone(), RESOURCES),
        (format!("{rg}/providers/Microsoft.ContainerService/managedClusters/c"), CONTAINER_SERVICE),
        (format!("{rg}/providers/Microsoft.ContainerRegistry/registries/fuzzacr"), CONTAINER_REGISTRY),
        (format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{}", crate::common::uuid_v4()), AUTHORIZATION),
        (format!("{rg}/providers/Microsoft.Authorization/roleDefinitions/{}", crate::common::uuid_v4()), AUTHORIZATION),
        (vnet.clone(), NETWORK),
        (format!("{vnet}/subnets/s2"), NETWORK),
        (format!("{vnet}/virtualNetworkPeerings/p"), NETWORK),
        (zone.clone(), PRIVATE_DNS),
        (format!("{zone}/virtualNetworkLinks/l"), PRIVATE_DNS),
        (format!("{zone}/A/a"), PRIVATE_DNS),
        (format!("{rg}/providers/Microsoft.Network/privateEndpoints/pe"), NETWORK),
        (nsg.clone(), NETWORK),
        (format!("{nsg}/securityRules/r"), NETWORK),
        (format!("{rg}/providers/Microsoft.Network/routeTables/rt"), NETWORK),
        (format!("{rg}/providers/Microsoft.Network/publicIPAddresses/ip"), NETWORK),
        (format!("{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss"), COMPUTE),
        (format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"), crate::common::MI_API),
    ];
    let bodies = [
        json!(null),
        json!([]),
        json!("text"),
        json!(7),
        json!({"location": 1}),
        json!({"location": "westeurope", "tags": 5}),
        json!({"location": "westeurope", "properties": 5}),
        json!({"location": "westeurope", "identity": 5}),
        json!({"location": "westeurope", "identity": {"type": "UserAssigned", "userAssignedIdentities": 5}}),
        json!({"location": "westeurope", "sku": 5, "properties": {"networkRuleSet": {"ipRules": [5]}}}),
        json!({"location": "westeurope", "properties": {"subnets": [1, 2], "securityRules": "x", "routes": [{}]}}),
        json!({"location": "westeurope", "properties": {"agentPoolProfiles": [{"name": "a"}], "networkProfile": 5}}),
        json!({"location": "westeurope", "properties": {"agentPoolProfiles": [{"name": "a"}], "identityProfile": {"kubeletidentity": "x"}}}),
        json!({"location": "westeurope", "properties": {"agentPoolProfiles": "x", "servicePrincipalProfile": 5}}),
        json!({"properties": {"remoteVirtualNetwork": {"id": 5}, "aRecords": [{"ipv4Address": "x"}], "priority": "x"}}),
        json!({"location": "westeurope", "properties": {"subnet": {"id": format!("{vnet}/subnets/s")}, "privateLinkServiceConnections": [{"name": "c"}], "ipConfigurations": 5}}),
        json!({"properties": {"roleDefinitionId": 5, "principalId": []}}),
        json!({"location": "global", "properties": {"virtualNetwork": "x"}}),
    ];
    for (id, api) in &targets {
        for body in &bodies {
            for method in [Method::PUT, Method::PATCH] {
                let (status, answer) =
                    w.arm(method.clone(), &format!("{id}?api-version={api}"), Some(body.clone())).await;
                assert!(!status.is_server_error(), "{method} {id} with {body}: {status} {answer}");
                if status.is_client_error() {
                    assert!(answer["error"]["code"].is_string(), "{method} {id} with {body}: {answer}");
                }
            }
            let (status, _) =
                w.arm(Method::POST, &format!("{id}/listCredentials?api-version={api}"), Some(body.clone())).await;
            assert!(!status.is_server_error());
        }
    }
    let (status, _) = w.get(&rg, RESOURCES).await;
    assert_eq!(status, StatusCode::OK, "still serving");
}
