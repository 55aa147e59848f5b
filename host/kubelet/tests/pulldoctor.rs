//! What this kubelet writes, read back by pulldoctor: every event and waiting message parses to
//! the right symptom class, and a dump round-trips through `Evidence::load` with the failing
//! pulls found.

mod common;

use common::*;
use pulldoctor::evidence::{Evidence, pull_failures};
use pulldoctor::symptom::{Credentials, MessageKind, Symptom, SymptomClass};
use pullproof_host_kubelet::dump::{DumpOptions, write_dump};
use pullproof_host_kubelet::{Cluster, Kubelet, KubeletConfig, KubeletVersion, RuntimeError, WorkloadSpec};

/// Runs two syncs (failure, then back-off) of a fresh workload whose pulls fail with `error`;
/// returns the cluster and the pod name.
async fn fail_with(
    version: KubeletVersion,
    image: &str,
    answers: &[(&str, RuntimeError)],
    secret: Option<(&str, &str)>,
) -> (Cluster, String) {
    let (mut cluster, _clock) = cluster();
    let mut spec = WorkloadSpec::new("shop", "web", image);
    if let Some((user, pass)) = secret {
        cluster.put_secret("shop", "acr-secret", HOST, user, pass);
        spec = spec.pull_secret("acr-secret");
    }
    cluster.create_workload(&spec).unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let runtime = FakeRuntime::default();
    for (user, error) in answers {
        runtime.answer(user, Err(error.clone()));
    }
    let mut config = KubeletConfig::new(LINUX_NODE);
    config.version = version;
    let mut kubelet = Kubelet::new(config).unwrap();
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    (cluster, pod)
}

fn failed_to_pull(cluster: &Cluster, pod: &str) -> String {
    pod_events(cluster, "shop", pod)
        .into_iter()
        .find(|e| e.1 == "Failed" && e.2.starts_with("Failed to pull image"))
        .map(|e| e.2)
        .unwrap()
}

#[tokio::test]
async fn pulldoctor_reads_every_message_this_kubelet_writes() {
    let v133 = KubeletVersion::new(1, 33, 2);
    let v127 = KubeletVersion::new(1, 27, 9);
    let typo_host = "myacr.azureacr.io";
    let typo_image = "myacr.azureacr.io/shop/web:1.4.2";
    // (name, kubelet version, image, the runtime's anonymous answer, expected class)
    let cases = [
        ("anonymous 401", v133, IMG, anonymous_401(IMG), SymptomClass::Unauthorized),
        ("anonymous 401, old kubelet", v127, IMG, anonymous_401(IMG), SymptomClass::Unauthorized),
        ("oauth 403", v133, IMG, oauth_403(IMG), SymptomClass::Forbidden),
        ("not found", v133, IMG, not_found(IMG), SymptomClass::NotFound),
        ("platform", v133, WIN_IMG, platform(WIN_IMG), SymptomClass::PlatformMismatch),
        ("timeout", v133, IMG, timeout(IMG), SymptomClass::Timeout),
        ("dns", v133, typo_image, no_such_host(typo_image, typo_host), SymptomClass::Dns),
        ("tls", v133, IMG, x509(IMG), SymptomClass::Tls),
        ("firewall", v133, IMG, basic_403(IMG), SymptomClass::Forbidden),
        ("1.7 wording", v133, IMG, oauth_401_new_wording(IMG), SymptomClass::Unauthorized),
    ];
    for (name, version, image, error, class) in cases {
        let (cluster, pod) = fail_with(version, image, &[("", error)], None).await;
        let event = Symptom::parse(&failed_to_pull(&cluster, &pod));
        assert_eq!(event.kind, MessageKind::FailedToPull, "{name}");
        assert_eq!(event.class, class, "{name}: {event:?}");
        assert_eq!(event.image.as_ref().map(ToString::to_string).as_deref(), Some(image), "{name}");

        // The back-off waiting message carries the error (1.32+) and parses the same way.
        let (reason, message) = waiting(&cluster, "shop", &pod).unwrap();
        assert_eq!(reason, "ImagePullBackOff", "{name}");
        let back_off = Symptom::parse(&message);
        assert_eq!(back_off.kind, MessageKind::BackOff, "{name}");
        if version.back_off_message_has_error() {
            assert_eq!(back_off.class, class, "{name}: {message}");
        }

        // The bare `Error: ...` events are recognised.
        let kinds: Vec<MessageKind> = pod_events(&cluster, "shop", &pod)
            .into_iter()
            .filter(|e| e.2.starts_with("Error: "))
            .map(|e| Symptom::parse(&e.2).kind)
            .collect();
        assert_eq!(kinds, [MessageKind::ErrImagePull, MessageKind::ImagePullBackOff], "{name}");
    }
}

#[tokio::test]
async fn pulldoctor_reads_the_aggregate_and_the_secret_warning() {
    // Stale admin credentials in a secret (and no plugin): one attempt, with credentials.
    let (cluster, pod) = fail_with(
        KubeletVersion::new(1, 33, 2),
        IMG,
        &[("myacr", oauth_401(IMG)), ("", anonymous_401(IMG))],
        Some(("myacr", "stale-password")),
    )
    .await;
    let symptom = Symptom::parse(&failed_to_pull(&cluster, &pod));
    assert_eq!(symptom.class, SymptomClass::Unauthorized);
    assert_eq!(symptom.attempts.len(), 1);
    assert!(symptom.credentials_sent());

    // Two secrets for the registry (stale admin credentials, then a service principal whose
    // role is missing) and one that does not exist: one attempt per credential, aggregated.
    let (mut cluster, _clock) = common::cluster();
    cluster.put_secret("shop", "admin", HOST, "myacr", "stale-password");
    cluster.put_secret("shop", "sp", HOST, "11111111-2222-3333-4444-555555555555", "sp-secret");
    cluster
        .create_workload(
            &WorkloadSpec::new("shop", "web", IMG).pull_secret("admin").pull_secret("gone").pull_secret("sp"),
        )
        .unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let runtime = FakeRuntime::default();
    runtime.answer("myacr", Err(oauth_401(IMG)));
    runtime.answer("11111111-2222-3333-4444-555555555555", Err(oauth_403(IMG)));
    let mut kubelet = Kubelet::new(KubeletConfig::new(LINUX_NODE)).unwrap();
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    let users: Vec<String> = runtime.take_calls().into_iter().map(|(_, u)| u).collect();
    assert_eq!(users, ["myacr", "11111111-2222-3333-4444-555555555555"]);

    let symptom = Symptom::parse(&failed_to_pull(&cluster, &pod));
    assert_eq!(symptom.class, SymptomClass::Forbidden);
    assert_eq!(symptom.attempts.len(), 2);
    assert!(symptom.attempts.iter().all(|a| a.credentials == Some(Credentials::Oauth)));
    let waiting_symptom = Symptom::parse(&waiting(&cluster, "shop", &pod).unwrap().1);
    assert_eq!(waiting_symptom.class, SymptomClass::Forbidden);
    assert_eq!(waiting_symptom.attempts.len(), 2);

    let warning =
        pod_events(&cluster, "shop", &pod).into_iter().find(|e| e.1 == "FailedToRetrieveImagePullSecret").unwrap().2;
    let symptom = Symptom::parse(&warning);
    assert_eq!(symptom.kind, MessageKind::PullSecretMissing);
    assert_eq!(symptom.secret_names, ["gone"]);
}

#[tokio::test]
async fn dumps_round_trip_through_evidence_load() {
    let (mut cluster, _clock) = common::cluster();
    cluster.put_secret("shop", "acr-secret", HOST, "myacr", "s3cret-admin-password");
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG).pull_secret("acr-secret")).unwrap();
    cluster
        .create_workload(
            &WorkloadSpec::new("shop", "legacy", WIN_IMG)
                .node_selector("kubernetes.io/os", "linux")
                .pull_secret("missing"),
        )
        .unwrap();
    cluster.create_workload(&WorkloadSpec::new("ok", "fine", IMG)).unwrap();
    let runtime = FakeRuntime::default();
    runtime.answer("myacr", Err(oauth_401(IMG)));
    let mut kubelet = Kubelet::new(KubeletConfig::new(LINUX_NODE)).unwrap();
    // `legacy` and `fine` both pull anonymously: the first gets the platform error.
    runtime.answer("", Err(platform(WIN_IMG)));
    let legacy = only_pod(&cluster, "shop", "legacy");
    kubelet.sync_pod(&mut cluster, "shop", &legacy, &runtime, false).await.unwrap();
    let web = only_pod(&cluster, "shop", "web");
    kubelet.sync_pod(&mut cluster, "shop", &web, &runtime, false).await.unwrap();
    kubelet.sync_pod(&mut cluster, "shop", &web, &runtime, false).await.unwrap();
    runtime.answer("", Ok(pulled()));
    let fine = only_pod(&cluster, "ok", "fine");
    assert!(kubelet.sync_pod(&mut cluster, "ok", &fine, &runtime, false).await.unwrap().is_running());

    for redact in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_dump(&cluster, dir.path(), DumpOptions { redact }).unwrap();
        for file in
            ["nodes.json", "shop/pods.json", "shop/events.json", "shop/replicasets.json", "shop/deployments.json"]
        {
            assert!(dir.path().join(file).is_file(), "{file}");
        }
        let text = std::fs::read_to_string(dir.path().join("shop/secrets.json")).unwrap();
        // Secret data is base64 in JSON; redaction replaces it outright.
        assert_eq!(text.contains("REDACTED"), redact);

        let evidence = Evidence::load(dir.path(), None).unwrap();
        assert_eq!(evidence.nodes.len(), 2);
        assert_eq!(evidence.pods.len(), 3);
        assert_eq!(evidence.replica_sets.len(), 3);
        assert!(evidence.service_accounts.len() >= 2);
        let failures = pull_failures(&evidence);
        assert_eq!(failures.len(), 2, "{failures:#?}");

        let web_failure = failures.iter().find(|f| f.pod.name == web).unwrap();
        assert_eq!(web_failure.symptom.class, SymptomClass::Unauthorized);
        assert_eq!(web_failure.symptom.kind, MessageKind::FailedToPull);
        assert!(web_failure.symptom.credentials_sent());
        assert_eq!(web_failure.workload.kind, "Deployment");
        assert_eq!(web_failure.workload.name, "web");
        assert_eq!(web_failure.node.as_deref(), Some(LINUX_NODE));
        assert_eq!(web_failure.platform.os.as_deref(), Some("linux"));
        assert_eq!(web_failure.platform.pool.as_deref(), Some("nodepool1"));
        assert_eq!(web_failure.pull_secret_names, ["acr-secret"]);
        if redact {
            assert!(web_failure.pull_secrets.is_empty());
        } else {
            assert_eq!(web_failure.pull_secrets[0].logins[0].username, "myacr");
        }

        let legacy_failure = failures.iter().find(|f| f.pod.name == legacy).unwrap();
        assert_eq!(legacy_failure.symptom.class, SymptomClass::PlatformMismatch);
        assert_eq!(legacy_failure.missing_pull_secrets, ["missing"]);
        assert_eq!(legacy_failure.node_selector.get("kubernetes.io/os").map(String::as_str), Some("linux"));
    }
}
