//! The kubelet's credential keyring (`pkg/credentialprovider`): docker config entries indexed
//! by registry pattern, matched against an image's repository with the kubelet's URL rules
//! (same number of host labels, per-label `filepath.Match` globs, equal ports, path prefix).

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

/// Where a credential came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// An image pull secret.
    PullSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A credential provider plugin.
    Plugin {
        /// The provider's name.
        name: String,
    },
}

/// One username/password pair the kubelet may pull with. An empty username and password means
/// an anonymous attempt.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Username.
    pub username: String,
    /// Password (never printed by [`fmt::Debug`]).
    pub password: String,
    /// Where it came from.
    pub source: CredentialSource,
}

impl Credential {
    /// Whether this is the anonymous entry (no username and no password).
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.password.is_empty()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "<redacted>" })
            .field("source", &self.source)
            .finish()
    }
}

/// The kubelet's `BasicDockerKeyring`.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// Keys, reverse-sorted so that more specific paths match first.
    index: Vec<String>,
    creds: HashMap<String, Vec<Credential>>,
}

const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

impl Keyring {
    /// Adds entries (`registry pattern -> credential`), as `BasicDockerKeyring.Add` does.
    /// Patterns that do not parse are skipped.
    pub fn add(&mut self, entries: impl IntoIterator<Item = (String, Credential)>) {
        for (location, credential) in entries {
            let Some(key) = keyring_key(&location) else {
                tracing::warn!(location, "skipping a registry entry that does not parse as a URL");
                continue;
            };
            self.creds.entry(key.clone()).or_default().push(credential);
            self.index.push(key);
        }
        self.index.sort();
        self.index.dedup();
        self.index.reverse();
    }

    /// The credentials whose pattern matches `repository` (`myacr.azurecr.io/app`, no tag), in
    /// the kubelet's order; Docker Hub credentials for Docker Hub images when nothing matched.
    pub fn lookup(&self, repository: &str) -> Vec<Credential> {
        let mut found = Vec::new();
        for key in &self.index {
            if urls_match_str(key, repository) {
                found.extend(self.creds.get(key).into_iter().flatten().cloned());
            }
        }
        if found.is_empty()
            && is_default_registry_match(repository)
            && let Some(creds) = self.creds.get(DEFAULT_REGISTRY_HOST)
        {
            found.extend(creds.iter().cloned());
        }
        found
    }

    /// Whether the keyring holds nothing.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

fn is_default_registry_match(image: &str) -> bool {
    let mut parts = image.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    if first.is_empty() {
        return false;
    }
    if parts.next().is_none() {
        return true;
    }
    first == "docker.io" || first == DEFAULT_REGISTRY_HOST || !first.contains(['.', ':'])
}

/// A URL split the way Go's `url.Parse` does for these schemeless strings.
struct SplitUrl<'a> {
    host: &'a str,
    path: &'a str,
}

fn split_url(text: &str) -> Option<SplitUrl<'_>> {
    let text = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or(text);
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let (host, path) = match text.find('/') {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, ""),
    };
    // Userinfo is not part of the host.
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(SplitUrl { host, path })
}

/// The index key of a docker config location: host plus path, `/v1/` and `/v2/` stripped.
///
/// ```
/// use pullproof_host_kubelet::keyring::keyring_key;
///
/// assert_eq!(keyring_key("https://myacr.azurecr.io/v2/").as_deref(), Some("myacr.azurecr.io"));
/// assert_eq!(keyring_key("myacr.azurecr.io/team").as_deref(), Some("myacr.azurecr.io/team"));
/// ```
pub fn keyring_key(location: &str) -> Option<String> {
    let url = split_url(location)?;
    let mut path = url.path;
    if path.starts_with("/v2/") || path.starts_with("/v1/") {
        path = &path[3..];
    }
    Some(if !path.is_empty() && path != "/" { format!("{}{path}", url.host) } else { url.host.to_owned() })
}

/// The kubelet's `URLsMatchStr(glob, target)`.
///
/// ```
/// use pullproof_host_kubelet::keyring::urls_match_str;
///
/// assert!(urls_match_str("*.azurecr.io", "myacr.azurecr.io/app"));
/// assert!(urls_match_str("*.azurecr.*", "myacr.azurecr.io/app"));
/// assert!(!urls_match_str("*.azurecr.io", "myacr.westeurope.data.azurecr.io/app"));
/// assert!(!urls_match_str("myacr.azurecr.io", "myacr.azurecr.io:5000/app"));
/// ```
pub fn urls_match_str(glob: &str, target: &str) -> bool {
    let (Some(glob), Some(target)) = (split_url(glob), split_url(target)) else { return false };
    let (glob_host, glob_port) = split_host_port(glob.host);
    let (target_host, target_port) = split_host_port(target.host);
    if glob_port != target_port {
        return false;
    }
    let glob_parts: Vec<&str> = glob_host.split('.').collect();
    let target_parts: Vec<&str> = target_host.split('.').collect();
    if glob_parts.len() != target_parts.len() || !target.path.starts_with(glob.path) {
        return false;
    }
    glob_parts.iter().zip(&target_parts).all(|(g, t)| glob_match(g, t).unwrap_or(false))
}

/// Go's `net.SplitHostPort`, falling back to the whole host with no port.
fn split_host_port(host: &str) -> (&str, &str) {
    if let Some(rest) = host.strip_prefix('[')
        && let Some((inner, port)) = rest.split_once("]:")
    {
        return (inner, port);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') => (h, port),
        _ => (host, ""),
    }
}

/// Go's `filepath.Match` on Unix (`*`, `?`, `[...]` classes with ranges and `^`, `\` escapes).
/// `None` for a malformed pattern.
pub fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the pattern once, so malformed patterns fail even without a match attempt.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '[' => i = parse_class(&p, i)?.2,
            '\\' => {
                i += 1;
                if i >= p.len() {
                    return None;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Some(match_from(&p, 0, &n, 0))
}

/// A parsed `[...]` class: its ranges, whether it is negated, and the index just past its `]`.
type Class = (Vec<(char, char)>, bool, usize);

/// The `[...]` class starting at `start`; `None` when malformed (Go's `ErrBadPattern`).
fn parse_class(p: &[char], start: usize) -> Option<Class> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i)? == &']' && !ranges.is_empty() {
            return Some((ranges, negated, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            (hi, i) = class_char(p, i + 1)?;
        }
        ranges.push((lo, hi));
    }
}

/// One (possibly escaped) character of a class.
fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        '-' | ']' => None,
        c => Some((*c, i + 1)),
    }
}

fn match_from(p: &[char], mut pi: usize, n: &[char], mut ni: usize) -> bool {
    while pi < p.len() {
        match p[pi] {
            '*' => {
                let rest = pi + 1;
                return (ni..=n.len()).any(|k| n[ni..k].iter().all(|c| *c != '/') && match_from(p, rest, n, k));
            }
            '?' => {
                if ni >= n.len() || n[ni] == '/' {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
            '[' => {
                let Some((ranges, negated, end)) = parse_class(p, pi) else { return false };
                if ni >= n.len() || n[ni] == '/' {
                    return false;
                }
                let c = n[ni];
                if ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) == negated {
                    return false;
                }
                pi = end;
                ni += 1;
            }
            '\\' => {
                if ni >= n.len() || p.get(pi + 1) != Some(&n[ni]) {
                    return false;
                }
                pi += 2;
                ni += 1;
            }
            c => {
                if ni >= n.len() || n[ni] != c {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
        }
    }
    ni == n.len()
}

/// The registry entries of a pull secret, as the kubelet reads them: `.dockerconfigjson` of a
/// `kubernetes.io/dockerconfigjson` secret (its `auths`), or `.dockercfg` of a
/// `kubernetes.io/dockercfg` secret. `Ok(None)` for other secrets; `Err` when the content does
/// not decode (the text says why).
pub fn secret_entries(secret: &Secret) -> Result<Option<Vec<(String, Credential)>>, String> {
    let source = CredentialSource::PullSecret {
        namespace: secret.metadata.namespace.clone().unwrap_or_default(),
        name: secret.metadata.name.clone().unwrap_or_default(),
    };
    let data = secret.data.as_ref();
    let kind = secret.type_.as_deref().unwrap_or_default();
    let (bytes, nested) = match (kind, data) {
        ("kubernetes.io/dockerconfigjson", Some(data)) => match data.get(".dockerconfigjson") {
            Some(b) if !b.0.is_empty() => (&b.0, true),
            _ => return Ok(None),
        },
        ("kubernetes.io/dockercfg", Some(data)) => match data.get(".dockercfg") {
            Some(b) if !b.0.is_empty() => (&b.0, false),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let auths = if nested { field(&doc, "auths").cloned().unwrap_or(Value::Null) } else { doc };
    let Value::Object(auths) = auths else {
        return if auths.is_null() { Ok(Some(Vec::new())) } else { Err("auths is not an object".into()) };
    };
    let mut entries = Vec::new();
    for (location, entry) in auths {
        let text = |key: &str| field(&entry, key).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (mut username, mut password) = (text("username"), text("password"));
        let auth = text("auth");
        if !auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| format!("illegal base64 data in auth field: {e}"))?;
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            let (u, p) = decoded
                .split_once(':')
                .ok_or("unable to parse auth field, must be formatted as base64(username:password)")?;
            (username, password) = (u.to_owned(), p.to_owned());
        }
        entries.push((location, Credential { username, password, source: source.clone() }));
    }
    Ok(Some(entries))
}

/// A JSON object field matched case-insensitively, as Go's decoder does.
fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plugin(user: &str) -> Credential {
        Credential {
            username: user.into(),
            password: format!("{user}-pw"),
            source: CredentialSource::Plugin { name: "p".into() },
        }
    }

    #[test]
    fn url_matching_table() {
        let cases = [
            ("*.azurecr.io", "myacr.azurecr.io/app", true),
            ("*.azurecr.*", "myacr.azurecr.cn/app", true),
            ("*.azurecr.io", "azurecr.io/app", false),
            ("myacr.azurecr.io", "myacr.azurecr.io/team/app", true),
            ("myacr.azurecr.io/team", "myacr.azurecr.io/team/app", true),
            ("myacr.azurecr.io/other", "myacr.azurecr.io/team/app", false),
            ("https://myacr.azurecr.io", "myacr.azurecr.io/app", true),
            ("localhost:5000", "localhost:5000/app", true),
            ("localhost:5000", "localhost/app", false),
            // Go's url.Parse reads `?` as the start of a query, so it never globs a host.
            ("my?cr.azurecr.io", "myacr.azurecr.io/app", false),
            ("[mn]yacr.azurecr.io", "myacr.azurecr.io/app", true),
            ("[^m]yacr.azurecr.io", "myacr.azurecr.io/app", false),
            ("[a-z]yacr.azurecr.io", "myacr.azurecr.io/app", true),
            ("[", "myacr.azurecr.io/app", false),
            ("MYACR.azurecr.io", "myacr.azurecr.io/app", false),
        ];
        for (glob, target, expected) in cases {
            assert_eq!(urls_match_str(glob, target), expected, "{glob} vs {target}");
        }
        assert_eq!(glob_match("[", "x"), None);
        assert_eq!(glob_match("a\\*", "a*"), Some(true));
        assert_eq!(glob_match("my?cr", "myacr"), Some(true));
        assert_eq!(glob_match("*", "a/b"), Some(false));
    }

    #[test]
    fn lookup_order_is_reverse_sorted_keys() {
        let mut keyring = Keyring::default();
        keyring.add([
            ("*.azurecr.*".to_owned(), plugin("")),
            ("myacr.azurecr.io".to_owned(), plugin("token")),
            ("*.azurecr.io".to_owned(), plugin("sp")),
            ("other.io".to_owned(), plugin("other")),
        ]);
        let users: Vec<String> = keyring.lookup("myacr.azurecr.io/app").into_iter().map(|c| c.username).collect();
        assert_eq!(users, ["token", "sp", ""]);
        assert!(keyring.lookup("docker.io/library/nginx").is_empty());
        assert!(!keyring.is_empty());
        assert!(format!("{:?}", plugin("u")).contains("<redacted>"));
    }

    #[test]
    fn docker_hub_fallback() {
        let mut keyring = Keyring::default();
        keyring.add([("https://index.docker.io/v1/".to_owned(), plugin("hub"))]);
        assert_eq!(keyring.lookup("docker.io/library/nginx").len(), 1);
        assert!(keyring.lookup("myacr.azurecr.io/app").is_empty());
    }

    fn secret(kind: &str, key: &str, body: &str) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("acr".into()),
                namespace: Some("app".into()),
                ..Default::default()
            },
            type_: Some(kind.into()),
            data: Some(BTreeMap::from([(key.into(), k8s_openapi::ByteString(body.as_bytes().to_vec()))])),
            ..Default::default()
        }
    }

    #[test]
    fn reads_pull_secrets() {
        // base64("user:pa:ss")
        let s = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            r#"{"auths":{"myacr.azurecr.io":{"username":"ignored","password":"x","auth":"dXNlcjpwYTpzcw=="}}}"#,
        );
        let entries = secret_entries(&s).unwrap().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].1.username.as_str(), entries[0].1.password.as_str()), ("user", "pa:ss"));
        assert_eq!(entries[0].1.source, CredentialSource::PullSecret { namespace: "app".into(), name: "acr".into() });

        let s =
            secret("kubernetes.io/dockercfg", ".dockercfg", r#"{"myacr.azurecr.io":{"Username":"u","Password":"p"}}"#);
        assert_eq!(secret_entries(&s).unwrap().unwrap()[0].1.username, "u");
        assert_eq!(secret_entries(&secret("Opaque", ".dockerconfigjson", "{}")).unwrap(), None);
        assert!(secret_entries(&secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", "nope")).is_err());
        assert!(
            secret_entries(&secret(
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                r#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#
            ))
            .is_err()
        );
    }
}
