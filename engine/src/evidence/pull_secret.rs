//! Image pull secrets (`kubernetes.io/dockerconfigjson` and legacy `kubernetes.io/dockercfg`).
//!
//! Only usernames and registry hosts are kept: passwords are read to check they exist and then
//! dropped, so they can never reach a report or a log.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Serialize;

/// One registry entry of a pull secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryLogin {
    /// The registry host the entry is for (scheme and path stripped, lowercase).
    pub registry: String,
    /// The username (an appId, a registry name, or the null GUID for ACR tokens).
    pub username: String,
    /// Whether a password was present.
    pub has_password: bool,
    /// The path the entry is limited to (`/team` for a key `host/team`), as the kubelet reads
    /// it: `/v1/` and `/v2/` mean the whole host. Empty for a whole host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl RegistryLogin {
    /// Whether the kubelet would use this entry for an image in `repository` on `host`.
    ///
    /// The kubelet's keyring (`pkg/credentialprovider/keyring.go`, `URLsMatch`) compares the key
    /// with the image's `host/repository`: the same number of host labels, each label a glob
    /// (`*`, `?`) of the image's; the same port (none on both, or equal); and the key's path a
    /// prefix of the image's. So `*.azurecr.io` serves `myacr.azurecr.io` but not
    /// `a.b.azurecr.io`, and `myacr.azurecr.io/team` serves only `team/...` repositories.
    pub fn serves(&self, host: &str, repository: &str) -> bool {
        let (glob_host, glob_port) = split_port(&self.registry);
        let host = host.to_ascii_lowercase();
        let (target_host, target_port) = split_port(&host);
        if glob_port != target_port {
            return false;
        }
        let globs: Vec<&str> = glob_host.split('.').collect();
        let labels: Vec<&str> = target_host.split('.').collect();
        if globs.len() != labels.len() || !globs.iter().zip(&labels).all(|(g, l)| glob_matches(g, l)) {
            return false;
        }
        let target_path = format!("/{}", repository.trim_start_matches('/'));
        target_path.starts_with(&self.path)
    }
}

fn split_port(host: &str) -> (&str, &str) {
    match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (host, ""),
    }
}

/// Go's `filepath.Match` for one host label: `*` any run of characters, `?` one character,
/// everything else literal.
fn glob_matches(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut gi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ti;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// A pull secret with its registry logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullSecret {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Entries.
    pub logins: Vec<RegistryLogin>,
}

impl PullSecret {
    /// Reads a Secret; `None` when it is not a docker config secret or cannot be decoded.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let (raw, nested) = if let Some(v) = data.get(".dockerconfigjson") {
            (&v.0, true)
        } else {
            (&data.get(".dockercfg")?.0, false)
        };
        let doc: serde_json::Value = serde_json::from_slice(raw).ok()?;
        let auths = if nested { doc.get("auths")? } else { &doc };
        let mut logins = Vec::new();
        for (host, entry) in auths.as_object()? {
            let mut username = entry.get("username").and_then(|u| u.as_str()).unwrap_or_default().to_string();
            let mut has_password = entry.get("password").and_then(|p| p.as_str()).is_some_and(|p| !p.is_empty());
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str())
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(auth.trim())
                && let Ok(text) = String::from_utf8(bytes)
                && let Some((u, p)) = text.split_once(':')
            {
                if username.is_empty() {
                    username = u.to_string();
                }
                has_password |= !p.is_empty();
            }
            let (registry, path) = split_key(host);
            logins.push(RegistryLogin { registry, username, has_password, path });
        }
        Some(Self {
            namespace: secret.metadata.namespace.clone().unwrap_or_default(),
            name: secret.metadata.name.clone().unwrap_or_default(),
            logins,
        })
    }

    /// The entry for the whole of `host`, if any (exact host, any path).
    pub fn login_for(&self, host: &str) -> Option<&RegistryLogin> {
        let host = host.to_ascii_lowercase();
        self.logins.iter().find(|l| l.registry == host)
    }

    /// The entry the kubelet would use for `repository` on `host`: of those that serve it
    /// ([`RegistryLogin::serves`]), the most specific key, as the kubelet tries them.
    pub fn login_for_image(&self, host: &str, repository: &str) -> Option<&RegistryLogin> {
        self.logins
            .iter()
            .filter(|l| l.serves(host, repository))
            .max_by_key(|l| (l.registry.len() + l.path.len(), !l.registry.contains('*')))
    }
}

/// A docker config key as the kubelet reads it: scheme dropped, host lowercased, and the path
/// kept unless it is `/`, `/v1/...` or `/v2/...` (the Docker client's spellings of the host).
fn split_key(key: &str) -> (String, String) {
    let k = key.trim();
    let k = k.strip_prefix("https://").or_else(|| k.strip_prefix("http://")).unwrap_or(k);
    let (host, path) = match k.find('/') {
        Some(i) => (&k[..i], &k[i..]),
        None => (k, ""),
    };
    let path = if path.starts_with("/v2/") || path.starts_with("/v1/") { &path[3..] } else { path };
    let path = if path == "/" { "" } else { path };
    (host.to_ascii_lowercase(), path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(key: &str, body: &str) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("acr".into()),
                namespace: Some("app".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(key.to_string(), ByteString(body.as_bytes().to_vec()))])),
            ..Default::default()
        }
    }

    #[test]
    fn reads_dockerconfigjson_with_auth_field() {
        // "myacr:s3cret" in base64.
        let s =
            secret(".dockerconfigjson", r#"{"auths":{"https://MyAcr.azurecr.io/v2/":{"auth":"bXlhY3I6czNjcmV0"}}}"#);
        let ps = PullSecret::from_secret(&s).unwrap();
        assert_eq!(
            ps.logins,
            vec![RegistryLogin {
                registry: "myacr.azurecr.io".into(),
                username: "myacr".into(),
                has_password: true,
                path: String::new()
            }]
        );
        assert!(!format!("{ps:?}").contains("s3cret"));
    }

    #[test]
    fn reads_legacy_dockercfg_and_ignores_others() {
        let s = secret(".dockercfg", r#"{"myacr.azurecr.io":{"username":"u","password":"p"}}"#);
        assert_eq!(PullSecret::from_secret(&s).unwrap().login_for("MYACR.azurecr.io").unwrap().username, "u");
        assert!(PullSecret::from_secret(&secret("token", "x")).is_none());
        assert!(PullSecret::from_secret(&secret(".dockerconfigjson", "not json")).is_none());
    }

    fn login(key: &str) -> RegistryLogin {
        let (registry, path) = split_key(key);
        RegistryLogin { registry, username: "u".into(), has_password: true, path }
    }

    #[test]
    fn keys_serve_images_the_way_the_kubelet_matches_them() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("myacr.azurecr.io", "myacr.azurecr.io", "app", true),
            ("https://myacr.azurecr.io/v2/", "myacr.azurecr.io", "app", true),
            ("http://myacr.azurecr.io/v1/", "myacr.azurecr.io", "app", true),
            ("MyAcr.azurecr.io", "myacr.azurecr.io", "app", true),
            ("*.azurecr.io", "myacr.azurecr.io", "app", true),
            ("*.azurecr.io", "a.b.azurecr.io", "app", false),
            ("my*.azurecr.io", "myacr.azurecr.io", "app", true),
            ("myac?.azurecr.io", "myacr.azurecr.io", "app", true),
            ("myacr.azurecr.io/team", "myacr.azurecr.io", "team/app", true),
            ("myacr.azurecr.io/team", "myacr.azurecr.io", "other/app", false),
            ("myacr.azurecr.io:5000", "myacr.azurecr.io", "app", false),
            ("myacr.azurecr.io:5000", "myacr.azurecr.io:5000", "app", true),
            ("myacr.azurecr.io", "myacr.azurecr.io:5000", "app", false),
            ("oldacr.azurecr.io", "myacr.azurecr.io", "app", false),
            ("azurecr.io", "myacr.azurecr.io", "app", false),
        ];
        for (key, host, repo, want) in cases {
            assert_eq!(login(key).serves(host, repo), *want, "{key} for {host}/{repo}");
        }
    }

    #[test]
    fn the_most_specific_key_wins() {
        let ps = PullSecret {
            namespace: "n".into(),
            name: "s".into(),
            logins: vec![login("*.azurecr.io"), login("myacr.azurecr.io/team"), login("myacr.azurecr.io")],
        };
        assert_eq!(ps.login_for_image("myacr.azurecr.io", "team/app").unwrap().path, "/team");
        assert_eq!(ps.login_for_image("myacr.azurecr.io", "app").unwrap().registry, "myacr.azurecr.io");
        assert_eq!(ps.login_for_image("other.azurecr.io", "app").unwrap().registry, "*.azurecr.io");
        assert!(ps.login_for_image("docker.io", "library/nginx").is_none());
    }
}
