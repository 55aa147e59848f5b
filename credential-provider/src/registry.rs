//! Which images are ACR images, and the patterns the plugin answers for.

/// The DNS suffixes of ACR login servers in the public Azure clouds.
pub const ACR_SUFFIXES: [&str; 4] = ["azurecr.io", "azurecr.cn", "azurecr.de", "azurecr.us"];

/// The patterns a service principal's credentials are returned for.
pub const CONTAINER_REGISTRY_URLS: [&str; 4] = ["*.azurecr.io", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.us"];

/// The pattern of the anonymous entry added to every ACR answer, so that the kubelet also tries
/// a pull without credentials.
pub const ANONYMOUS_PATTERN: &str = "*.azurecr.*";

/// The ACR login server of `image`, if it is an ACR image: an alphanumeric registry name
/// followed by an ACR suffix, and then nothing or a `/` (so a port, or a longer host such as
/// `foo.azurecr.io.example`, is not ACR). This is the upstream plugin's rule.
///
/// ```
/// use acr_credential_provider::registry::acr_login_server;
///
/// assert_eq!(acr_login_server("myacr.azurecr.io/team/app:v1"), Some("myacr.azurecr.io"));
/// assert_eq!(acr_login_server("myacr.azurecr.cn"), Some("myacr.azurecr.cn"));
/// assert_eq!(acr_login_server("myacr.azureacr.io/app"), None);
/// assert_eq!(acr_login_server("myacr.azurecr.io.example/app"), None);
/// assert_eq!(acr_login_server("mcr.microsoft.com/oss/nginx"), None);
/// ```
pub fn acr_login_server(image: &str) -> Option<&str> {
    let name_len = image.bytes().take_while(u8::is_ascii_alphanumeric).count();
    if name_len == 0 || image.as_bytes().get(name_len) != Some(&b'.') {
        return None;
    }
    let after_dot = &image[name_len + 1..];
    let suffix = ACR_SUFFIXES.iter().find(|suffix| after_dot.starts_with(*suffix))?;
    let end = name_len + 1 + suffix.len();
    let rest = &image[end..];
    (rest.is_empty() || rest.starts_with('/')).then(|| &image[..end])
}

/// `--registry-mirror` mappings (`SOURCE:TARGET,...`): images of SOURCE are authenticated
/// against the ACR TARGET, and the answer is given for both hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryMirror {
    mappings: Vec<(String, String)>,
}

impl RegistryMirror {
    /// Parses `aaa:bbb,ccc:ddd`; malformed pairs are skipped, as upstream does.
    pub fn parse(text: &str) -> Self {
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mappings = cleaned
            .split(',')
            .filter_map(|pair| {
                let mut parts = pair.split(':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(source), Some(target), None) if !source.is_empty() && !target.is_empty() => {
                        Some((source.to_owned(), target.to_owned()))
                    }
                    _ => None,
                }
            })
            .collect();
        Self { mappings }
    }

    /// The image rewritten to its target registry, and the source registry it came from.
    pub fn apply(&self, image: &str) -> (String, Option<String>) {
        for (source, target) in &self.mappings {
            if let Some(rest) = image.strip_prefix(source.as_str()) {
                return (format!("{target}{rest}"), Some(source.clone()));
            }
        }
        (image.to_owned(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers() {
        let cases = [
            ("myacr.azurecr.io/app", Some("myacr.azurecr.io")),
            ("myacr.azurecr.io/app:v1", Some("myacr.azurecr.io")),
            ("MyAcr2.azurecr.us/a/b@sha256:abc", Some("MyAcr2.azurecr.us")),
            ("myacr.azurecr.de", Some("myacr.azurecr.de")),
            ("myacr.azurecr.io:443/app", None),
            ("my-acr.azurecr.io/app", None),
            ("myacr.westeurope.data.azurecr.io/app", None),
            (".azurecr.io/app", None),
            ("docker.io/library/nginx", None),
            ("", None),
        ];
        for (image, expected) in cases {
            assert_eq!(acr_login_server(image), expected, "{image}");
        }
    }

    #[test]
    fn mirrors() {
        let mirror = RegistryMirror::parse(" mcr.microsoft.com:myacr.azurecr.io , bad, a:b:c");
        assert_eq!(
            mirror.apply("mcr.microsoft.com/oss/nginx"),
            ("myacr.azurecr.io/oss/nginx".to_owned(), Some("mcr.microsoft.com".to_owned()))
        );
        assert_eq!(mirror.apply("other.io/x"), ("other.io/x".to_owned(), None));
        assert_eq!(RegistryMirror::parse(""), RegistryMirror::default());
    }
}
