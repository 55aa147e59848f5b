//! ARM resource ids: `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}...]`.
//!
//! ARM compares ids case-insensitively; so does [`ResourceId`]'s `PartialEq`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed ARM resource id. Equality and hashing ignore ASCII case, as ARM does.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct ResourceId(String);

/// Why a string is not an ARM resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{id}` is not an ARM resource id: {reason}")]
pub struct ResourceIdError {
    /// The offending text.
    pub id: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ResourceId {
    /// Parses and validates an id (it must start with `/subscriptions/` or `/providers/`, and
    /// have an even number of segments after the provider namespace).
    pub fn parse(id: &str) -> Result<Self, ResourceIdError> {
        let err = |reason| ResourceIdError { id: id.to_string(), reason };
        if !id.starts_with('/') {
            return Err(err("it must start with `/`"));
        }
        let segs: Vec<&str> = id.trim_end_matches('/').split('/').skip(1).collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(err("it has an empty segment"));
        }
        if !segs[0].eq_ignore_ascii_case("subscriptions") && !segs[0].eq_ignore_ascii_case("providers") {
            return Err(err("it must start with `/subscriptions/` or `/providers/`"));
        }
        if !segs.len().is_multiple_of(2) && segs.iter().all(|s| !s.eq_ignore_ascii_case("providers")) {
            return Err(err("it has a segment without a value"));
        }
        Ok(Self(id.trim_end_matches('/').to_string()))
    }

    /// Builds an id from trusted parts without validation.
    pub fn from_parts(
        subscription: &str,
        resource_group: &str,
        namespace: &str,
        types_and_names: &[(&str, &str)],
    ) -> Self {
        let mut s = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{namespace}");
        for (t, n) in types_and_names {
            s.push('/');
            s.push_str(t);
            s.push('/');
            s.push_str(n);
        }
        Self(s)
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').skip(1)
    }

    fn value_after(&self, key: &str) -> Option<&str> {
        let mut it = self.segments();
        while let Some(s) = it.next() {
            if s.eq_ignore_ascii_case(key) {
                return it.next();
            }
        }
        None
    }

    /// The subscription id.
    pub fn subscription(&self) -> Option<&str> {
        self.value_after("subscriptions")
    }

    /// The resource group name.
    pub fn resource_group(&self) -> Option<&str> {
        self.value_after("resourceGroups")
    }

    /// The provider namespace of the last `providers` segment (e.g. `Microsoft.Network`).
    pub fn namespace(&self) -> Option<&str> {
        let segs: Vec<&str> = self.segments().collect();
        let pos = segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers"))?;
        segs.get(pos + 1).copied()
    }

    /// The full resource type (`Microsoft.Network/privateDnsZones/virtualNetworkLinks`), or
    /// `Microsoft.Resources/resourceGroups` / `Microsoft.Resources/subscriptions`.
    pub fn resource_type(&self) -> String {
        let segs: Vec<&str> = self.segments().collect();
        match segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers")) {
            Some(pos) if pos + 1 < segs.len() => {
                let mut t = segs[pos + 1].to_string();
                let mut i = pos + 2;
                while i < segs.len() {
                    t.push('/');
                    t.push_str(segs[i]);
                    i += 2;
                }
                t
            }
            _ if segs.len() >= 4 => "Microsoft.Resources/resourceGroups".to_string(),
            _ => "Microsoft.Resources/subscriptions".to_string(),
        }
    }

    /// The last name segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The parent resource's id (a child resource's owner, a top-level resource's group).
    pub fn parent(&self) -> Option<ResourceId> {
        let segs: Vec<&str> = self.segments().collect();
        let providers = segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers"));
        let cut = match providers {
            Some(p) if segs.len() > p + 4 => segs.len() - 2,
            Some(p) => p,
            None if segs.len() > 2 => segs.len() - 2,
            None => return None,
        };
        if cut == 0 {
            return None;
        }
        Some(Self(format!("/{}", segs[..cut].join("/"))))
    }

    /// Whether `self` is `other` or lies beneath it (a scope test, case-insensitive).
    pub fn is_within(&self, scope: &str) -> bool {
        let me = self.0.to_ascii_lowercase();
        let scope = scope.trim_end_matches('/').to_ascii_lowercase();
        me == scope || me.starts_with(&format!("{scope}/"))
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for ResourceId {}

impl PartialEq<str> for ResourceId {
    fn eq(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl std::hash::Hash for ResourceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ResourceId {
    type Err = ResourceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Case-insensitive comparison of two id strings, as ARM compares them.
pub fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io/virtualNetworkLinks/aks";

    #[test]
    fn parts() {
        let id = ResourceId::parse(LINK).unwrap();
        assert_eq!(id.subscription(), Some("s1"));
        assert_eq!(id.resource_group(), Some("rg"));
        assert_eq!(id.namespace(), Some("Microsoft.Network"));
        assert_eq!(id.resource_type(), "Microsoft.Network/privateDnsZones/virtualNetworkLinks");
        assert_eq!(id.name(), "aks");
        let zone = id.parent().unwrap();
        assert_eq!(zone.name(), "privatelink.azurecr.io");
        assert_eq!(zone.parent().unwrap().as_str(), "/subscriptions/s1/resourceGroups/rg");
        assert_eq!(
            ResourceId::parse("/subscriptions/s1/resourceGroups/rg").unwrap().resource_type(),
            "Microsoft.Resources/resourceGroups"
        );
    }

    #[test]
    fn case_insensitive() {
        let a = ResourceId::parse(LINK).unwrap();
        let b = ResourceId::parse(&LINK.to_uppercase()).unwrap();
        assert_eq!(a, b);
        assert!(a.is_within("/SUBSCRIPTIONS/s1/resourcegroups/RG"));
        assert!(!a.is_within("/subscriptions/s1/resourceGroups/rg2"));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "subscriptions/x", "/foo/bar", "/subscriptions//x", "/subscriptions/s/resourceGroups"] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }
}
