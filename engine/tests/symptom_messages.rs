//! Table-driven tests of the symptom parser on every message shape from the notes
//! (`/work/shared/notes/pull-failures.md`, `host-backend.md`).

use pulldoctor::symptom::{Credentials, ImageRef, MessageKind, PullAttempt, Symptom, SymptomClass};
use rstest::rstest;

use Credentials::{Anonymous, Basic, Oauth};
use MessageKind::{BackOff, ErrImagePull, FailedToPull, ImagePullBackOff, PullSecretMissing, Raw};
use SymptomClass::{
    Dns, Forbidden, NotFound, PlatformMismatch, Throttled, Timeout, Tls, Unauthorized, Unknown, Unreachable,
};

macro_rules! img {
    () => {
        "myacr.azurecr.io/app:v1"
    };
}
/// containerd's prefix for all but the platform case.
macro_rules! pre {
    () => {
        concat!("failed to pull and unpack image \"", img!(), "\": failed to resolve reference \"", img!(), "\": ")
    };
}
macro_rules! rpc {
    () => {
        "rpc error: code = Unknown desc = "
    };
}
macro_rules! token_url {
    () => {
        "https://myacr.azurecr.io/oauth2/token?scope=repository%3Aapp%3Apull&service=myacr.azurecr.io"
    };
}
/// containerd >= 1.6.25 / 1.7 / 2.x, credentials refused.
macro_rules! oauth_401 {
    () => {
        concat!(
            pre!(),
            "failed to authorize: failed to fetch oauth token: unexpected status from GET request to ",
            token_url!(),
            ": 401 Unauthorized"
        )
    };
}
/// containerd >= 1.6.25, no credentials.
macro_rules! anon_401 {
    () => {
        concat!(
            pre!(),
            "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to ",
            token_url!(),
            ": 401 Unauthorized"
        )
    };
}
/// containerd < 1.6.25, credentials refused.
macro_rules! oauth_401_old {
    () => {
        concat!(pre!(), "failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized")
    };
}
macro_rules! anon_401_old {
    () => {
        concat!(pre!(), "failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized")
    };
}
macro_rules! not_found {
    () => {
        concat!("rpc error: code = NotFound desc = ", pre!(), img!(), ": not found")
    };
}
macro_rules! firewall_body {
    () => {
        "client with IP '20.50.60.70' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    };
}
macro_rules! head {
    () => {
        "failed to do request: Head \"https://myacr.azurecr.io/v2/app/manifests/v1\": "
    };
}
macro_rules! dns_timeout {
    () => {
        concat!(
            rpc!(),
            pre!(),
            head!(),
            "dial tcp: lookup myacr.azurecr.io on 10.0.0.10:53: read udp 10.224.0.4:40123->10.0.0.10:53: i/o timeout"
        )
    };
}

fn credentials(symptom: &Symptom) -> Vec<Option<Credentials>> {
    symptom.attempts.iter().map(|a| a.credentials).collect()
}

#[rstest]
// --- oauth 401, every wrapping -------------------------------------------------------
#[case::oauth_new_bare(oauth_401!(), Raw, Unauthorized, &[Some(Oauth)], Some(401))]
#[case::oauth_new_rpc(concat!(rpc!(), oauth_401!()), Raw, Unauthorized, &[Some(Oauth)], Some(401))]
#[case::oauth_new_event_rpc(
    concat!("Failed to pull image \"", img!(), "\": ", rpc!(), oauth_401!()),
    FailedToPull, Unauthorized, &[Some(Oauth)], Some(401)
)]
#[case::oauth_new_event(
    concat!("Failed to pull image \"", img!(), "\": ", oauth_401!()),
    FailedToPull, Unauthorized, &[Some(Oauth)], Some(401)
)]
#[case::oauth_old(oauth_401_old!(), Raw, Unauthorized, &[Some(Oauth)], Some(401))]
#[case::oauth_post(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: unexpected status from POST request to https://myacr.azurecr.io/oauth2/token: 401 Unauthorized"),
    Raw, Unauthorized, &[Some(Oauth)], Some(401)
)]
#[case::anonymous_new(anon_401!(), Raw, Unauthorized, &[Some(Anonymous)], Some(401))]
#[case::anonymous_old_rpc(concat!(rpc!(), anon_401_old!()), Raw, Unauthorized, &[Some(Anonymous)], Some(401))]
// --- [a, b] aggregates ---------------------------------------------------------------
#[case::pair_anonymous_first_rpc(
    concat!("Failed to pull image \"", img!(), "\": [", rpc!(), anon_401!(), ", ", rpc!(), oauth_401!(), "]"),
    FailedToPull, Unauthorized, &[Some(Anonymous), Some(Oauth)], Some(401)
)]
#[case::pair_oauth_first(
    concat!("Failed to pull image \"", img!(), "\": [", oauth_401!(), ", ", anon_401!(), "]"),
    FailedToPull, Unauthorized, &[Some(Oauth), Some(Anonymous)], Some(401)
)]
#[case::pair_old_texts_bare(
    concat!("[", rpc!(), anon_401_old!(), ", ", rpc!(), oauth_401_old!(), "]"),
    Raw, Unauthorized, &[Some(Anonymous), Some(Oauth)], Some(401)
)]
#[case::pair_not_found_beats_anonymous(
    concat!("[", not_found!(), ", ", rpc!(), anon_401!(), "]"),
    Raw, NotFound, &[None, Some(Anonymous)], None
)]
#[case::pair_timeout_beats_anonymous(
    concat!("[", anon_401!(), ", ", pre!(), head!(), "dial tcp 10.224.0.7:443: i/o timeout]"),
    Raw, Timeout, &[Some(Anonymous), None], None
)]
#[case::pair_forbidden_beats_oauth(
    concat!("[", oauth_401!(), ", ", pre!(), "failed to authorize: failed to fetch anonymous token: unexpected status: 403 Forbidden]"),
    Raw, Forbidden, &[Some(Oauth), Some(Anonymous)], Some(403)
)]
// --- 403 and ACR's firewall ----------------------------------------------------------
#[case::oauth_403_old(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: unexpected status: 403 Forbidden"),
    Raw, Forbidden, &[Some(Oauth)], Some(403)
)]
#[case::anonymous_403_new(
    concat!(pre!(), "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to ", token_url!(), ": 403 Forbidden"),
    Raw, Forbidden, &[Some(Anonymous)], Some(403)
)]
#[case::anonymous_403_with_acr_json_body(
    concat!(pre!(), "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to ", token_url!(),
        ": 403 Forbidden: {\"errors\":[{\"code\":\"DENIED\",\"message\":\"", firewall_body!(), "\"}]}"),
    Raw, Forbidden, &[Some(Anonymous)], Some(403)
)]
#[case::firewall_body_bare(firewall_body!(), Raw, Forbidden, &[None], None)]
#[case::firewall_json_bare(
    concat!("{\"errors\":[{\"code\":\"DENIED\",\"message\":\"", firewall_body!(), "\"}]}"),
    Raw, Forbidden, &[None], None
)]
#[case::basic_403_v2_firewall_style(
    concat!(rpc!(), pre!(), "pulling from host myacr.azurecr.io failed with status code [manifests v1]: 403 Forbidden"),
    Raw, Forbidden, &[None], Some(403)
)]
// --- basic auth ----------------------------------------------------------------------
#[case::basic_401(
    "failed to pull and unpack image \"registry.local:5000/app:v1\": failed to resolve reference \"registry.local:5000/app:v1\": pulling from host registry.local:5000 failed with status code [manifests v1]: 401 Unauthorized",
    Raw, Unauthorized, &[Some(Basic)], Some(401)
)]
// --- not found and platform ------------------------------------------------------------
#[case::not_found(not_found!(), Raw, NotFound, &[None], None)]
#[case::not_found_event(
    concat!("Failed to pull image \"", img!(), "\": ", not_found!()),
    FailedToPull, NotFound, &[None], None
)]
#[case::not_found_404(
    concat!(pre!(), "unexpected status from HEAD request to https://myacr.azurecr.io/v2/app/manifests/v1: 404 Not Found"),
    Raw, NotFound, &[None], Some(404)
)]
#[case::manifest_unknown("manifest unknown: manifest unknown", Raw, NotFound, &[None], None)]
#[case::platform(
    concat!("rpc error: code = NotFound desc = failed to pull and unpack image \"", img!(), "\": no match for platform in manifest: not found"),
    Raw, PlatformMismatch, &[None], None
)]
#[case::platform_event(
    concat!("Failed to pull image \"", img!(), "\": rpc error: code = NotFound desc = failed to pull and unpack image \"", img!(), "\": no match for platform in manifest: not found"),
    FailedToPull, PlatformMismatch, &[None], None
)]
// --- network -------------------------------------------------------------------------
#[case::dial_timeout(
    concat!(rpc!(), pre!(), head!(), "dial tcp 10.224.0.7:443: i/o timeout"),
    Raw, Timeout, &[None], None
)]
#[case::deadline_exceeded(
    concat!("rpc error: code = DeadlineExceeded desc = ", pre!(), head!(), "context deadline exceeded"),
    Raw, Timeout, &[None], None
)]
#[case::deadline_exceeded_alone("rpc error: code = DeadlineExceeded desc = context deadline exceeded", Raw, Timeout, &[None], None)]
#[case::network_unreachable(
    concat!(pre!(), head!(), "dial tcp 10.224.0.7:443: connect: network is unreachable"),
    Raw, Unreachable, &[None], None
)]
#[case::connection_refused(
    concat!(pre!(), head!(), "dial tcp 10.224.0.7:443: connect: connection refused"),
    Raw, Unreachable, &[None], None
)]
#[case::connection_reset(
    concat!(pre!(), head!(), "read tcp 10.224.0.4:51234->20.1.2.3:443: read: connection reset by peer"),
    Raw, Unreachable, &[None], None
)]
#[case::eof(concat!(pre!(), head!(), "EOF"), Raw, Unreachable, &[None], None)]
#[case::oauth_token_timeout(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: Post \"https://myacr.azurecr.io/oauth2/token\": dial tcp 10.224.0.7:443: i/o timeout"),
    Raw, Timeout, &[Some(Oauth)], None
)]
// --- dns -----------------------------------------------------------------------------
#[case::dns_no_such_host(
    "failed to pull and unpack image \"myacr.azureacr.io/app:v1\": failed to resolve reference \"myacr.azureacr.io/app:v1\": failed to do request: Head \"https://myacr.azureacr.io/v2/app/manifests/v1\": dial tcp: lookup myacr.azureacr.io on 10.0.0.10:53: no such host",
    Raw, Dns, &[None], None
)]
#[case::dns_timeout(dns_timeout!(), Raw, Dns, &[None], None)]
#[case::dns_read_udp_only("read udp 10.224.0.4:40123->10.0.0.10:53: i/o timeout", Raw, Dns, &[None], None)]
#[case::dns_in_token_fetch(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: Post \"https://myacr.azurecr.io/oauth2/token\": dial tcp: lookup myacr.azurecr.io: no such host"),
    Raw, Dns, &[Some(Oauth)], None
)]
// --- tls -----------------------------------------------------------------------------
#[case::tls_unknown_authority(
    concat!(rpc!(), pre!(), head!(), "x509: certificate signed by unknown authority"),
    Raw, Tls, &[None], None
)]
#[case::tls_failed_to_verify(
    concat!(pre!(), head!(), "tls: failed to verify certificate: x509: certificate signed by unknown authority"),
    Raw, Tls, &[None], None
)]
// --- throttling ----------------------------------------------------------------------
#[case::pull_qps_exceeded("pull QPS exceeded", Raw, Throttled, &[None], None)]
#[case::pull_qps_exceeded_event(
    concat!("Failed to pull image \"", img!(), "\": pull QPS exceeded"),
    FailedToPull, Throttled, &[None], None
)]
#[case::token_429(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: unexpected status: 429 Too Many Requests"),
    Raw, Throttled, &[Some(Oauth)], Some(429)
)]
#[case::toomanyrequests(
    "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
    Raw, Throttled, &[None], None
)]
// --- Docker-era texts ----------------------------------------------------------------
#[case::docker_unauthorized(
    concat!(rpc!(), "Error response from daemon: Get https://myacr.azurecr.io/v2/app/manifests/v1: unauthorized: authentication required"),
    Raw, Unauthorized, &[None], None
)]
#[case::docker_unauthorized_event(
    concat!("Failed to pull image \"", img!(), "\": ", rpc!(), "Error response from daemon: Get https://myacr.azurecr.io/v2/: unauthorized: authentication required"),
    FailedToPull, Unauthorized, &[None], None
)]
#[case::docker_manifest_not_found(
    "Error response from daemon: manifest for myacr.azurecr.io/app:v9 not found: manifest unknown: manifest tagged by \"v9\" is not found",
    Raw, NotFound, &[None], None
)]
#[case::unauthorized_bare("unauthorized: authentication required", Raw, Unauthorized, &[None], None)]
#[case::acr_unauthorized_visit(
    "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information.",
    Raw, Unauthorized, &[None], None
)]
#[case::denied_bare("denied: requested access to the resource is denied", Raw, Forbidden, &[None], None)]
#[case::docker_pull_access_denied(
    "Error response from daemon: pull access denied for app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
    Raw, Forbidden, &[None], None
)]
// --- event and waiting-state kinds ---------------------------------------------------
#[case::error_err_image_pull("Error: ErrImagePull", ErrImagePull, Unknown, &[], None)]
#[case::error_image_pull_back_off("Error: ImagePullBackOff", ImagePullBackOff, Unknown, &[], None)]
#[case::back_off(concat!("Back-off pulling image \"", img!(), "\""), BackOff, Unknown, &[], None)]
#[case::back_off_132_suffix_pair(
    concat!("Back-off pulling image \"", img!(), "\": ErrImagePull: [", rpc!(), anon_401!(), ", ", rpc!(), oauth_401!(), "]"),
    BackOff, Unauthorized, &[Some(Anonymous), Some(Oauth)], Some(401)
)]
#[case::back_off_132_suffix_not_found(
    concat!("Back-off pulling image \"", img!(), "\": ErrImagePull: ", not_found!()),
    BackOff, NotFound, &[None], None
)]
#[case::back_off_132_suffix_dns(
    concat!("Back-off pulling image \"", img!(), "\": ErrImagePull: ", dns_timeout!()),
    BackOff, Dns, &[None], None
)]
#[case::pull_secret_missing(
    "Unable to retrieve some image pull secrets (acr-secret); attempting to pull the image may not succeed.",
    PullSecretMissing, Unknown, &[], None
)]
#[case::bare_reason("ErrImagePull", ErrImagePull, Unknown, &[], None)]
#[case::describe_line_error(
    "Warning  Failed  12s (x3 over 50s)  kubelet  Error: ImagePullBackOff",
    ImagePullBackOff, Unknown, &[], None
)]
#[case::describe_line_failed(
    concat!("Warning  Failed  3s  kubelet  Failed to pull image \"", img!(), "\": ", not_found!()),
    FailedToPull, NotFound, &[None], None
)]
#[case::json_escaped_quotes(
    r#"Failed to pull image \"nginx\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:9\": failed to resolve reference \"docker.io/library/nginx:9\": docker.io/library/nginx:9: not found"#,
    FailedToPull, NotFound, &[None], None
)]
#[case::empty("", Raw, Unknown, &[], None)]
#[case::whitespace(" \n\t ", Raw, Unknown, &[], None)]
#[case::not_an_error("Successfully pulled image \"nginx\" in 1.2s", Raw, Unknown, &[], None)]
#[case::unknown_error("failed to frobnicate", Raw, Unknown, &[None], None)]
fn classifies(
    #[case] message: &str,
    #[case] kind: MessageKind,
    #[case] class: SymptomClass,
    #[case] attempt_credentials: &[Option<Credentials>],
    #[case] status: Option<u16>,
) {
    let symptom = Symptom::parse(message);
    assert_eq!(symptom.kind, kind, "{symptom:#?}");
    assert_eq!(symptom.class, class, "{symptom:#?}");
    assert_eq!(credentials(&symptom), attempt_credentials, "{symptom:#?}");
    assert_eq!(symptom.status(), status, "{symptom:#?}");
}

type Getter = fn(&Symptom) -> Option<String>;

fn first(symptom: &Symptom) -> &PullAttempt {
    symptom.attempts.first().expect("at least one attempt")
}

#[rstest]
#[case::token_url_get(oauth_401!(), |s: &Symptom| first(s).token_url.clone(), Some(token_url!()))]
#[case::token_url_anonymous(concat!(rpc!(), anon_401!()), |s: &Symptom| first(s).token_url.clone(), Some(token_url!()))]
#[case::token_url_post(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: unexpected status from POST request to https://myacr.azurecr.io/oauth2/token: 401 Unauthorized"),
    |s: &Symptom| first(s).token_url.clone(), Some("https://myacr.azurecr.io/oauth2/token")
)]
#[case::token_url_go_url_error(
    concat!(pre!(), "failed to authorize: failed to fetch oauth token: Post \"https://myacr.azurecr.io/oauth2/token\": dial tcp 10.224.0.7:443: i/o timeout"),
    |s: &Symptom| first(s).token_url.clone(), Some("https://myacr.azurecr.io/oauth2/token")
)]
#[case::token_url_not_stated(oauth_401_old!(), |s: &Symptom| first(s).token_url.clone(), None)]
#[case::token_url_second_of_pair(
    concat!("[", rpc!(), anon_401_old!(), ", ", rpc!(), oauth_401!(), "]"),
    |s: &Symptom| s.attempts[1].token_url.clone(), Some(token_url!())
)]
#[case::registry_host_from_token_url(
    concat!("Failed to pull image \"nginx\": failed to authorize: failed to fetch oauth token: unexpected status from GET request to ", token_url!(), ": 401 Unauthorized"),
    |s: &Symptom| first(s).registry_host.clone(), Some("myacr.azurecr.io")
)]
#[case::registry_host_from_pulling_from_host(
    "failed to resolve reference \"nginx\": pulling from host registry.local:5000 failed with status code [manifests v1]: 401 Unauthorized",
    |s: &Symptom| first(s).registry_host.clone(), Some("registry.local:5000")
)]
#[case::registry_host_from_head_url(
    "failed to pull and unpack image \"nginx\": failed to resolve reference \"nginx\": failed to do request: Head \"https://mirror.example.com/v2/library/nginx/manifests/latest\": EOF",
    |s: &Symptom| first(s).registry_host.clone(), Some("mirror.example.com")
)]
#[case::registry_host_from_docker_get(
    "Error response from daemon: Get https://registry-1.docker.io/v2/: unauthorized: authentication required",
    |s: &Symptom| first(s).registry_host.clone(), Some("registry-1.docker.io")
)]
#[case::registry_host_from_image_clause(not_found!(), |s: &Symptom| first(s).registry_host.clone(), Some("myacr.azurecr.io"))]
#[case::registry_host_from_event_image(
    "Failed to pull image \"nginx\": pull QPS exceeded",
    |s: &Symptom| first(s).registry_host.clone(), Some("docker.io")
)]
#[case::dialed_dial_tcp(
    concat!(pre!(), head!(), "dial tcp 10.224.0.7:443: i/o timeout"),
    |s: &Symptom| first(s).dialed.clone(), Some("10.224.0.7:443")
)]
#[case::dialed_refused(
    concat!(pre!(), head!(), "dial tcp 10.224.0.7:443: connect: connection refused"),
    |s: &Symptom| first(s).dialed.clone(), Some("10.224.0.7:443")
)]
#[case::dialed_read_tcp_remote(
    concat!(pre!(), head!(), "read tcp 10.224.0.4:51234->20.1.2.3:443: read: connection reset by peer"),
    |s: &Symptom| first(s).dialed.clone(), Some("20.1.2.3:443")
)]
#[case::dialed_not_on_lookup(dns_timeout!(), |s: &Symptom| first(s).dialed.clone(), None)]
#[case::lookup_host_nxdomain(
    "dial tcp: lookup myacr.azureacr.io on 10.0.0.10:53: no such host",
    |s: &Symptom| first(s).lookup_host.clone(), Some("myacr.azureacr.io")
)]
#[case::resolver_nxdomain(
    "dial tcp: lookup myacr.azureacr.io on 10.0.0.10:53: no such host",
    |s: &Symptom| first(s).resolver.clone(), Some("10.0.0.10:53")
)]
#[case::lookup_host_timeout(dns_timeout!(), |s: &Symptom| first(s).lookup_host.clone(), Some("myacr.azurecr.io"))]
#[case::resolver_timeout(dns_timeout!(), |s: &Symptom| first(s).resolver.clone(), Some("10.0.0.10:53"))]
#[case::lookup_without_resolver(
    "dial tcp: lookup myacr.azurecr.io: no such host",
    |s: &Symptom| first(s).resolver.clone(), None
)]
#[case::resolver_from_read_udp(
    "read udp 10.224.0.4:40123->10.0.0.10:53: i/o timeout",
    |s: &Symptom| first(s).resolver.clone(), Some("10.0.0.10:53")
)]
#[case::client_ip_bare(firewall_body!(), |s: &Symptom| first(s).client_ip.clone(), Some("20.50.60.70"))]
#[case::client_ip_in_json(
    concat!(pre!(), "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to ", token_url!(),
        ": 403 Forbidden: {\"errors\":[{\"code\":\"DENIED\",\"message\":\"", firewall_body!(), "\"}]}"),
    |s: &Symptom| first(s).client_ip.clone(), Some("20.50.60.70")
)]
#[case::no_client_ip(oauth_401!(), |s: &Symptom| first(s).client_ip.clone(), None)]
#[case::grpc_code_unknown(concat!(rpc!(), oauth_401!()), |s: &Symptom| first(s).grpc_code.clone(), Some("Unknown"))]
#[case::grpc_code_not_found(not_found!(), |s: &Symptom| first(s).grpc_code.clone(), Some("NotFound"))]
#[case::grpc_code_absent(oauth_401!(), |s: &Symptom| first(s).grpc_code.clone(), None)]
#[case::grpc_code_deadline(
    "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
    |s: &Symptom| first(s).grpc_code.clone(), Some("DeadlineExceeded")
)]
#[case::detail_without_rpc_prefix(
    concat!("  ", rpc!(), oauth_401!(), "  "),
    |s: &Symptom| Some(first(s).detail.clone()), Some(oauth_401!())
)]
#[case::detail_of_pair_elements(
    concat!("[", rpc!(), anon_401!(), ", ", rpc!(), oauth_401!(), "]"),
    |s: &Symptom| Some(s.attempts[1].detail.clone()), Some(oauth_401!())
)]
fn extracts(#[case] message: &str, #[case] get: Getter, #[case] expected: Option<&str>) {
    let symptom = Symptom::parse(message);
    assert_eq!(get(&symptom).as_deref(), expected, "{symptom:#?}");
}

#[rstest]
#[case::event_quoted(concat!("Failed to pull image \"", img!(), "\": ", oauth_401!()), Some(("myacr.azurecr.io", "app", Some("v1"), None)))]
#[case::bare_from_clause(concat!(rpc!(), oauth_401!()), Some(("myacr.azurecr.io", "app", Some("v1"), None)))]
#[case::back_off_docker_hub("Back-off pulling image \"nginx\"", Some(("docker.io", "library/nginx", Some("latest"), None)))]
#[case::back_off_suffix(
    concat!("Back-off pulling image \"team/app:2\": ErrImagePull: ", not_found!()),
    Some(("docker.io", "team/app", Some("2"), None))
)]
#[case::digest(
    "Failed to pull image \"myacr.azurecr.io/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\": EOF",
    Some(("myacr.azurecr.io", "app", None, Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")))
)]
#[case::platform_clause(
    concat!("rpc error: code = NotFound desc = failed to pull and unpack image \"", img!(), "\": no match for platform in manifest: not found"),
    Some(("myacr.azurecr.io", "app", Some("v1"), None))
)]
#[case::docker_manifest_for(
    "Error response from daemon: manifest for myacr.azurecr.io/app:v9 not found: manifest unknown: manifest unknown",
    Some(("myacr.azurecr.io", "app", Some("v9"), None))
)]
#[case::invalid_quoted_falls_back_to_clause(
    concat!("Failed to pull image \"Not Valid\": ", oauth_401!()),
    Some(("myacr.azurecr.io", "app", Some("v1"), None))
)]
#[case::json_escaped_quotes(
    r#"Back-off pulling image \"myacr.azurecr.io/app:v1\""#,
    Some(("myacr.azurecr.io", "app", Some("v1"), None))
)]
#[case::pull_secret(
    "Unable to retrieve some image pull secrets (acr-secret); attempting to pull the image may not succeed.",
    None
)]
#[case::err_image_pull("Error: ErrImagePull", None)]
#[case::no_image("pull QPS exceeded", None)]
fn finds_image(#[case] message: &str, #[case] expected: Option<(&str, &str, Option<&str>, Option<&str>)>) {
    let expected = expected.map(|(registry, repository, tag, digest)| ImageRef {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    });
    assert_eq!(Symptom::parse(message).image, expected);
}

#[rstest]
#[case::one(
    "Unable to retrieve some image pull secrets (acr-secret); attempting to pull the image may not succeed.",
    &["acr-secret"]
)]
#[case::two(
    "Unable to retrieve some image pull secrets (acr-secret, old-sp-secret); attempting to pull the image may not succeed.",
    &["acr-secret", "old-sp-secret"]
)]
#[case::not_a_secret_event(oauth_401!(), &[])]
fn secret_names(#[case] message: &str, #[case] expected: &[&str]) {
    assert_eq!(Symptom::parse(message).secret_names, expected);
}

#[rstest]
#[case::oauth_only(oauth_401!(), true, false)]
#[case::anonymous_only(anon_401!(), false, true)]
#[case::anonymous_only_event(concat!("Failed to pull image \"", img!(), "\": ", rpc!(), anon_401_old!()), false, true)]
#[case::pair(concat!("[", anon_401!(), ", ", oauth_401!(), "]"), true, false)]
#[case::basic(
    "pulling from host registry.local:5000 failed with status code [manifests v1]: 401 Unauthorized",
    true,
    false
)]
#[case::anonymous_and_unknown(concat!("[", not_found!(), ", ", anon_401!(), "]"), false, true)]
#[case::nothing_known(not_found!(), false, false)]
#[case::no_attempts("Error: ErrImagePull", false, false)]
fn credential_summaries(#[case] message: &str, #[case] sent: bool, #[case] only_anonymous: bool) {
    let symptom = Symptom::parse(message);
    assert_eq!(symptom.credentials_sent(), sent, "{symptom:#?}");
    assert_eq!(symptom.only_anonymous(), only_anonymous, "{symptom:#?}");
}

#[test]
fn aggregate_split_keeps_commas_inside_an_attempt() {
    // ACR's own text has a `, ` inside one error; only `, rpc error:` starts a new one.
    let message = concat!(
        "[",
        rpc!(),
        "Error response from daemon: unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information., ",
        rpc!(),
        anon_401!(),
        "]"
    );
    let symptom = Symptom::parse(message);
    assert_eq!(symptom.attempts.len(), 2, "{symptom:#?}");
    assert!(symptom.attempts[0].detail.ends_with("for more information."));
    assert_eq!(symptom.attempts[0].credentials, None);
    assert_eq!(symptom.attempts[1].credentials, Some(Anonymous));
    // Unknown-credential 401 outranks the anonymous one.
    assert_eq!(symptom.class, Unauthorized);
    assert_eq!(symptom.status(), None);
}

#[test]
fn aggregate_of_three_without_prefixes() {
    let message = concat!(
        "[",
        anon_401!(),
        ", ",
        oauth_401!(),
        ", ",
        pre!(),
        "failed to authorize: failed to fetch oauth token: unexpected status: 403 Forbidden]"
    );
    let symptom = Symptom::parse(message);
    assert_eq!(symptom.attempts.len(), 3);
    assert_eq!(symptom.class, Forbidden);
    assert_eq!(symptom.status(), Some(403));
}

#[test]
fn truncated_aggregate_is_still_split() {
    let message = concat!("[", rpc!(), anon_401!(), ", ", rpc!(), "failed to pull and unpack ima");
    let symptom = Symptom::parse(message);
    assert_eq!(symptom.attempts.len(), 2);
    assert_eq!(symptom.class, Unauthorized);
}

#[test]
fn serializes_camel_case_and_skips_none() {
    let symptom = Symptom::parse(concat!("Failed to pull image \"", img!(), "\": ", rpc!(), oauth_401!()));
    let json = serde_json::to_value(&symptom).unwrap();
    assert_eq!(json["kind"], "failed_to_pull");
    assert_eq!(json["class"], "unauthorized");
    assert_eq!(json["image"]["registry"], "myacr.azurecr.io");
    let attempt = &json["attempts"][0];
    assert_eq!(attempt["credentials"], "oauth");
    assert_eq!(attempt["status"], 401);
    assert_eq!(attempt["grpcCode"], "Unknown");
    assert_eq!(attempt["tokenUrl"], token_url!());
    assert_eq!(attempt["registryHost"], "myacr.azurecr.io");
    assert!(attempt.get("dialed").is_none());
    assert!(attempt.get("clientIp").is_none());
    assert_eq!(json["secretNames"], serde_json::json!([]));

    let back: Symptom = serde_json::from_value(json).unwrap();
    assert_eq!(back, symptom);
}

#[test]
fn schema_names_camel_case_fields() {
    let schema = serde_json::to_value(schemars::schema_for!(Symptom)).unwrap();
    let text = schema.to_string();
    for name in
        ["secretNames", "grpcCode", "tokenUrl", "lookupHost", "clientIp", "platform_mismatch", "pull_secret_missing"]
    {
        assert!(text.contains(name), "schema lacks {name}: {text}");
    }
}

#[test]
fn class_names_round_trip() {
    for class in SymptomClass::ALL {
        let name = class.as_str();
        assert_eq!(class.to_string(), name);
        assert_eq!(name.parse::<SymptomClass>(), Ok(class));
        assert_eq!(serde_json::to_value(class).unwrap(), name);
    }
    let error = "Unauthorized".parse::<SymptomClass>().unwrap_err();
    assert_eq!(error.input, "Unauthorized");
    assert!(error.to_string().contains("not_found"));
}
