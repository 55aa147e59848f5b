//! The Action -> requests translation, guards and derived bodies: pure, no network.

use std::collections::BTreeMap;

use base64::Engine;
use pulldoctor::apply::PlanContext;
use pulldoctor::apply::translate::{
    Derive, Guard, Service, Source, Verdict, docker_login, role_assignment_name, translate,
};
use pulldoctor::plan::{Action, WorkloadRef};
use serde_json::json;
use time::OffsetDateTime;

const SUB: &str = "/subscriptions/s1";
const REG: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr";

fn inventory() -> azure_model::Inventory {
    azure_model::Inventory::from_json(&format!(
        r#"{{"resources": [
          {{"id": "{REG}", "name": "acr", "type": "Microsoft.ContainerRegistry/registries", "properties": {{"loginServer": "acr.azurecr.io"}}}},
          {{"id": "{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks", "name": "aks",
            "type": "Microsoft.ContainerService/managedClusters", "properties": {{"nodeResourceGroup": "MC_rg_aks"}}}}
        ]}}"#
    ))
    .unwrap()
}

fn web() -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() }
}

fn every_action() -> Vec<Action> {
    vec![
        Action::CreateRoleAssignment {
            scope: REG.into(),
            principal_id: "p1".into(),
            principal_type: "ServicePrincipal".into(),
            role_definition_guid: "7f951dda-4ed3-4680-a7ca-43fe172d538d".into(),
            role_name: "AcrPull".into(),
        },
        Action::CreateVnetLink {
            zone_id: format!(
                "{SUB}/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io"
            ),
            link_name: "aks-link".into(),
            vnet_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/aks"),
        },
        Action::CreatePeering {
            vnet_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/aks"),
            name: "aks-to-hub".into(),
            remote_vnet_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/hub"),
        },
        Action::AddRegistryIpRule { registry_id: REG.into(), ip: "203.0.113.9".into() },
        Action::AllowNsgRule {
            nsg_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"),
            rule_name: "allow".into(),
            priority: 199,
            destination: "10.0.0.4".into(),
            port: 443,
        },
        Action::SetRouteNextHop {
            route_table_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt"),
            route_name: "r".into(),
            address_prefix: "10.0.0.0/24".into(),
            next_hop_type: "VnetLocal".into(),
        },
        Action::ReconcileCluster {
            cluster_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"),
        },
        Action::RotateServicePrincipalSecret {
            app_id: "app1".into(),
            cluster_id: Some(format!(
                "{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
            )),
        },
        Action::RotateServicePrincipalSecret { app_id: "app2".into(), cluster_id: None },
        Action::ReplacePullSecret {
            namespace: "shop".into(),
            secret_name: "sp".into(),
            registry: "acr.azurecr.io".into(),
            credential_source: "newServicePrincipalSecret:app2".into(),
        },
        Action::ReplacePullSecret {
            namespace: "shop".into(),
            secret_name: "admin".into(),
            registry: "acr.azurecr.io".into(),
            credential_source: "adminCredentials".into(),
        },
        Action::SetNodeSelector {
            workload: web(),
            node_selector: BTreeMap::from([("kubernetes.io/os".into(), "windows".into())]),
        },
        Action::SetImage { workload: web(), container: "web".into(), image: "acr.azurecr.io/web:2".into() },
        Action::Manual { description: "do it".into(), commands: vec!["az something".into()], change: None },
    ]
}

fn ctx(inv: &azure_model::Inventory) -> PlanContext<'_> {
    PlanContext { inventory: inv, now: OffsetDateTime::now_utc() }
}

#[test]
fn every_action_translates_and_nothing_deletes() {
    let inv = inventory();
    let steps = translate(&every_action(), &ctx(&inv));
    // The rotation and the pull secret that uses its new secret are one step.
    assert_eq!(steps.len(), every_action().len() - 1);
    for s in &steps {
        for r in s.reads.iter().chain(s.writes.iter().map(|w| &w.request)) {
            assert_ne!(r.method, "DELETE", "{}", s.summary);
        }
        if s.manual.is_none() {
            assert!(!s.reads.is_empty(), "{}: no check before writing", s.summary);
            assert!(!s.writes.is_empty(), "{}", s.summary);
        }
    }
    let lines: Vec<String> = steps.iter().flat_map(|s| s.writes.iter().map(|w| w.request.line())).collect();
    assert!(
        lines[0].starts_with(&format!("PUT {REG}/providers/Microsoft.Authorization/roleAssignments/")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.ends_with("/virtualNetworkLinks/aks-link")));
    assert!(lines.iter().any(|l| l.ends_with("/virtualNetworkPeerings/aks-to-hub")));
    assert!(lines.iter().any(|l| l == &format!("PATCH {REG}")));
    assert!(lines.iter().any(|l| l.ends_with("/securityRules/allow")));
    assert!(lines.iter().any(|l| l.ends_with("/routes/r")));
    assert!(lines.iter().any(|l| l.ends_with("/resetServicePrincipalProfile")));
    assert!(lines.iter().any(|l| l == "POST /v1.0/applications(appId='app2')/addPassword"));
    assert!(lines.iter().any(|l| l == "PATCH /api/v1/namespaces/shop/secrets/sp"));
    assert!(lines.iter().any(|l| l == "PATCH /apis/apps/v1/namespaces/shop/deployments/web"));
    let merged = steps.iter().find(|s| s.actions.len() == 2).unwrap();
    assert_eq!(merged.writes[0].capture.as_ref().unwrap().name, "secret:app2");
    assert!(
        matches!(&merged.writes[1].derive, Some(Derive::DockerConfig { password: Source::Binding { name }, .. }) if name == "secret:app2")
    );
    let admin = steps.iter().find(|s| s.target == "shop/admin").unwrap();
    assert_eq!(admin.reads[0].line(), format!("POST {REG}/listCredentials"));
    assert_eq!(admin.reads[1].service, Service::Kubernetes);
    assert!(steps.last().unwrap().manual.is_some());
    // The plan as JSON holds no secret: there is none yet.
    let json = serde_json::to_string(&steps).unwrap();
    assert!(!json.contains("secretText\":\""));
}

#[test]
fn role_assignment_names_are_deterministic() {
    let a = role_assignment_name(REG, "P1", "7f951dda-4ed3-4680-a7ca-43fe172d538d");
    assert_eq!(a, role_assignment_name(&REG.to_uppercase(), "p1", "7F951DDA-4ED3-4680-A7CA-43FE172D538D"));
    assert_ne!(a, role_assignment_name(REG, "p2", "7f951dda-4ed3-4680-a7ca-43fe172d538d"));
    assert!(uuid::Uuid::parse_str(&a).is_ok());
}

#[test]
fn what_cannot_be_automated_asks_a_person() {
    let inv = azure_model::Inventory::default();
    let actions = vec![
        Action::SetNodeSelector {
            workload: WorkloadRef { kind: "Pod".into(), namespace: "n".into(), name: "p".into() },
            node_selector: BTreeMap::new(),
        },
        Action::ReplacePullSecret {
            namespace: "n".into(),
            secret_name: "s".into(),
            registry: "unknown.azurecr.io".into(),
            credential_source: "adminCredentials".into(),
        },
        Action::ReplacePullSecret {
            namespace: "n".into(),
            secret_name: "s".into(),
            registry: "acr.azurecr.io".into(),
            credential_source: "newServicePrincipalSecret:x".into(),
        },
        Action::ReconcileCluster {
            cluster_id: format!("{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/unknown"),
        },
    ];
    for s in translate(&actions, &ctx(&inv)) {
        let m = s.manual.as_ref().unwrap_or_else(|| panic!("{} should be manual", s.summary));
        assert!(!m.commands.is_empty(), "{}", s.summary);
    }
}

#[test]
fn guards_judge_the_current_state() {
    let now = OffsetDateTime::now_utc();
    let v = |g: &Guard, reads: &[serde_json::Value]| g.verdict(reads, now);
    let ra = Guard::RoleAssigned { principal_id: "p1".into(), role_guid: "r1".into() };
    assert_eq!(v(&ra, &[json!({"value": []})]), Verdict::Needed);
    assert_eq!(
        v(
            &ra,
            &[json!({"value": [{"properties": {"principalId": "P1", "roleDefinitionId": "/x/roleDefinitions/R1"}}]})]
        ),
        Verdict::Done
    );

    let ip = Guard::IpAllowed { ip: "203.0.113.9".into() };
    assert_eq!(
        v(
            &ip,
            &[
                json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}}})
            ]
        ),
        Verdict::Done
    );
    assert_eq!(
        v(&ip, &[json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": []}}})]),
        Verdict::Needed
    );

    let peer = Guard::PeeringUp { remote_vnet_id: "/v/hub".into(), name: "a-to-hub".into() };
    let vnet = |state: &str, remote: &str| json!({"properties": {"virtualNetworkPeerings": [{"name": "a-to-hub", "properties": {"remoteVirtualNetwork": {"id": remote}, "peeringState": state}}]}});
    assert_eq!(v(&peer, &[vnet("Connected", "/v/HUB")]), Verdict::Done);
    assert_eq!(v(&peer, &[vnet("Initiated", "/v/hub")]), Verdict::Done);
    assert_eq!(v(&peer, &[vnet("Disconnected", "/v/hub")]), Verdict::Needed);
    assert!(matches!(v(&peer, &[vnet("Connected", "/v/other")]), Verdict::Conflict(_)));

    let nsg = Guard::NsgRule { name: "allow".into(), priority: 199, destination: "10.0.0.4".into(), port: 443 };
    let rule = |name: &str, prio: u32| json!({"name": name, "properties": {"access": "Allow", "direction": "Outbound", "destinationAddressPrefix": "10.0.0.4", "destinationPortRange": "443", "priority": prio}});
    assert_eq!(v(&nsg, &[json!({"properties": {"securityRules": [rule("allow", 199)]}})]), Verdict::Done);
    assert!(matches!(
        v(&nsg, &[json!({"properties": {"securityRules": [rule("theirs", 199)]}})]),
        Verdict::Conflict(_)
    ));

    let sel =
        Guard::NodeSelector { selector: BTreeMap::from([("kubernetes.io/os".into(), "windows".into())]), pod: false };
    assert_eq!(
        v(
            &sel,
            &[json!({"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "windows", "x": "y"}}}}})]
        ),
        Verdict::Done
    );
    assert_eq!(v(&sel, &[json!({"spec": {"template": {"spec": {}}}})]), Verdict::Needed);

    let app = |end: &str, hint: &str| json!({"passwordCredentials": [{"endDateTime": end, "hint": hint}]});
    assert_eq!(v(&Guard::AppHasValidSecret, &[app("2020-01-01T00:00:00Z", "abc")]), Verdict::Needed);
    assert_eq!(v(&Guard::AppHasValidSecret, &[app("2099-01-01T00:00:00Z", "abc")]), Verdict::Done);
    let secret = |user: &str, pass: &str| {
        let cfg = json!({"auths": {"acr.azurecr.io": {"username": user, "password": pass}}});
        json!({"data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())}})
    };
    let g = Guard::SecretHoldsValidAppSecret { registry: "acr.azurecr.io".into(), app_id: "app2".into() };
    assert_eq!(v(&g, &[app("2099-01-01T00:00:00Z", "abc"), secret("app2", "abcdef")]), Verdict::Done);
    assert_eq!(v(&g, &[app("2099-01-01T00:00:00Z", "abc"), secret("app2", "xyz")]), Verdict::Needed);
    let admin = Guard::SecretHoldsAdmin { registry: "acr.azurecr.io".into() };
    let creds = json!({"username": "acr", "passwords": [{"name": "password", "value": "p1"}, {"name": "password2", "value": "p2"}]});
    assert_eq!(v(&admin, &[creds.clone(), secret("acr", "p2")]), Verdict::Done);
    assert_eq!(v(&admin, &[creds.clone(), secret("acr", "old")]), Verdict::Needed);
    // The summary never shows a password.
    let summary = admin.summary(&[creds, secret("acr", "old")], now).to_string();
    assert!(!summary.contains("old") && !summary.contains("p1"), "{summary}");
}

#[test]
fn derived_bodies() {
    let bindings = BTreeMap::from([("secret:app".to_string(), "n3w".to_string())]);
    let cfg = json!({"auths": {"https://acr.azurecr.io/v2/": {"auth": base64::engine::general_purpose::STANDARD.encode("app:old")}, "other.io": {"username": "u", "password": "q"}}});
    let secret =
        json!({"data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())}});
    let d = Derive::DockerConfig {
        secret_read: 0,
        registry: "acr.azurecr.io".into(),
        username: Source::Literal { value: "app".into() },
        password: Source::Binding { name: "secret:app".into() },
        object: None,
    };
    let body = d.body(std::slice::from_ref(&secret), &bindings).unwrap();
    let patched = json!({"data": {".dockerconfigjson": body["data"][".dockerconfigjson"].clone()}});
    assert_eq!(docker_login(&patched, "acr.azurecr.io"), Some(("app".into(), "n3w".into())));
    assert_eq!(docker_login(&patched, "other.io"), Some(("u".into(), "q".into())), "other registries are kept");

    // For a server-side apply the body is the whole Secret; a missing one (read answered null)
    // gets a config with just the registry's entry.
    let object = Some(pulldoctor::apply::ObjectRef { namespace: "shop".into(), name: "acr".into() });
    let whole = Derive::DockerConfig {
        secret_read: 0,
        registry: "acr.azurecr.io".into(),
        username: Source::Literal { value: "app".into() },
        password: Source::Binding { name: "secret:app".into() },
        object: object.clone(),
    };
    let existing = whole.body(&[secret], &bindings).unwrap();
    assert_eq!(
        (existing["kind"].as_str(), existing["type"].as_str()),
        (Some("Secret"), Some("kubernetes.io/dockerconfigjson"))
    );
    assert_eq!(existing["metadata"], json!({"name": "acr", "namespace": "shop"}));
    assert_eq!(docker_login(&existing, "other.io"), Some(("u".into(), "q".into())), "other registries are kept");
    let created = whole.body(&[serde_json::Value::Null], &bindings).unwrap();
    assert_eq!(docker_login(&created, "acr.azurecr.io"), Some(("app".into(), "n3w".into())));

    let ip = Derive::AppendIpRule { ip: "203.0.113.9".into() }
        .body(&[json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "1.2.3.4"}]}}})], &bindings)
        .unwrap();
    assert_eq!(ip["properties"]["networkRuleSet"]["ipRules"].as_array().unwrap().len(), 2);
    assert_eq!(ip["properties"]["networkRuleSet"]["defaultAction"], "Deny");

    let init = Derive::SetImage { workload_read: 0, pod: false, container: "setup".into(), image: "i:2".into() }
        .body(&[json!({"spec": {"template": {"spec": {"initContainers": [{"name": "setup", "image": "i:1"}], "containers": [{"name": "web"}]}}}})], &bindings)
        .unwrap();
    assert_eq!(init, json!({"spec": {"template": {"spec": {"initContainers": [{"name": "setup", "image": "i:2"}]}}}}));

    let cluster = Derive::ClusterPut
        .body(&[json!({"id": "c", "properties": {"provisioningState": "Succeeded", "fqdn": "x", "servicePrincipalProfile": {"clientId": "msi"}, "agentPoolProfiles": [{"name": "a", "provisioningState": "Succeeded"}]}})], &bindings)
        .unwrap();
    assert!(cluster["properties"].get("provisioningState").is_none());
    assert!(cluster["properties"].get("servicePrincipalProfile").is_none());
    assert!(cluster["properties"]["agentPoolProfiles"][0].get("provisioningState").is_none());

    let missing =
        Derive::ResetServicePrincipal { client_id: "a".into(), secret: Source::Binding { name: "nope".into() } }
            .body(&[], &bindings);
    assert!(missing.is_err());
}

#[tokio::test]
async fn merged_steps_print_each_command_and_service_once() {
    let inv = inventory();
    let actions = vec![
        Action::RotateServicePrincipalSecret { app_id: "app2".into(), cluster_id: None },
        Action::ReplacePullSecret {
            namespace: "shop".into(),
            secret_name: "sp".into(),
            registry: "acr.azurecr.io".into(),
            credential_source: "newServicePrincipalSecret:app2".into(),
        },
    ];
    let raw: Vec<String> = actions.iter().flat_map(|a| a.commands()).collect();
    let actions_commands_len = |a: &[Action]| a.iter().map(|a| a.commands().len()).sum::<usize>();
    let steps = translate(&actions, &ctx(&inv));
    assert_eq!(steps.len(), 1);
    let executor = pulldoctor::apply::Executor {
        connections: pulldoctor::apply::Connections::default(),
        apply: false,
        now: OffsetDateTime::now_utc(),
    };
    let audit = executor.run(&steps).await;
    let rec = &audit.records[0];
    let mut seen = std::collections::BTreeSet::new();
    for c in &rec.commands {
        assert!(seen.insert(c), "printed twice: {c}\n{:#?}", rec.commands);
    }
    // Every distinct line is kept, in the order it first appears.
    let mut expected = Vec::new();
    for c in raw {
        if !expected.contains(&c) {
            expected.push(c);
        }
    }
    assert_eq!(rec.commands, expected);
    assert!(expected.len() < actions_commands_len(&actions), "the actions share a line (e.g. SECRET=)");
    let note = rec.note.as_deref().unwrap();
    assert_eq!(note, "no connection to Graph, Kubernetes to check or change it");
}
