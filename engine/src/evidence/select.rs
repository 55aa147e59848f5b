//! The pod selection of `pulldoctor diagnose` (`-n`, `POD`, `-l`) applied to evidence that was
//! loaded whole (a dump), so offline runs look at the same pods a live run would.

use std::collections::{BTreeMap, BTreeSet};

use super::Evidence;

/// Which pods to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodSelection<'a> {
    /// Only this namespace (`None`: every namespace).
    pub namespace: Option<&'a str>,
    /// Only this pod (in `namespace`, or the one namespace that has it).
    pub pod: Option<&'a str>,
    /// Only pods whose labels match this selector (`app=web,tier!=db`, `env in (a,b)`, `!x`).
    pub selector: Option<&'a str>,
}

/// Why a selection cannot be applied: the user's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The named pod is not in the evidence.
    #[error("pod {0} not found in the dump")]
    PodNotFound(String),
    /// The named pod exists in several namespaces and none was given.
    #[error("pod {name} exists in namespaces {}: pass -n NAMESPACE", .namespaces.join(", "))]
    AmbiguousPod {
        /// The pod's name.
        name: String,
        /// The namespaces that hold a pod of that name.
        namespaces: Vec<String>,
    },
    /// The label selector does not parse.
    #[error("invalid label selector `{selector}`: {reason}")]
    InvalidSelector {
        /// The selector.
        selector: String,
        /// What is wrong.
        reason: String,
    },
}

impl PodSelection<'_> {
    /// Whether anything is selected at all (no flag: every pod).
    pub fn is_everything(&self) -> bool {
        self.namespace.is_none() && self.pod.is_none() && self.selector.is_none()
    }
}

impl Evidence {
    /// Keeps only the selected pods and the events about them (events about other objects
    /// stay). Nodes, secrets, service accounts and replica sets are left as they are: the
    /// detectors reach them through the pods.
    pub fn select(&mut self, sel: &PodSelection<'_>) -> Result<(), SelectError> {
        if sel.is_everything() {
            return Ok(());
        }
        let matcher = sel.selector.map(LabelSelector::parse).transpose()?;
        let ns_of =
            |p: &k8s_openapi::api::core::v1::Pod| p.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        self.pods.retain(|p| {
            sel.namespace.is_none_or(|ns| ns_of(p) == ns)
                && sel.pod.is_none_or(|name| p.metadata.name.as_deref() == Some(name))
                && matcher.as_ref().is_none_or(|m| m.matches(p.metadata.labels.as_ref()))
        });
        if let Some(name) = sel.pod {
            let namespaces: BTreeSet<String> = self.pods.iter().map(ns_of).collect();
            match namespaces.len() {
                0 => {
                    let shown = match sel.namespace {
                        Some(ns) => format!("{ns}/{name}"),
                        None => name.to_string(),
                    };
                    return Err(SelectError::PodNotFound(shown));
                }
                1 => {}
                _ => {
                    return Err(SelectError::AmbiguousPod {
                        name: name.to_string(),
                        namespaces: namespaces.into_iter().collect(),
                    });
                }
            }
        }
        let kept: BTreeSet<(String, String)> =
            self.pods.iter().map(|p| (ns_of(p), p.metadata.name.clone().unwrap_or_default())).collect();
        self.events.retain(|e| {
            let o = &e.involved_object;
            if o.kind.as_deref() != Some("Pod") {
                return true;
            }
            let ns = o.namespace.clone().or_else(|| e.metadata.namespace.clone()).unwrap_or_else(|| "default".into());
            kept.contains(&(ns, o.name.clone().unwrap_or_default()))
        });
        Ok(())
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed Kubernetes label selector (the `-l` syntax of kubectl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(selector: &str) -> Result<Self, SelectError> {
        let invalid = |reason: String| SelectError::InvalidSelector { selector: selector.to_string(), reason };
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, c) in selector.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&selector[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            if depth < 0 {
                return Err(invalid("unbalanced parentheses".into()));
            }
        }
        if depth != 0 {
            return Err(invalid("unbalanced parentheses".into()));
        }
        parts.push(&selector[start..]);
        let key_ok = |k: &str| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        };
        let mut reqs = Vec::new();
        for part in parts.into_iter().map(str::trim) {
            if part.is_empty() {
                if selector.trim().is_empty() {
                    continue;
                }
                return Err(invalid("empty requirement".into()));
            }
            let set = |rest: &str| -> Option<Vec<String>> {
                let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
                Some(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let req = if let Some(k) = part.strip_prefix('!') {
                Requirement::DoesNotExist(k.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                let vs = set(rest).ok_or_else(|| invalid(format!("`{part}`: expected `KEY notin (A,B)`")))?;
                Requirement::NotIn(k.trim().to_string(), vs)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                let vs = set(rest).ok_or_else(|| invalid(format!("`{part}`: expected `KEY in (A,B)`")))?;
                Requirement::In(k.trim().to_string(), vs)
            } else {
                Requirement::Exists(part.to_string())
            };
            let key = match &req {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::DoesNotExist(k) => k,
            };
            if !key_ok(key) {
                return Err(invalid(format!("`{part}`: `{key}` is not a label key")));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_as_kubectl_reads_them() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let db = labels(&[("app", "db")]);
        let m = |s: &str, l: &BTreeMap<String, String>| LabelSelector::parse(s).unwrap().matches(Some(l));
        assert!(m("app=web", &web) && !m("app=web", &db));
        assert!(m("app==web", &web));
        assert!(m("app!=web", &db) && !m("app!=web", &web));
        assert!(m("app in (web, api)", &web) && !m("app in (web,api)", &db));
        assert!(m("app notin (web)", &db) && !m("app notin (web)", &web));
        assert!(m("tier", &web) && !m("tier", &db));
        assert!(m("!tier", &db) && !m("!tier", &web));
        assert!(m("app=web,tier=front", &web) && !m("app=web,tier=back", &web));
        assert!(m("app.kubernetes.io/name!=x", &web));
        assert!(
            LabelSelector::parse("app").unwrap().matches(Some(&web))
                && !LabelSelector::parse("app").unwrap().matches(None)
        );
    }

    #[test]
    fn bad_selectors_are_errors() {
        for s in ["app in (web", "app in web", "a b", "app=web,,tier=x", "=x"] {
            assert!(LabelSelector::parse(s).is_err(), "{s}");
        }
    }
}
