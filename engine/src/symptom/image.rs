//! Container image references, parsed and normalised the way Docker and containerd do
//! (`github.com/distribution/reference`, `ParseNormalizedNamed` + `TagNameOnly`).

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Registry assumed when a reference names none.
const DEFAULT_REGISTRY: &str = "docker.io";
/// Legacy spelling of the default registry, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// Prefix of official images on the default registry.
const OFFICIAL_PREFIX: &str = "library/";
/// Tag assumed when a reference has neither tag nor digest.
const DEFAULT_TAG: &str = "latest";
/// Longest allowed `registry/repository`.
const NAME_MAX: usize = 255;

/// `path-component := alpha-numeric [separator alpha-numeric]*`
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";

/// The whole reference grammar: `name [":" tag] ["@" digest]`.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain_name = format!(r"{domain_component}(?:\.{domain_component})*");
    let ipv6 = r"\[[a-fA-F0-9:]+\]";
    let domain = format!(r"(?:{domain_name}|{ipv6})(?::[0-9]+)?");
    let remote = format!("{PATH_COMPONENT}(?:/{PATH_COMPONENT})*");
    let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!(r"^((?:{domain}/)?{remote})(?::({tag}))?(?:@({digest}))?$"))
        .expect("reference grammar is a valid regex")
});

/// A repository path on its own (checked after the registry is split off).
static REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^{PATH_COMPONENT}(?:/{PATH_COMPONENT})*$")).expect("repository grammar is a valid regex")
});

/// A bare 64-hex image id, which Docker refuses as a repository name.
static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-f0-9]{64}$").expect("identifier grammar is a valid regex"));

/// A normalised container image reference.
///
/// `nginx` becomes `docker.io/library/nginx:latest`; a first path component is the
/// registry only when it contains `.` or `:` or is `localhost`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    /// Registry host, with port when one was given (`myacr.azurecr.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`app`, `library/nginx`).
    pub repository: String,
    /// Tag; `latest` when the reference had neither tag nor digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Digest (`sha256:…`) when the reference pinned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises an image reference following Docker's rules.
    ///
    /// Returns `None` for anything Docker would refuse: empty or non-grammatical
    /// strings, upper-case repositories, a bare 64-hex id, names longer than 255
    /// characters, digests other than `sha256`/`sha384`/`sha512` with lower-case hex of
    /// the right length. Surrounding whitespace is ignored.
    ///
    /// ```
    /// use pulldoctor::symptom::ImageRef;
    ///
    /// let image = ImageRef::parse("nginx").unwrap();
    /// assert_eq!(image.to_string(), "docker.io/library/nginx:latest");
    /// let image = ImageRef::parse("myacr.azurecr.io/team/app:v1").unwrap();
    /// assert_eq!(image.registry, "myacr.azurecr.io");
    /// assert_eq!(image.repository, "team/app");
    /// assert_eq!(image.tag.as_deref(), Some("v1"));
    /// ```
    pub fn parse(reference: &str) -> Option<ImageRef> {
        let reference = reference.trim();
        if IDENTIFIER.is_match(reference) {
            return None;
        }
        let captures = REFERENCE.captures(reference)?;
        let name = captures.get(1)?.as_str();
        let tag = captures.get(2).map(|m| m.as_str().to_owned());
        let digest = match captures.get(3) {
            Some(m) => Some(valid_digest(m.as_str())?.to_owned()),
            None => None,
        };

        let (registry, repository) = split_registry(name);
        if !REMOTE.is_match(&repository) || registry.len() + 1 + repository.len() > NAME_MAX {
            return None;
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag,
        };
        Some(ImageRef { registry, repository, tag, digest })
    }
}

/// Splits `name` into registry and repository, normalising the default registry.
fn split_registry(name: &str) -> (String, String) {
    let (mut registry, remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
    };
    if registry == LEGACY_DEFAULT_REGISTRY {
        registry = DEFAULT_REGISTRY.to_owned();
    }
    let repository = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
        format!("{OFFICIAL_PREFIX}{remainder}")
    } else {
        remainder
    };
    (registry, repository)
}

/// Accepts the digests containerd can verify: registered algorithm, lower-case hex of
/// the algorithm's length.
fn valid_digest(digest: &str) -> Option<&str> {
    let (algorithm, hex) = digest.split_once(':')?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return None,
    };
    let lower_hex = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex.len() == length && lower_hex).then_some(digest)
}

impl fmt::Display for ImageRef {
    /// The canonical form: `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(registry: &str, repository: &str, tag: Option<&str>, digest: Option<&str>) -> ImageRef {
        ImageRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn single_name_goes_to_docker_hub_library() {
        assert_eq!(ImageRef::parse("nginx"), Some(image("docker.io", "library/nginx", Some("latest"), None)));
        assert_eq!(ImageRef::parse("nginx:1.27"), Some(image("docker.io", "library/nginx", Some("1.27"), None)));
    }

    #[test]
    fn user_repository_on_docker_hub() {
        assert_eq!(ImageRef::parse("bitnami/redis:7"), Some(image("docker.io", "bitnami/redis", Some("7"), None)));
    }

    #[test]
    fn legacy_and_explicit_docker_hub() {
        let expected = Some(image("docker.io", "library/busybox", Some("latest"), None));
        assert_eq!(ImageRef::parse("index.docker.io/busybox"), expected);
        assert_eq!(ImageRef::parse("docker.io/busybox"), expected);
        assert_eq!(ImageRef::parse("docker.io/library/busybox:latest"), expected);
    }

    #[test]
    fn registry_detection() {
        assert_eq!(
            ImageRef::parse("myacr.azurecr.io/app:v1"),
            Some(image("myacr.azurecr.io", "app", Some("v1"), None))
        );
        assert_eq!(ImageRef::parse("localhost/app"), Some(image("localhost", "app", Some("latest"), None)));
        assert_eq!(
            ImageRef::parse("registry:5000/team/app:v2"),
            Some(image("registry:5000", "team/app", Some("v2"), None))
        );
        assert_eq!(ImageRef::parse("[::1]:5000/app"), Some(image("[::1]:5000", "app", Some("latest"), None)));
        // No dot, colon or localhost: a Docker Hub namespace, not a registry.
        assert_eq!(ImageRef::parse("myacr/app"), Some(image("docker.io", "myacr/app", Some("latest"), None)));
    }

    #[test]
    fn digest_only_has_no_default_tag() {
        let parsed = ImageRef::parse(&format!("myacr.azurecr.io/app@{SHA}"));
        assert_eq!(parsed, Some(image("myacr.azurecr.io", "app", None, Some(SHA))));
    }

    #[test]
    fn tag_and_digest_together() {
        let parsed = ImageRef::parse(&format!("myacr.azurecr.io/app:v1@{SHA}"));
        assert_eq!(parsed, Some(image("myacr.azurecr.io", "app", Some("v1"), Some(SHA))));
    }

    #[test]
    fn localhost_with_port_but_no_path_is_a_tag() {
        assert_eq!(
            ImageRef::parse("localhost:5000"),
            Some(image("docker.io", "library/localhost", Some("5000"), None))
        );
    }

    #[test]
    fn rejects_invalid_references() {
        for bad in [
            "",
            " ",
            "Nginx",
            "myacr.azurecr.io/App:v1",
            "app:",
            "app:-v1",
            "app::v1",
            "myacr.azurecr.io/",
            "/app",
            "app//x",
            "app@sha256:abc",
            "app@md5:0123456789abcdef0123456789abcdef",
            "app@sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "my acr.azurecr.io/app",
            "app:v1 extra",
            "-registry.io/app",
            "app_/x",
        ] {
            assert_eq!(ImageRef::parse(bad), None, "{bad:?} should be refused");
        }
    }

    #[test]
    fn rejects_overlong_names() {
        let long = format!("registry.io/{}", "a".repeat(250));
        assert_eq!(ImageRef::parse(&long), None);
        // 18 characters of `docker.io/library/` count too.
        assert_eq!(ImageRef::parse(&"a".repeat(240)), None);
        assert!(ImageRef::parse(&"a".repeat(237)).is_some());
    }

    #[test]
    fn long_tags_are_limited_to_128() {
        assert!(ImageRef::parse(&format!("app:{}", "t".repeat(128))).is_some());
        assert!(ImageRef::parse(&format!("app:{}", "t".repeat(129))).is_none());
    }

    #[test]
    fn display_is_canonical_and_reparses() {
        for input in
            ["nginx", "bitnami/redis:7", "myacr.azurecr.io/team/app:v1", "localhost:5000/a/b/c", "[::1]:5000/app"]
        {
            let parsed = ImageRef::parse(input).expect(input);
            let shown = parsed.to_string();
            assert_eq!(ImageRef::parse(&shown), Some(parsed), "{input} -> {shown}");
        }
        assert_eq!(ImageRef::parse(&format!("app@{SHA}")).unwrap().to_string(), format!("docker.io/library/app@{SHA}"));
    }

    #[test]
    fn trims_whitespace() {
        assert_eq!(
            ImageRef::parse("  myacr.azurecr.io/app:v1\n"),
            Some(image("myacr.azurecr.io", "app", Some("v1"), None))
        );
    }

    #[test]
    fn serializes_camel_case_without_none() {
        let json = serde_json::to_value(image("docker.io", "library/a", Some("1"), None)).unwrap();
        assert_eq!(json, serde_json::json!({"registry": "docker.io", "repository": "library/a", "tag": "1"}));
    }
}
