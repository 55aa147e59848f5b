//! Real processes: containerd, the registry, ctr. Named `host_*` so nextest runs them one at a
//! time. Without root or a binary they fail, unless PULLPROOF_SKIP_HOST_TESTS=1 skips them (loudly).

mod common;

use std::time::{Duration, Instant};

use common::{TestPki, TlsFront, ms, require, write_hosts};
use pullproof_host_runtime::{
    Auth, Containerd, ContainerdConfig, ImageSpec, Launcher, PullError, Registry, RegistryAuth, RegistryConfig,
    processes_in_group,
};

const REGISTRY: &str = "/usr/bin/docker-registry";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_containerd_starts_and_stops_cleanly() {
    if !require("host_containerd_starts_and_stops_cleanly", &["containerd"]) {
        return;
    }
    let ctd = Containerd::start(ContainerdConfig::default()).await.unwrap();
    let pid = ctd.pid();
    let dir = ctd.dir().to_path_buf();
    let log = ctd.log_path().to_path_buf();
    eprintln!(
        "timing: containerd start-up {} ({} {})",
        ms(ctd.startup()),
        ctd.version().runtime_name,
        ctd.version().runtime_version
    );
    assert_eq!(ctd.version().runtime_api_version, "v1");
    assert!(log.exists());
    assert!(ctd.cri().list_images().await.unwrap().is_empty());
    assert!(!processes_in_group(pid).is_empty());
    let stopped = ctd.stop().unwrap();
    eprintln!("timing: containerd stop {} (SIGKILL needed: {})", ms(stopped.took), stopped.killed);
    assert!(processes_in_group(pid).is_empty(), "containerd group {pid} left processes");
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_containerd_is_stopped_when_dropped_during_a_panic() {
    if !require("host_containerd_is_stopped_when_dropped_during_a_panic", &["containerd"]) {
        return;
    }
    let ctd = Containerd::start(ContainerdConfig::default()).await.unwrap();
    let (pid, dir) = (ctd.pid(), ctd.dir().to_path_buf());
    eprintln!("(the panic \"boom\" below is intentional)");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = ctd;
        panic!("boom");
    }));
    assert!(result.is_err());
    assert!(processes_in_group(pid).is_empty());
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_registry_on_a_unix_socket_takes_pushes_and_lists_tags() {
    if !require("host_registry_on_a_unix_socket_takes_pushes_and_lists_tags", &[REGISTRY]) {
        return;
    }
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    eprintln!("timing: registry start-up {}", ms(registry.startup()));
    let client = registry.client();
    assert_eq!(client.ping().await.unwrap().status, 200);

    let linux = ImageSpec::new("pullproof/hello", "1.0", &["linux/amd64"]).unwrap();
    let windows = ImageSpec::new("pullproof/hello-win", "ltsc2022", &["windows/amd64"]).unwrap();
    let (built, report) = pullproof_host_runtime::image::push(registry.socket(), &linux, None).await.unwrap();
    eprintln!("timing: push {} {}", report.reference, ms(report.elapsed));
    assert_eq!(report.blobs_uploaded, 2);
    assert_eq!(report.digest, built.digest());
    let (_, report) = pullproof_host_runtime::image::push(registry.socket(), &windows, None).await.unwrap();
    eprintln!("timing: push {} {}", report.reference, ms(report.elapsed));

    // Pushing again uploads nothing new; a second tag on the same repository is listed.
    let again = client.push(&built).await.unwrap();
    assert_eq!((again.blobs_uploaded, again.blobs_present), (0, 2));
    let mut v2 = linux.clone();
    v2.tag = "2.0".into();
    client.push(&v2.build().unwrap()).await.unwrap();

    assert_eq!(client.list_tags("pullproof/hello").await.unwrap(), ["1.0", "2.0"]);
    assert_eq!(
        pullproof_host_runtime::image::list_tags(registry.socket(), "pullproof/hello-win", None).await.unwrap(),
        ["ltsc2022"]
    );
    let (media_type, bytes) = client.get_manifest("pullproof/hello", "1.0").await.unwrap().unwrap();
    assert_eq!(media_type, pullproof_host_runtime::image::MEDIA_INDEX);
    assert_eq!(bytes, built.index.bytes);
    let missing = client.list_tags("pullproof/nothing").await.unwrap_err();
    assert!(missing.to_string().contains("NAME_UNKNOWN"), "{missing}");

    let (pid, dir) = (registry.pid(), registry.dir().to_path_buf());
    registry.stop().unwrap();
    assert!(processes_in_group(pid).is_empty());
    assert!(!dir.exists());
}

/// Token auth is configured as distribution expects it: `/v2/` challenges with the realm,
/// service and (for a repository) scope a token service must answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_registry_with_token_auth_challenges_for_a_bearer_token() {
    if !require("host_registry_with_token_auth_challenges_for_a_bearer_token", &[REGISTRY]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let roots = work.path().join("token-roots.pem");
    std::fs::write(&roots, TestPki::new().ca_pem).unwrap();
    let registry = Registry::start(RegistryConfig {
        auth: RegistryAuth::Token {
            realm: "https://login.pullproof.test/oauth2/token".into(),
            service: "myacr.azurecr.io".into(),
            issuer: "pullproof-acr-token-service".into(),
            root_cert_bundle: roots,
        },
        ..RegistryConfig::default()
    })
    .await
    .unwrap();
    let ping = registry.client().ping().await.unwrap();
    assert_eq!(ping.status, 401);
    assert_eq!(
        ping.www_authenticate.as_deref(),
        Some("Bearer realm=\"https://login.pullproof.test/oauth2/token\",service=\"myacr.azurecr.io\"")
    );
    let err = registry.client().with_bearer("not-a-jwt").list_tags("pullproof/hello").await.unwrap_err();
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    assert!(!format!("{err:?}").contains("not-a-jwt"));
}

/// containerd reaches the registry by name over TLS: a TLS front on 127.0.0.1 proxies to the
/// registry's socket, the name resolves through an /etc/hosts bind-mounted in containerd's private
/// mount namespace (the same hook that gives a node its resolv.conf), and the test CA comes
/// through SSL_CERT_FILE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_pull_end_to_end_over_tls_by_name() {
    if !require("host_pull_end_to_end_over_tls_by_name", &["containerd", "ctr", "unshare", REGISTRY]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let bundle = pki.write_bundle(work.path());
    let hosts = write_hosts(work.path());

    let t = Instant::now();
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let front = TlsFront::start(&pki, registry.socket()).await;
    let host = front.host();
    let launcher = Launcher::direct().with_private_binds([(hosts.as_path(), "/etc/hosts")]);
    let ctd = Containerd::start(ContainerdConfig {
        ssl_cert_file: Some(bundle.clone()),
        launcher,
        ..ContainerdConfig::default()
    })
    .await
    .unwrap();
    eprintln!(
        "timing: registry start-up {}, containerd start-up {} (through unshare), both {}",
        ms(registry.startup()),
        ms(ctd.startup()),
        ms(t.elapsed())
    );

    let linux = ImageSpec::new("pullproof/hello", "1.0", &["linux/amd64"]).unwrap();
    let windows = ImageSpec::new("pullproof/hello-win", "ltsc2022", &["windows/amd64"]).unwrap();
    let client = registry.client();
    let linux = linux.build().unwrap();
    let windows = windows.build().unwrap();
    let r1 = client.push(&linux).await.unwrap();
    let r2 = client.push(&windows).await.unwrap();
    eprintln!("timing: push linux {}, windows {}", ms(r1.elapsed), ms(r2.elapsed));

    // The healthy pull.
    let image = linux.reference(&host);
    let t = Instant::now();
    let image_ref =
        ctd.pull_image(&image, None).await.unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", ctd.log_tail(30)));
    eprintln!("timing: CRI pull {image} {}", ms(t.elapsed()));
    assert!(image_ref.0.starts_with("sha256:"), "{image_ref}");
    let status = ctd.cri().image_status(&image).await.unwrap().expect("image present");
    assert_eq!(status.id, image_ref.0);
    assert!(status.repo_tags.contains(&image), "{:?}", status.repo_tags);
    assert!(status.repo_digests.contains(&linux.digest_reference(&host)), "{:?}", status.repo_digests);
    ctd.cri().remove_image(&image).await.unwrap();
    assert_eq!(ctd.cri().image_status(&image).await.unwrap(), None);

    // A missing tag.
    let missing = format!("{host}/pullproof/hello:missing");
    let t = Instant::now();
    let err = ctd.pull_image(&missing, None).await.unwrap_err();
    eprintln!("timing: CRI pull of a missing tag failed in {}: {err}", ms(t.elapsed()));
    assert_eq!(err.code(), Some("NotFound"), "{err}");
    assert_eq!(
        err.message(),
        format!("failed to pull and unpack image \"{missing}\": failed to resolve image: {missing}: not found")
    );

    // The Windows-only index through the Linux daemon's CRI.
    let win_image = windows.reference(&host);
    let err = ctd.pull_image(&win_image, None).await.unwrap_err();
    eprintln!("CRI pull of the windows-only index: {err}");
    assert_eq!(err.code(), Some("NotFound"), "{err}");
    // containerd 2.x (transfer service): `get image config descriptor: no match for platform in
    // manifest sha256:...: not found`, with no "failed to pull" prefix.
    assert!(err.message().contains("no match for platform in manifest"), "{err}");
    assert!(err.message().ends_with(": not found"), "{err}");

    // ...and as a Windows node pulls it: client side, for windows/amd64.
    let out = ctd.ctr_pull(&win_image, Some("windows/amd64"), None).await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("timing: ctr pull --platform windows/amd64 {}", ms(out.elapsed));

    // ctr's own words for a missing tag.
    let err = ctd.ctr_pull(&missing, Some("windows/amd64"), None).await.unwrap_err();
    eprintln!("ctr pull of a missing tag: {err}");
    assert!(matches!(err, PullError::Ctr { .. }), "{err}");
    assert_eq!(err.message(), format!("ctr: failed to resolve image: {missing}: not found"));

    let pids = [ctd.pid(), registry.pid()];
    drop(ctd);
    drop(front);
    drop(registry);
    for pid in pids {
        assert!(processes_in_group(pid).is_empty());
    }
}

/// A basic-auth registry: no credentials give containerd's 401 text, AuthConfig{username,
/// password} makes the pull succeed (the kubelet's imagePullSecrets path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_pull_with_basic_auth_shows_401_then_succeeds_with_credentials() {
    if !require(
        "host_pull_with_basic_auth_shows_401_then_succeeds_with_credentials",
        &["containerd", "ctr", "unshare", REGISTRY],
    ) {
        return;
    }
    // bcrypt (cost 4) of "pullproof-test-password": a test-only credential.
    const HTPASSWD: &str = "pullproof:$2b$04$ZUSmnmSexyWF2jMOMlj6qeIUeDOrVdngBW963QIBQxn0MlOxpNYWG\n";
    let auth = Auth::new("pullproof", "pullproof-test-password");
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    std::fs::write(&htpasswd, HTPASSWD).unwrap();
    let pki = TestPki::new();
    let bundle = pki.write_bundle(work.path());
    let hosts = write_hosts(work.path());

    let registry = Registry::start(RegistryConfig {
        auth: RegistryAuth::Htpasswd { realm: "pullproof".into(), path: htpasswd },
        ..RegistryConfig::default()
    })
    .await
    .unwrap();
    let ping = registry.client().ping().await.unwrap();
    assert_eq!(ping.status, 401);
    assert_eq!(ping.www_authenticate.as_deref(), Some("Basic realm=\"pullproof\""));
    let front = TlsFront::start(&pki, registry.socket()).await;
    let host = front.host();
    let ctd = Containerd::start(ContainerdConfig {
        ssl_cert_file: Some(bundle),
        launcher: Launcher::direct().with_private_binds([(hosts.as_path(), "/etc/hosts")]),
        ..ContainerdConfig::default()
    })
    .await
    .unwrap();

    let spec = ImageSpec::new("pullproof/private", "1.0", &["linux/amd64"]).unwrap();
    let image = spec.build().unwrap();
    let denied = registry.client().push(&image).await.unwrap_err();
    assert!(denied.to_string().contains("HTTP 401"), "{denied}");
    registry.client().with_basic(&auth.username, &auth.password).push(&image).await.unwrap();

    let reference = image.reference(&host);
    let err = ctd.pull_image(&reference, None).await.unwrap_err();
    eprintln!("CRI pull without credentials: {err}");
    assert_eq!(err.code(), Some("Unknown"), "{err}");
    assert!(
        err.message().ends_with(&format!(
            "unexpected status from HEAD request to https://{host}/v2/{}/manifests/1.0: 401 Unauthorized",
            image.repository
        )) || err.message().contains("no basic auth credentials"),
        "{err}"
    );
    let wrong = Auth::new("pullproof", "wrong");
    let err = ctd.pull_image(&reference, Some(&wrong)).await.unwrap_err();
    assert!(err.message().ends_with("401 Unauthorized"), "{err}");
    assert!(!format!("{err:?}").contains("wrong\""), "the password must not leak: {err:?}");

    let t = Instant::now();
    ctd.pull_image(&reference, Some(&auth)).await.unwrap();
    eprintln!("timing: CRI pull with basic auth {}", ms(t.elapsed()));

    let err = ctd.ctr_pull(&reference, None, Some(&wrong)).await.unwrap_err();
    eprintln!("ctr pull with a wrong password: {err}");
    assert!(!err.to_string().contains("pullproof:wrong"));
    ctd.ctr_pull(&reference, None, Some(&auth)).await.unwrap();
}

/// The network crate's hook: containerd inside a network namespace with its own resolv.conf,
/// through `Launcher::netns_with_resolv`. The namespace has only `lo`; the CRI socket is a file,
/// so it is reachable from the host's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_containerd_runs_in_a_netns_with_a_private_resolv_conf() {
    if !require(
        "host_containerd_runs_in_a_netns_with_a_private_resolv_conf",
        &["containerd", "ip", "nsenter", "unshare"],
    ) {
        return;
    }
    let ns = NetnsGuard::new(&format!("pprt-{}", std::process::id()));
    let work = tempfile::tempdir().unwrap();
    let resolv = work.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.53\noptions timeout:1 attempts:1\n").unwrap();
    let ctd = Containerd::start(ContainerdConfig {
        launcher: Launcher::netns_with_resolv(ns.path(), &resolv),
        ..ContainerdConfig::default()
    })
    .await
    .unwrap();
    eprintln!("timing: containerd start-up in a netns {}", ms(ctd.startup()));
    let pid = ctd.pid();
    let ns_of = |p: &str| std::fs::read_link(p).unwrap();
    assert_eq!(ns_of(&format!("/proc/{pid}/ns/net")), ns_inode(&ns.path()));
    assert_ne!(ns_of(&format!("/proc/{pid}/ns/mnt")), ns_of("/proc/self/ns/mnt"));
    let seen = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).unwrap();
    assert_eq!(seen, std::fs::read_to_string(&resolv).unwrap());
    assert_ne!(std::fs::read_to_string("/etc/resolv.conf").unwrap(), seen, "host resolv.conf untouched");

    // A pull by name now fails in the namespace's resolver, quickly (nothing listens there).
    let t = Instant::now();
    let err = ctd.pull_image("registry.pullproof.test/pullproof/hello:1.0", None).await.unwrap_err();
    eprintln!("CRI pull in an empty netns ({}): {err}", ms(t.elapsed()));
    assert!(err.message().contains("127.0.0.53:53"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20));
    drop(ctd);
    assert!(processes_in_group(pid).is_empty());
}

/// `ip netns add NAME`, deleted on drop.
struct NetnsGuard(String);

impl NetnsGuard {
    fn new(name: &str) -> Self {
        if std::path::Path::new("/run/netns").join(name).exists() {
            let _ = std::process::Command::new("ip").args(["netns", "del", name]).status();
        }
        let ok = std::process::Command::new("ip").args(["netns", "add", name]).status().unwrap().success();
        assert!(ok, "ip netns add {name}");
        let guard = Self(name.to_string());
        let up = std::process::Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]).status().unwrap();
        assert!(up.success());
        guard
    }

    fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/netns").join(&self.0)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `net:[INODE]` for a namespace file, as /proc/PID/ns/net reads.
fn ns_inode(path: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    format!("net:[{}]", std::fs::metadata(path).unwrap().ino()).into()
}
