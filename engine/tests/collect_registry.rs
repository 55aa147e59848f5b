//! Registry content read live from ACR's data plane: the emulator's token service (exchange,
//! refresh -> access token, its roles) behind a small in-process TLS registry serving `/v2/`,
//! reached through `RegistryOptions::addresses` as a loopback front would be.

mod collect_support;

use std::collections::BTreeMap;

use collect_support::registry::{FakeAcr, FakeRepo};
use collect_support::{clients, emulator, fixtures};
use pulldoctor::Action;
use pulldoctor::collect::registry::{self, MAX_TAG_PAGES, RegistryOptions, RegistryRead};
use pulldoctor::finding::{Confidence, FindingCode};
use pulldoctor::{Evidence, diagnose};
use pullproof_emulator::RunningEmulator;

const LOGIN: &str = "acrshopweu.azurecr.io";

/// The fixture's dump and inventory, without the inventory's registry content.
fn evidence(fixture: &str) -> Evidence {
    let dir = fixtures().join(fixture);
    let mut e = Evidence::load(&dir.join("dump"), Some(&dir.join("azure.json"))).unwrap();
    e.azure.registry_content.clear();
    e
}

fn content() -> BTreeMap<String, FakeRepo> {
    BTreeMap::from([
        (
            "shop/web".to_string(),
            FakeRepo::tags(&["1.2.7", "1.3.0", "1.4.1", "1.4.2"]).single("1.4.2", "linux", "amd64"),
        ),
        (
            "shop/legacy-iis".to_string(),
            FakeRepo::tags(&["2022.1", "2022.2"])
                .index("2022.1", &["windows/amd64"])
                .index("2022.2", &["windows/amd64"]),
        ),
        ("shop/cart".to_string(), FakeRepo::tags(&["2.0.0", "2.0.1"])),
    ])
}

fn registry_id(emu: &RunningEmulator) -> String {
    emu.export().registry_by_login_server(LOGIN).expect("fixture registry").id.clone()
}

/// Lets the fake registry's forwarded token requests (from 127.0.0.1) through the fixture's
/// registry firewall, as the harness does for its own pushes.
fn allow_loopback(emu: &RunningEmulator) {
    let id = registry_id(emu);
    let mut body = emu.resource(&id).unwrap();
    body["properties"]["networkRuleSet"]["ipRules"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"action": "Allow", "value": "127.0.0.1"}));
    emu.put_resource(&id, body).unwrap();
}

/// Grants the operator (pulldoctor's identity here) `AcrPull` on the registry, and lets it
/// through the firewall.
fn grant_pull(emu: &RunningEmulator) {
    allow_loopback(emu);
    let id = registry_id(emu);
    let sub = id.split('/').nth(2).unwrap().to_string();
    let assignment =
        format!("{id}/providers/Microsoft.Authorization/roleAssignments/0d3c1a52-6f7e-4b8a-9c1d-2e3f4a5b6c7d");
    emu.put_resource(
        &assignment,
        serde_json::json!({"properties": {
            "roleDefinitionId": azure_model::authorization::ACR_PULL.definition_id(&sub),
            "principalId": emu.operator().service_principal_object_id,
            "principalType": "ServicePrincipal",
        }}),
    )
    .expect("role assignment");
}

fn options(emu: &RunningEmulator, acr: &FakeAcr) -> RegistryOptions {
    RegistryOptions { ca_pem: vec![emu.ca_pem.clone()], addresses: BTreeMap::from([(LOGIN.to_string(), acr.addr)]) }
}

fn registry_unavailable(e: &Evidence) -> Vec<String> {
    e.azure
        .unavailable
        .iter()
        .filter(|u| u.what.starts_with(registry::WHAT))
        .map(|u| format!("{}: {}", u.what, u.reason))
        .collect()
}

#[tokio::test]
async fn tags_and_platforms_are_read_and_the_missing_tag_gets_its_candidate() {
    let emu = emulator("image-tag-not-found").await;
    grant_pull(&emu);
    let acr = FakeAcr::start(&emu, LOGIN, content()).await;
    let mut e = evidence("image-tag-not-found");

    // Without the registry's content: the answer alone, medium, nothing to suggest.
    let before = diagnose(&e).findings.into_iter().find(|f| f.code == FindingCode::ImageNotFound).unwrap();
    assert_eq!(before.confidence, Confidence::Medium);

    let read = registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    assert!(registry_unavailable(&e).is_empty(), "{:?}", registry_unavailable(&e));
    // exchange, token, tags, manifest 1.4.20 (404), manifest 1.4.2 (newest), its config blob.
    assert_eq!(read, RegistryRead { requests: 6, registries: 1 }, "{:#?}", acr.log.lock().unwrap());
    let c = e.azure.content_of(LOGIN).expect("content merged");
    assert_eq!(c.repositories.len(), 1, "only the failing image's repository: {c:?}");
    let web = &c.repositories[0];
    assert_eq!(web.name, "shop/web");
    assert_eq!(web.tags, ["1.2.7", "1.3.0", "1.4.1", "1.4.2"]);
    assert_eq!(web.platforms, ["linux/amd64"]);

    let f = diagnose(&e).findings.into_iter().find(|f| f.code == FindingCode::ImageNotFound).unwrap();
    assert_eq!(f.confidence, Confidence::High);
    assert!(
        matches!(&f.plan.actions[0], Action::SetImage { image, .. } if image == &format!("{LOGIN}/shop/web:1.4.2")),
        "{:?}",
        f.plan.actions
    );
    // Secrets never land in the evidence.
    let text = format!("{:?}", e.azure);
    assert!(!text.contains("refresh_token") && !text.contains("eyJ"));
    emu.shutdown().await;
}

#[tokio::test]
async fn an_index_gives_the_platforms_and_the_mismatch_is_high() {
    let emu = emulator("platform-mismatch").await;
    grant_pull(&emu);
    let acr = FakeAcr::start(&emu, LOGIN, content()).await;
    let mut e = evidence("platform-mismatch");
    let before = diagnose(&e).findings.into_iter().find(|f| f.code == FindingCode::PlatformMismatch).unwrap();
    assert_eq!(before.confidence, Confidence::Medium);

    let read = registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    assert_eq!(read.registries, 1);
    assert!(registry_unavailable(&e).is_empty(), "{:?}", registry_unavailable(&e));
    let c = e.azure.content_of(LOGIN).unwrap();
    let iis = c.repositories.iter().find(|r| r.name == "shop/legacy-iis").unwrap();
    // The attestation entry (unknown/unknown) is not a platform.
    assert_eq!(iis.platforms, ["windows/amd64"]);
    assert_eq!(acr.requests("/blobs/"), 0, "an index needs no config blob");

    let f = diagnose(&e).findings.into_iter().find(|f| f.code == FindingCode::PlatformMismatch).unwrap();
    assert_eq!(f.confidence, Confidence::High);
    emu.shutdown().await;
}

#[tokio::test]
async fn no_pull_role_is_an_unavailable_entry() {
    let emu = emulator("image-tag-not-found").await;
    // An identity with no role on the registry (the emulator's operator stands for the
    // subscription's Owner, which may pull): the exchange works, the token is refused.
    allow_loopback(&emu);
    let acr = FakeAcr::start(&emu, LOGIN, content()).await;
    let mut e = evidence("image-tag-not-found");
    let nobody = emu.create_application("pulldoctor-without-roles").unwrap();
    let mut config = collect_support::azure_config(&emu);
    config.auth = pulldoctor::credential::AzureAuth::ClientCredentials {
        token_url: collect_support::token_url(&emu),
        client_id: nobody.client_id.clone(),
        client_secret: nobody.client_secret.expose().to_string(),
    };
    let read = registry::enrich(&mut e, &config.clients().unwrap(), &options(&emu, &acr)).await;
    assert_eq!(read, RegistryRead { requests: 2, registries: 0 });
    let u = registry_unavailable(&e);
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].starts_with(&format!("registry: {LOGIN}/shop/web: POST /oauth2/token")), "{u:?}");
    assert!(u[0].contains("401 UNAUTHORIZED"), "{u:?}");
    assert!(e.azure.content_of(LOGIN).is_none());
    assert_eq!(acr.requests("/v2/"), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_403_on_the_token_exchange_is_an_unavailable_entry() {
    let emu = emulator("image-tag-not-found").await;
    // The fixture's registry firewall allows only the cluster's egress IP, not pulldoctor's
    // address: ACR answers the exchange with 403 DENIED.
    let acr = FakeAcr::start(&emu, LOGIN, content()).await;
    let mut e = evidence("image-tag-not-found");
    let read = registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    assert_eq!(read, RegistryRead { requests: 1, registries: 0 });
    let u = registry_unavailable(&e);
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].contains("POST /oauth2/exchange: 403 DENIED"), "{u:?}");
    // The diagnosis goes on as without the content.
    let f = diagnose(&e).findings.into_iter().find(|f| f.code == FindingCode::ImageNotFound).unwrap();
    assert_eq!(f.confidence, Confidence::Medium);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_registry_is_an_unavailable_entry() {
    let emu = emulator("image-tag-not-found").await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let options =
        RegistryOptions { ca_pem: vec![emu.ca_pem.clone()], addresses: BTreeMap::from([(LOGIN.to_string(), closed)]) };
    let mut e = evidence("image-tag-not-found");
    let start = std::time::Instant::now();
    let read = registry::enrich(&mut e, &clients(&emu), &options).await;
    assert!(start.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(read, RegistryRead { requests: 1, registries: 0 });
    let u = registry_unavailable(&e);
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].starts_with(&format!("registry: {LOGIN}/shop/web: POST /oauth2/exchange: ")), "{u:?}");
    assert!(u[0].to_lowercase().contains("refused") || u[0].to_lowercase().contains("connect"), "{u:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn tag_pages_are_bounded_and_the_failing_tag_is_still_checked() {
    let emu = emulator("image-tag-not-found").await;
    grant_pull(&emu);
    let many: Vec<String> = (0..2500).map(|i| format!("0.{i}.0")).collect();
    let mut repo = FakeRepo { tags: many, ..Default::default() };
    // Beyond the pages read: found through its manifest.
    repo.tags.push("1.4.20".into());
    repo = repo.single("1.4.20", "linux", "arm64");
    let acr = FakeAcr::start(&emu, LOGIN, BTreeMap::from([("shop/web".to_string(), repo)])).await;
    let mut e = evidence("image-tag-not-found");
    let read = registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    assert_eq!(acr.requests("/tags/list"), MAX_TAG_PAGES);
    assert_eq!(read.requests, 2 + MAX_TAG_PAGES + 2);
    let web = &e.azure.content_of(LOGIN).unwrap().repositories[0];
    assert_eq!(web.tags.len(), registry::PAGE_SIZE * MAX_TAG_PAGES + 1);
    assert!(web.tags.contains(&"1.4.20".to_string()));
    assert_eq!(web.platforms, ["linux/arm64"]);
    // The tag exists: not an image-not-found with a candidate.
    assert!(
        diagnose(&e)
            .findings
            .iter()
            .filter(|f| f.code == FindingCode::ImageNotFound)
            .all(|f| f.confidence != Confidence::High)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_missing_repository_is_stated_only_with_the_catalog() {
    let emu = emulator("image-tag-not-found").await;
    grant_pull(&emu);
    // No `shop/web` at all: 404 NAME_UNKNOWN; the catalog names what exists.
    let mut repos = content();
    let web = repos.remove("shop/web").unwrap();
    repos.insert("shop/webapp".into(), web);
    let acr = FakeAcr::start(&emu, LOGIN, repos).await;
    let mut e = evidence("image-tag-not-found");
    let read = registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    assert_eq!(read.registries, 1);
    assert_eq!(acr.requests("/v2/_catalog"), 1);
    let names: Vec<&str> = e.azure.content_of(LOGIN).unwrap().repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["shop/cart", "shop/legacy-iis", "shop/webapp"]);
    emu.shutdown().await;
}

/// `shop/web` whose newest tag's config blob is `blob` (`None`: the blob GET fails, as ACR's
/// redirect to an unreachable data endpoint does).
fn web_with_blob(blob: Option<serde_json::Value>) -> BTreeMap<String, FakeRepo> {
    let mut repos = content();
    let web = repos.get_mut("shop/web").unwrap();
    let digest = web.blobs.keys().next().unwrap().clone();
    match blob {
        Some(b) => web.blobs.insert(digest, b),
        None => web.blobs.remove(&digest),
    };
    repos
}

#[tokio::test]
async fn a_failed_config_blob_keeps_the_tags_and_the_candidate() {
    let emu = emulator("image-tag-not-found").await;
    grant_pull(&emu);
    let acr = FakeAcr::start(&emu, LOGIN, web_with_blob(None)).await;
    let mut e = evidence("image-tag-not-found");
    let read = registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    assert_eq!(read.registries, 1);
    let web = &e.azure.content_of(LOGIN).expect("tags merged").repositories[0];
    assert_eq!(web.tags, ["1.2.7", "1.3.0", "1.4.1", "1.4.2"]);
    assert!(web.platforms.is_empty(), "{web:?}");
    let u = registry_unavailable(&e);
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].starts_with(&format!("registry: {LOGIN}/shop/web platforms: GET /v2/shop/web/blobs/")), "{u:?}");
    // The tags still name the candidate.
    let f = diagnose(&e).findings.into_iter().find(|f| f.code == FindingCode::ImageNotFound).unwrap();
    assert!(
        matches!(&f.plan.actions[0], Action::SetImage { image, .. } if image == &format!("{LOGIN}/shop/web:1.4.2")),
        "{:?}",
        f.plan.actions
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn an_answer_beyond_the_body_cap_is_a_failure() {
    let emu = emulator("image-tag-not-found").await;
    grant_pull(&emu);
    let huge = "x".repeat(registry::MAX_BODY + 1);
    let blob = serde_json::json!({"os": "linux", "architecture": "amd64", "padding": huge});
    let acr = FakeAcr::start(&emu, LOGIN, web_with_blob(Some(blob))).await;
    let mut e = evidence("image-tag-not-found");
    registry::enrich(&mut e, &clients(&emu), &options(&emu, &acr)).await;
    let web = &e.azure.content_of(LOGIN).expect("tags merged").repositories[0];
    assert!(web.platforms.is_empty(), "{:?}", web.platforms);
    let u = registry_unavailable(&e);
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].contains("platforms") && u[0].contains(&format!("{} bytes", registry::MAX_BODY)), "{u:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn images_outside_acr_and_healthy_pods_cost_nothing() {
    let emu = emulator("healthy-baseline").await;
    let mut e = evidence("healthy-baseline");
    let options = RegistryOptions::default();
    let read = registry::enrich(&mut e, &clients(&emu), &options).await;
    assert_eq!(read, RegistryRead::default());
    assert!(e.azure.unavailable.is_empty());
    emu.shutdown().await;
}
