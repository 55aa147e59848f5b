//! Live registry content from ACR's data plane: the tags and platforms of the failing images'
//! repositories, so `IMAGE_NOT_FOUND` can name candidate tags and `PLATFORM_MISMATCH` knows what
//! the image is built for, without an inventory's `registryContent`.
//!
//! ```text
//! TokenSource (ARM scope) ─► POST https://LOGIN/oauth2/exchange  (Entra token -> ACR refresh token)
//!                           ─► POST https://LOGIN/oauth2/token    (scope repository:REPO:pull -> access token)
//!                           ─► GET  /v2/REPO/tags/list?n=100      (Link rel="next", at most 10 pages)
//!                           ─► GET  /v2/REPO/manifests/REF        (index: platforms; manifest: its config blob)
//!                           ─► GET  /v2/REPO/blobs/CONFIG         ({os, architecture})
//! ```
//!
//! Only the failing images' repositories are read. A repository the registry does not know
//! (404 `NAME_UNKNOWN`) is a fact only when the repository list (`/v2/_catalog`) can be read
//! too: content merged into the evidence claims that the repositories it lacks do not exist,
//! so a registry whose repositories could not all be read is merged only into content that
//! already exists (an inventory's), never created, and its 404s remove nothing from it. Every
//! failure becomes an [`Unavailable`] entry `registry: LOGIN/REPO` with the status or cause;
//! a repository whose tags were read but whose platforms (manifests, config blobs: ACR
//! redirects blob reads to a data endpoint that is often unreachable) could not be keeps its
//! tags, with an entry `registry: LOGIN/REPO platforms`. Answers larger than [`MAX_BODY`] are
//! failures. Nothing here errors. Tokens are never logged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_model::container_registry::{RegistryContent, Repository, is_acr_login_server};
use azure_model::inventory::Unavailable;
use base64::Engine as _;
use serde_json::Value;

use super::azure::AzureClients;
use crate::evidence::{Evidence, pull_failures};

/// Prefix of [`Unavailable::what`] written here: `registry: LOGIN/REPO`.
pub const WHAT: &str = "registry:";
/// Tags asked for per page (`n`).
pub const PAGE_SIZE: usize = 100;
/// At most this many pages of tags per repository.
pub const MAX_TAG_PAGES: usize = 10;
/// At most this many pages of the repository list.
pub const MAX_CATALOG_PAGES: usize = 10;
/// At most this many repositories per registry.
pub const MAX_REPOSITORIES: usize = 20;
/// At most this many failing references per repository have their manifest read.
pub const MAX_REFERENCES: usize = 3;
/// Timeout of one request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer body read (tag lists, manifests, config blobs, error texts): a larger one
/// is a failure, never buffered whole.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// How registries are reached.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Extra PEM CAs to trust for registries (the emulator's test CA).
    pub ca_pem: Vec<String>,
    /// Login server -> address to connect to instead of DNS (like curl --connect-to), e.g. a loopback front.
    pub addresses: BTreeMap<String, SocketAddr>,
}

/// What reading the registries cost and gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryRead {
    /// HTTP requests sent to registries (token service included).
    pub requests: usize,
    /// Registries whose content was merged into the evidence.
    pub registries: usize,
}

/// Reads the content of the registries of the evidence's failing ACR images (only the failing
/// images' repositories; tags paged with `n`/`Link`, bounded; platforms of the failing reference
/// when it exists, else of the newest-looking tag) and merges it into
/// `evidence.azure.registry_content`; failures become `evidence.azure.unavailable` entries
/// (what: "registry: LOGIN/REPO", reason with status/cause), never errors.
pub async fn enrich(evidence: &mut Evidence, clients: &AzureClients, options: &RegistryOptions) -> RegistryRead {
    let targets = targets(evidence);
    if targets.is_empty() {
        return RegistryRead::default();
    }
    let reader = match Reader::new(options) {
        Ok(r) => r,
        Err(reason) => {
            for (login, repos) in &targets {
                for repo in repos.keys() {
                    evidence.azure.unavailable.push(unavailable(login, repo, &reason));
                }
            }
            return RegistryRead::default();
        }
    };
    let aad = clients.tokens.token(azure_rest::ARM_SCOPE).await.map(|t| t.token).map_err(|e| e.to_string());
    let reads =
        futures::future::join_all(targets.iter().map(|(login, repos)| reader.registry(login, repos, &aad))).await;
    let mut read = RegistryRead { requests: reader.requests.load(Ordering::Relaxed), registries: 0 };
    for (login, outcome) in targets.keys().zip(reads) {
        evidence.azure.unavailable.extend(outcome.failures);
        if merge(&mut evidence.azure.registry_content, login, outcome.repositories, outcome.complete) {
            read.registries += 1;
        }
    }
    read
}

/// Login server -> repository -> the failing references (digest, else tag).
fn targets(evidence: &Evidence) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in pull_failures(evidence) {
        let Some(image) = f.image.as_ref() else { continue };
        let login = image.registry.to_ascii_lowercase();
        if !is_acr_login_server(&login) {
            continue;
        }
        let repos = out.entry(login).or_default();
        if repos.len() >= MAX_REPOSITORIES && !repos.contains_key(&image.repository) {
            continue;
        }
        let reference = image.digest.clone().or_else(|| image.tag.clone()).unwrap_or_else(|| "latest".into());
        repos.entry(image.repository.clone()).or_default().insert(reference);
    }
    out
}

fn unavailable(login: &str, repo: &str, reason: &str) -> Unavailable {
    Unavailable { what: format!("{WHAT} {login}/{repo}"), reason: reason.to_string() }
}

/// The platforms of `login/repo` could not be read (its tags were).
fn platforms_unavailable(login: &str, repo: &str, reason: &str) -> Unavailable {
    Unavailable { what: format!("{WHAT} {login}/{repo} platforms"), reason: reason.to_string() }
}

/// Reads `resp`'s body, at most `max` bytes: a larger one is an error (never buffered whole).
async fn bounded_body(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if let Some(len) = resp.content_length()
        && len > max as u64
    {
        return Err(format!("the answer is {len} bytes, more than the {max} bytes pulldoctor reads"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the answer: {}", cause(&e)))? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is more than the {max} bytes pulldoctor reads"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What one registry gave.
struct Outcome {
    /// Repositories read (`Some`) or found missing (`None`).
    repositories: BTreeMap<String, Option<Repository>>,
    /// When the content may stand on its own (see the module docs): every repository name the
    /// registry has when its catalog had to be read, else none.
    complete: Option<Vec<String>>,
    failures: Vec<Unavailable>,
}

/// Merges one registry's repositories (`None`: missing); `complete` holds every repository
/// name when the registry's content may stand on its own. `true` when something was merged.
fn merge(
    content: &mut Vec<RegistryContent>,
    login: &str,
    repositories: BTreeMap<String, Option<Repository>>,
    complete: Option<Vec<String>>,
) -> bool {
    if repositories.is_empty() && complete.is_none() {
        return false;
    }
    let existing = content.iter().position(|c| c.login_server.eq_ignore_ascii_case(login));
    let index = match (existing, &complete) {
        (Some(i), _) => i,
        (None, Some(_)) => {
            content.push(RegistryContent { login_server: login.to_string(), repositories: Vec::new() });
            content.len() - 1
        }
        (None, None) => return false,
    };
    let c = &mut content[index];
    let listed = complete.is_some();
    for name in complete.into_iter().flatten() {
        if !c.repositories.iter().any(|r| r.name == name) {
            c.repositories.push(Repository { name, ..Default::default() });
        }
    }
    for (name, repo) in repositories {
        let at = c.repositories.iter().position(|r| r.name == name);
        match (at, repo) {
            (Some(i), Some(r)) => c.repositories[i] = r,
            (None, Some(r)) => c.repositories.push(r),
            // A 404 is a fact only when the repository list could be read (see the module docs).
            (Some(i), None) if listed => {
                c.repositories.remove(i);
            }
            (Some(_), None) => {}
            (None, None) => {}
        }
    }
    true
}

/// One HTTP client for every registry, and the request count.
struct Reader {
    http: reqwest::Client,
    requests: AtomicUsize,
}

/// A failed request: the HTTP status when the registry answered.
struct Failed {
    status: Option<u16>,
    reason: String,
}

impl Reader {
    fn new(options: &RegistryOptions) -> Result<Self, String> {
        let mut b = reqwest::Client::builder().timeout(TIMEOUT).connect_timeout(Duration::from_secs(5));
        for pem in &options.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| format!("bad CA PEM: {e}"))? {
                b = b.add_root_certificate(cert);
            }
        }
        for (login, addr) in &options.addresses {
            b = b.resolve(login, *addr);
        }
        let http = b.build().map_err(|e| format!("cannot build the registry client: {e}"))?;
        Ok(Self { http, requests: AtomicUsize::new(0) })
    }

    /// Sends one request; a non-2xx answer is a [`Failed`] with the ACR error text.
    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, Failed> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = req.send().await.map_err(|e| Failed { status: None, reason: format!("{what}: {}", cause(&e)) })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = bounded_body(resp, MAX_BODY).await.map(|b| String::from_utf8_lossy(&b).into_owned());
        let body = body.unwrap_or_else(|e| format!("({e})"));
        Err(Failed { status: Some(status.as_u16()), reason: format!("{what}: {}", describe(status, &body)) })
    }

    async fn json(&self, what: &str, req: reqwest::RequestBuilder) -> Result<(Value, Option<String>), Failed> {
        let resp = self.send(what, req).await?;
        let link = resp.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body =
            bounded_body(resp, MAX_BODY).await.map_err(|e| Failed { status: None, reason: format!("{what}: {e}") })?;
        let v = serde_json::from_slice::<Value>(&body)
            .map_err(|e| Failed { status: None, reason: format!("{what}: the answer is not JSON: {e}") })?;
        Ok((v, link))
    }

    /// Entra token -> ACR refresh token.
    async fn refresh_token(&self, login: &str, aad: &str) -> Result<String, Failed> {
        let mut form = vec![("grant_type", "access_token"), ("service", login), ("access_token", aad)];
        let tenant = tenant_of(aad);
        if let Some(t) = tenant.as_deref() {
            form.push(("tenant", t));
        }
        let req = self.http.post(format!("https://{login}/oauth2/exchange")).form(&form);
        let (v, _) = self.json("POST /oauth2/exchange", req).await?;
        v["refresh_token"].as_str().map(str::to_string).ok_or_else(|| Failed {
            status: None,
            reason: "POST /oauth2/exchange: the answer has no refresh_token".into(),
        })
    }

    /// ACR refresh token -> access token for `scope`.
    async fn access_token(&self, login: &str, refresh: &str, scope: &str) -> Result<String, Failed> {
        let form = [("grant_type", "refresh_token"), ("service", login), ("scope", scope), ("refresh_token", refresh)];
        let req = self.http.post(format!("https://{login}/oauth2/token")).form(&form);
        let (v, _) = self.json(&format!("POST /oauth2/token ({scope})"), req).await?;
        v["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failed { status: None, reason: "POST /oauth2/token: the answer has no access_token".into() })
    }

    /// Every page of a `/v2/...` list (`tags` or `repositories`), at most `max_pages`;
    /// `true` when the list is whole.
    async fn list(
        &self,
        login: &str,
        token: &str,
        first: String,
        key: &str,
        max_pages: usize,
    ) -> Result<(Vec<String>, bool), Failed> {
        let base = reqwest::Url::parse(&format!("https://{login}/"))
            .map_err(|e| Failed { status: None, reason: format!("bad login server: {e}") })?;
        let mut url = base.join(&first).map_err(|e| Failed { status: None, reason: e.to_string() })?;
        let mut items = Vec::new();
        for _ in 0..max_pages {
            let what = format!("GET {}", url.path());
            let (v, link) = self.json(&what, self.http.get(url.clone()).bearer_auth(token)).await?;
            items.extend(v[key].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)));
            match link.as_deref().and_then(next_link).and_then(|n| base.join(&n).ok()) {
                // Never send the token to another host.
                Some(next) if next.host_str() == base.host_str() && next.port() == base.port() => url = next,
                _ => return Ok((items, true)),
            }
        }
        Ok((items, false))
    }

    /// The platforms (`os/arch`) of `reference`: `Ok(None)` when the registry has no such
    /// manifest.
    async fn platforms(
        &self,
        login: &str,
        repo: &str,
        token: &str,
        reference: &str,
    ) -> Result<Option<Vec<String>>, Failed> {
        let req = self
            .http
            .get(format!("https://{login}/v2/{repo}/manifests/{reference}"))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT);
        let manifest = match self.json(&format!("GET /v2/{repo}/manifests/{reference}"), req).await {
            Ok((v, _)) => v,
            Err(Failed { status: Some(404), .. }) => return Ok(None),
            Err(f) => return Err(f),
        };
        if let Some(list) = manifest["manifests"].as_array() {
            let mut out = Vec::new();
            for m in list {
                if let Some(p) = platform(&m["platform"]["os"], &m["platform"]["architecture"])
                    && !out.contains(&p)
                {
                    out.push(p);
                }
            }
            return Ok(Some(out));
        }
        let Some(config) = manifest["config"]["digest"].as_str() else { return Ok(Some(Vec::new())) };
        let req = self.http.get(format!("https://{login}/v2/{repo}/blobs/{config}")).bearer_auth(token);
        let (v, _) = self.json(&format!("GET /v2/{repo}/blobs/{config}"), req).await?;
        Ok(Some(platform(&v["os"], &v["architecture"]).into_iter().collect()))
    }

    /// One repository: `Ok(None)` when the registry does not know it. A failure reading its
    /// platforms keeps the tags read and is pushed to `failures` on its own.
    async fn repository(
        &self,
        login: &str,
        refresh: &str,
        repo: &str,
        references: &BTreeSet<String>,
        failures: &mut Vec<Unavailable>,
    ) -> Result<Option<Repository>, Failed> {
        let token = self.access_token(login, refresh, &format!("repository:{repo}:pull")).await?;
        let first = format!("/v2/{repo}/tags/list?n={PAGE_SIZE}");
        let mut tags = match self.list(login, &token, first, "tags", MAX_TAG_PAGES).await {
            Ok((tags, _whole)) => tags,
            Err(Failed { status: Some(404), .. }) => return Ok(None),
            Err(f) => return Err(f),
        };
        let mut platforms: Vec<String> = Vec::new();
        let mut found = false;
        let mut refused: Vec<String> = Vec::new();
        for reference in references.iter().take(MAX_REFERENCES) {
            let ps = match self.platforms(login, repo, &token, reference).await {
                Ok(ps) => ps,
                Err(f) => {
                    refused.push(f.reason);
                    continue;
                }
            };
            if let Some(ps) = ps {
                found = true;
                // A tag beyond the pages read still exists.
                if !reference.contains(':') && !tags.contains(reference) {
                    tags.push(reference.clone());
                }
                for p in ps {
                    if !platforms.contains(&p) {
                        platforms.push(p);
                    }
                }
            }
        }
        // A failing reference that could not be read may exist: the newest tag says nothing then.
        if !found
            && refused.is_empty()
            && let Some(newest) = newest_looking(&tags)
        {
            match self.platforms(login, repo, &token, &newest).await {
                Ok(ps) => platforms = ps.unwrap_or_default(),
                Err(f) => refused.push(f.reason),
            }
        }
        if !refused.is_empty() {
            failures.push(platforms_unavailable(login, repo, &refused.join("; ")));
        }
        Ok(Some(Repository { name: repo.to_string(), tags, platforms }))
    }

    async fn registry(
        &self,
        login: &str,
        repos: &BTreeMap<String, BTreeSet<String>>,
        aad: &Result<String, String>,
    ) -> Outcome {
        let mut out = Outcome { repositories: BTreeMap::new(), complete: None, failures: Vec::new() };
        let refresh = match aad {
            Ok(aad) => self.refresh_token(login, aad).await.map_err(|f| f.reason),
            Err(e) => Err(format!("no Entra token for the registry's token exchange: {e}")),
        };
        let refresh = match refresh {
            Ok(r) => r,
            Err(reason) => {
                out.failures.extend(repos.keys().map(|repo| unavailable(login, repo, &reason)));
                return out;
            }
        };
        let mut all_read = true;
        for (repo, references) in repos {
            match self.repository(login, &refresh, repo, references, &mut out.failures).await {
                Ok(r) => {
                    out.repositories.insert(repo.clone(), r);
                }
                Err(f) => {
                    all_read = false;
                    out.failures.push(unavailable(login, repo, &f.reason));
                }
            }
        }
        let missing = out.repositories.values().any(Option::is_none);
        if all_read && !missing {
            out.complete = Some(Vec::new());
        } else if all_read {
            match self.catalog(login, &refresh).await {
                Ok(names) => out.complete = Some(names),
                Err(reason) => out.failures.push(unavailable(login, "_catalog", &reason)),
            }
        }
        out
    }

    /// Every repository name (needed to say a repository does not exist, and to name close ones).
    async fn catalog(&self, login: &str, refresh: &str) -> Result<Vec<String>, String> {
        let token = self.access_token(login, refresh, "registry:catalog:*").await.map_err(|f| f.reason)?;
        let first = format!("/v2/_catalog?n={PAGE_SIZE}");
        match self.list(login, &token, first, "repositories", MAX_CATALOG_PAGES).await {
            Ok((names, true)) => Ok(names),
            Ok((_, false)) => Err(format!("more than {} repositories", PAGE_SIZE * MAX_CATALOG_PAGES)),
            Err(f) => Err(f.reason),
        }
    }
}

/// `os/arch` of a manifest list entry or an image config; attestation entries
/// (`unknown/unknown`) are skipped.
fn platform(os: &Value, arch: &Value) -> Option<String> {
    let (os, arch) = (os.as_str()?, arch.as_str()?);
    (!os.is_empty() && os != "unknown" && !arch.is_empty() && arch != "unknown")
        .then(|| format!("{}/{}", os.to_ascii_lowercase(), arch.to_ascii_lowercase()))
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// `latest`, else the tag that sorts last with numbers compared as numbers (`1.10` > `1.9`).
fn newest_looking(tags: &[String]) -> Option<String> {
    if tags.iter().any(|t| t == "latest") {
        return Some("latest".into());
    }
    tags.iter().max_by(|a, b| natural(a).cmp(&natural(b))).cloned()
}

/// Sort key: digit runs as numbers (before words), other runs as text.
fn natural(s: &str) -> Vec<(u8, u128, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digit {
                break;
            }
            run.push(c);
            chars.next();
        }
        if digit {
            out.push((1, run.parse().unwrap_or(u128::MAX), String::new()));
        } else {
            out.push((0, 0, run));
        }
    }
    out
}

/// The `tid` claim of a JWT access token (not verified: only used to name the tenant).
fn tenant_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["tid"].as_str().filter(|t| !t.is_empty()).map(str::to_string)
}

/// `STATUS CODE: message` of an ACR/distribution error answer.
fn describe(status: reqwest::StatusCode, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(e) = v["errors"].as_array().and_then(|e| e.first()) {
        return format!(
            "{} {}: {}",
            status.as_u16(),
            e["code"].as_str().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default()
        );
    }
    let text: String = body.chars().take(200).collect();
    if text.trim().is_empty() { status.to_string() } else { format!("{status}: {}", text.trim()) }
}

/// A transport error with its causes (`connection refused`, `timed out`, certificate errors).
fn cause(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_relative_and_quoted() {
        assert_eq!(
            next_link("</v2/app/tags/list?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(next_link("<https://x/y>; rel=\"prev\""), None);
    }

    #[test]
    fn a_404_removes_a_repository_only_when_the_catalog_was_read() {
        let existing = || {
            vec![RegistryContent {
                login_server: "a.azurecr.io".into(),
                repositories: vec![Repository {
                    name: "shop/web".into(),
                    tags: vec!["1.0".into()],
                    ..Default::default()
                }],
            }]
        };
        let gone = || BTreeMap::from([("shop/web".to_string(), None)]);
        // Not all read, or `_catalog` refused: the inventory's repository stays.
        let mut c = existing();
        merge(&mut c, "a.azurecr.io", gone(), None);
        assert_eq!(c[0].repositories.len(), 1, "{c:?}");
        assert_eq!(c[0].repositories[0].tags, ["1.0"]);
        // With the catalog, the 404 is a fact.
        let mut c = existing();
        merge(&mut c, "a.azurecr.io", gone(), Some(vec!["shop/webapp".into()]));
        let names: Vec<&str> = c[0].repositories.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["shop/webapp"]);
    }

    #[test]
    fn newest_looking_tags() {
        let t = |v: &[&str]| newest_looking(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&["1.9.0", "1.10.0", "1.2.0"]).as_deref(), Some("1.10.0"));
        assert_eq!(t(&["1.0", "latest"]).as_deref(), Some("latest"));
        assert_eq!(t(&[]), None);
    }

    #[test]
    fn platforms_skip_attestations() {
        use serde_json::json;
        assert_eq!(platform(&json!("Windows"), &json!("amd64")).as_deref(), Some("windows/amd64"));
        assert_eq!(platform(&json!("unknown"), &json!("unknown")), None);
    }

    #[test]
    fn tenant_from_a_token() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"tid":"t1"}"#);
        assert_eq!(tenant_of(&format!("h.{payload}.s")).as_deref(), Some("t1"));
        assert_eq!(tenant_of("opaque"), None);
    }
}
