//! One pull attempt: an element of the kubelet's `[err1, err2]` aggregate, or the whole
//! error when only one credential was tried.

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::class::{Credentials, PullStage, SymptomClass};
use super::image::ImageRef;

/// What one credential attempt ran into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullAttempt {
    /// What kind of failure this attempt describes.
    pub class: SymptomClass,
    /// How the attempt authenticated, when the text tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// HTTP status when one is stated (`401 Unauthorized` gives 401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The gRPC code from an `rpc error: code = X desc = ` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<String>,
    /// The token endpoint URL (`https://HOST/oauth2/token?scope=…&service=…`) when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Registry host: from the token URL, `pulling from host HOST`, a request URL
    /// (`Head "https://HOST/v2/…"`), or else the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_host: Option<String>,
    /// The `IP:PORT` that was dialled (`dial tcp IP:PORT`, or the remote side of
    /// `read tcp LOCAL->REMOTE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialed: Option<String>,
    /// The host whose DNS lookup failed (`lookup HOST on …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_host: Option<String>,
    /// The resolver's `IP:53` (`lookup HOST on IP:53`, or `read udp …->IP:53`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// The client IP quoted in ACR's firewall body (`client with IP '1.2.3.4' …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Where in the pull it failed, when the text tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<PullStage>,
    /// The host a blob download went to, when it is not the registry's own (a storage account,
    /// `REG.REGION.data.azurecr.io`, a CDN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_host: Option<String>,
    /// The attempt's own text, trimmed, with any `rpc error: code = C desc = ` prefix removed.
    pub detail: String,
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("symptom pattern is a valid regex")
}

/// An HTTP status as Go formats it (`: 401 Unauthorized`, `status code 403`), or as the
/// Docker client quotes a body it could not parse (`error parsing HTTP 403 response body`).
static STATUS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:: |\bstatus(?: code)?:? |\bHTTP )([1-5][0-9]{2})(?:$|[^0-9.:])"));
/// A blob download: after the manifest resolved.
static BLOB_STAGE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)error pulling image configuration|failed to copy|http[a-z]*seeker|/blobs/sha256|download failed after attempts|failed commit on ref|failed to fetch (?:config|layer)",
    )
});
/// The host of a blob URL (`https://HOST/.../blobs/...`, or any URL on a storage or data host).
static BLOB_HOST: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"https?://([A-Za-z0-9.-]+(?::[0-9]+)?)/[^\s]*/blobs/|https?://([A-Za-z0-9.-]+\.(?:blob\.core\.windows\.net|data\.azurecr\.io|cdn\.mscr\.io))",
    )
});
/// `rpc error: code = X desc = ` at the start of a text.
static RPC_PREFIX: LazyLock<Regex> = LazyLock::new(|| regex(r"^rpc error: code = ([A-Za-z]+) desc = ?"));
/// The URL the token was fetched from, after `failed to fetch … token`.
static TOKEN_URL: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:request to |\b(?:Get|Post|Head|GET|POST|HEAD) "?)(https?://[^\s"]+)"#));
/// `failed to fetch oauth token` / `failed to fetch anonymous token`.
static TOKEN_FETCH: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)failed to fetch (oauth|anonymous) token"));
/// containerd's basic-auth (or no-challenge) failure.
static PULLING_FROM_HOST: LazyLock<Regex> =
    LazyLock::new(|| regex(r"pulling from host (\S+?) failed with status code"));
/// The host of a request URL (`Head "https://HOST/v2/…"`, `Get https://HOST/v2/`).
static REQUEST_HOST: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:\b(?:Head|Get|Post|Put|HEAD|GET|POST|PUT) "?|request to )https?://([^/\s"?#]+)"#));
/// `dial tcp IP:PORT: `.
static DIAL_TCP: LazyLock<Regex> = LazyLock::new(|| regex(r"\bdial tcp (\S+?:[0-9]+): "));
/// `read tcp LOCAL->REMOTE: ` (also write).
static RW_TCP: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:read|write) tcp \S+?->(\S+?:[0-9]+): "));
/// `lookup HOST[ on RESOLVER]: `.
static LOOKUP: LazyLock<Regex> = LazyLock::new(|| regex(r"\blookup ([A-Za-z0-9_.-]+?)(?: on (\S+?:[0-9]+))?: "));
/// A UDP exchange with a resolver on port 53.
static UDP_RESOLVER: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:read|write|dial) udp (?:\S+?->)?(\S+?:53): "));
/// ACR's firewall refusal.
static CLIENT_IP: LazyLock<Regex> = LazyLock::new(|| regex(r#"(?i)client with IP \\?['"]?([0-9A-Fa-f.:]+)"#));
/// A connection cut short.
static EOF: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:^|: |unexpected )EOF\b"));
/// `denied: …` as a registry error code.
static DENIED: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?i)(?:^|[\s:])denied: |pull access denied|"code":\s*"DENIED""#));
/// Azure Storage's XML refusal (a blob download from the registry's storage account).
static STORAGE_REFUSAL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"<Code>(?:AuthorizationFailure|AuthorizationPermissionMismatch|AuthenticationFailed|AuthorizationSourceIPMismatch)</Code>",
    )
});
/// Clauses that name the image being pulled.
static IMAGE_CLAUSE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(?:failed to pull and unpack image|[Ff]ailed to pull image|failed to resolve reference|failed to resolve image|Back-off pulling image) "([^"]*)"|manifest for (\S+) not found"#,
    )
});

/// Removes leading `rpc error: code = C desc = ` prefixes; returns the first code.
pub(crate) fn strip_rpc(text: &str) -> (Option<String>, &str) {
    let mut code = None;
    let mut rest = text.trim();
    while let Some(captures) = RPC_PREFIX.captures(rest) {
        if code.is_none() {
            code = captures.get(1).map(|m| m.as_str().to_owned());
        }
        let end = captures.get(0).map_or(0, |m| m.end());
        rest = rest.get(end..).unwrap_or_default().trim_start();
    }
    (code, rest.trim())
}

/// The first image named by a known clause in `text`.
pub(crate) fn image_in(text: &str) -> Option<ImageRef> {
    IMAGE_CLAUSE.captures_iter(text).find_map(|captures| {
        let reference = captures.get(1).or_else(|| captures.get(2))?.as_str();
        ImageRef::parse(reference)
    })
}

fn capture(re: &Regex, text: &str) -> Option<String> {
    re.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str().to_owned())
}

fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|needle| haystack.contains(needle))
}

/// The authority (`host[:port]`) of an absolute URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest.get(..end)?;
    (!host.is_empty()).then(|| host.to_owned())
}

impl PullAttempt {
    /// Reads one attempt. `grpc_code` is an outer code to use when the text carries
    /// none; `fallback_image` supplies the registry host when nothing else does.
    pub(crate) fn read(text: &str, grpc_code: Option<String>, fallback_image: Option<&ImageRef>) -> PullAttempt {
        let (own_code, detail) = strip_rpc(text);
        let lower = detail.to_lowercase();
        let status = STATUS.captures(detail).and_then(|c| c.get(1)).and_then(|m| m.as_str().parse::<u16>().ok());

        let token_fetch = TOKEN_FETCH.captures(detail);
        let mut credentials =
            token_fetch.as_ref().and_then(|c| match c.get(1)?.as_str().to_ascii_lowercase().as_str() {
                "oauth" => Some(Credentials::Oauth),
                _ => Some(Credentials::Anonymous),
            });
        let pulling_from_host = capture(&PULLING_FROM_HOST, detail);
        if credentials.is_none() && pulling_from_host.is_some() && status == Some(401) {
            credentials = Some(Credentials::Basic);
        }
        let token_url = token_fetch
            .as_ref()
            .and_then(|c| c.get(0))
            .and_then(|m| detail.get(m.end()..))
            .and_then(|after| capture(&TOKEN_URL, after))
            .map(|url| url.trim_end_matches([':', '"', ',']).to_owned());

        let lookup = LOOKUP.captures(detail);
        let lookup_host = lookup.as_ref().and_then(|c| c.get(1)).map(|m| m.as_str().trim_end_matches('.').to_owned());
        let resolver = lookup
            .as_ref()
            .and_then(|c| c.get(2))
            .map(|m| m.as_str().to_owned())
            .or_else(|| capture(&UDP_RESOLVER, detail));

        let registry_host = token_url
            .as_deref()
            .and_then(url_host)
            .or(pulling_from_host)
            .or_else(|| capture(&REQUEST_HOST, detail))
            .or_else(|| image_in(detail).map(|image| image.registry))
            .or_else(|| fallback_image.map(|image| image.registry.clone()));

        let client_ip = capture(&CLIENT_IP, detail);
        let dialed = capture(&DIAL_TCP, detail).or_else(|| capture(&RW_TCP, detail));

        let class = classify(detail, &lower, status, lookup.is_some() || resolver.is_some());
        let stage = if BLOB_STAGE.is_match(detail) {
            Some(PullStage::Blob)
        } else if contains_any(
            &lower,
            &["failed to resolve reference", "failed to resolve image", "/manifests/", "failed to authorize"],
        ) {
            Some(PullStage::Resolve)
        } else {
            None
        };
        let data_host = BLOB_HOST
            .captures(detail)
            .and_then(|c| c.get(1).or_else(|| c.get(2)))
            .map(|m| m.as_str().to_ascii_lowercase());
        // A blob URL on another host (storage, data endpoint, CDN) names where the download
        // went, not the registry: the registry is then the image's.
        let image_registry =
            image_in(detail).map(|image| image.registry).or_else(|| fallback_image.map(|image| image.registry.clone()));
        let registry_host = match (&registry_host, &data_host, image_registry) {
            (Some(r), Some(d), Some(i)) if r.eq_ignore_ascii_case(d) => Some(i),
            _ => registry_host,
        };
        let data_host = data_host.filter(|h| registry_host.as_deref().is_none_or(|r| !r.eq_ignore_ascii_case(h)));

        PullAttempt {
            class,
            credentials,
            status,
            grpc_code: own_code.or(grpc_code),
            token_url,
            registry_host,
            dialed,
            lookup_host,
            resolver,
            client_ip,
            stage,
            data_host,
            detail: detail.to_owned(),
        }
    }

    /// How telling this attempt is when attempts disagree: lower is more telling.
    /// An anonymous 401 is usually the kubelet's extra anonymous try, hence noise.
    pub(crate) fn rank(&self) -> u8 {
        match self.class {
            SymptomClass::PlatformMismatch => 0,
            SymptomClass::Forbidden => 1,
            SymptomClass::Unauthorized => match self.credentials {
                Some(Credentials::Oauth | Credentials::Basic) => 2,
                None => 3,
                Some(Credentials::Anonymous) => 10,
            },
            SymptomClass::NotFound => 4,
            SymptomClass::Dns => 5,
            SymptomClass::Tls => 6,
            SymptomClass::Timeout => 7,
            SymptomClass::Unreachable => 8,
            SymptomClass::Throttled => 9,
            SymptomClass::Unknown => 11,
        }
    }
}

/// Classifies one attempt's text. Order matters: the more specific reading wins.
fn classify(detail: &str, lower: &str, status: Option<u16>, dns_exchange: bool) -> SymptomClass {
    if contains_any(
        lower,
        &[
            "no match for platform in manifest",
            "no supported platform found in manifest list",
            "no matching manifest for",
        ],
    ) {
        return SymptomClass::PlatformMismatch;
    }
    if CLIENT_IP.is_match(detail) || lower.contains("is not allowed access") {
        return SymptomClass::Forbidden;
    }
    if contains_any(lower, &["pull qps exceeded", "toomanyrequests", "too many requests", "pull rate limit"]) {
        return SymptomClass::Throttled;
    }
    if dns_exchange || contains_any(lower, &["no such host", "server misbehaving"]) {
        return SymptomClass::Dns;
    }
    if detail.contains("x509: ")
        || detail.contains("tls: ")
        || contains_any(
            lower,
            &[
                "certificate signed by unknown authority",
                "failed to verify certificate",
                "server gave http response to https client",
            ],
        )
    {
        return SymptomClass::Tls;
    }
    match status {
        Some(401) => return SymptomClass::Unauthorized,
        Some(403) => return SymptomClass::Forbidden,
        Some(404) => return SymptomClass::NotFound,
        Some(429) => return SymptomClass::Throttled,
        _ => {}
    }
    if DENIED.is_match(detail) || STORAGE_REFUSAL.is_match(detail) {
        return SymptomClass::Forbidden;
    }
    if contains_any(lower, &["unauthorized", "authentication required", "no basic auth credentials"]) {
        return SymptomClass::Unauthorized;
    }
    if contains_any(lower, &["not found", "manifest unknown", "name unknown"]) {
        return SymptomClass::NotFound;
    }
    if contains_any(
        lower,
        &["i/o timeout", "deadline exceeded", "timeout exceeded", "handshake timeout", "timed out", "timeout awaiting"],
    ) {
        return SymptomClass::Timeout;
    }
    if EOF.is_match(detail)
        || contains_any(
            lower,
            &[
                "network is unreachable",
                "host is unreachable",
                "no route to host",
                "connection refused",
                "connection reset",
                "broken pipe",
            ],
        )
    {
        return SymptomClass::Unreachable;
    }
    SymptomClass::Unknown
}
