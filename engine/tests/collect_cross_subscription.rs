//! A registry shared from another subscription: the emulator knows one subscription, so a proxy
//! in front of it shows more (`GET /subscriptions`), takes the fixture's registry out of the
//! cluster's subscription and lists it in another one. The live diagnosis must find it there,
//! or say in `unavailable` that it was found nowhere, within a bounded number of requests.

mod collect_support;

use std::sync::Arc;

use collect_support::{KubeState, MockKube, Post, Pre, RewritingProxy, emulator, fixtures};
use pulldoctor::collect::{self, KubeOptions, Selection, Target};
use pulldoctor::diagnose;
use serde_json::{Value, json};

const FIXTURE: &str = "acrpull-role-missing";

fn shop() -> Selection {
    Selection { namespace: Some("shop".into()), ..Default::default() }
}

fn other_sub(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The world as the proxy shows it: `others` extra subscriptions; the fixture's registry is
/// listed in the one at index `registry_in` (none: nowhere), never in the cluster's.
async fn world(emu: &pullproof_emulator::RunningEmulator, others: usize, registry_in: Option<usize>) -> RewritingProxy {
    let sub = emu.subscription_id().to_string();
    let registry = emu.resource(&emu.export().registries[0].id).unwrap();
    let login = registry["properties"]["loginServer"].as_str().unwrap().to_string();
    let pre: Pre = Arc::new(move |method, pq| {
        let path = pq.split('?').next().unwrap_or(pq).to_ascii_lowercase();
        if method != "GET" {
            return None;
        }
        for i in 0..others {
            if path == format!("/subscriptions/{}/providers/microsoft.containerregistry/registries", other_sub(i)) {
                let value = if registry_in == Some(i) { vec![registry.clone()] } else { vec![] };
                return Some((200, json!({"value": value})));
            }
        }
        None
    });
    let post: Post = Arc::new(move |method, pq, status, mut v| {
        let path = pq.split('?').next().unwrap_or(pq).to_ascii_lowercase();
        if method == "GET" && path == "/subscriptions" {
            let list = v["value"].as_array_mut().unwrap();
            for i in 0..others {
                list.push(json!({"id": format!("/subscriptions/{}", other_sub(i)), "subscriptionId": other_sub(i),
                    "displayName": format!("shared {i}"), "state": "Enabled"}));
            }
        }
        if method == "GET"
            && path
                == format!("/subscriptions/{sub}/providers/microsoft.containerregistry/registries").to_ascii_lowercase()
        {
            let list = v["value"].as_array_mut().unwrap();
            list.retain(|r| !r["properties"]["loginServer"].as_str().unwrap_or_default().eq_ignore_ascii_case(&login));
        }
        (status, v)
    });
    RewritingProxy::start(emu, pre, post).await
}

fn count(log: &[String], f: impl Fn(&str) -> bool) -> usize {
    log.iter().filter(|l| f(&l.split('?').next().unwrap_or(l).to_ascii_lowercase())).count()
}

fn registry_lists(log: &[String]) -> usize {
    count(log, |l| l.ends_with("/providers/microsoft.containerregistry/registries"))
}

fn subscription_lists(log: &[String]) -> usize {
    count(log, |l| l == "get /subscriptions")
}

#[tokio::test]
async fn a_registry_in_another_subscription_is_found() {
    let emu = emulator(FIXTURE).await;
    let proxy = world(&emu, 2, Some(1)).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(FIXTURE).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    assert_eq!(live.evidence.azure.registries.len(), 1, "{log:#?}");
    assert!(live.evidence.azure.unavailable.is_empty(), "{:?}", live.evidence.azure.unavailable);
    let report = collect::report(&diagnose(&live.evidence), &live.evidence);
    let codes: Vec<String> = report.findings.iter().map(|f| f.code.to_string()).collect();
    assert_eq!(codes, ["ACR_PULL_ROLE_MISSING"], "{log:#?}");
    // The cluster's subscription, then both others in one batch; the subscriptions once.
    assert_eq!(subscription_lists(&log), 1, "{log:#?}");
    assert_eq!(registry_lists(&log), 3, "{log:#?}");
    assert!(live.arm_requests <= 15 + 3, "{} ARM requests: {log:#?}", live.arm_requests);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_registry_found_nowhere_is_reported_unavailable() {
    let emu = emulator(FIXTURE).await;
    let proxy = world(&emu, 2, None).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(FIXTURE).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let u = &live.evidence.azure.unavailable;
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].what, "azure: unknown registry acrshopweu");
    assert!(u[0].reason.contains("acrshopweu.azurecr.io"), "{u:?}");
    assert!(u[0].reason.contains("nor in the 2 other subscription(s)"), "{u:?}");
    let report = collect::report(&diagnose(&live.evidence), &live.evidence);
    assert_eq!(report.unavailable, *u);
    let evidence_unavailable = report.findings.iter().find(|f| f.code.to_string() == "EVIDENCE_UNAVAILABLE").unwrap();
    assert!(evidence_unavailable.evidence.iter().any(|e| e.contains("unknown registry acrshopweu")));
    emu.shutdown().await;
}

#[tokio::test]
async fn the_search_is_bounded_and_stops_when_found() {
    // Found in the 6th other subscription: two batches of 4, then it stops.
    let emu = emulator(FIXTURE).await;
    let proxy = world(&emu, 14, Some(5)).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(FIXTURE).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    assert_eq!(live.evidence.azure.registries.len(), 1);
    assert_eq!(registry_lists(&log), 1 + 8, "{log:#?}");
    emu.shutdown().await;

    // Found nowhere among 14: at most 10 are searched, and the report says so.
    let emu = emulator(FIXTURE).await;
    let proxy = world(&emu, 14, None).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(FIXTURE).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    assert_eq!(registry_lists(&log), 1 + collect::azure::MAX_OTHER_SUBSCRIPTIONS, "{log:#?}");
    let u = &live.evidence.azure.unavailable;
    assert!(u[0].reason.contains("4 more subscription(s) were not searched"), "{u:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn one_subscription_costs_nothing_more() {
    // The registry is in the cluster's subscription: no subscription listing at all.
    let emu = emulator(FIXTURE).await;
    let proxy = RewritingProxy::start(&emu, Arc::new(|_, _| None), Arc::new(|_, _, s, v| (s, v))).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(FIXTURE).join("dump"))).await;
    collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
        .await
        .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    assert_eq!(subscription_lists(&log), 0, "{log:#?}");
    assert_eq!(registry_lists(&log), 1, "{log:#?}");
    emu.shutdown().await;

    // Without provider ids stage 0 lists the subscriptions; the search reuses that answer, and
    // with no other subscription says the registry is nowhere to be seen.
    let emu = emulator(FIXTURE).await;
    let proxy = world(&emu, 0, None).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mut state = KubeState::from_dump(&fixtures().join(FIXTURE).join("dump"));
    for (plural, _, o) in state.objects.iter_mut() {
        if plural == "nodes"
            && let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("providerID");
        }
    }
    let mock = MockKube::start(state).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    assert_eq!(subscription_lists(&log), 1, "{log:#?}");
    let u = &live.evidence.azure.unavailable;
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].reason.contains("(it sees no other)"), "{u:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_private_dns_zone_is_found_in_the_registrys_subscription() {
    // A hub subscription holds the registry (with its role assignments) and the
    // `privatelink.azurecr.io` zone; the cluster's subscription has neither.
    const PRIVATE: &str = "private-dns-missing";
    let emu = emulator(PRIVATE).await;
    let sub = emu.subscription_id().to_string();
    let hub = other_sub(0);
    let export = emu.export();
    let registry_id = export.registries[0].id.clone();
    let zone_id = export.private_dns_zones[0].id.clone();
    let moved = |v: &Value| -> Value {
        let text = v.to_string().replace(
            &format!("/subscriptions/{sub}/resourceGroups/rg-shop-acr"),
            &format!("/subscriptions/{hub}/resourceGroups/rg-shop-acr"),
        );
        serde_json::from_str(&text).unwrap()
    };
    let registry = moved(&emu.resource(&registry_id).unwrap());
    let hub_registry_id = registry["id"].as_str().unwrap().to_string();
    assert!(hub_registry_id.contains(&hub));
    let assignments: Vec<Value> = export
        .role_assignments
        .iter()
        .filter(|ra| ra.id.to_ascii_lowercase().starts_with(&registry_id.to_ascii_lowercase()))
        .map(|ra| moved(&emu.resource(&ra.id).unwrap()))
        .collect();
    let zone = emu.resource(&zone_id).unwrap();
    let login = registry["properties"]["loginServer"].as_str().unwrap().to_string();
    let (hub_pre, hub_id) = (hub.clone(), hub_registry_id.to_ascii_lowercase());
    let pre: Pre = Arc::new(move |method, pq| {
        let path = pq.split('?').next().unwrap_or(pq).to_ascii_lowercase();
        if method != "GET" {
            return None;
        }
        if path == format!("/subscriptions/{hub_pre}/providers/microsoft.containerregistry/registries") {
            return Some((200, json!({"value": [registry.clone()]})));
        }
        if path == format!("/subscriptions/{hub_pre}/providers/microsoft.network/privatednszones") {
            return Some((200, json!({"value": [zone.clone()]})));
        }
        if path == format!("{hub_id}/providers/microsoft.authorization/roleassignments") {
            return Some((200, json!({"value": assignments.clone()})));
        }
        None
    });
    let (sub_post, hub_post) = (sub.clone(), hub.clone());
    let post: Post = Arc::new(move |method, pq, status, mut v| {
        let path = pq.split('?').next().unwrap_or(pq).to_ascii_lowercase();
        if method != "GET" {
            return (status, v);
        }
        let mine = |kind: &str| path == format!("/subscriptions/{sub_post}/providers/{kind}").to_ascii_lowercase();
        if path == "/subscriptions" {
            v["value"].as_array_mut().unwrap().push(json!({"id": format!("/subscriptions/{hub_post}"),
                "subscriptionId": hub_post, "displayName": "hub", "state": "Enabled"}));
        } else if mine("microsoft.containerregistry/registries") {
            let list = v["value"].as_array_mut().unwrap();
            list.retain(|r| !r["properties"]["loginServer"].as_str().unwrap_or_default().eq_ignore_ascii_case(&login));
        } else if mine("microsoft.network/privatednszones") {
            v["value"] = json!([]);
        }
        (status, v)
    });
    let proxy = RewritingProxy::start(&emu, pre, post).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(PRIVATE).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    let zone_lists = count(&log, |l| l.ends_with("/providers/microsoft.network/privatednszones"));
    assert_eq!(zone_lists, 2, "the cluster's subscription and the registry's: {log:#?}");
    assert_eq!(live.evidence.azure.private_dns_zones.len(), 1, "{log:#?}");
    assert!(!live.evidence.azure.virtual_network_links.is_empty(), "{log:#?}");
    assert!(live.evidence.azure.unavailable.is_empty(), "{:?}", live.evidence.azure.unavailable);
    let report = collect::report(&diagnose(&live.evidence), &live.evidence);
    let codes: Vec<String> = report.findings.iter().map(|f| f.code.to_string()).collect();
    assert_eq!(codes, ["PRIVATE_DNS_ZONE_NOT_LINKED"], "{log:#?}");
    assert!(live.arm_requests <= 15 + 3, "{} ARM requests: {log:#?}", live.arm_requests);
    emu.shutdown().await;
}
