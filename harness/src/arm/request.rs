//! One call to Azure, as data.

use serde::Serialize;
use serde_json::Value;

use azure_rest::Method;

/// Which service a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Azure Resource Manager.
    Arm,
    /// Microsoft Graph (`/v1.0/...`).
    Graph,
}

/// Binds a value from a request's answer to a name later requests use as `${name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capture {
    /// The binding's name.
    pub name: String,
    /// A JSON pointer into the answer (`/properties/principalId`).
    pub pointer: String,
    /// Whether the value is a secret (never printed).
    pub secret: bool,
}

impl Capture {
    /// A non-secret capture.
    pub fn value(name: impl Into<String>, pointer: &str) -> Self {
        Self { name: name.into(), pointer: pointer.into(), secret: false }
    }

    /// A secret capture.
    pub fn secret(name: impl Into<String>, pointer: &str) -> Self {
        Self { name: name.into(), pointer: pointer.into(), secret: true }
    }
}

/// A read-modify-write edit: the executor GETs the resource, applies the edit, and PUTs it back
/// (what `az` does for most updates).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "edit")]
pub enum Edit {
    /// Set a value at a JSON pointer (creating objects on the way).
    Set {
        /// Where.
        pointer: String,
        /// What.
        value: Value,
    },
    /// Append `value` to the array at `pointer` unless an equal element is there.
    Append {
        /// The array.
        pointer: String,
        /// The element.
        value: Value,
    },
    /// Insert `value` at position `index` (or at the end, if shorter) of the array at
    /// `pointer`, unless an equal element is there: an inverse that puts an element back where
    /// the baseline had it.
    Insert {
        /// The array.
        pointer: String,
        /// The position.
        index: usize,
        /// The element.
        value: Value,
    },
    /// Remove every element of the array at `pointer` whose `field` equals `equals`
    /// (case-insensitive for strings).
    RemoveWhere {
        /// The array.
        pointer: String,
        /// The element field compared.
        field: String,
        /// The value that selects elements to remove.
        equals: Value,
    },
    /// Remove a key of the object at `pointer` (case-insensitive).
    RemoveKey {
        /// The object.
        pointer: String,
        /// The key.
        key: String,
    },
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// ARM or Graph.
    pub service: Service,
    /// The method. `Patch` requests carry an [`Edit`] and run as GET + PUT.
    pub method: Method,
    /// The path (resource id, or Graph path); may hold `${name}` placeholders.
    pub path: String,
    /// The api-version (empty for Graph).
    pub api_version: String,
    /// The body; string values may hold `${name}` placeholders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// For `Patch`: the edit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<Edit>,
    /// For `Get` of a collection: keep the first item whose `tags[tag.0] == tag.1`, and capture
    /// from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub find_by_tag: Option<(String, String)>,
    /// Values to bind from the answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub captures: Vec<Capture>,
    /// Why, for people.
    pub purpose: String,
}

impl Request {
    fn new(
        service: Service,
        method: Method,
        path: impl Into<String>,
        api_version: &str,
        purpose: impl Into<String>,
    ) -> Self {
        Self {
            service,
            method,
            path: path.into(),
            api_version: api_version.into(),
            body: None,
            edit: None,
            find_by_tag: None,
            captures: vec![],
            purpose: purpose.into(),
        }
    }

    /// An ARM PUT.
    pub fn put(path: impl Into<String>, api_version: &str, body: Value, purpose: impl Into<String>) -> Self {
        let mut r = Self::new(Service::Arm, Method::Put, path, api_version, purpose);
        r.body = Some(body);
        r
    }

    /// An ARM POST action.
    pub fn post(path: impl Into<String>, api_version: &str, body: Option<Value>, purpose: impl Into<String>) -> Self {
        let mut r = Self::new(Service::Arm, Method::Post, path, api_version, purpose);
        r.body = body;
        r
    }

    /// An ARM DELETE.
    pub fn delete(path: impl Into<String>, api_version: &str, purpose: impl Into<String>) -> Self {
        Self::new(Service::Arm, Method::Delete, path, api_version, purpose)
    }

    /// An ARM GET.
    pub fn get(path: impl Into<String>, api_version: &str, purpose: impl Into<String>) -> Self {
        Self::new(Service::Arm, Method::Get, path, api_version, purpose)
    }

    /// An ARM read-modify-write.
    pub fn update(path: impl Into<String>, api_version: &str, edit: Edit, purpose: impl Into<String>) -> Self {
        let mut r = Self::new(Service::Arm, Method::Patch, path, api_version, purpose);
        r.edit = Some(edit);
        r
    }

    /// A Graph POST.
    pub fn graph_post(path: impl Into<String>, body: Value, purpose: impl Into<String>) -> Self {
        let mut r = Self::new(Service::Graph, Method::Post, path, "", purpose);
        r.body = Some(body);
        r
    }

    /// Adds a capture.
    pub fn capture(mut self, c: Capture) -> Self {
        self.captures.push(c);
        self
    }

    /// One line: `PUT /subscriptions/... (why)`.
    pub fn line(&self) -> String {
        let api =
            if self.api_version.is_empty() { String::new() } else { format!("?api-version={}", self.api_version) };
        let m = if self.method == Method::Patch { "GET+PUT".to_string() } else { self.method.to_string() };
        format!("{m:<7} {}{api}  # {}", self.path, self.purpose)
    }
}
