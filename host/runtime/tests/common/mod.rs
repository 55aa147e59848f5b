//! Shared test fixtures: prerequisites, a test CA, a TLS front for the registry's Unix socket.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, UnixStream};

/// The registry host name the tests use; containerd resolves it through a private /etc/hosts.
pub const REGISTRY_NAME: &str = "registry.pullproof.test";

/// True if the test can run: root and every binary present. Otherwise a loud skip, or, with
/// CI=true, a failure.
pub fn require(test: &str, binaries: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".into());
    }
    for b in binaries {
        // containerd and ctr are the pinned build in the cache (`just kubernetes`), as the
        // daemon under test runs them; anything else is a system command.
        let found = match *b {
            "containerd" | "ctr" => {
                let path = pullproof_host_runtime::components::Components::pinned().containerd(b);
                path.is_file().then_some(()).ok_or(format!("`{}` (run `just kubernetes`)", path.display()))
            }
            _ => on_path(b).then_some(()).ok_or(format!("`{b}`")),
        };
        if let Err(m) = found {
            missing.push(m);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test} needs {}", missing.join(", "));
    if std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() != Ok("1") {
        panic!(
            "{msg} (run as root after `bash .ci/run` installed the packages, or set PULLPROOF_SKIP_HOST_TESTS=1 to skip host tests knowingly)"
        );
    }
    eprintln!("\n!!!!!!!!!! SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1): {msg} !!!!!!!!!!\n");
    false
}

fn on_path(bin: &str) -> bool {
    if bin.contains('/') {
        return Path::new(bin).exists();
    }
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// A test CA with one server certificate for `127.0.0.1` and [`REGISTRY_NAME`].
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_der: CertificateDer<'static>,
    pub ca_der: CertificateDer<'static>,
    pub leaf_key: PrivatePkcs8KeyDer<'static>,
}

impl TestPki {
    pub fn new() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "pullproof test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec![REGISTRY_NAME.to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, REGISTRY_NAME);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        }
    }

    /// System CAs plus the test CA, as `SSL_CERT_FILE` wants it.
    pub fn write_bundle(&self, dir: &Path) -> PathBuf {
        let mut bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(&self.ca_pem);
        let path = dir.join("ca-bundle.pem");
        std::fs::write(&path, bundle).unwrap();
        path
    }
}

/// A TLS listener on 127.0.0.1 that forwards every connection to a Unix socket. Stops on drop.
pub struct TlsFront {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(pki: &TestPki, upstream: &Path) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf_der.clone(), pki.ca_der.clone()],
                PrivateKeyDer::Pkcs8(pki.leaf_key.clone_key()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = upstream.to_path_buf();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut unix) = UnixStream::connect(&upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut unix).await;
                });
            }
        });
        Self { addr, task }
    }

    /// `registry.pullproof.test:PORT`
    pub fn host(&self) -> String {
        format!("{REGISTRY_NAME}:{}", self.addr.port())
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An /etc/hosts for a private mount namespace: localhost plus the registry name on 127.0.0.1.
pub fn write_hosts(dir: &Path) -> PathBuf {
    let path = dir.join("hosts");
    std::fs::write(
        &path,
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{REGISTRY_NAME}\n"),
    )
    .unwrap();
    path
}

/// Milliseconds, for the timing lines.
pub fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
