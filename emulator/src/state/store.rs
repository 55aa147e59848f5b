//! The ARM resource store: resource bodies exactly as `GET` returns them, keyed by id.
//!
//! Ids compare case-insensitively (the key is the lower-cased id); the body keeps the casing of
//! the request that created it, as ARM does. Child resources that ARM embeds in their parent
//! (subnets, peerings, security rules, routes) live inside the parent's body, not here.

use std::collections::BTreeMap;

use serde_json::Value;

/// Resource bodies by lower-cased id, in id order.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceStore {
    items: BTreeMap<String, Value>,
}

pub(crate) fn key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// The `id` of a resource body.
pub(crate) fn id_of(value: &Value) -> &str {
    value.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// The `type` of a resource body.
pub(crate) fn type_of(value: &Value) -> &str {
    value.get("type").and_then(Value::as_str).unwrap_or_default()
}

impl ResourceStore {
    pub fn get(&self, id: &str) -> Option<&Value> {
        self.items.get(&key(id))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.items.get_mut(&key(id))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.items.contains_key(&key(id))
    }

    /// Inserts or replaces the body under its own `id`.
    pub fn insert(&mut self, value: Value) {
        let k = key(id_of(&value));
        self.items.insert(k, value);
    }

    pub fn remove(&mut self, id: &str) -> Option<Value> {
        self.items.remove(&key(id))
    }

    /// Removes the resource `scope` and everything beneath it; returns what was removed.
    pub fn remove_within(&mut self, scope: &str) -> Vec<Value> {
        let k = key(scope);
        let prefix = format!("{k}/");
        let doomed: Vec<String> =
            self.items.keys().filter(|id| **id == k || id.starts_with(&prefix)).cloned().collect();
        doomed.into_iter().filter_map(|id| self.items.remove(&id)).collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.items.values()
    }

    /// Bodies of type `ty` (case-insensitive).
    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.items.values().filter(move |v| type_of(v).eq_ignore_ascii_case(ty))
    }

    /// Ids of type `ty`.
    pub fn ids_of_type(&self, ty: &str) -> Vec<String> {
        self.of_type(ty).map(|v| id_of(v).to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_insensitive_and_scoped_removal() {
        let mut s = ResourceStore::default();
        s.insert(json!({"id": "/subscriptions/s/resourceGroups/RG", "type": "Microsoft.Resources/resourceGroups"}));
        s.insert(json!({"id": "/subscriptions/s/resourceGroups/RG/providers/A.B/c/d", "type": "A.B/c"}));
        s.insert(json!({"id": "/subscriptions/s/resourceGroups/RG2", "type": "Microsoft.Resources/resourceGroups"}));
        assert!(s.contains("/SUBSCRIPTIONS/s/resourcegroups/rg/providers/a.b/C/D"));
        assert_eq!(s.of_type("a.b/C").count(), 1);
        assert_eq!(s.remove_within("/subscriptions/s/resourceGroups/rg").len(), 2);
        assert_eq!(s.values().count(), 1);
    }
}
