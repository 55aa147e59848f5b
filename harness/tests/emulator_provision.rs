//! Provisioning baselines into the emulator, and every fault and its inverse against it.
//!
//! No root needed: the emulator is plain HTTPS on loopback, and these tests send exactly the
//! requests the host backend sends (`pullproof::arm::provision` through the `Executor`), then
//! read the emulator's export (the `Inventory` the engine reads).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_model::Inventory;
use azure_model::authorization::built_in_by_name;
use azure_model::compute::POOL_NAME_TAG;
use azure_model::id::same_id;
use azure_rest::{ARM_SCOPE, Client, ClientCredentials, GRAPH_SCOPE};
use pullproof::arm::mutation::{EmulatorOp, Realisation, realise};
use pullproof::arm::{Executor, World};
use pullproof::baseline::{Baseline, ClusterIdentity};
use pullproof::catalog::{Catalog, Layout, load_baseline};
use pullproof::scenario::{Fault, Mutation};
use pullproof_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every baseline file, loaded.
fn baselines() -> Vec<Arc<Baseline>> {
    let dir = Layout::under(&root()).baselines;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no baselines in {}", dir.display());
    files.iter().map(|f| Arc::new(load_baseline(f).unwrap_or_else(|d| panic!("{}: {d:?}", f.display())))).collect()
}

/// A fresh emulator with a baseline provisioned into it, and the executor that did it (its
/// bindings hold the ids and secrets Azure handed out).
struct Provisioned {
    emu: RunningEmulator,
    exec: Executor,
    world: World,
    baseline: Arc<Baseline>,
    http: reqwest::Client,
}

impl Provisioned {
    async fn new(baseline: Arc<Baseline>) -> Self {
        let emu = Emulator::start(EmulatorConfig::default()).await.expect("the emulator starts");
        let world = World::new(emu.subscription_id(), emu.tenant_id());
        let http = azure_rest::http_client(std::slice::from_ref(&emu.ca_pem)).expect("http client");
        let op = emu.operator();
        let token_url = format!("{}/{}/oauth2/v2.0/token", emu.base_url, emu.tenant_id());
        let tokens = ClientCredentials::new(
            http.clone(),
            token_url,
            op.client_id.clone(),
            op.client_secret.expose().to_string(),
        );
        let client = |scope: &str| {
            Client::builder(&emu.base_url, scope).http(http.clone()).token_source(tokens.clone()).build().unwrap()
        };
        let mut exec = Executor::new(client(ARM_SCOPE), client(GRAPH_SCOPE));
        let requests = pullproof::arm::provision::provision(&baseline, &world);
        if let Err(e) = exec.run_all(&requests).await {
            panic!("baseline `{}` does not provision into the emulator: {e}", baseline.name);
        }
        Self { emu, exec, world, baseline, http }
    }

    fn export(&self) -> Inventory {
        self.emu.export()
    }

    /// Carries out a mutation as the host backend does, for the parts that touch Azure (ARM,
    /// Graph, emulator-only edits). Returns false for cluster and node operations (nothing done
    /// here).
    async fn apply(&mut self, m: &Mutation) -> bool {
        match realise(m, &self.baseline, &self.world) {
            Realisation::Nothing | Realisation::Cluster(_) | Realisation::Node(_) => false,
            Realisation::Azure(requests) => {
                if let Err(e) = self.exec.run_all(&requests).await {
                    panic!("{} ({}): {e}", m.describe(), self.baseline.name);
                }
                true
            }
            // The same translation as `backend::host::HostWorld::apply`.
            Realisation::Emulator(EmulatorOp::SetSecretExpiry { application, expires }) => {
                let app_id = self.binding(&format!("app.{application}.appId"));
                let now = time::OffsetDateTime::now_utc();
                let end = match expires.as_str() {
                    "past" => now - time::Duration::days(1),
                    "+1y" => now + time::Duration::days(365),
                    other => azure_model::graph::parse_time(other).unwrap_or(now + time::Duration::days(365)),
                };
                self.emu.set_secret_expiry(&app_id, end).expect("secret expiry");
                true
            }
        }
    }

    fn binding(&self, name: &str) -> String {
        self.exec.bindings.get(name).unwrap_or_else(|| panic!("`{name}` is not bound")).to_string()
    }

    /// Whether the application's provisioned client secret gets a token now.
    async fn secret_works(&self, application: &str) -> bool {
        let url = format!("{}/{}/oauth2/v2.0/token", self.emu.base_url, self.emu.tenant_id());
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.binding(&format!("app.{application}.appId"))),
            ("client_secret", self.binding(&format!("secret.{application}"))),
            ("scope", ARM_SCOPE.to_string()),
        ];
        self.http.post(url).form(&form).send().await.expect("token request").status().is_success()
    }

    /// The registry's admin passwords (`listCredentials`).
    async fn admin_passwords(&self) -> Vec<String> {
        let path = format!("{}/listCredentials", self.world.registry(&self.baseline));
        let answer = self
            .exec
            .arm
            .send(azure_rest::Method::Post, &path, azure_model::api_version::CONTAINER_REGISTRY, None)
            .await
            .expect("listCredentials");
        answer["passwords"].as_array().unwrap().iter().map(|p| p["value"].as_str().unwrap().to_string()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Provisioning: the export holds what the baseline declares.
// ---------------------------------------------------------------------------------------------

/// Checks the export against the baseline; returns every mismatch (empty = all declared).
fn declared_but_missing(b: &Baseline, w: &World, inv: &Inventory) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            out.push(what);
        }
    };
    let public_ip_of = |name: &str| b.public_ips.iter().find(|p| p.name == name).map(|p| p.ip.clone());

    // Resource groups (the node resource group too).
    for rg in b.resource_groups.iter().cloned().chain([w.node_resource_group(b)]) {
        check(inv.resource_groups.iter().any(|g| g.name.eq_ignore_ascii_case(&rg)), format!("resource group {rg}"));
    }

    // Public IPs, at the addresses declared.
    for ip in &b.public_ips {
        check(
            inv.public_ip(&w.public_ip(b, &ip.name)) == Some(ip.ip.as_str()),
            format!("public IP {} = {}", ip.name, ip.ip),
        );
    }

    // Applications and their service principals, each with a secret ending when declared.
    for app in &b.applications {
        let found = inv.applications.iter().find(|a| a.display_name.as_deref() == Some(app.name.as_str()));
        check(found.is_some(), format!("application {}", app.name));
        let Some(found) = found else { continue };
        check(inv.service_principal_of_app(&found.app_id).is_some(), format!("service principal of {}", app.name));
        let end = app.secret_expires.as_deref().and_then(azure_model::graph::parse_time);
        check(
            found.password_credentials.iter().any(|c| end.is_none() || c.end() == end),
            format!("a secret of {} ending {:?}", app.name, app.secret_expires),
        );
    }

    // VNets, subnets with their NSG and route table.
    for vnet in &b.vnets {
        let found = inv.virtual_network(&w.vnet(b, &vnet.name));
        check(found.is_some(), format!("VNet {}", vnet.name));
        let Some(found) = found else { continue };
        check(
            found.properties.address_space.address_prefixes == [vnet.address_space.clone()],
            format!("address space of {}", vnet.name),
        );
        for s in &vnet.subnets {
            let subnet = inv.subnet(&w.subnet(b, &format!("{}/{}", vnet.name, s.name)));
            check(subnet.is_some(), format!("subnet {}/{}", vnet.name, s.name));
            let Some(subnet) = subnet else { continue };
            check(subnet.address_prefix.as_deref() == Some(s.prefix.as_str()), format!("prefix of subnet {}", s.name));
            let nsg = subnet.network_security_group.map(|r| r.id);
            check(
                match &s.nsg {
                    Some(n) => nsg.is_some_and(|id| same_id(&id, &w.nsg(b, n))),
                    None => nsg.is_none(),
                },
                format!("NSG of subnet {}", s.name),
            );
            let rt = subnet.route_table.map(|r| r.id);
            check(
                match &s.route_table {
                    Some(t) => rt.is_some_and(|id| same_id(&id, &w.route_table(b, t))),
                    None => rt.is_none(),
                },
                format!("route table of subnet {}", s.name),
            );
        }
    }

    // Peerings: both directions, Connected.
    for p in &b.peerings {
        for (from, to) in [(&p.between[0], &p.between[1]), (&p.between[1], &p.between[0])] {
            let peering = inv
                .peerings_of(&w.vnet(b, from))
                .into_iter()
                .find(|(_, props)| same_id(&props.remote_virtual_network.id, &w.vnet(b, to)));
            check(
                peering
                    .as_ref()
                    .is_some_and(|(id, props)| same_id(id, &w.peering(b, from, to)) && props.is_connected()),
                format!("peering {from} -> {to}, Connected (found {peering:?})"),
            );
        }
    }

    // Private DNS zones and exactly the declared links.
    for z in &b.private_dns_zones {
        check(inv.private_dns_zones.iter().any(|r| same_id(&r.id, &w.zone(b, &z.name))), format!("zone {}", z.name));
        let links: Vec<_> = inv.links_of_zone(&z.name).collect();
        check(links.len() == z.links.len(), format!("{} links of {} (found {})", z.links.len(), z.name, links.len()));
        for vnet in &z.links {
            check(
                links.iter().any(|l| {
                    same_id(&l.id, &w.vnet_link(b, &z.name, vnet))
                        && same_id(&l.properties.virtual_network.id, &w.vnet(b, vnet))
                }),
                format!("link of {} to {vnet}", z.name),
            );
        }
    }

    // NSG rules as declared.
    for nsg in &b.nsgs {
        let found = inv.network_security_groups.iter().find(|n| same_id(&n.id, &w.nsg(b, &nsg.name)));
        check(found.is_some(), format!("NSG {}", nsg.name));
        let Some(found) = found else { continue };
        check(
            found.properties.security_rules.len() == nsg.rules.len(),
            format!("{} rules in {}", nsg.rules.len(), nsg.name),
        );
        for r in &nsg.rules {
            let rule = found.properties.security_rules.iter().find(|x| x.name == r.name).map(|x| &x.properties);
            check(
                rule.is_some_and(|x| {
                    x.priority == r.priority
                        && x.access == r.access.as_str()
                        && x.direction == r.direction.as_str()
                        && x.protocol == r.protocol.as_str()
                        && x.destination_address_prefix == r.destination
                        && x.destination_port_range == r.port
                }),
                format!("rule {} of {} as declared (found {rule:?})", r.name, nsg.name),
            );
        }
    }

    // Routes as declared.
    for rt in &b.route_tables {
        let found = inv.route_tables.iter().find(|t| same_id(&t.id, &w.route_table(b, &rt.name)));
        check(found.is_some(), format!("route table {}", rt.name));
        let Some(found) = found else { continue };
        check(found.properties.routes.len() == rt.routes.len(), format!("{} routes in {}", rt.routes.len(), rt.name));
        for r in &rt.routes {
            check(
                found.properties.routes.iter().any(|x| {
                    x.name == r.name
                        && x.properties.address_prefix == r.address_prefix
                        && x.properties.next_hop_type == r.next_hop_type.as_str()
                }),
                format!("route {} of {} as declared", r.name, rt.name),
            );
        }
    }

    // The registry.
    let reg = &b.registry;
    let registry = inv.registries.iter().find(|r| same_id(&r.id, &w.registry(b)));
    check(registry.is_some(), format!("registry {}", reg.name));
    if let Some(registry) = registry {
        let p = &registry.properties;
        check(registry.sku.as_ref().is_some_and(|s| s.name == reg.sku.as_str()), format!("registry SKU {}", reg.sku));
        check(p.login_server.as_deref() == Some(reg.login_server().as_str()), "registry login server".into());
        check(p.admin_user_enabled == Some(reg.admin_user_enabled), "adminUserEnabled".into());
        check(p.public_access_enabled() == reg.public_network_access, "publicNetworkAccess".into());
        check(
            p.role_assignment_mode.as_deref() == Some(reg.role_assignment_mode.as_str()),
            "roleAssignmentMode".into(),
        );
        match &reg.firewall {
            Some(fw) => {
                let set = p.network_rule_set.as_ref();
                check(
                    set.is_some_and(|s| s.default_action == fw.default_action.as_str()),
                    format!("firewall default action {}", fw.default_action),
                );
                let mut want: Vec<String> =
                    fw.allow.iter().map(|a| public_ip_of(a).unwrap_or_else(|| a.clone())).collect();
                let mut got: Vec<String> =
                    set.map(|s| s.ip_rules.iter().map(|r| r.value.clone()).collect()).unwrap_or_default();
                want.sort();
                got.sort();
                check(want == got, format!("firewall allows {want:?} (found {got:?})"));
            }
            None => check(
                p.network_rule_set.as_ref().is_none_or(|s| s.default_action == "Allow" && s.ip_rules.is_empty()),
                "no firewall".into(),
            ),
        }
        if let (Some(pe), Some(pe_id)) = (&reg.private_endpoint, w.private_endpoint(b)) {
            let endpoint = inv.private_endpoints.iter().find(|e| same_id(&e.id, &pe_id));
            check(
                endpoint.is_some_and(|e| {
                    e.properties.subnet.as_ref().is_some_and(|s| same_id(&s.id, &w.subnet(b, &pe.subnet)))
                        && e.properties.custom_dns_configs.iter().any(|c| {
                            c.fqdn.eq_ignore_ascii_case(&reg.login_server()) && c.ip_addresses == [pe.ip.clone()]
                        })
                }),
                format!("private endpoint {} in {} at {}", pe.name, pe.subnet, pe.ip),
            );
            check(
                p.private_endpoint_connections.iter().any(|c| {
                    c.properties.private_endpoint.as_ref().is_some_and(|e| same_id(&e.id, &pe_id))
                        && c.properties
                            .private_link_service_connection_state
                            .as_ref()
                            .is_some_and(|s| s.status == "Approved")
                }),
                "the registry's approved private endpoint connection".into(),
            );
            if b.private_dns_zones.iter().any(|z| z.name == azure_model::network::ACR_PRIVATE_ZONE) {
                let record = format!(
                    "{}/A/{}",
                    w.zone(b, azure_model::network::ACR_PRIVATE_ZONE),
                    reg.name.to_ascii_lowercase()
                );
                check(
                    inv.a_record_sets.iter().any(|a| {
                        same_id(&a.id, &record) && a.properties.a_records.iter().any(|r| r.ipv4_address == pe.ip)
                    }),
                    format!("A record {record} -> {}", pe.ip),
                );
            }
        } else {
            check(inv.private_endpoints.is_empty(), "no private endpoint".into());
        }
    }

    // The cluster: identity, pools (and their scale sets), egress.
    let c = &b.cluster;
    let cluster = inv.managed_clusters.iter().find(|m| same_id(&m.id, &w.cluster(b)));
    check(cluster.is_some(), format!("cluster {}", c.name));
    let mut kubelet_object_id = None;
    if let Some(cluster) = cluster {
        let p = &cluster.properties;
        check(p.kubernetes_version.as_deref() == Some(c.kubernetes_version.as_str()), "kubernetesVersion".into());
        check(
            p.node_resource_group.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(&w.node_resource_group(b))),
            "node resource group".into(),
        );
        match &c.identity {
            ClusterIdentity::ManagedIdentity => {
                let k = p.kubelet_identity();
                check(
                    k.and_then(|k| k.resource_id.as_deref()).is_some_and(|r| same_id(r, &w.kubelet_identity(b))),
                    "kubelet identity".into(),
                );
                kubelet_object_id = k.and_then(|k| k.object_id.clone());
                check(kubelet_object_id.is_some(), "kubelet identity object id".into());
            }
            ClusterIdentity::ServicePrincipal { application } => {
                let app_id =
                    inv.applications.iter().find(|a| a.display_name.as_deref() == Some(application)).map(|a| &a.app_id);
                check(
                    app_id.is_some_and(|a| p.service_principal_client_id() == Some(a.as_str())),
                    format!("service principal {application}"),
                );
            }
        }
        check(p.agent_pool_profiles.len() == c.pools.len(), format!("{} node pools", c.pools.len()));
        for pool in &c.pools {
            let found = p.agent_pool_profiles.iter().find(|x| x.name == pool.name);
            check(
                found.is_some_and(|x| {
                    x.os_type.as_deref() == Some(pool.os.as_str())
                        && x.count == Some(pool.count)
                        && x.vnet_subnet_id.as_deref().is_some_and(|s| same_id(s, &w.subnet(b, &pool.subnet)))
                }),
                format!("pool {} as declared (found {found:?})", pool.name),
            );
            let vmss = inv.virtual_machine_scale_sets.iter().find(|v| {
                v.tags.get(POOL_NAME_TAG) == Some(&pool.name)
                    && azure_model::ResourceId::parse(&v.id)
                        .ok()
                        .and_then(|r| r.resource_group().map(|g| g.eq_ignore_ascii_case(&w.node_resource_group(b))))
                        .unwrap_or(false)
            });
            check(vmss.is_some(), format!("scale set of pool {}", pool.name));
            if c.identity == ClusterIdentity::ManagedIdentity {
                check(
                    vmss.and_then(|v| v.identity.as_ref()).is_some_and(|i| i.has_user_assigned(&w.kubelet_identity(b))),
                    format!("kubelet identity on pool {}'s scale set", pool.name),
                );
            }
        }
        let effective: Vec<&str> = p
            .network_profile
            .as_ref()
            .and_then(|n| n.load_balancer_profile.as_ref())
            .map(|l| l.effective_outbound_ips.iter().map(|r| r.id.as_str()).collect())
            .unwrap_or_default();
        check(
            effective.len() == c.egress_ips.len()
                && c.egress_ips.iter().all(|ip| effective.iter().any(|e| same_id(e, &w.public_ip(b, ip)))),
            format!("egress through {:?} (found {effective:?})", c.egress_ips),
        );
    }

    // Role assignments: at the declared scope, for the declared role and principal.
    let expected_roles = b.role_assignments.len();
    check(
        inv.role_assignments.len() == expected_roles,
        format!("{expected_roles} role assignments (found {})", inv.role_assignments.len()),
    );
    for a in &b.role_assignments {
        let principal = match a.principal.strip_prefix("application:") {
            Some(app) => inv
                .applications
                .iter()
                .find(|x| x.display_name.as_deref() == Some(app))
                .and_then(|x| inv.service_principal_of_app(&x.app_id))
                .map(|sp| sp.id.clone()),
            None => kubelet_object_id.clone(),
        };
        let role = built_in_by_name(&a.role).map(|r| r.id);
        let id = w.role_assignment(&w.role_scope(b, a.scope), &a.principal, &a.role);
        check(
            inv.role_assignments.iter().any(|r| {
                same_id(&r.id, &id)
                    && Some(r.properties.principal_id.as_str()) == principal.as_deref()
                    && Some(r.properties.role_guid()) == role
            }),
            format!("{} for {} at {:?}", a.role, a.principal, a.scope),
        );
    }
    out
}

#[tokio::test]
async fn every_baseline_provisions_into_the_emulator_as_declared() {
    let mut failures = Vec::new();
    for b in baselines() {
        let p = Provisioned::new(b.clone()).await;
        let inv = p.export();
        let missing = declared_but_missing(&b, &p.world, &inv);
        if !missing.is_empty() {
            failures.push(format!("{}:\n  {}", b.name, missing.join("\n  ")));
        }
        // Re-provisioning is idempotent: the same requests leave the same world.
        let mut again = Executor::new(p.exec.arm.clone(), p.exec.graph.clone());
        again.bindings = p.exec.bindings.clone();
        let arm_only: Vec<_> = pullproof::arm::provision::provision(&b, &p.world)
            .into_iter()
            .filter(|r| r.service == pullproof::arm::Service::Arm)
            .collect();
        again.run_all(&arm_only).await.unwrap_or_else(|e| panic!("{}: re-provisioning: {e}", b.name));
        let after = normalised(&p.export());
        let before = normalised(&inv);
        let diff = differences(&before, &after);
        if !diff.is_empty() {
            failures.push(format!("{}: re-provisioning changed the world:\n  {}", b.name, diff.join("\n  ")));
        }
        p.emu.shutdown().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Faults and their inverses.
// ---------------------------------------------------------------------------------------------

/// The export as JSON with what legitimately changes when a resource is re-written removed:
/// entity tags (`etag`/`eTag`, new on every write) and `provisioningState` (transitions).
fn normalised(inv: &Inventory) -> Value {
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !matches!(k.as_str(), "etag" | "eTag" | "provisioningState"));
                m.values_mut().for_each(scrub);
            }
            Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(&inv.to_json()).unwrap();
    scrub(&mut v);
    v
}

/// The JSON pointers where `a` and `b` differ, with both values. Arrays of resources are
/// matched by `id`, so an added or removed resource is named rather than dumped.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    fn id_of(v: &Value) -> Option<&str> {
        v.get("id").and_then(Value::as_str)
    }
    fn walk(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = Value::Null;
                    walk(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), format!("{at}/{k}"), out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.iter().chain(y).all(|v| id_of(v).is_some()) => {
                for p in x {
                    let id = id_of(p).unwrap_or_default();
                    match y.iter().find(|q| id_of(q).is_some_and(|i| same_id(i, id))) {
                        Some(q) => walk(p, q, format!("{at}[{id}]"), out),
                        None => out.push(format!("{at}: {id} is gone")),
                    }
                }
                for q in y {
                    let id = id_of(q).unwrap_or_default();
                    if !x.iter().any(|p| id_of(p).is_some_and(|i| same_id(i, id))) {
                        out.push(format!("{at}: {id} appeared: {q}"));
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(p, q, format!("{at}[{i}]"), out);
                }
            }
            _ if a != b => out.push(format!("{at}: {a} -> {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, String::new(), &mut out);
    out
}

/// Every exported resource as the emulator stores it (the full ARM body `GET` returns, not just
/// what the inventory model keeps), keyed by id, with the volatile fields removed: entity tags,
/// `provisioningState`, and the write timestamps ARM stamps (`createdOn`/`updatedOn`).
fn stored_bodies(p: &Provisioned) -> Value {
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| {
                    !matches!(k.as_str(), "etag" | "eTag" | "provisioningState" | "createdOn" | "updatedOn")
                });
                m.values_mut().for_each(scrub);
            }
            Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let export = normalised(&p.export());
    let mut out = serde_json::Map::new();
    for r in export["resources"].as_array().into_iter().flatten() {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let mut body = p.emu.resource(&id).unwrap_or(Value::Null);
        scrub(&mut body);
        out.insert(id.to_ascii_lowercase(), body);
    }
    Value::Object(out)
}

/// For every scenario whose fault touches Azure (ARM, Graph, or an emulator-only edit): a fresh
/// emulator with the scenario's baseline, export A; the fault changes the export; its inverse
/// brings it back to A (modulo entity tags and provisioning states). Cluster-only faults
/// (`setImage`) are checked in `catalog.rs::every_fault_has_an_inverse_that_undoes_it`.
#[tokio::test]
async fn every_fault_touching_azure_is_undone_by_its_inverse() {
    let cat = Catalog::load(&Layout::under(&root()));
    assert!(cat.diagnostics.is_empty(), "{:?}", cat.diagnostics);
    let mut failures = Vec::new();
    let mut checked = 0;
    for e in &cat.entries {
        let name = &e.scenario.name;
        let fault = &e.scenario.fault;
        let fwd = fault.mutation();
        let inv = fault.inverse(&e.baseline);
        let w = World::new("s", "t");
        let touches =
            |m: &Mutation| matches!(realise(m, &e.baseline, &w), Realisation::Azure(_) | Realisation::Emulator(_));
        if !touches(&fwd) && !touches(&inv) {
            continue;
        }
        checked += 1;
        let mut p = Provisioned::new(e.baseline.clone()).await;
        let a = normalised(&p.export());
        let a_stored = stored_bodies(&p);
        let passwords_before = if e.baseline.registry.admin_user_enabled { p.admin_passwords().await } else { vec![] };

        assert!(p.apply(&fwd).await, "{name}: the fault touches Azure");
        let b = normalised(&p.export());
        match fault {
            // Admin passwords are secrets the export never holds: the fault shows in
            // `listCredentials` instead.
            Fault::RegenerateRegistryPassword { password } => {
                let after = p.admin_passwords().await;
                let slot = if password == "password2" { 1 } else { 0 };
                if after[slot] == passwords_before[slot] || after[1 - slot] != passwords_before[1 - slot] {
                    failures.push(format!("{name}: regenerating `{password}` did not change exactly that password"));
                }
            }
            _ => {
                if a == b {
                    failures.push(format!("{name}: the fault left the export unchanged"));
                }
            }
        }
        if let Fault::ExpireApplicationSecret { application } = fault
            && p.secret_works(application).await
        {
            failures.push(format!("{name}: {application}'s secret still works after the fault"));
        }

        let inverse_touches_azure = p.apply(&inv).await;
        let c = normalised(&p.export());
        let mut diff = differences(&a, &c);
        diff.extend(differences(&a_stored, &stored_bodies(&p)).into_iter().map(|d| format!("(stored) {d}")));
        if matches!(fault, Fault::RecreatePrivateEndpointManual { .. }) {
            // A re-created endpoint gets a new NIC (a new GUID in its name), as in Azure.
            diff.retain(|d| !d.contains("/properties/networkInterfaces"));
        }
        if !diff.is_empty() {
            failures.push(format!(
                "{name}: the inverse ({}) did not restore the world:\n  {}",
                inv.describe(),
                diff.join("\n  ")
            ));
        }
        match fault {
            // A regenerated password cannot be un-regenerated: Azure has no API to set it back.
            // The inverse is a cluster operation (refresh the pull secret from the registry's
            // current credentials), so the Azure side keeps the new password; what must hold is
            // that the registry still answers `listCredentials` with it.
            Fault::RegenerateRegistryPassword { .. } => {
                assert!(!inverse_touches_azure, "{name}: the inverse is a cluster operation");
                let now = p.admin_passwords().await;
                if now == passwords_before {
                    failures.push(format!("{name}: the regenerated password came back, which Azure cannot do"));
                }
            }
            Fault::ExpireApplicationSecret { application } => {
                if !p.secret_works(application).await {
                    failures.push(format!("{name}: {application}'s original secret does not work after the inverse"));
                }
            }
            _ => assert!(inverse_touches_azure, "{name}: the inverse ({}) touches Azure", inv.describe()),
        }
        p.emu.shutdown().await;
    }
    assert!(checked >= 10, "only {checked} scenarios touch Azure: is the catalog loading?");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The router lets the node reach the private endpoint only while the registry has approved its
/// connection: the manual request of `private-endpoint-not-approved` is dropped, the baseline's
/// automatic one passes, and so does the manual one once the owner approves it.
#[tokio::test]
async fn router_follows_the_private_endpoint_approval() {
    use pullproof::backend::host::realise::{NodePlacement, policy};
    let b = baselines().into_iter().find(|b| b.name == "private-registry").expect("baseline private-registry");
    let mut p = Provisioned::new(b.clone()).await;
    let node = NodePlacement::of(&b, &p.world).unwrap();
    let pe_ip = b.registry.private_endpoint.as_ref().unwrap().ip.clone();
    let reaches =
        |p: &Provisioned| policy(&p.emu.data_plane(), &node).allowed.iter().any(|f| f.dst.addr().to_string() == pe_ip);
    assert!(reaches(&p), "the baseline's endpoint carries traffic");

    let fault = Fault::RecreatePrivateEndpointManual { request_message: "please".into() };
    assert!(p.apply(&fault.mutation()).await);
    assert!(!reaches(&p), "a Pending connection carries no traffic");

    // The registry's owner approves it (what pulldoctor proposes).
    use pullproof::arm::Request;
    let api = azure_model::api_version::CONTAINER_REGISTRY;
    let list = format!("{}/privateEndpointConnections", p.world.registry(&b));
    let conns = p.exec.run(&Request::get(list, api, "list")).await.expect("the registry lists its connections");
    let conn = conns["value"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(conns["value"][0]["properties"]["privateLinkServiceConnectionState"]["status"], "Pending");
    let body = serde_json::json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}});
    let answer = p.exec.run(&Request::put(conn, api, body, "approve")).await.expect("the owner approves");
    assert_eq!(answer["properties"]["privateLinkServiceConnectionState"]["status"], "Approved");
    assert!(reaches(&p), "an approved manual connection carries traffic");

    assert!(p.apply(&fault.inverse(&b)).await);
    assert!(reaches(&p), "the inverse restores the automatic connection");
    p.emu.shutdown().await;
}

/// Custom DNS: the node reaches its VNet's DNS forwarder through the peering (unless an NSG
/// denies DNS), and the forwarder resolves the registry as its own VNet (the hub) sees it: the
/// hub's zone link decides, the spoke's does not.
#[tokio::test]
async fn custom_dns_resolves_as_the_forwarders_vnet_sees_it() {
    use pullproof::backend::host::realise::{NodePlacement, dns_view, dns_view_of, policy, topology_spec};
    use pullproof_host_net::dns::{RData, rcode, rtype};
    let b = baselines().into_iter().find(|b| b.name == "custom-dns").expect("baseline custom-dns");
    let spec = topology_spec(&b).unwrap();
    assert_eq!(spec.node.dns_servers, [std::net::Ipv4Addr::new(10, 2, 1, 4)]);
    assert_eq!(spec.dns_forwarders[0].vnet, "hub-vnet");
    spec.validate().unwrap();

    let mut p = Provisioned::new(b.clone()).await;
    let node = NodePlacement::of(&b, &p.world).unwrap();
    let hub = p.world.vnet(&b, "hub-vnet");
    let login = b.registry.login_server();
    let address = |view: pullproof_host_net::DnsView| {
        let (code, answers) = view.resolve(&login, rtype::A);
        assert_eq!(code, rcode::NOERROR);
        answers.into_iter().find_map(|(_, d)| match d {
            RData::A(ip) => Some(ip.to_string()),
            _ => None,
        })
    };
    let dp = p.emu.data_plane();
    assert!(policy(&dp, &node).allowed.iter().any(|f| f.dst.addr().to_string() == "10.2.1.4"), "DNS reaches the hub");
    assert_eq!(address(dns_view_of(&dp, &hub)).as_deref(), Some("10.2.0.5"), "the hub resolves privately");

    let fault = Fault::DeleteVnetLink { zone: "privatelink.azurecr.io".into(), vnet: "hub-vnet".into() };
    assert!(p.apply(&fault.mutation()).await);
    let dp = p.emu.data_plane();
    assert_eq!(address(dns_view(&dp, &node)).as_deref(), Some("10.2.0.5"), "the spoke's own view is still private");
    assert_eq!(
        address(dns_view_of(&dp, &hub)).as_deref(),
        Some(pullproof::backend::host::realise::PUBLIC_REGISTRY_IP.to_string().as_str()),
        "the forwarder's view is public"
    );
    assert!(p.apply(&fault.inverse(&b)).await);
    assert_eq!(address(dns_view_of(&p.emu.data_plane(), &hub)).as_deref(), Some("10.2.0.5"));
    p.emu.shutdown().await;
}

/// A route to the world's appliance is realised as the router's own (`RouteFate::Appliance`);
/// a route to any other appliance address forwards as before, and the inverse removes it.
#[tokio::test]
async fn routes_to_the_appliance_are_delivered_to_it() {
    use pullproof::backend::host::realise::{NodePlacement, routes};
    use pullproof::baseline::{NextHopType, Route};
    use pullproof_host_net::RouteFate;
    let b = baselines().into_iter().find(|b| b.name == "hub-firewall-inspecting").expect("baseline");
    let mut p = Provisioned::new(b.clone()).await;
    let node = NodePlacement::of(&b, &p.world).unwrap();
    assert_eq!(node.appliance, Some(std::net::Ipv4Addr::new(10, 2, 1, 4)));
    let fate_of = |p: &Provisioned, prefix: &str| {
        routes(&p.emu.data_plane(), &node)
            .iter()
            .filter(|r| r.prefix.to_string() == prefix)
            .map(|r| r.fate)
            .collect::<Vec<_>>()
    };
    assert!(fate_of(&p, "10.2.0.0/24").is_empty());
    let route = |name: &str, hop: &str| Route {
        name: name.into(),
        address_prefix: "10.2.0.0/24".into(),
        next_hop_type: NextHopType::VirtualAppliance,
        next_hop_ip_address: Some(hop.into()),
    };
    let fault = Fault::AddRoute { route_table: "aks-nodes-routes".into(), route: route("via-fw", "10.2.1.4") };
    assert!(p.apply(&fault.mutation()).await);
    assert_eq!(fate_of(&p, "10.2.0.0/24"), [RouteFate::Appliance]);
    assert!(p.apply(&fault.inverse(&b)).await);
    assert!(fate_of(&p, "10.2.0.0/24").is_empty());
    // Another appliance address is not the world's appliance: forwarded.
    let other = Fault::AddRoute { route_table: "aks-nodes-routes".into(), route: route("via-other", "10.2.1.9") };
    assert!(p.apply(&other.mutation()).await);
    assert_eq!(fate_of(&p, "10.2.0.0/24"), [RouteFate::Forward]);
    p.emu.shutdown().await;
}

/// Dedicated data endpoints: the registry names its data host, the private endpoint holds the
/// baseline's data address, and the zone answers it, as the node's VNet resolves it.
#[tokio::test]
async fn data_endpoints_get_their_address_and_record() {
    use pullproof::backend::host::realise::{NodePlacement, dns_view, policy, topology_spec};
    use pullproof_host_net::dns::{RData, rtype};
    let b = baselines().into_iter().find(|b| b.name == "data-endpoint-registry").expect("baseline");
    let p = Provisioned::new(b.clone()).await;
    let dp = p.emu.data_plane();
    let r = dp.registries.first().expect("the registry");
    assert_eq!(r.data_endpoints, ["pullproofacr.westeurope.data.azurecr.io"]);
    let ips: Vec<String> = r.private_endpoints[0].ip_addresses.iter().map(|i| i.to_string()).collect();
    assert_eq!(ips, ["10.2.0.5", "10.2.0.6"]);
    let node = NodePlacement::of(&b, &p.world).unwrap();
    let (_, answers) = dns_view(&dp, &node).resolve("pullproofacr.westeurope.data.azurecr.io", rtype::A);
    assert!(answers.iter().any(|(_, d)| matches!(d, RData::A(ip) if ip.to_string() == "10.2.0.6")), "{answers:?}");
    assert!(policy(&dp, &node).allowed.iter().any(|f| f.dst.addr().to_string() == "10.2.0.6"));
    assert!(topology_spec(&b).unwrap().endpoints.iter().any(|e| e.ip.to_string() == "10.2.0.6"));
    p.emu.shutdown().await;
}
