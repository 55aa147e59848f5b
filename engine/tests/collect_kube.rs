//! Kubernetes collection against recorded API responses served by an in-process API server:
//! paging with continue tokens, selection (namespace, pod, label selector), refused reads.

mod collect_support;

use collect_support::{KubeState, MockKube, fixtures};
use pulldoctor::collect::k8s::{self, KubeOptions, Selection};
use pulldoctor::collect::{self, Target};
use pulldoctor::finding::Confidence;
use pulldoctor::{Evidence, diagnose};

fn state(fixture: &str) -> KubeState {
    KubeState::from_dump(&fixtures().join(fixture).join("dump"))
}

fn shop() -> Selection {
    Selection { namespace: Some("shop".into()), ..Default::default() }
}

#[tokio::test]
async fn pages_through_every_list_with_continue_tokens() {
    let mut st = state("pull-secret-admin-stale");
    st.page_size_cap = Some(1);
    let mock = MockKube::start(st).await;
    let opts = KubeOptions { page_size: 1, concurrency: 4 };
    let k = k8s::collect(mock.client("shop"), &shop(), opts).await.unwrap();
    let offline = Evidence::load(&fixtures().join("pull-secret-admin-stale/dump"), None).unwrap();
    assert_eq!(k.pods.len(), 2, "the two failing pods (healthy ones dropped)");
    assert_eq!(k.nodes.len(), offline.nodes.len(), "every node, one per page");
    assert!(!k.events.is_empty());
    assert_eq!(k.secrets.len(), 1, "the referenced pull secret");
    assert!(k.unavailable.is_empty(), "{:?}", k.unavailable);
    let log = mock.state.lock().unwrap().log.clone();
    assert!(log.iter().any(|l| l.contains("/api/v1/nodes") && l.contains("continue=")), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("/namespaces/shop/pods") && l.contains("continue=")), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("fieldSelector=involvedObject.kind")), "{log:#?}");
    assert!(k.requests as usize >= log.len() - 1);
}

#[tokio::test]
async fn live_evidence_diagnoses_like_the_dump() {
    for fixture in ["acrpull-role-missing", "pull-secret-admin-stale", "platform-mismatch", "healthy-baseline"] {
        let mock = MockKube::start(state(fixture)).await;
        let live =
            collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), None, &Target::default())
                .await
                .unwrap();
        let mut evidence = live.evidence;
        let text = std::fs::read_to_string(fixtures().join(fixture).join("azure.json")).unwrap();
        evidence.azure = azure_model::Inventory::from_json(&text).unwrap();
        let offline =
            Evidence::load(&fixtures().join(fixture).join("dump"), Some(&fixtures().join(fixture).join("azure.json")))
                .unwrap();
        let got: Vec<_> = diagnose(&evidence).findings.iter().map(|f| (f.code, f.confidence, f.pods.clone())).collect();
        let want: Vec<_> = diagnose(&offline).findings.iter().map(|f| (f.code, f.confidence, f.pods.clone())).collect();
        assert_eq!(got, want, "{fixture}");
    }
}

#[tokio::test]
async fn one_pod_or_a_label_selector() {
    let mock = MockKube::start(state("acrpull-role-missing")).await;
    let client = mock.client("default");
    let all = k8s::collect(client.clone(), &shop(), KubeOptions::default()).await.unwrap();
    let name = all.pods[0].metadata.name.clone().unwrap();
    let one = Selection { namespace: Some("shop".into()), pod: Some(name.clone()), ..Default::default() };
    let k = k8s::collect(client.clone(), &one, KubeOptions::default()).await.unwrap();
    assert_eq!(k.pods.len(), 1);
    assert!(k.events.iter().all(|e| e.involved_object.name.as_deref() == Some(name.as_str())));
    let labels = all.pods[0].metadata.labels.clone().unwrap_or_default();
    let (key, value) = labels.iter().next().expect("the pods have labels");
    let sel =
        Selection { namespace: Some("shop".into()), selector: Some(format!("{key}={value}")), ..Default::default() };
    assert_eq!(k8s::collect(client.clone(), &sel, KubeOptions::default()).await.unwrap().pods.len(), 2);
    let none = Selection {
        namespace: Some("shop".into()),
        selector: Some("app=nothing-like-this".into()),
        ..Default::default()
    };
    assert!(k8s::collect(client.clone(), &none, KubeOptions::default()).await.unwrap().pods.is_empty());
    let every = Selection { all_namespaces: true, ..Default::default() };
    assert_eq!(k8s::collect(client, &every, KubeOptions::default()).await.unwrap().pods.len(), 2);
}

#[tokio::test]
async fn refused_secrets_are_unavailable_not_fatal_and_lower_confidence() {
    let mut st = state("pull-secret-admin-stale");
    st.forbidden.insert("secrets".into());
    let mock = MockKube::start(st).await;
    let live = collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), None, &Target::default())
        .await
        .expect("a 403 on secrets is not an error");
    let mut evidence = live.evidence;
    assert!(evidence.secrets.is_empty());
    let u = &evidence.azure.unavailable;
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].what.starts_with("kubernetes: secret shop/"), "{u:?}");
    assert!(u[0].reason.starts_with("403 Forbidden"), "{u:?}");
    let text = std::fs::read_to_string(fixtures().join("pull-secret-admin-stale/azure.json")).unwrap();
    let keep = evidence.azure.unavailable.clone();
    evidence.azure = azure_model::Inventory::from_json(&text).unwrap();
    evidence.azure.unavailable = keep;
    let report = collect::report(&diagnose(&evidence), &evidence);
    assert_eq!(report.unavailable.len(), 1);
    // Without the secret the kubelet identity is judged: whatever is concluded is not "high".
    assert!(
        report.findings.iter().filter(|f| f.code.is_cause()).all(|f| f.confidence != Confidence::High),
        "{:#?}",
        report.findings
    );
    assert!(report.findings.iter().any(|f| f.code == pulldoctor::FindingCode::EvidenceUnavailable));
}

#[tokio::test]
async fn refused_pods_are_an_error() {
    let mut st = state("acrpull-role-missing");
    st.forbidden.insert("pods".into());
    let mock = MockKube::start(st).await;
    let err = k8s::collect(mock.client("shop"), &shop(), KubeOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("cannot read pods (namespace shop)"), "{err}");
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn many_failing_pods_list_events_per_namespace() {
    let mut st = state("acrpull-role-missing");
    let pod = st
        .objects
        .iter()
        .find(|(p, _, o)| p == "pods" && o["status"]["containerStatuses"][0]["state"]["waiting"].is_object())
        .unwrap()
        .2
        .clone();
    let event = st.objects.iter().find(|(p, _, o)| p == "events" && o["reason"] == "Failed").unwrap().2.clone();
    for i in 0..60 {
        let mut p = pod.clone();
        p["metadata"]["name"] = serde_json::json!(format!("web-copy-{i}"));
        st.objects.push(("pods".into(), Some("shop".into()), p));
        let mut e = event.clone();
        e["metadata"]["name"] = serde_json::json!(format!("web-copy-{i}.failed"));
        e["involvedObject"]["name"] = serde_json::json!(format!("web-copy-{i}"));
        st.objects.push(("events".into(), Some("shop".into()), e));
    }
    let mock = MockKube::start(st).await;
    let k = k8s::collect(mock.client("shop"), &shop(), KubeOptions::default()).await.unwrap();
    assert_eq!(k.pods.len(), 62);
    let log = mock.state.lock().unwrap().log.clone();
    let event_lists: Vec<&String> = log.iter().filter(|l| l.contains("/events")).collect();
    assert_eq!(event_lists.len(), 1, "{event_lists:?}");
    assert!(event_lists[0].contains("reason%3DFailed") || event_lists[0].contains("reason=Failed"), "{event_lists:?}");
    let ev = Evidence { pods: k.pods, events: k.events, nodes: k.nodes, ..Default::default() };
    assert_eq!(pulldoctor::evidence::pull_failures(&ev).len(), 62);
}

#[test]
fn provider_ids_name_the_subscription_and_node_group() {
    let (sub, rg, _) = k8s::parse_provider_id("azure:///subscriptions/s/resourceGroups/MC_x/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/3").unwrap();
    assert_eq!((sub.as_str(), rg.as_str()), ("s", "MC_x"));
}

#[tokio::test]
async fn collected_secrets_never_show_in_debug_output() {
    use base64::Engine as _;
    let mock = MockKube::start(state("pull-secret-admin-stale")).await;
    let k = k8s::collect(mock.client("shop"), &shop(), KubeOptions::default()).await.unwrap();
    let values: Vec<String> = k
        .secrets
        .iter()
        .flat_map(|s| s.data.iter().flat_map(|d| d.values()))
        .map(|v| base64::engine::general_purpose::STANDARD.encode(&v.0))
        .collect();
    assert!(!values.is_empty(), "the fixture's pull secret was collected");
    for out in [format!("{k:?}"), format!("{k:#?}")] {
        assert!(values.iter().all(|v| !out.contains(v.as_str())), "a secret's data leaks");
        assert!(out.contains(": <redacted>"), "the keys stay visible");
    }
}
