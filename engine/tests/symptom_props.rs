//! Property tests: the symptom parser never panics, and image references round-trip.

use proptest::prelude::*;
use proptest::sample::select;
use pulldoctor::symptom::{ImageRef, Symptom};

/// Pieces of real messages, so generated strings come close to what the parser reads.
const FRAGMENTS: &[&str] = &[
    "Failed to pull image \"",
    "Back-off pulling image \"",
    "\": ",
    "\"",
    ": ErrImagePull: ",
    "Error: ErrImagePull",
    "Error: ImagePullBackOff",
    "Unable to retrieve some image pull secrets (",
    "); attempting to pull the image may not succeed.",
    "myacr.azurecr.io/app:v1",
    "nginx",
    "[",
    "]",
    ", ",
    "rpc error: code = Unknown desc = ",
    "rpc error: code = NotFound desc = ",
    "rpc error: code = ",
    "failed to pull and unpack image \"",
    "failed to resolve reference \"",
    "failed to authorize: ",
    "failed to fetch oauth token: ",
    "failed to fetch anonymous token: ",
    "unexpected status: ",
    "unexpected status from GET request to ",
    "unexpected status from POST request to ",
    "https://myacr.azurecr.io/oauth2/token?scope=repository%3Aapp%3Apull&service=myacr.azurecr.io",
    "https://",
    "://",
    "401 Unauthorized",
    "403 Forbidden",
    "429 Too Many Requests",
    ": 404",
    "status code ",
    "pulling from host ",
    " failed with status code [manifests v1]: ",
    "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"",
    "client with IP '",
    "1.2.3.4",
    "' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.",
    ": not found",
    "manifest unknown",
    "no match for platform in manifest",
    "failed to do request: Head \"",
    "dial tcp ",
    "dial tcp: lookup ",
    " on ",
    "10.0.0.10:53",
    ":443",
    ": i/o timeout",
    "context deadline exceeded",
    "connect: network is unreachable",
    "connect: connection refused",
    "read tcp 10.0.0.4:5123->",
    "read udp ",
    "->",
    "connection reset by peer",
    "EOF",
    "no such host",
    "x509: certificate signed by unknown authority",
    "tls: failed to verify certificate",
    "pull QPS exceeded",
    "toomanyrequests",
    "Error response from daemon: ",
    "Get https://",
    "unauthorized: authentication required",
    "denied: requested access to the resource is denied",
    "manifest for ",
    " not found",
    "@sha256:",
    ":",
    " ",
    "é",
    "\u{1F600}",
    "\u{0}",
    "\\",
];

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => select(FRAGMENTS).prop_map(str::to_owned),
            1 => any::<String>(),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// References drawn from the grammar (and a little outside it).
fn reference_like() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop_oneof![
            Just("docker.io".to_owned()),
            Just("index.docker.io".to_owned()),
            Just("localhost".to_owned()),
            Just("localhost:5000".to_owned()),
            Just("[::1]:5000".to_owned()),
            "[a-zA-Z0-9-]{1,8}(\\.[a-z0-9-]{1,6}){0,3}(:[0-9]{1,5})?",
        ]),
        prop::collection::vec("[a-z0-9]{1,4}([._-]{1,2}[a-z0-9]{1,4})?", 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        prop::option::of(prop_oneof!["sha256:[a-f0-9]{64}", "sha512:[a-f0-9]{128}", "sha256:[a-fA-F0-9]{60,66}",]),
    )
        .prop_map(|(registry, path, tag, digest)| {
            let mut reference = String::new();
            if let Some(registry) = registry {
                reference.push_str(&registry);
                reference.push('/');
            }
            reference.push_str(&path.join("/"));
            if let Some(tag) = tag {
                reference.push(':');
                reference.push_str(&tag);
            }
            if let Some(digest) = digest {
                reference.push('@');
                reference.push_str(&digest);
            }
            reference
        })
}

fn check_round_trip(input: &str) -> Result<(), TestCaseError> {
    if let Some(image) = ImageRef::parse(input) {
        let shown = image.to_string();
        prop_assert_eq!(ImageRef::parse(&shown), Some(image.clone()), "{} -> {}", input, shown);
        prop_assert!(image.tag.is_some() || image.digest.is_some());
        prop_assert!(!image.registry.is_empty() && !image.repository.is_empty());
    }
    Ok(())
}

fn check_symptom(message: &str) -> Result<(), TestCaseError> {
    let symptom = Symptom::parse(message);
    // The overall class is one of the attempts' classes (or unknown without attempts).
    if symptom.attempts.is_empty() {
        prop_assert_eq!(symptom.class, pulldoctor::symptom::SymptomClass::Unknown);
    } else {
        prop_assert!(symptom.attempts.iter().any(|a| a.class == symptom.class));
    }
    prop_assert!(!(symptom.credentials_sent() && symptom.only_anonymous()));
    for attempt in &symptom.attempts {
        prop_assert_eq!(attempt.detail.trim(), attempt.detail.as_str());
    }
    // Serialization never fails and round-trips.
    let json = serde_json::to_string(&symptom).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Symptom = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back, symptom);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_strings(message in any::<String>()) {
        check_symptom(&message)?;
    }

    #[test]
    fn parse_never_panics_on_fragments_of_real_messages(message in fragments()) {
        check_symptom(&message)?;
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes_as_text(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_symptom(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn image_ref_round_trips_on_reference_like_strings(reference in reference_like()) {
        check_round_trip(&reference)?;
    }

    #[test]
    fn image_ref_round_trips_on_arbitrary_strings(reference in any::<String>()) {
        check_round_trip(&reference)?;
    }

    #[test]
    fn image_ref_round_trips_on_grammar_strings(reference in "[a-zA-Z0-9:./@_-]{1,40}") {
        check_round_trip(&reference)?;
    }

    #[test]
    fn grammatical_references_parse(
        path in prop::collection::vec("[a-z0-9]{1,6}", 1..4),
        tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
    ) {
        let reference = format!("myacr.azurecr.io/{}:{}", path.join("/"), tag);
        let image = ImageRef::parse(&reference);
        prop_assert!(image.is_some(), "{} was refused", reference);
        prop_assert_eq!(image.map(|i| i.to_string()), Some(reference));
    }
}
