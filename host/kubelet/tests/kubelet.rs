//! The kubelet's pull state machine against a fake runtime that answers with real containerd
//! messages: events, counts, back-off, waiting messages, Running on success, credential order,
//! aggregation and version rules, plugins run through a command wrapper.

mod common;

use std::time::Duration;

use common::*;
use pullproof_host_kubelet::plugin::{CredentialProvider, CredentialProviderConfig, ExecEnvVar, prefix_command};
use pullproof_host_kubelet::{Kubelet, KubeletConfig, KubeletVersion, PodSync, PullState, WorkloadSpec};

fn kubelet(version: KubeletVersion) -> Kubelet {
    let mut config = KubeletConfig::new(LINUX_NODE);
    config.version = version;
    Kubelet::new(config).unwrap()
}

const V133: KubeletVersion = KubeletVersion::new(1, 33, 2);

#[tokio::test]
async fn failure_back_off_retry_and_success() {
    let (mut cluster, clock) = cluster();
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG).pull_secret("acr-secret")).unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let runtime = FakeRuntime::default();
    runtime.answer("", Err(anonymous_401(IMG)));
    let mut kubelet = kubelet(V133);
    let err = anonymous_401(IMG).message;

    // First sync: the secret is missing, the anonymous pull fails.
    let result = kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(
        result,
        PodSync::Synced(vec![pullproof_host_kubelet::ContainerSync {
            container: "web".into(),
            image: IMG.into(),
            state: PullState::Waiting { reason: "ErrImagePull".into(), message: err.clone() },
        }])
    );
    assert_eq!(runtime.take_calls(), [(IMG.to_owned(), String::new())]);
    let secret_warning = (
        "Warning".to_owned(),
        "FailedToRetrieveImagePullSecret".to_owned(),
        "Unable to retrieve some image pull secrets (acr-secret); attempting to pull the image may not succeed."
            .to_owned(),
        1,
    );
    let ev = |t: &str, r: &str, m: &str, c: i32| (t.to_owned(), r.to_owned(), m.to_owned(), c);
    assert_eq!(
        pod_events(&cluster, "shop", &pod)[1..],
        [
            secret_warning.clone(),
            ev("Normal", "Pulling", &format!("Pulling image \"{IMG}\""), 1),
            ev("Warning", "Failed", &format!("Failed to pull image \"{IMG}\": {err}"), 1),
            ev("Warning", "Failed", "Error: ErrImagePull", 1),
        ]
    );
    assert_eq!(waiting(&cluster, "shop", &pod), Some(("ErrImagePull".into(), err.clone())));
    let status = cluster.pod("shop", &pod).unwrap().status.clone().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let ready = status.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.message.as_deref(), Some("containers with unready status: [web]"));
    assert_eq!(status.host_ip.as_deref(), Some("10.224.0.4"));

    // Within the back-off: no pull, BackOff events, the 1.32+ waiting message.
    for count in 1..=2 {
        clock.advance(Duration::from_secs(4));
        kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
        assert!(runtime.take_calls().is_empty());
        let events = pod_events(&cluster, "shop", &pod);
        assert_eq!(
            events[events.len() - 2..],
            [
                ev("Normal", "BackOff", &format!("Back-off pulling image \"{IMG}\""), count),
                ev("Warning", "Failed", "Error: ImagePullBackOff", count),
            ]
        );
    }
    assert_eq!(
        waiting(&cluster, "shop", &pod),
        Some(("ImagePullBackOff".into(), format!("Back-off pulling image \"{IMG}\": ErrImagePull: {err}")))
    );

    // 10 s after the failure the kubelet pulls again; the repeats are counted.
    clock.advance(Duration::from_secs(2));
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(runtime.take_calls().len(), 1);
    let events = pod_events(&cluster, "shop", &pod);
    let count_of =
        |reason: &str, message: &str| events.iter().find(|e| e.1 == reason && e.2 == message).map(|e| e.3).unwrap_or(0);
    assert_eq!(count_of("Pulling", &format!("Pulling image \"{IMG}\"")), 2);
    assert_eq!(count_of("Failed", &format!("Failed to pull image \"{IMG}\": {err}")), 2);
    assert_eq!(count_of("Failed", "Error: ErrImagePull"), 2);
    assert_eq!(count_of("FailedToRetrieveImagePullSecret", &secret_warning.2), 4);

    // The back-off doubled: 10 s later it still holds; `force` pulls anyway.
    clock.advance(Duration::from_secs(10));
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert!(runtime.take_calls().is_empty());
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, true).await.unwrap();
    assert_eq!(runtime.take_calls().len(), 1);

    // The registry lets the pull through (and the secret now exists): Running.
    cluster.put_secret("shop", "acr-secret", HOST, "myacr", "admin-password");
    runtime.answer("myacr", Ok(pulled()));
    let result = kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, true).await.unwrap();
    assert!(result.is_running(), "{result:?}");
    assert_eq!(runtime.take_calls(), [(IMG.to_owned(), "myacr".to_owned())]);
    let last = pod_events(&cluster, "shop", &pod).pop().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("Normal", "Pulled"));
    let message = last.2;
    let rest = message.strip_prefix(&format!("Successfully pulled image \"{IMG}\" in ")).unwrap();
    let (took, rest) = rest.split_once(" (").unwrap();
    let (waited, rest) = rest.split_once(" including waiting). ").unwrap();
    assert!(took.ends_with("ms") || took.ends_with('s'), "{message}");
    assert!(waited.ends_with("ms") || waited.ends_with('s'), "{message}");
    assert_eq!(rest, "Image size: 3214562 bytes.");

    let pod_object = cluster.pod("shop", &pod).unwrap();
    let status = pod_object.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let container = &status.container_statuses.as_ref().unwrap()[0];
    assert!(container.ready);
    assert!(container.state.as_ref().unwrap().running.is_some());
    assert_eq!(container.image_id, pulled().image_ref);
    assert!(container.container_id.as_deref().unwrap().starts_with("containerd://"));
    assert!(status.conditions.as_ref().unwrap().iter().all(|c| c.status == "True"));
    assert_eq!(cluster.deployment("shop", "web").unwrap().status.as_ref().unwrap().available_replicas, Some(1));

    // A running container is left alone.
    let result = kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert!(matches!(&result, PodSync::Synced(c) if c[0].state == PullState::AlreadyRunning));
    assert!(runtime.take_calls().is_empty());
}

#[tokio::test]
async fn older_kubelets_word_errors_differently() {
    for (version, prefixed, suffixed) in [
        (KubeletVersion::new(1, 27, 9), true, false),
        (KubeletVersion::new(1, 31, 4), false, false),
        (V133, false, true),
    ] {
        let (mut cluster, _clock) = cluster();
        cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG)).unwrap();
        let pod = only_pod(&cluster, "shop", "web");
        let runtime = FakeRuntime::default();
        runtime.answer("", Err(oauth_403(IMG)));
        let mut kubelet = kubelet(version);
        kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
        let err = if prefixed {
            format!("rpc error: code = Unknown desc = {}", oauth_403(IMG).message)
        } else {
            oauth_403(IMG).message
        };
        assert_eq!(waiting(&cluster, "shop", &pod), Some(("ErrImagePull".into(), err.clone())), "{version}");
        kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
        let back_off = format!("Back-off pulling image \"{IMG}\"");
        let expected = if suffixed { format!("{back_off}: ErrImagePull: {err}") } else { back_off };
        assert_eq!(waiting(&cluster, "shop", &pod), Some(("ImagePullBackOff".into(), expected)), "{version}");
    }

    // NotFound keeps its prefix on every version.
    let (mut cluster, _clock) = cluster();
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG)).unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let runtime = FakeRuntime::default();
    runtime.answer("", Err(not_found(IMG)));
    kubelet(V133).sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(
        waiting(&cluster, "shop", &pod).unwrap().1,
        format!("rpc error: code = NotFound desc = {}", not_found(IMG).message)
    );
}

/// A credential provider plugin written as a shell script: answers like acr-credential-provider
/// with a managed identity, counts its runs, and checks that the command wrapper ran it.
fn write_plugin(dir: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("acr-credential-provider");
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncat > \"$PLUGIN_DIR/request.json\"\necho run >> \"$PLUGIN_DIR/runs\"\n{body}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const MI_RESPONSE: &str = r#"[ "$WRAPPED" = 1 ] || { echo "not wrapped" >&2; exit 2; }
echo '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"5m0s","auth":{"*.azurecr.*":{"username":"","password":""},"myacr.azurecr.io":{"username":"00000000-0000-0000-0000-000000000000","password":"acr-refresh-token"}}}'"#;

fn plugin_kubelet(dir: &std::path::Path) -> Kubelet {
    let mut provider = CredentialProvider::aks("/etc/kubernetes/azure.json");
    provider.env.push(ExecEnvVar { name: "PLUGIN_DIR".into(), value: dir.display().to_string() });
    let mut config = KubeletConfig::new(LINUX_NODE);
    config.credential_provider_config = Some(CredentialProviderConfig::new(vec![provider]));
    config.credential_provider_bin_dir = dir.to_path_buf();
    Kubelet::new(config).unwrap().with_command_wrapper(prefix_command(vec!["env".into(), "WRAPPED=1".into()]))
}

#[tokio::test]
async fn secrets_then_plugin_credentials_in_the_kubelets_order() {
    let dir = tempfile::tempdir().unwrap();
    write_plugin(dir.path(), MI_RESPONSE);
    let (mut cluster, clock) = cluster();
    cluster.put_secret("shop", "acr-secret", HOST, "myacr", "stale-admin-password");
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG).pull_secret("acr-secret")).unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let runtime = FakeRuntime::default();
    runtime.answer("myacr", Err(oauth_401(IMG)));
    runtime.answer("00000000-0000-0000-0000-000000000000", Err(oauth_403(IMG)));
    runtime.answer("", Err(anonymous_401(IMG)));
    let mut kubelet = plugin_kubelet(dir.path());

    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    let users: Vec<String> = runtime.take_calls().into_iter().map(|(_, u)| u).collect();
    assert_eq!(users, ["myacr", "00000000-0000-0000-0000-000000000000", ""]);
    let expected = format!("[{}, {}, {}]", oauth_401(IMG).message, oauth_403(IMG).message, anonymous_401(IMG).message);
    assert_eq!(waiting(&cluster, "shop", &pod), Some(("ErrImagePull".into(), expected)));
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("request.json")).unwrap()).unwrap();
    assert_eq!(
        request,
        serde_json::json!({"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"myacr.azurecr.io/shop/web"})
    );

    // Identical texts are shown once: the token also gets a 401.
    runtime.answer("00000000-0000-0000-0000-000000000000", Err(oauth_401(IMG)));
    clock.advance(Duration::from_secs(10));
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    let expected = format!("[{}, {}]", oauth_401(IMG).message, anonymous_401(IMG).message);
    assert_eq!(waiting(&cluster, "shop", &pod).unwrap().1, expected);

    // The plugin ran once: its answer is cached per registry for 5 minutes.
    assert_eq!(std::fs::read_to_string(dir.path().join("runs")).unwrap().lines().count(), 1);
    let invocations = kubelet.plugin_invocations();
    assert_eq!(invocations.len(), 2);
    assert!(!invocations[0].cached && invocations[1].cached);
    assert_eq!(invocations[0].result, Ok(vec!["*.azurecr.*".to_owned(), "myacr.azurecr.io".to_owned()]));
    assert!(!format!("{invocations:?}").contains("acr-refresh-token"));

    // After the cache expires the plugin runs again; the token now works (the role was
    // assigned): the pull stops at the first success and the anonymous entry is never tried.
    runtime.take_calls();
    runtime.answer("00000000-0000-0000-0000-000000000000", Ok(pulled()));
    clock.advance(Duration::from_secs(301));
    let result = kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, true).await.unwrap();
    assert!(result.is_running());
    assert_eq!(std::fs::read_to_string(dir.path().join("runs")).unwrap().lines().count(), 2);
    let users: Vec<String> = runtime.take_calls().into_iter().map(|(_, u)| u).collect();
    assert_eq!(users, ["myacr", "00000000-0000-0000-0000-000000000000"]);
}

#[tokio::test]
async fn a_failing_plugin_leaves_one_anonymous_pull() {
    let dir = tempfile::tempdir().unwrap();
    write_plugin(
        dir.path(),
        r#"echo 'Error running acr credential provider: error getting credentials from ACR for myacr.azurecr.io: ManagedIdentityCredential authentication failed: IMDS responded 400 Bad Request: invalid_request: Identity not found' >&2; exit 1"#,
    );
    let (mut cluster, _clock) = cluster();
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG)).unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let runtime = FakeRuntime::default();
    runtime.answer("", Err(anonymous_401(IMG)));
    let mut kubelet = plugin_kubelet(dir.path());
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(runtime.take_calls(), [(IMG.to_owned(), String::new())]);
    assert_eq!(waiting(&cluster, "shop", &pod).unwrap().1, anonymous_401(IMG).message);
    let invocation = &kubelet.plugin_invocations()[0];
    match &invocation.result {
        Err(pullproof_host_kubelet::PluginError::Exit { status, stderr }) => {
            assert_eq!(status, "exit status 1");
            assert!(stderr.ends_with("Identity not found"), "{stderr}");
        }
        other => panic!("{other:?}"),
    }

    // Images the plugin does not match never run it.
    let (mut cluster, _clock) = common::cluster();
    cluster.create_workload(&WorkloadSpec::new("shop", "nginx", "docker.io/library/nginx:1.27")).unwrap();
    let pod = only_pod(&cluster, "shop", "nginx");
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(kubelet.plugin_invocations().len(), 1);
}

#[tokio::test]
async fn pull_policies_and_invalid_names() {
    let (mut cluster, _clock) = cluster();
    let runtime = FakeRuntime::default();
    let mut kubelet = kubelet(V133);

    // IfNotPresent with the image present: no pull.
    runtime.make_present(IMG, "sha256:abc");
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG)).unwrap();
    let pod = only_pod(&cluster, "shop", "web");
    let result = kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert!(result.is_running());
    assert!(runtime.take_calls().is_empty());
    assert_eq!(
        pod_events(&cluster, "shop", &pod).last().unwrap().2,
        format!("Container image \"{IMG}\" already present on machine")
    );

    // An upper-case repository is refused by the kubelet itself.
    cluster.create_workload(&WorkloadSpec::new("shop", "bad", "myacr.azurecr.io/Shop/web:1")).unwrap();
    let pod = only_pod(&cluster, "shop", "bad");
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    let (reason, message) = waiting(&cluster, "shop", &pod).unwrap();
    assert_eq!(reason, "InvalidImageName");
    assert_eq!(
        message,
        "Failed to apply default image tag \"myacr.azurecr.io/Shop/web:1\": couldn't parse image reference \"myacr.azurecr.io/Shop/web:1\": invalid reference format: repository name (Shop/web) must be lowercase"
    );
    assert!(runtime.take_calls().is_empty());

    // Never, and not present: the kubelet's own refusal.
    let mut never = WorkloadSpec::new("shop", "never", "myacr.azurecr.io/shop/web:2.0.0");
    never.image_pull_policy = Some("Never".into());
    cluster.create_workload(&never).unwrap();
    let pod = only_pod(&cluster, "shop", "never");
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(
        waiting(&cluster, "shop", &pod),
        Some((
            "ErrImageNeverPull".into(),
            "Container image \"myacr.azurecr.io/shop/web:2.0.0\" is not present with pull policy of Never".into()
        ))
    );
    assert!(runtime.take_calls().is_empty());

    // No tag: `:latest` is pulled, with pull policy Always.
    runtime.answer("", Ok(pulled()));
    cluster.create_workload(&WorkloadSpec::new("shop", "latest", "myacr.azurecr.io/shop/web")).unwrap();
    let pod = only_pod(&cluster, "shop", "latest");
    kubelet.sync_pod(&mut cluster, "shop", &pod, &runtime, false).await.unwrap();
    assert_eq!(runtime.take_calls(), [("myacr.azurecr.io/shop/web:latest".to_owned(), String::new())]);
}

#[tokio::test]
async fn sync_node_skips_other_nodes_and_unscheduled_pods() {
    let (mut cluster, _clock) = cluster();
    cluster
        .create_workload(&WorkloadSpec::new("shop", "legacy", WIN_IMG).node_selector("kubernetes.io/os", "windows"))
        .unwrap();
    cluster.create_workload(&WorkloadSpec::new("shop", "web", IMG)).unwrap();
    cluster.create_workload(&WorkloadSpec::new("shop", "nowhere", IMG).node_selector("agentpool", "gpu")).unwrap();
    let runtime = FakeRuntime::default();
    runtime.answer("", Err(platform(WIN_IMG)));
    let mut kubelet = kubelet(V133);
    let synced = kubelet.sync_node(&mut cluster, &runtime, false).await.unwrap();
    assert_eq!(synced.len(), 1);
    assert!(synced[0].1.starts_with("web-"));
    let legacy = only_pod(&cluster, "shop", "legacy");
    assert_eq!(
        kubelet.sync_pod(&mut cluster, "shop", &legacy, &runtime, false).await.unwrap(),
        PodSync::OtherNode(WINDOWS_NODE.into())
    );
    let nowhere = only_pod(&cluster, "shop", "nowhere");
    assert_eq!(kubelet.sync_pod(&mut cluster, "shop", &nowhere, &runtime, false).await.unwrap(), PodSync::Unscheduled);
    assert!(kubelet.sync_pod(&mut cluster, "shop", "missing", &runtime, false).await.is_err());
}

/// The harness drives syncs from spawned tasks: the futures must be `Send`.
#[test]
fn sync_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (mut cluster, _clock) = cluster();
    let runtime = FakeRuntime::default();
    let mut kubelet = kubelet(V133);
    {
        let future = kubelet.sync_pod(&mut cluster, "shop", "p", &runtime, false);
        assert_send(&future);
    }
    let future = kubelet.sync_node(&mut cluster, &runtime, false);
    assert_send(&future);
}
