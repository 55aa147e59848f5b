//! `Microsoft.ContainerService/managedClusters`: what AKS fills in on PUT (node resource group,
//! kubelet identity, managed outbound IP, node pool scale sets), the reconcile a PUT performs
//! (re-attaching the kubelet identity to every pool's scale set), and
//! `resetServicePrincipalProfile`.

use axum::http::StatusCode;
use axum::response::Response;
use azure_model::ResourceId;
use azure_model::compute::POOL_NAME_TAG;
use azure_model::container_service::{MSI_CLIENT_ID, ManagedClusterProperties, ResetServicePrincipalProfile};
use azure_model::inventory::types;
use serde_json::{Value, json};

use super::{ArmFailure, Ctx, check_shape, default_field, empty, props};
use crate::credential::Secret;
use crate::data_plane::in_resource_group;
use crate::state::State;
use crate::state::store::key;

const DEFAULT_KUBERNETES_VERSION: &str = "1.33.2";

fn invalid(param: &str, why: &str) -> ArmFailure {
    ArmFailure::bad_request("InvalidParameter", format!("The value of parameter {param} is invalid: {why}."))
}

fn kubelet_identity_id(value: &Value) -> Option<String> {
    value.pointer("/properties/identityProfile/kubeletidentity/resourceId").and_then(Value::as_str).map(str::to_string)
}

pub(super) fn prepare(
    ctx: &Ctx<'_>,
    state: &mut State,
    value: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    let id = value["id"].as_str().unwrap_or_default().to_string();
    let rid = ResourceId::parse(&id).map_err(ArmFailure::invalid_content)?;
    let name = rid.name().to_string();
    let group = rid.resource_group().unwrap_or_default().to_string();
    let location = value["location"].as_str().unwrap_or_default().to_string();
    let old = |ptr: &str| existing.and_then(|e| e.pointer(ptr)).cloned();

    // Service principal or managed identity.
    let mut new_secret = None;
    let sp = value
        .pointer("/properties/servicePrincipalProfile")
        .cloned()
        .or_else(|| old("/properties/servicePrincipalProfile"));
    let client_id =
        sp.as_ref().and_then(|s| s.get("clientId")).and_then(Value::as_str).unwrap_or(MSI_CLIENT_ID).to_string();
    let msi = client_id.eq_ignore_ascii_case(MSI_CLIENT_ID) || client_id.is_empty();
    if !msi {
        let secret = sp.as_ref().and_then(|s| s.get("secret")).and_then(Value::as_str).filter(|s| !s.is_empty());
        match secret {
            Some(s) => new_secret = Some(Secret::new(s)),
            None if state.cluster_secrets.contains_key(&key(&id)) || existing.is_some() => {}
            None => {
                return Err(invalid("servicePrincipalProfile.secret", "a service principal cluster needs a secret"));
            }
        }
    }

    let pools = value
        .pointer("/properties/agentPoolProfiles")
        .cloned()
        .or_else(|| old("/properties/agentPoolProfiles"))
        .and_then(|p| p.as_array().cloned())
        .unwrap_or_default();
    if pools.is_empty() {
        return Err(invalid("agentPoolProfiles", "at least one node pool is required"));
    }
    if pools.iter().any(|p| p.get("name").and_then(Value::as_str).is_none_or(str::is_empty)) {
        return Err(invalid("agentPoolProfiles.name", "every node pool needs a name"));
    }
    let node_rg = old("/properties/nodeResourceGroup")
        .and_then(|v| v.as_str().map(str::to_string))
        .or_else(|| value.pointer("/properties/nodeResourceGroup").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("MC_{group}_{name}_{location}"));
    let version = value
        .pointer("/properties/kubernetesVersion")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_KUBERNETES_VERSION)
        .to_string();

    // Validated: from here on, side effects.
    let node_rg_id = format!("/subscriptions/{}/resourceGroups/{node_rg}", ctx.subscription());
    if !state.store.contains(&node_rg_id) {
        super::resource_groups::put(
            ctx,
            state,
            &node_rg_id,
            &node_rg,
            json!({"location": location, "managedBy": id, "tags": {"aks-managed-cluster-name": name}}),
        )?;
    }

    if msi {
        let mut identity = value.get("identity").cloned().unwrap_or_else(|| json!({"type": "SystemAssigned"}));
        super::compute::fill_identity(ctx, state, &mut identity, existing)?;
        value["identity"] = identity;
        let mut kubelet = value
            .pointer("/properties/identityProfile/kubeletidentity")
            .cloned()
            .or_else(|| old("/properties/identityProfile/kubeletidentity"))
            .unwrap_or_else(|| json!({}));
        if !kubelet.is_object() {
            return Err(invalid("identityProfile.kubeletidentity", "it must be an object"));
        }
        let resource_id = match kubelet.get("resourceId").and_then(Value::as_str) {
            Some(r) => r.to_string(),
            None => {
                let uai =
                    format!("{node_rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool");
                if !state.store.contains(&uai) {
                    super::put_nested(ctx, state, &uai, json!({"location": location}))?;
                }
                uai
            }
        };
        if let Some(uai) = state.store.get(&resource_id) {
            kubelet["clientId"] = uai.pointer("/properties/clientId").cloned().unwrap_or(Value::Null);
            kubelet["objectId"] = uai.pointer("/properties/principalId").cloned().unwrap_or(Value::Null);
        }
        kubelet["resourceId"] = json!(resource_id);
        value["properties"]["identityProfile"] = json!({ "kubeletidentity": kubelet });
        value["properties"]["servicePrincipalProfile"] = json!({ "clientId": MSI_CLIENT_ID });
    } else {
        value["properties"]["servicePrincipalProfile"] = json!({ "clientId": client_id });
    }

    // Egress: a managed outbound public IP in the node resource group.
    let mut network = value
        .pointer("/properties/networkProfile")
        .cloned()
        .or_else(|| old("/properties/networkProfile"))
        .unwrap_or_else(|| json!({}));
    if let Some(n) = network.as_object_mut() {
        default_field(n, "networkPlugin", json!("azure"));
        default_field(n, "outboundType", json!("loadBalancer"));
        default_field(n, "loadBalancerSku", json!("standard"));
        default_field(n, "serviceCidr", json!("10.0.0.0/16"));
        default_field(n, "serviceCidrs", json!(["10.0.0.0/16"]));
        default_field(n, "dnsServiceIP", json!("10.0.0.10"));
        default_field(n, "ipFamilies", json!(["IPv4"]));
    }
    if network["outboundType"].as_str().is_some_and(|o| o.eq_ignore_ascii_case("loadBalancer")) {
        // Customer-provided outbound IPs are what egress uses; otherwise AKS manages one.
        let nonempty = |v: &&Value| v.as_array().is_some_and(|a| !a.is_empty());
        let customer = network.pointer("/loadBalancerProfile/outboundIPs/publicIPs").filter(nonempty).cloned();
        let effective = network.pointer("/loadBalancerProfile/effectiveOutboundIPs").filter(nonempty).cloned();
        let given = customer.is_some();
        let ips = if let Some(ips) = customer.or(effective) {
            ips
        } else if let Some(prev) = old("/properties/networkProfile/loadBalancerProfile/effectiveOutboundIPs")
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            prev
        } else {
            let pip = format!("{node_rg_id}/providers/Microsoft.Network/publicIPAddresses/{}", uuid::Uuid::new_v4());
            super::put_nested(
                ctx,
                state,
                &pip,
                json!({"location": location, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}),
            )?;
            json!([{ "id": pip }])
        };
        if !network.get("loadBalancerProfile").is_some_and(Value::is_object) {
            network["loadBalancerProfile"] = json!({});
        }
        network["loadBalancerProfile"]["effectiveOutboundIPs"] = ips;
        if network.pointer("/loadBalancerProfile/managedOutboundIPs").is_none() && !given {
            network["loadBalancerProfile"]["managedOutboundIPs"] = json!({"count": 1});
        }
    }

    let pools: Vec<Value> = pools
        .into_iter()
        .enumerate()
        .map(|(i, mut pool)| {
            if let Some(p) = pool.as_object_mut() {
                let windows =
                    p.get("osType").and_then(Value::as_str).is_some_and(|o| o.eq_ignore_ascii_case("Windows"));
                default_field(p, "count", json!(1));
                default_field(p, "osType", json!(if windows { "Windows" } else { "Linux" }));
                default_field(p, "osSKU", json!(if windows { "Windows2022" } else { "Ubuntu" }));
                default_field(p, "mode", json!(if i == 0 { "System" } else { "User" }));
                default_field(p, "vmSize", json!("Standard_DS2_v2"));
                default_field(p, "type", json!("VirtualMachineScaleSets"));
                default_field(p, "orchestratorVersion", json!(version));
                p.insert("currentOrchestratorVersion".into(), json!(version));
                p.insert("provisioningState".into(), json!("Succeeded"));
                p.insert("powerState".into(), json!({"code": "Running"}));
                p.insert("eTag".into(), json!(new_etag()));
            }
            pool
        })
        .collect();

    let dns_prefix = value.pointer("/properties/dnsPrefix").and_then(Value::as_str).unwrap_or(&name).to_string();
    let fqdn_suffix = format!("{}.hcp.{location}.azmk8s.io", &hash_digits(&id)[..8]);
    // AKS's optimistic-concurrency tag: read-only, new on every write (a client sending the GET
    // body back does not set it).
    value["eTag"] = json!(new_etag());
    let p = props(value);
    p.insert("agentPoolProfiles".into(), json!(pools));
    p.insert("nodeResourceGroup".into(), json!(node_rg));
    p.insert("kubernetesVersion".into(), json!(version));
    p.insert("currentKubernetesVersion".into(), json!(version));
    p.insert("dnsPrefix".into(), json!(dns_prefix));
    p.insert("fqdn".into(), json!(format!("{dns_prefix}-{fqdn_suffix}")));
    p.insert(
        "azurePortalFQDN".into(),
        json!(format!("{dns_prefix}-{}", fqdn_suffix.replacen(".hcp.", ".portal.hcp.", 1))),
    );
    default_field(p, "enableRBAC", json!(true));
    p.insert("maxAgentPools".into(), json!(100));
    p.insert("networkProfile".into(), network);
    p.insert("powerState".into(), json!({"code": "Running"}));
    check_shape::<azure_model::Resource<ManagedClusterProperties>>(value)?;
    if let Some(s) = new_secret {
        state.cluster_secrets.insert(key(&id), s);
    }
    Ok(())
}

/// A new `eTag` (AKS's are opaque short strings).
fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Eight decimal digits derived from `text` (AKS names scale sets `aks-POOL-DIGITS-vmss`).
fn hash_digits(text: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.to_ascii_lowercase().as_bytes());
    let n = u64::from_be_bytes(d.as_ref()[..8].try_into().unwrap_or([0; 8]));
    format!("{:08}", n % 100_000_000)
}

/// What a cluster PUT does to the node pools: each pool has a scale set in the node resource
/// group tagged `aks-managed-poolName`; managed-identity clusters get the kubelet identity
/// (re-)attached to it. This is the repair `az aks update` performs.
pub(super) fn reconcile_node_pools(ctx: &Ctx<'_>, state: &mut State, cluster_id: &str) -> Result<(), ArmFailure> {
    let Some(cluster) = state.store.get(cluster_id).cloned() else { return Ok(()) };
    let node_rg =
        cluster.pointer("/properties/nodeResourceGroup").and_then(Value::as_str).unwrap_or_default().to_string();
    let location = cluster["location"].as_str().unwrap_or_default().to_string();
    let kubelet = kubelet_identity_id(&cluster);
    let pools = cluster.pointer("/properties/agentPoolProfiles").and_then(Value::as_array).cloned().unwrap_or_default();
    for pool in pools {
        let pool_name = pool["name"].as_str().unwrap_or_default().to_string();
        let found = state
            .store
            .of_type(types::VIRTUAL_MACHINE_SCALE_SET)
            .find(|v| {
                in_resource_group(v["id"].as_str().unwrap_or_default(), &node_rg)
                    && v.pointer(&format!("/tags/{POOL_NAME_TAG}"))
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case(&pool_name))
            })
            .cloned();
        let identity =
            kubelet.as_ref().map(|k| json!({"type": "UserAssigned", "userAssignedIdentities": { k.clone(): {} }}));
        match found {
            None => {
                let vmss = format!(
                    "/subscriptions/{}/resourceGroups/{node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{pool_name}-{}-vmss",
                    ctx.subscription(),
                    hash_digits(cluster_id)
                );
                let mut body = json!({
                    "location": location,
                    "tags": { POOL_NAME_TAG: pool_name, "aks-managed-orchestrator": cluster_id },
                    "sku": {"name": pool["vmSize"].clone(), "tier": "Standard", "capacity": pool["count"].clone()},
                    "properties": {},
                });
                if let Some(i) = identity {
                    body["identity"] = i;
                }
                super::put_nested(ctx, state, &vmss, body)?;
                tracing::info!(%vmss, "node pool scale set created");
            }
            Some(mut vmss) => {
                let Some(k) = &kubelet else { continue };
                let attached = vmss
                    .pointer("/identity/userAssignedIdentities")
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.keys().any(|id| azure_model::id::same_id(id, k)));
                if attached {
                    continue;
                }
                let system = vmss
                    .pointer("/identity/type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.to_ascii_lowercase().contains("system"));
                let mut users = vmss.pointer("/identity/userAssignedIdentities").cloned().unwrap_or_else(|| json!({}));
                users[k.as_str()] = json!({});
                vmss["identity"] = json!({
                    "type": if system { "SystemAssigned, UserAssigned" } else { "UserAssigned" },
                    "userAssignedIdentities": users,
                });
                let id = vmss["id"].as_str().unwrap_or_default().to_string();
                super::put_nested(ctx, state, &id, vmss)?;
                tracing::info!(vmss = %id, "kubelet identity re-attached to the node pool scale set");
            }
        }
    }
    Ok(())
}

/// `POST .../resetServicePrincipalProfile` `{clientId, secret}`: AKS answers 202 and updates the
/// nodes' credentials; the emulator does it at once and answers 200.
pub(super) fn reset_service_principal(
    _ctx: &Ctx<'_>,
    state: &mut State,
    id: &str,
    body: Value,
) -> Result<Response, ArmFailure> {
    let req: ResetServicePrincipalProfile = check_shape(&body)?;
    if req.client_id.is_empty() || req.secret.is_empty() {
        return Err(invalid("servicePrincipalProfile", "clientId and secret are required"));
    }
    let cluster = state.store.get_mut(id).ok_or_else(|| ArmFailure::resource_not_found(id))?;
    let current = cluster
        .pointer("/properties/servicePrincipalProfile/clientId")
        .and_then(Value::as_str)
        .unwrap_or(MSI_CLIENT_ID);
    if current.eq_ignore_ascii_case(MSI_CLIENT_ID) {
        return Err(ArmFailure::bad_request(
            "OperationNotAllowed",
            "Resetting the service principal profile is not allowed for a cluster that uses managed identity.",
        ));
    }
    cluster["properties"]["servicePrincipalProfile"] = json!({ "clientId": req.client_id });
    cluster["eTag"] = json!(new_etag());
    state.cluster_secrets.insert(key(id), Secret::new(req.secret));
    tracing::info!(%id, client_id = %req.client_id, "cluster service principal reset");
    Ok(empty(StatusCode::OK))
}
