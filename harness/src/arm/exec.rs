//! Sending [`Request`]s: placeholders in, captures out.

use std::collections::BTreeMap;

use serde_json::Value;

use super::request::{Edit, Request, Service};
use azure_rest::{Client, Method, RestError};

/// Values bound from earlier answers. Secret values never appear in `Debug` output.
#[derive(Clone, Default)]
pub struct Bindings(BTreeMap<String, (String, bool)>);

impl std::fmt::Debug for Bindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, (v, secret))| (k, if *secret { "<secret>" } else { v.as_str() })))
            .finish()
    }
}

impl Bindings {
    /// Binds `name`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>, secret: bool) {
        self.0.insert(name.into(), (value.into(), secret));
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|(v, _)| v.as_str())
    }

    /// Every secret value (for redaction of logs and artifacts).
    pub fn secrets(&self) -> Vec<&str> {
        self.0.values().filter(|(_, s)| *s).map(|(v, _)| v.as_str()).collect()
    }

    /// Replaces every `${name}` in `text`.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("unclosed placeholder in `{text}`"))?;
            let name = &after[..end];
            out.push_str(self.get(name).ok_or_else(|| format!("`${{{name}}}` is not bound yet"))?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn substitute_value(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => Value::String(self.substitute(s)?),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.substitute_value(x)).collect::<Result<_, _>>()?),
            Value::Object(o) => {
                let mut m = serde_json::Map::new();
                for (k, x) in o {
                    m.insert(self.substitute(k)?, self.substitute_value(x)?);
                }
                Value::Object(m)
            }
            other => other.clone(),
        })
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Azure (or the emulator) refused it.
    #[error("{purpose}: {source}")]
    Rest {
        /// What the request was for.
        purpose: String,
        /// The error.
        source: RestError,
    },
    /// A placeholder was not bound, or an answer lacked a captured field.
    #[error("{purpose}: {reason}")]
    Binding {
        /// What the request was for.
        purpose: String,
        /// What is missing.
        reason: String,
    },
}

/// Sends requests to ARM and Graph, keeping bindings between them.
pub struct Executor {
    /// The ARM client.
    pub arm: Client,
    /// The Graph client.
    pub graph: Client,
    /// Values bound so far.
    pub bindings: Bindings,
}

impl Executor {
    /// An executor with empty bindings.
    pub fn new(arm: Client, graph: Client) -> Self {
        Self { arm, graph, bindings: Bindings::default() }
    }

    /// Sends every request in order; stops at the first failure.
    pub async fn run_all(&mut self, requests: &[Request]) -> Result<(), ExecError> {
        for r in requests {
            self.run(r).await?;
        }
        Ok(())
    }

    /// Sends one request and binds its captures. Returns the answer.
    pub async fn run(&mut self, r: &Request) -> Result<Value, ExecError> {
        let purpose = r.purpose.clone();
        let bind_err = |reason: String| ExecError::Binding { purpose: purpose.clone(), reason };
        let path = self.bindings.substitute(&r.path).map_err(bind_err)?;
        let body = match &r.body {
            Some(b) => Some(self.bindings.substitute_value(b).map_err(bind_err)?),
            None => None,
        };
        let client = match r.service {
            Service::Arm => &self.arm,
            Service::Graph => &self.graph,
        };
        let rest = |source| ExecError::Rest { purpose: purpose.clone(), source };
        let mut answer = match (r.method, &r.edit) {
            (Method::Patch, Some(edit)) => {
                let mut current = client.send(Method::Get, &path, &r.api_version, None).await.map_err(rest)?;
                let edit = match edit {
                    Edit::Append { pointer, value } => Edit::Append {
                        pointer: pointer.clone(),
                        value: self.bindings.substitute_value(value).map_err(bind_err)?,
                    },
                    Edit::Insert { pointer, index, value } => Edit::Insert {
                        pointer: pointer.clone(),
                        index: *index,
                        value: self.bindings.substitute_value(value).map_err(bind_err)?,
                    },
                    Edit::RemoveWhere { pointer, field, equals } => Edit::RemoveWhere {
                        pointer: pointer.clone(),
                        field: field.clone(),
                        equals: self.bindings.substitute_value(equals).map_err(bind_err)?,
                    },
                    other => other.clone(),
                };
                apply_edit(&mut current, &edit);
                strip_read_only(&mut current);
                client.send(Method::Put, &path, &r.api_version, Some(&current)).await.map_err(rest)?
            }
            (method, _) => client.send(method, &path, &r.api_version, body.as_ref()).await.map_err(rest)?,
        };
        if let Some((tag, value)) = &r.find_by_tag {
            let items = answer.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
            answer = items
                .into_iter()
                .find(|i| i.pointer(&format!("/tags/{tag}")).and_then(Value::as_str) == Some(value.as_str()))
                .ok_or_else(|| bind_err(format!("no item tagged {tag}={value}")))?;
        }
        for c in &r.captures {
            let v = answer.pointer(&c.pointer).ok_or_else(|| bind_err(format!("the answer has no {}", c.pointer)))?;
            let s = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            self.bindings.set(c.name.clone(), s, c.secret);
        }
        Ok(answer)
    }
}

/// Drops server-owned fields before a PUT of a fetched body.
fn strip_read_only(v: &mut Value) {
    if let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("provisioningState");
    }
}

/// Applies an edit in place (pure; missing objects are created).
pub fn apply_edit(doc: &mut Value, edit: &Edit) {
    fn slot<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
        let mut cur = doc;
        for raw in pointer.split('/').skip(1) {
            let key = raw.replace("~1", "/").replace("~0", "~");
            if !cur.is_object() {
                *cur = Value::Object(Default::default());
            }
            let obj = cur.as_object_mut().expect("made an object above");
            let existing = obj.keys().find(|k| k.eq_ignore_ascii_case(&key)).cloned();
            cur = obj.entry(existing.unwrap_or(key)).or_insert(Value::Null);
        }
        cur
    }
    let eq = |a: &Value, b: &Value| match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    };
    match edit {
        Edit::Set { pointer, value } => *slot(doc, pointer) = value.clone(),
        Edit::Append { pointer, value } => {
            let s = slot(doc, pointer);
            if !s.is_array() {
                *s = Value::Array(vec![]);
            }
            let arr = s.as_array_mut().expect("made an array above");
            if !arr.iter().any(|x| x == value) {
                arr.push(value.clone());
            }
        }
        Edit::Insert { pointer, index, value } => {
            let s = slot(doc, pointer);
            if !s.is_array() {
                *s = Value::Array(vec![]);
            }
            let arr = s.as_array_mut().expect("made an array above");
            if !arr.iter().any(|x| x == value) {
                arr.insert((*index).min(arr.len()), value.clone());
            }
        }
        Edit::RemoveWhere { pointer, field, equals } => {
            if let Some(arr) = slot(doc, pointer).as_array_mut() {
                arr.retain(|x| !x.get(field).is_some_and(|f| eq(f, equals)));
            }
        }
        Edit::RemoveKey { pointer, key } => {
            if let Some(obj) = slot(doc, pointer).as_object_mut() {
                let found = obj.keys().find(|k| crate::arm::exec::same(k, key)).cloned();
                if let Some(k) = found {
                    obj.remove(&k);
                }
            }
        }
    }
}

fn same(a: &str, b: &str) -> bool {
    azure_model::id::same_id(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitution_and_secrets() {
        let mut b = Bindings::default();
        b.set("kubelet.principalId", "oid-1", false);
        b.set("secret.app", "hunter2", true);
        assert_eq!(b.substitute("x/${kubelet.principalId}/y").unwrap(), "x/oid-1/y");
        assert!(b.substitute("${nope}").unwrap_err().contains("not bound"));
        assert!(!format!("{b:?}").contains("hunter2"));
        assert_eq!(b.secrets(), ["hunter2"]);
    }

    #[test]
    fn edits() {
        let mut doc = json!({ "properties": { "networkRuleSet": { "defaultAction": "Deny", "ipRules": [{ "action": "Allow", "value": "1.2.3.4" }] } } });
        apply_edit(
            &mut doc,
            &Edit::Append {
                pointer: "/properties/networkRuleSet/ipRules".into(),
                value: json!({ "action": "Allow", "value": "5.6.7.8" }),
            },
        );
        apply_edit(
            &mut doc,
            &Edit::Append {
                pointer: "/properties/networkRuleSet/ipRules".into(),
                value: json!({ "action": "Allow", "value": "5.6.7.8" }),
            },
        );
        assert_eq!(doc["properties"]["networkRuleSet"]["ipRules"].as_array().unwrap().len(), 2);
        apply_edit(
            &mut doc,
            &Edit::RemoveWhere {
                pointer: "/properties/networkRuleSet/ipRules".into(),
                field: "value".into(),
                equals: json!("1.2.3.4"),
            },
        );
        assert_eq!(doc["properties"]["networkRuleSet"]["ipRules"][0]["value"], "5.6.7.8");
        apply_edit(
            &mut doc,
            &Edit::Set { pointer: "/properties/roleAssignmentMode".into(), value: json!("AbacRepositoryPermissions") },
        );
        assert_eq!(doc["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/k";
        let mut vmss = json!({ "identity": { "userAssignedIdentities": { id.to_uppercase(): {} } } });
        apply_edit(&mut vmss, &Edit::RemoveKey { pointer: "/identity/userAssignedIdentities".into(), key: id.into() });
        assert_eq!(vmss["identity"]["userAssignedIdentities"], json!({}));
        apply_edit(
            &mut vmss,
            &Edit::Set {
                pointer: format!("/identity/userAssignedIdentities/{}", id.replace('/', "~1")),
                value: json!({}),
            },
        );
        assert!(vmss["identity"]["userAssignedIdentities"].get(id).is_some());
    }

    #[test]
    fn insert_puts_an_element_back_where_it_was_once() {
        let mut doc = json!({ "rules": ["a", "c"] });
        let insert = |index| Edit::Insert { pointer: "/rules".into(), index, value: json!("b") };
        apply_edit(&mut doc, &insert(1));
        apply_edit(&mut doc, &insert(1));
        assert_eq!(doc["rules"], json!(["a", "b", "c"]));
        let mut short = json!({ "rules": [] });
        apply_edit(&mut short, &insert(5));
        assert_eq!(short["rules"], json!(["b"]));
    }
}
