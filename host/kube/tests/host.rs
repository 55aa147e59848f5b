//! The real control plane and a real kubelet on this host. Needs root and the binaries
//! `just kubernetes` builds; without them these tests fail, unless `PULLPROOF_SKIP_HOST_TESTS=1`
//! skips them (loudly).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use pullproof_host_kube::control_plane::kubectl_raw;
use pullproof_host_kube::{ControlPlane, ControlPlaneConfig, Kubelet, KubeletConfig};
use pullproof_host_net::NetNs;
use pullproof_host_runtime::components::Components;
use pullproof_host_runtime::image::{ImageSpec, Program};
use pullproof_host_runtime::{Containerd, ContainerdConfig, DEFAULT_SANDBOX_IMAGE, Launcher, processes_in_group};

fn ready() -> Option<Components> {
    let c = Components::pinned();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let why = match (root, c.check()) {
        (false, _) => "needs root".to_string(),
        (true, Err(e)) => e.to_string(),
        (true, Ok(())) => return Some(c),
    };
    if std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1): {why}");
        return None;
    }
    panic!("{why} (or set PULLPROOF_SKIP_HOST_TESTS=1 to skip knowingly)");
}

async fn control_plane(c: &Components, dir: &Path, node_facing: Vec<IpAddr>) -> ControlPlane {
    ControlPlane::start(ControlPlaneConfig {
        components: c.clone(),
        dir: dir.to_path_buf(),
        node_facing,
        fqdn: "test-dns.hcp.eastus.azmk8s.io".into(),
        startup_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_control_plane_serves_the_pinned_release_and_leaves_nothing() {
    let Some(c) = ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let cp = control_plane(&c, dir.path(), vec![]).await;
    eprintln!("timing: control plane ready in {:?}", t.elapsed());
    let version = kubectl_raw(&c.kubectl(), cp.admin_kubeconfig(), "/version").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["gitVersion"], c.pins.kubernetes.as_str(), "{version}");
    assert_eq!(v["gitTreeState"], "archive");
    // The controller-manager runs: the default namespace gets its service account.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sa = kubectl_raw(&c.kubectl(), cp.admin_kubeconfig(), "/api/v1/namespaces/default/serviceaccounts/default")
            .await;
        if sa.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no default service account: {sa:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let folder = cp.dir().to_path_buf();
    cp.stop();
    assert!(!folder.exists(), "{} left behind", folder.display());
    let left = std::process::Command::new("pgrep").args(["-f", &folder.display().to_string()]).output().unwrap();
    assert!(left.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&left.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_a_real_kubelet_registers_its_node_and_runs_a_pod() {
    let Some(c) = ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node_ip = Ipv4Addr::new(10, 224, 0, 4);
    let ns = NetNs::create(&format!("pp-kubetest-{}", std::process::id())).unwrap();
    ns.ip(&["addr", "add", "10.224.0.4/24", "dev", "lo"]).unwrap();
    let cp = control_plane(&c, dir.path(), vec![IpAddr::V4(node_ip)]).await;
    // The node reaches the API server at its own address (the harness does this with a front).
    let listener = ns.tokio_tcp("10.224.0.4:6443".parse().unwrap()).unwrap();
    let target = cp.address();
    let forward = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    let server = "https://10.224.0.4:6443".to_string();

    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").unwrap();
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0", "name": "test",
        "plugins": [
            { "type": "bridge", "bridge": "cni0", "isGateway": true,
              "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.244.0.0/24" }]], "dataDir": dir.path().join("ipam") } },
            { "type": "loopback" },
        ],
    });
    let ctd = Containerd::start(ContainerdConfig {
        binary: c.containerd("containerd"),
        base_dir: Some(dir.path().to_path_buf()),
        launcher: Launcher::netns_with_resolv(ns.path(), &resolv),
        cni_network: Some(conflist.to_string()),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let program = Program::busybox(&["sleep", "2147483647"]).unwrap();
    let pause =
        ImageSpec::new("pause", "local", &["linux/amd64"]).unwrap().with_program(program.clone()).build().unwrap();
    ctd.import_image(&pause.oci_archive(DEFAULT_SANDBOX_IMAGE), DEFAULT_SANDBOX_IMAGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let app = "pullproof.invalid/app:v1";
    let image = ImageSpec::new("app", "v1", &["linux/amd64"]).unwrap().with_program(program).build().unwrap();
    ctd.import_image(&image.oci_archive(app), app).await.unwrap();

    let node = "aks-nodepool1-12345678-vmss000000";
    let node_dir = dir.path().join("node");
    let kubeconfig = cp
        .kubeconfig_for(&node_dir, "node", &format!("system:node:{node}"), Some("system:nodes"), &server, None)
        .unwrap();
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.azure.com/agentpool".to_string(), "nodepool1".to_string());
    let provider_id = "azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-12345678-vmss/virtualMachines/0";
    let t = Instant::now();
    let kubelet = Kubelet::start(KubeletConfig {
        binary: c.kubelet(),
        kubectl: c.kubectl(),
        admin_kubeconfig: cp.admin_kubeconfig().to_path_buf(),
        node_name: node.into(),
        node_ip,
        provider_id: Some(provider_id.into()),
        labels,
        taints: vec![],
        dir: node_dir,
        kubeconfig,
        ca_file: cp.ca_file().to_path_buf(),
        runtime_socket: ctd.socket().to_path_buf(),
        resolv_conf: resolv.clone(),
        credential_provider: None,
        launcher: Launcher::wrapped([
            "nsenter".to_string(),
            format!("--target={}", ctd.pid()),
            "--mount".into(),
            "--net".into(),
        ]),
        port: 10250,
        startup_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("timing: node Ready in {:?}", t.elapsed());
    let body = kubectl_raw(&c.kubectl(), cp.admin_kubeconfig(), &format!("/api/v1/nodes/{node}")).await.unwrap();
    let n: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], c.pins.kubernetes.as_str());
    let runtime = n["status"]["nodeInfo"]["containerRuntimeVersion"].as_str().unwrap_or_default().to_string();
    assert_eq!(runtime, format!("containerd://{}", c.pins.containerd.trim_start_matches('v')));
    assert_eq!(n["spec"]["providerID"], provider_id);
    assert_eq!(n["metadata"]["labels"]["kubernetes.azure.com/agentpool"], "nodepool1");

    // A pod of a local image really runs.
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "app", "namespace": "default" },
        "spec": { "nodeName": node, "terminationGracePeriodSeconds": 1, "automountServiceAccountToken": false,
                  "containers": [{ "name": "app", "image": app, "imagePullPolicy": "Never" }] },
    });
    let file = dir.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).unwrap();
    // The namespace's service account appears once the controller-manager has run.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new(c.kubectl())
            .arg(format!("--kubeconfig={}", cp.admin_kubeconfig().display()))
            .args(["create", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("serviceaccount") && Instant::now() < deadline, "{err}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body =
            kubectl_raw(&c.kubectl(), cp.admin_kubeconfig(), "/api/v1/namespaces/default/pods/app").await.unwrap();
        let p: serde_json::Value = serde_json::from_str(&body).unwrap();
        if p["status"]["containerStatuses"][0]["state"]["running"].is_object() {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(kubelet.log_path()).unwrap_or_default();
            let errors: Vec<&str> = log.lines().filter(|l| l.starts_with('E')).collect();
            panic!(
                "the pod never ran: {}\nkubelet errors:\n{}",
                p["status"],
                errors[errors.len().saturating_sub(8)..].join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    kubelet.stop().unwrap();
    forward.abort();
    assert_eq!(ctd.remove_all_pods().await.unwrap(), 1);
    let pid = ctd.pid();
    ctd.stop().unwrap();
    assert!(processes_in_group(pid).is_empty());
    cp.stop();
    ns.delete().unwrap();
    let shims = std::process::Command::new("pgrep").args(["-f", &dir.path().display().to_string()]).output().unwrap();
    assert!(shims.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&shims.stdout));
}
