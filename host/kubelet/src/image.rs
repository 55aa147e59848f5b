//! Image names as the kubelet reads them (`github.com/distribution/reference`): the default
//! tag, the repository to pull (the key credentials are looked up by), the registry host, and
//! the default pull policy.

/// Tag applied when an image names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `DOMAIN/PATH` with Docker's defaults (`docker.io/library/nginx`): what the kubelet
    /// matches credentials against ("repo to pull").
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// The digest, when given.
    pub digest: Option<String>,
}

impl ImageName {
    /// Parses `image` like `reference.ParseNormalizedNamed`. The error is the library's text
    /// (`invalid reference format`, `invalid reference format: repository name (App) must be
    /// lowercase`, ...).
    ///
    /// ```
    /// use pullproof_host_kubelet::image::ImageName;
    ///
    /// let name = ImageName::parse("nginx").unwrap();
    /// assert_eq!(name.repository, "docker.io/library/nginx");
    /// let name = ImageName::parse("myacr.azurecr.io/team/app:v1").unwrap();
    /// assert_eq!((name.repository.as_str(), name.tag.as_deref()), ("myacr.azurecr.io/team/app", Some("v1")));
    /// assert_eq!(name.registry(), "myacr.azurecr.io");
    /// ```
    pub fn parse(image: &str) -> Result<Self, String> {
        if image.len() == 64 && image.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"));
        }
        let (domain, remainder) = split_docker_domain(image);
        let remote_name = remainder.split_once(':').map_or(remainder.as_str(), |(name, _)| name);
        if remote_name.to_lowercase() != remote_name {
            return Err(format!("invalid reference format: repository name ({remote_name}) must be lowercase"));
        }
        let full = format!("{domain}/{remainder}");
        let (name, tag, digest) = parse_reference(&full)?;
        Ok(Self { repository: name, tag, digest })
    }

    /// The registry host (with port): the first component of [`ImageName::repository`].
    pub fn registry(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }
}

/// `image` with `:latest` appended when it names neither tag nor digest, as the kubelet's
/// `applyDefaultImageTag` does (without qualifying short names). The error is the kubelet's
/// `couldn't parse image reference "IMG": REASON`.
pub fn apply_default_tag(image: &str) -> Result<String, String> {
    let name = ImageName::parse(image).map_err(|e| format!("couldn't parse image reference {image:?}: {e}"))?;
    Ok(if name.tag.is_none() && name.digest.is_none() { format!("{image}:{DEFAULT_TAG}") } else { image.to_owned() })
}

/// The pull policy the API server defaults a container to: `Always` for `:latest` or no tag
/// (and no digest), else `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    match ImageName::parse(image) {
        Ok(name) if name.digest.is_none() && name.tag.as_deref().is_none_or(|t| t == DEFAULT_TAG) => "Always",
        Ok(_) => "IfNotPresent",
        // The API server would reject the pod; the kubelet reports InvalidImageName.
        Err(_) => "IfNotPresent",
    }
}

/// Docker's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

type Parsed = (String, Option<String>, Option<String>);

/// `reference.Parse` on a fully qualified reference: `name[:tag][@digest]`.
fn parse_reference(text: &str) -> Result<Parsed, String> {
    const INVALID: &str = "invalid reference format";
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    if let Some(digest) = digest
        && !valid_digest(digest)
    {
        return Err(INVALID.to_owned());
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(at) => (&rest[..last_slash + at], Some(&rest[last_slash + at + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag
        && !valid_tag(tag)
    {
        return Err(INVALID.to_owned());
    }
    let (domain, path) = name.split_once('/').ok_or(INVALID)?;
    if !valid_domain(domain) || !path.split('/').all(valid_path_component) {
        return Err(INVALID.to_owned());
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"));
    }
    Ok((name.to_owned(), tag.map(str::to_owned), digest.map(str::to_owned)))
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else { return false };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|c| {
        c.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && c.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_domain(domain: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (!v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'), port)
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (valid_host(host), Some(port)),
            None => (valid_host(domain), None),
        }
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` components.
fn valid_host(host: &str) -> bool {
    host.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: one '.', one '_', two '_', or any number of '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("nginx", "docker.io/library/nginx", None, None),
            ("nginx:1.27", "docker.io/library/nginx", Some("1.27"), None),
            ("index.docker.io/foo/bar", "docker.io/foo/bar", None, None),
            ("localhost:5000/app:v1", "localhost:5000/app", Some("v1"), None),
            ("myacr.azurecr.io/team/app:v1", "myacr.azurecr.io/team/app", Some("v1"), None),
            ("[::1]:5000/app", "[::1]:5000/app", None, None),
            (
                "myacr.azurecr.io/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "myacr.azurecr.io/app",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
        ];
        for (image, repository, tag, digest) in cases {
            let name = ImageName::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
            assert_eq!(name.repository, repository, "{image}");
            assert_eq!(name.tag.as_deref(), tag, "{image}");
            assert_eq!(name.digest.as_deref(), digest, "{image}");
        }
    }

    #[test]
    fn rejects_what_docker_rejects() {
        assert_eq!(
            ImageName::parse("myacr.azurecr.io/App:v1").unwrap_err(),
            "invalid reference format: repository name (App) must be lowercase"
        );
        for bad in
            ["", "myacr.azurecr.io/app:", "myacr.azurecr.io/app:v 1", "myacr.azurecr.io//app", "-a/b", "a/b@sha256:12"]
        {
            assert!(ImageName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ImageName::parse(&"a".repeat(64).replace('a', "0")).unwrap_err().contains("64-byte"));
    }

    #[test]
    fn default_tag_and_policy() {
        assert_eq!(apply_default_tag("myacr.azurecr.io/app").unwrap(), "myacr.azurecr.io/app:latest");
        assert_eq!(apply_default_tag("nginx").unwrap(), "nginx:latest");
        assert_eq!(apply_default_tag("myacr.azurecr.io/app:v1").unwrap(), "myacr.azurecr.io/app:v1");
        assert_eq!(
            apply_default_tag("myacr.azurecr.io/App").unwrap_err(),
            "couldn't parse image reference \"myacr.azurecr.io/App\": invalid reference format: repository name (App) must be lowercase"
        );
        assert_eq!(default_pull_policy("myacr.azurecr.io/app"), "Always");
        assert_eq!(default_pull_policy("myacr.azurecr.io/app:latest"), "Always");
        assert_eq!(default_pull_policy("myacr.azurecr.io/app:v1"), "IfNotPresent");
    }
}
