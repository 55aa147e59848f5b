//! A real registry (Debian's `docker-registry`, i.e. distribution 2.8) trusting the emulator's
//! tokens: push with an AcrPush principal, pull with an AcrPull one, then revoke AcrPull.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use azure_model::api_version::AUTHORIZATION;
use azure_model::authorization::ACR_PULL;
use pullproof_emulator::roles::ACR_PUSH;
use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::common::{World, client};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const LOGIN: &str = "pullproofacr.azurecr.io";
const REPO: &str = "team/app";

/// Kills and reaps the registry on drop, also when a test panics.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    let d = digest(&SHA256, data);
    format!("sha256:{}", d.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A gzip member holding `data` in one stored (uncompressed) deflate block.
fn gzip(data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 0xffff);
    let len = data.len() as u16;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x01];
    out.extend(len.to_le_bytes());
    out.extend((!len).to_le_bytes());
    out.extend(data);
    out.extend(crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// A ustar archive with one regular file.
fn tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{:011o}\0", content.len()).as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 148, b"        ");
    h[156] = b'0';
    put(&mut h, 257, b"ustar\x0000");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend([0u8; 1024]);
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

async fn bearer_token(c: &Client, realm: &str, scope: &str, user: &str, secret: &str) -> (StatusCode, String) {
    let resp = c
        .get(realm)
        .query(&[("service", LOGIN), ("scope", scope)])
        .basic_auth(user, Some(secret))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, body["access_token"].as_str().unwrap_or_default().to_string())
}

async fn upload_blob(c: &Client, base: &str, token: &str, blob: &[u8]) -> String {
    let d = sha256(blob);
    let resp = c.post(format!("{base}/v2/{REPO}/blobs/uploads/")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "start upload");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") { location } else { format!("{base}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = c
        .put(format!("{location}{sep}digest={d}"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "finish upload: {}", resp.text().await.unwrap_or_default());
    d
}

#[tokio::test]
async fn real_registry_trusts_emulator_tokens() {
    if !Path::new(REGISTRY_BIN).exists() {
        if std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() != Ok("1") {
            panic!(
                "{REGISTRY_BIN} is missing: install Debian's docker-registry package (`bash .ci/run` does), \
                 or set PULLPROOF_SKIP_HOST_TESTS=1 to skip this test knowingly"
            );
        }
        eprintln!(
            "\n*** SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1) real_registry_trusts_emulator_tokens: {REGISTRY_BIN} is missing ***\n"
        );
        return;
    }
    let w = World::start().await;
    let rg = w.group("acr").await;
    let registry = w.registry(&rg, "pullproofacr", json!({})).await["id"].as_str().unwrap().to_string();
    let pusher = w.emu.create_application("pusher").unwrap();
    let puller = w.emu.create_application("puller").unwrap();
    w.assign(&registry, ACR_PUSH.id, &pusher.service_principal_object_id).await;
    let pull_assignment = w.assign(&registry, ACR_PULL.id, &puller.service_principal_object_id).await;

    let dir = tempfile::tempdir().unwrap();
    let tls = w.emu.issue_server_cert(&["127.0.0.1".to_string()]).unwrap();
    let port = free_port();
    let auth = w.emu.registry_token_auth(LOGIN);
    let realm = auth.realm.clone();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: pullproof-test\n  tls:\n    certificate: {cert}\n    key: {key}\n\
         auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {ca}\n",
        data = dir.path().join("data").display(),
        service = auth.service,
        cert = write(dir.path(), "registry.crt", &tls.cert_pem),
        key = write(dir.path(), "registry.key", &tls.key_pem),
        issuer = auth.issuer,
        ca = write(dir.path(), "ca.pem", &auth.root_cert_pem),
    );
    let config_path = write(dir.path(), "config.yml", &config);
    let _registry = Registry(
        Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("registry starts"),
    );
    let c = client(&w.emu.ca_pem, None, &[]);
    let base = format!("https://127.0.0.1:{port}");

    // The registry challenges with the emulator's realm.
    let started = Instant::now();
    let challenge = loop {
        match c.get(format!("{base}/v2/")).send().await {
            Ok(r) => break r,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("registry did not come up: {e}"),
        }
    };
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let www = challenge.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(www.contains(&format!("realm=\"{realm}\"")) && www.contains(&format!("service=\"{LOGIN}\"")), "{www}");

    // Push a one-layer OCI image with the AcrPush principal's token.
    let (status, push) = bearer_token(
        &c,
        &realm,
        &format!("repository:{REPO}:pull,push"),
        &pusher.client_id,
        pusher.client_secret.expose(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let plain = tar("hello.txt", b"hello from pullproof\n");
    let layer = gzip(&plain);
    let config_blob = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&plain)]},
    }))
    .unwrap();
    let layer_digest = upload_blob(&c, &base, &push, &layer).await;
    let config_digest = upload_blob(&c, &base, &push, &config_blob).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_blob.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let resp = c
        .put(format!("{base}/v2/{REPO}/manifests/v1"))
        .bearer_auth(&push)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "push manifest: {}", resp.text().await.unwrap_or_default());
    w.emu.push_repository(LOGIN, REPO, &["v1"], &["linux/amd64"]);

    // Pull with the AcrPull principal.
    let (status, pull) =
        bearer_token(&c, &realm, &format!("repository:{REPO}:pull"), &puller.client_id, puller.client_secret.expose())
            .await;
    assert_eq!(status, StatusCode::OK);
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let resp = c
        .get(format!("{base}/v2/{REPO}/manifests/v1"))
        .bearer_auth(&pull)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), manifest);
    let resp = c.get(format!("{base}/v2/{REPO}/blobs/{layer_digest}")).bearer_auth(&pull).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), layer);
    // The pull token does not allow pushing.
    let (_, pull_only) = bearer_token(
        &c,
        &realm,
        &format!("repository:{REPO}:pull,push"),
        &puller.client_id,
        puller.client_secret.expose(),
    )
    .await;
    let resp = c.post(format!("{base}/v2/{REPO}/blobs/uploads/")).bearer_auth(&pull_only).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Revoke AcrPull: the token service refuses, and the registry refuses tokenless pulls.
    assert_eq!(w.delete(&pull_assignment, AUTHORIZATION).await, StatusCode::OK);
    let (status, _) =
        bearer_token(&c, &realm, &format!("repository:{REPO}:pull"), &puller.client_id, puller.client_secret.expose())
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = c.get(format!("{base}/v2/{REPO}/manifests/v1")).header("accept", accept).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A token signed by someone else is refused by the registry too.
    let forged = format!("{}.{}.AAAA", pull.split('.').next().unwrap(), pull.split('.').nth(1).unwrap());
    let resp = c
        .get(format!("{base}/v2/{REPO}/manifests/v1"))
        .bearer_auth(forged)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
