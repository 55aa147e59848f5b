//! Diagnostics about scenario and baseline files: what is wrong, where, and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A problem in a file, with its position when known and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<u64>,
    /// 1-based column.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// What to do (may be empty).
    pub hint: String,
}

impl Diagnostic {
    /// A diagnostic with no position yet.
    pub fn new(message: impl Into<String>) -> Self {
        Self { file: None, line: None, column: None, message: message.into(), hint: String::new() }
    }

    /// Adds a hint (ignored when empty).
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Sets the file.
    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_path_buf());
        self
    }

    /// Sets the position.
    pub fn at(mut self, line: u64, column: u64) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let (Some(l), Some(c)) = (self.line, self.column) {
                write!(f, ":{l}:{c}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// The candidate closest to `given` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given_l = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&given_l, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Turns serde's `unknown variant/field `x`, expected one of a, b` into a message with a
/// `did you mean` hint. Other messages pass through.
pub fn explain_serde_message(raw: &str) -> (String, String) {
    for what in ["variant", "field"] {
        let marker = format!("unknown {what} `");
        let Some(start) = raw.find(&marker) else { continue };
        let rest = &raw[start + marker.len()..];
        let Some(end) = rest.find('`') else { break };
        let given = &rest[..end];
        let after = &rest[end + 1..];
        let list = after
            .split_once("expected one of ")
            .or_else(|| after.split_once("expected "))
            .map(|(_, l)| l)
            .unwrap_or("");
        let expected: Vec<&str> = list
            .split(',')
            .flat_map(|x| x.split(" or "))
            .map(|x| x.trim().trim_matches('`'))
            .filter(|x| !x.is_empty() && !x.contains(' '))
            .collect();
        let kind = if what == "variant" { "value" } else { "field" };
        let message = format!("unknown {kind} `{given}`");
        let hint = match closest(given, expected.iter().copied()) {
            Some(c) => format!("did you mean `{c}`? (valid: {})", expected.join(", ")),
            None if expected.is_empty() => String::new(),
            None => format!("valid: {}", expected.join(", ")),
        };
        return (message, hint);
    }
    (raw.to_string(), String::new())
}

/// Converts a serde-saphyr error about `text` (the contents of `file`) into a diagnostic that
/// names the field at fault and says what it must hold, at serde-saphyr's line and column.
pub fn from_yaml_error(file: &Path, text: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let (message, hint) = explain_yaml_error(text, err);
    let mut d = Diagnostic::new(message).hint(hint).in_file(file);
    if let Some(loc) = err.location()
        && loc.line() > 0
    {
        d = d.at(loc.line(), loc.column());
    }
    d
}

/// The message and hint for a serde-saphyr error about `text`. The field is found from the
/// error's position in the document; serde-saphyr's own wording (and its option names) is
/// replaced by what a file's author needs to know.
pub fn explain_yaml_error(text: &str, err: &serde_saphyr::Error) -> (String, String) {
    use serde_saphyr::Error as E;
    let mut inner = err.without_snippet();
    if let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let doc = YamlDoc::parse(text);
    let at = err.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
    let hit = match (&doc, at) {
        (Some(doc), Some((l, c))) => doc.hit_at(l, c),
        _ => None,
    };
    let within = |what: &str| match hit.as_ref().map(Hit::path) {
        Some(p) if !p.is_root() => format!("{what} in `{p}`"),
        _ => what.to_string(),
    };
    match inner {
        E::SerdeUnknownVariant { variant, expected, .. } => {
            let message = match hit.as_ref().map(Hit::path) {
                Some(p) if !p.is_root() => format!("unknown value `{variant}` for `{p}`"),
                _ => format!("unknown value `{variant}`"),
            };
            (message, did_you_mean(variant, expected))
        }
        E::SerdeUnknownField { field, expected, .. } => {
            (within(&format!("unknown field `{field}`")), did_you_mean(field, expected))
        }
        E::SerdeMissingField { field, .. } => (within(&format!("missing field `{field}`")), String::new()),
        E::DuplicateMappingKey { key, .. } => {
            let key = key.clone().or_else(|| match &hit {
                Some(Hit::Key { key, .. }) => Some(key.clone()),
                _ => None,
            });
            let key = key.unwrap_or_else(|| "?".into());
            let top = hit.as_ref().is_none_or(|h| h.path().is_root());
            let hint = if top && key == "fault" {
                "a scenario has exactly one fault: keep one `fault:` and write another scenario for the other".into()
            } else {
                format!("a key appears once per mapping: keep one `{key}:`")
            };
            (within(&format!("duplicate key `{key}`")), hint)
        }
        E::ExpectedMappingEndAfterEnumVariantValue { .. } => {
            let path = hit.as_ref().map(|h| h.path().clone()).unwrap_or_default();
            let keys = doc.as_ref().map(|d| d.keys(&path)).unwrap_or_default();
            let found = if keys.len() > 1 { format!(": found {}", and_list(&keys)) } else { String::new() };
            if path.shape() == "fault" {
                (
                    format!("a scenario has exactly one fault{found}"),
                    "keep one; a second fault belongs in a scenario of its own".into(),
                )
            } else if path.is_root() {
                (format!("expected exactly one kind{found}"), "keep one of them".into())
            } else {
                (format!("`{path}` takes exactly one kind{found}"), "keep one of them".into())
            }
        }
        E::ExternallyTaggedEnumExpectedScalarOrMapping { .. } => {
            let path = hit.as_ref().map(|h| h.path().clone()).unwrap_or_default();
            let found = hit.as_ref().map(Hit::found).unwrap_or_default();
            if path.shape() == "fault" {
                (FAULT_SHAPE.into(), format!("found {found}; `pullproof schema` lists every fault kind and its fields"))
            } else {
                (
                    format!("`{path}` must be one kind: a name, or a single-key mapping of a name to its fields"),
                    format!("found {found}"),
                )
            }
        }
        E::Unexpected { expected, .. } => shape_error(expected, hit.as_ref(), doc.as_ref(), at),
        E::InvalidScalar { ty, .. } => {
            let what = match *ty {
                "bool" | "boolean" => "true or false",
                "f32" | "f64" => "a number",
                t if t.starts_with('u') || t.starts_with('i') => "a whole number",
                t => t,
            };
            scalar_error(what, hit.as_ref())
        }
        E::InvalidBooleanStrict { .. } => scalar_error("true or false", hit.as_ref()),
        E::NullIntoString { .. } => scalar_error("a value (it is empty)", hit.as_ref()),
        E::SerdeInvalidType { unexpected, expected, .. } => match hit.as_ref().map(Hit::path) {
            Some(p) if !p.is_root() => (format!("`{p}` must be {expected}, not {unexpected}"), String::new()),
            _ => (format!("expected {expected}, found {unexpected}"), String::new()),
        },
        _ => {
            // Anything else (a custom message from a type's own parser, such as a duration
            // without a unit): the field it is about, when the position names one.
            let (message, hint) = explain_serde_message(&strip_position(&first_line(&err.to_string())));
            match hit.as_ref().map(Hit::path) {
                Some(p) if !p.is_root() && !message.contains(&format!("`{p}`")) => (format!("`{p}`: {message}"), hint),
                _ => (message, hint),
            }
        }
    }
}

const FAULT_SHAPE: &str = "`fault` must name one fault kind with its fields, e.g. \
     `deleteVnetLink: { zone: privatelink.azurecr.io, vnet: aks-vnet }`, or be `none`";

/// What a field holds, for messages about a value of the wrong shape: the field (list indices
/// left out), what it holds, an example.
const FIELD_SHAPES: &[(&str, &str, &str)] = &[
    ("tags", "a list of tags", "[network, dns]"),
    ("backends", "a list of backends", "[host, kind, aks]"),
    ("expect", "a mapping", "{ symptom: forbidden, findings: [PRIVATE_DNS_ZONE_NOT_LINKED], remediation: automatic }"),
    ("expect.findings", "a list of finding codes", "[ACR_PULL_ROLE_MISSING]"),
    ("expect.forbid", "a list of finding codes", "[IMAGE_NOT_FOUND]"),
    ("expect.actions", "a list of action kinds", "[setImage]"),
    ("budgets", "a mapping of phase to duration", "{ inject: 1m, diagnose: 30s }"),
    ("resourceGroups", "a list of resource group names", "[aks-rg, acr-rg]"),
    ("cluster", "a mapping", "{ name: aks, resourceGroup: aks-rg, identity: { kind: managedIdentity }, pools: [...] }"),
    ("cluster.identity", "a mapping with a `kind`", "{ kind: managedIdentity }"),
    ("cluster.pools", "a list of node pools", "[{ name: nodepool1, os: Linux, subnet: aks-vnet/nodes }]"),
    ("cluster.egressIps", "a list of public IP names", "[aks-egress]"),
    ("registry.firewall.allow", "a list of public IP names or addresses", "[aks-egress, 198.51.100.0/24]"),
    ("registry.repositories", "a list of repositories", "[{ name: app, tags: [v1] }]"),
    ("registry.repositories.tags", "a list of tags", "[v1]"),
    ("registry.repositories.platforms", "a list of platforms", "[linux/amd64, windows/amd64]"),
    (
        "vnets",
        "a list of VNets",
        "[{ name: aks-vnet, resourceGroup: net-rg, addressSpace: 10.1.0.0/16, subnets: [...] }]",
    ),
    ("vnets.subnets", "a list of subnets", "[{ name: nodes, prefix: 10.1.0.0/24 }]"),
    ("peerings", "a list of peerings", "[{ between: [aks-vnet, hub-vnet] }]"),
    ("peerings.between", "a list of the two VNets it joins", "[aks-vnet, hub-vnet]"),
    (
        "privateDnsZones",
        "a list of zones",
        "[{ name: privatelink.azurecr.io, resourceGroup: net-rg, links: [aks-vnet] }]",
    ),
    ("privateDnsZones.links", "a list of VNet names", "[aks-vnet]"),
    ("nsgs", "a list of NSGs", "[{ name: aks-nodes-nsg, resourceGroup: net-rg, rules: [...] }]"),
    ("nsgs.rules", "a list of rules", "[{ name: allow-https-out, priority: 1000, access: Allow, destination: \"*\" }]"),
    ("routeTables", "a list of route tables", "[{ name: aks-nodes-routes, resourceGroup: net-rg, routes: [...] }]"),
    ("routeTables.routes", "a list of routes", "[{ name: hub, addressPrefix: 10.2.0.0/16, nextHopType: VnetLocal }]"),
    ("publicIps", "a list of public IPs", "[{ name: aks-egress, resourceGroup: aks-rg, ip: 203.0.113.15 }]"),
    ("applications", "a list of applications", "[{ name: aks-sp }]"),
    ("roleAssignments", "a list of role assignments", "[{ principal: kubelet, role: AcrPull }]"),
    ("workload.nodeSelector", "a mapping of label to value", "{ kubernetes.io/os: linux }"),
];

/// A value of the wrong shape (`expected` is serde-saphyr's `sequence start`, `mapping start`,
/// `string scalar`...).
fn shape_error(expected: &str, hit: Option<&Hit>, doc: Option<&YamlDoc>, at: Option<(u64, u64)>) -> (String, String) {
    let generic = match expected {
        "sequence start" => "a list",
        "mapping start" => "a mapping of `key: value` pairs",
        "string scalar" | "scalar" => "a single value, not a list or mapping",
        _ => "",
    };
    // The position is where the parser was when it gave up: at the value itself, or, when the
    // value was a bare name it had already read (`fault: setImage`), at the next key.
    let hit = match hit {
        Some(Hit::Key { .. }) if generic != "a single value, not a list or mapping" => {
            at.and_then(|(l, c)| doc?.value_before(l, c)).or(hit.cloned())
        }
        _ => hit.cloned(),
    };
    let Some(hit) = hit.filter(|h| !h.path().is_root()) else {
        return if generic.is_empty() {
            (format!("expected {expected}"), String::new())
        } else {
            (format!("expected {generic}"), String::new())
        };
    };
    let path = hit.path();
    let shape = path.shape();
    let found = hit.found();
    if shape == "fault" {
        if let Hit::Value { scalar: Some(kind), .. } = &hit
            && kind != "none"
        {
            return (
                format!("fault `{kind}` needs its fields"),
                format!(
                    "write it as a mapping under `fault:`, e.g. `{kind}: {{ ... }}`; `pullproof schema` lists each kind's fields"
                ),
            );
        }
        return (FAULT_SHAPE.into(), format!("found {found}"));
    }
    let what = if generic.is_empty() { expected } else { generic };
    let hint = match (&hit, expected) {
        (Hit::Value { scalar: Some(v), .. }, "sequence start") if !v.is_empty() => {
            let key = path.last_key().unwrap_or_default();
            format!("found `{v}`; a single item is still a list: `{key}: [{v}]`")
        }
        _ => format!("found {found}"),
    };
    // A known field (not an item of a list) that should hold a list or mapping: say of what.
    let known = FIELD_SHAPES.iter().find(|(s, _, _)| *s == shape).filter(|_| {
        matches!(path.0.last(), Some(Step::Key(_))) && matches!(expected, "sequence start" | "mapping start")
    });
    match known {
        Some((_, what, example)) => (format!("`{path}` must be {what}, e.g. {example}"), hint),
        None => (format!("`{path}` must be {what}"), hint),
    }
}

/// A scalar that does not parse as the field's type.
fn scalar_error(what: &str, hit: Option<&Hit>) -> (String, String) {
    match hit {
        Some(h @ Hit::Value { path, .. }) if !path.is_root() => {
            (format!("`{path}` must be {what}"), format!("found {}", h.found()))
        }
        _ => (format!("expected {what}"), String::new()),
    }
}

fn did_you_mean(given: &str, expected: &[&str]) -> String {
    match closest(given, expected.iter().copied()) {
        Some(c) => format!("did you mean `{c}`? (valid: {})", expected.join(", ")),
        None if expected.is_empty() => String::new(),
        None => format!("valid: {}", expected.join(", ")),
    }
}

/// `` `a` and `b` `` / `` `a`, `b` and `c` ``.
fn and_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// Drops serde-saphyr's own `error: line N column M: ` prefix: the diagnostic prints the
/// position as `file:line:column`.
fn strip_position(s: &str) -> String {
    let s = s.strip_prefix("error: ").unwrap_or(s);
    if let Some(rest) = s.strip_prefix("line ")
        && let Some((pos, msg)) = rest.split_once(": ")
        && pos.split(" column ").all(|n| n.chars().all(|c| c.is_ascii_digit()))
    {
        return msg.to_string();
    }
    s.to_string()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// One step into a YAML document: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A list index (0-based).
    Index(usize),
}

/// Where a value sits in a YAML document, e.g. `vnets[0].subnets[1].nsg`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(pub Vec<Step>);

impl KeyPath {
    /// The document itself.
    pub fn root() -> Self {
        Self::default()
    }

    /// Keys joined by dots (`cluster.pools`); a key that holds a dot needs [`KeyPath::key`].
    pub fn of(dotted: &str) -> Self {
        Self(dotted.split('.').filter(|k| !k.is_empty()).map(|k| Step::Key(k.to_string())).collect())
    }

    /// This path, then `key`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Step::Key(key.into()));
        self
    }

    /// This path, then list index `i`.
    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Step::Index(i));
        self
    }

    /// Whether this is the document itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys without list indices (`vnets.subnets.nsg`): the field, whichever item it is in.
    pub fn shape(&self) -> String {
        let keys: Vec<&str> = self
            .0
            .iter()
            .filter_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }

    /// The last key.
    pub fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if k.contains(['.', ' ', '[']) => write!(f, "{}\"{k}\"", if i > 0 { "." } else { "" })?,
                Step::Key(k) => write!(f, "{}{k}", if i > 0 { "." } else { "" })?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A YAML node with the position of every value and key.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl Node {
    fn text(&self) -> String {
        match self {
            Node::Scalar(s) => s.clone(),
            _ => String::new(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(String::new()))
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(String::new()))
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<Spanned<Node>>()? {
                    let value = map.next_value::<Spanned<Node>>()?;
                    pairs.push((key, value));
                }
                Ok(Node::Map(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

fn position(l: &Location) -> Option<(u64, u64)> {
    (l.line() > 0).then(|| (l.line(), l.column()))
}

/// What sits at a position in a document: a value (with its path) or a mapping key (with the
/// path of its mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    /// A value.
    Value {
        /// Its path.
        path: KeyPath,
        /// Its text when it is a scalar.
        scalar: Option<String>,
        /// `a list`, `a mapping` or `` `TEXT` ``.
        found: String,
    },
    /// A key.
    Key {
        /// The path of the mapping holding it.
        map: KeyPath,
        /// The key.
        key: String,
    },
}

impl Hit {
    /// The value's path, or the key's mapping's.
    pub fn path(&self) -> &KeyPath {
        match self {
            Hit::Value { path, .. } => path,
            Hit::Key { map, .. } => map,
        }
    }

    /// What was found, for `found ...` hints.
    pub fn found(&self) -> String {
        match self {
            Hit::Value { found, .. } => found.clone(),
            Hit::Key { key, .. } => format!("key `{key}`"),
        }
    }
}

/// A YAML document with positions, for pointing at a value by its path and naming the field
/// at a position.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    root: Spanned<Node>,
}

enum Item<'a> {
    Value(&'a Spanned<Node>),
    Key(&'a Spanned<Node>),
}

impl YamlDoc {
    /// Parses `text` (repeated keys are kept, so a document with one still parses).
    pub fn parse(text: &str) -> Option<Self> {
        let options = serde_saphyr::options! { duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough };
        serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options).ok().map(|root| Self { root })
    }

    /// The nodes along `path` as (key node, value node), as far as the path exists.
    fn chain(&self, path: &KeyPath) -> Vec<(Option<&Spanned<Node>>, &Spanned<Node>)> {
        let mut out = vec![(None, &self.root)];
        let mut node = &self.root;
        for step in &path.0 {
            let next = match (step, &node.value) {
                (Step::Key(k), Node::Map(pairs)) => {
                    pairs.iter().find(|(key, _)| key.value.text() == *k).map(|(key, v)| (Some(key), v))
                }
                (Step::Index(i), Node::Seq(items)) => items.get(*i).map(|v| (None, v)),
                _ => None,
            };
            match next {
                Some(n) => {
                    out.push(n);
                    node = n.1;
                }
                None => break,
            }
        }
        out
    }

    /// The line and column of the value at `path`, if it exists.
    pub fn position(&self, path: &KeyPath) -> Option<(u64, u64)> {
        let chain = self.chain(path);
        if chain.len() == path.0.len() + 1 { chain.last().and_then(|(_, v)| position(&v.referenced)) } else { None }
    }

    /// The line and column of the key of `path` (its last step), if it exists and is a key.
    pub fn key_position(&self, path: &KeyPath) -> Option<(u64, u64)> {
        let chain = self.chain(path);
        if chain.len() == path.0.len() + 1 {
            chain.last().and_then(|(k, _)| k.and_then(|k| position(&k.referenced)))
        } else {
            None
        }
    }

    /// The value at `path`, or the nearest ancestor that exists (for a value left to its
    /// default, the item that omits it).
    pub fn locate(&self, path: &KeyPath) -> Option<(u64, u64)> {
        self.chain(path).iter().rev().find_map(|(_, v)| position(&v.referenced))
    }

    /// The first scalar equal to `value` at or under `under`.
    pub fn find_scalar(&self, under: &KeyPath, value: &str) -> Option<(u64, u64)> {
        let chain = self.chain(under);
        if chain.len() != under.0.len() + 1 {
            return None;
        }
        let mut found = None;
        walk(&mut under.clone(), chain.last()?.1, &mut |_, item| {
            if let Item::Value(n) = item
                && found.is_none()
                && matches!(&n.value, Node::Scalar(s) if s == value)
            {
                found = position(&n.referenced);
            }
        });
        found
    }

    /// The keys of the mapping at `path`, in order.
    pub fn keys(&self, path: &KeyPath) -> Vec<String> {
        match self.chain(path).last() {
            Some((_, n)) if self.position(path).is_some() || path.is_root() => match &n.value {
                Node::Map(pairs) => pairs.iter().map(|(k, _)| k.value.text()).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// What starts at `line`:`column`: a value (the outermost one starting there), else a key.
    pub fn hit_at(&self, line: u64, column: u64) -> Option<Hit> {
        let target = Some((line, column));
        let (mut value, mut key) = (None, None);
        walk(&mut KeyPath::root(), &self.root, &mut |path, item| match item {
            Item::Value(n) if value.is_none() && position(&n.referenced) == target => {
                value = Some(value_hit(path, n));
            }
            Item::Key(k) if key.is_none() && position(&k.referenced) == target => {
                key = Some(Hit::Key { map: path.clone(), key: k.value.text() });
            }
            _ => {}
        });
        value.or(key)
    }

    /// The last value (in document order) that starts before `line`:`column`.
    pub fn value_before(&self, line: u64, column: u64) -> Option<Hit> {
        let mut last = None;
        walk(&mut KeyPath::root(), &self.root, &mut |path, item| {
            if let Item::Value(n) = item
                && position(&n.referenced).is_some_and(|p| p < (line, column))
            {
                last = Some(value_hit(path, n));
            }
        });
        last
    }
}

fn value_hit(path: &KeyPath, n: &Spanned<Node>) -> Hit {
    let (scalar, found) = match &n.value {
        Node::Scalar(s) => (Some(s.clone()), if s.is_empty() { "nothing".into() } else { format!("`{s}`") }),
        Node::Seq(_) => (None, "a list".into()),
        Node::Map(_) => (None, "a mapping".into()),
    };
    Hit::Value { path: path.clone(), scalar, found }
}

/// Visits every value and key under `node` in document order.
fn walk<'a>(path: &mut KeyPath, node: &'a Spanned<Node>, f: &mut dyn FnMut(&KeyPath, Item<'a>)) {
    f(path, Item::Value(node));
    match &node.value {
        Node::Scalar(_) => {}
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Step::Index(i));
                walk(path, item, f);
                path.0.pop();
            }
        }
        Node::Map(pairs) => {
            for (k, v) in pairs {
                f(path, Item::Key(k));
                path.0.push(Step::Key(k.value.text()));
                walk(path, v, f);
                path.0.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let kinds = ["deleteVnetLink", "deletePeering", "addNsgRule"];
        assert_eq!(closest("deleteVnetLnk", kinds), Some("deleteVnetLink"));
        assert_eq!(closest("DELETEPEERING", kinds), Some("deletePeering"));
        assert_eq!(closest("somethingElse", kinds), None);
    }

    #[test]
    fn serde_messages_get_hints() {
        let (m, h) =
            explain_serde_message("unknown variant `deleteVnetLnk`, expected one of `deleteVnetLink`, `addRoute`");
        assert_eq!(m, "unknown value `deleteVnetLnk`");
        assert!(h.starts_with("did you mean `deleteVnetLink`?"), "{h}");
        let (m, h) = explain_serde_message("unknown field `summry`, expected one of name, summary");
        assert_eq!(m, "unknown field `summry`");
        assert!(h.contains("`summary`"));
        assert_eq!(explain_serde_message("missing field `name`").0, "missing field `name`");
        assert_eq!(strip_position("error: line 3 column 1: bad thing"), "bad thing");
        assert_eq!(strip_position("error: line three: x"), "line three: x");
    }

    #[test]
    fn two_choice_messages_get_hints() {
        let (m, h) =
            explain_serde_message("unknown variant `managedIdentit`, expected `managedIdentity` or `servicePrincipal`");
        assert_eq!(m, "unknown value `managedIdentit`");
        assert!(h.starts_with("did you mean `managedIdentity`?"), "{h}");
    }

    const DOC: &str = "\
name: x
cluster:
  pools:
    - { name: a, os: Linux }
    - name: b
      os: Windows
  labels: { kubernetes.io/os: linux }
fault:
  deleteVnetLink: { zone: z, vnet: aks-vnt }
";

    #[test]
    fn paths_display_like_the_fields_people_write() {
        let p = KeyPath::of("cluster.pools").index(1).key("os");
        assert_eq!(p.to_string(), "cluster.pools[1].os");
        assert_eq!(p.shape(), "cluster.pools.os");
        assert_eq!(p.last_key(), Some("os"));
        assert_eq!(
            KeyPath::of("cluster.labels").key("kubernetes.io/os").to_string(),
            "cluster.labels.\"kubernetes.io/os\""
        );
        assert!(KeyPath::root().is_root());
    }

    #[test]
    fn a_document_locates_values_by_path() {
        let doc = YamlDoc::parse(DOC).unwrap();
        assert_eq!(doc.position(&KeyPath::of("name")), Some((1, 7)));
        assert_eq!(doc.position(&KeyPath::of("cluster.pools").index(0).key("os")), Some((4, 22)));
        assert_eq!(doc.position(&KeyPath::of("cluster.pools").index(1).key("os")), Some((6, 11)));
        assert_eq!(doc.key_position(&KeyPath::of("cluster.pools").index(1).key("os")), Some((6, 7)));
        assert_eq!(doc.position(&KeyPath::of("cluster.labels").key("kubernetes.io/os")), Some((7, 31)));
        // A path that goes further than the document: the nearest ancestor.
        assert_eq!(doc.position(&KeyPath::of("cluster.pools").index(0).key("count")), None);
        assert_eq!(doc.locate(&KeyPath::of("cluster.pools").index(0).key("count")), Some((4, 7)));
        assert_eq!(doc.find_scalar(&KeyPath::of("fault"), "aks-vnt"), Some((9, 36)));
        assert_eq!(doc.find_scalar(&KeyPath::of("fault"), "x"), None);
        assert_eq!(doc.keys(&KeyPath::of("fault")), ["deleteVnetLink"]);
    }

    #[test]
    fn a_position_names_its_field() {
        let doc = YamlDoc::parse(DOC).unwrap();
        let hit = doc.hit_at(6, 11).unwrap();
        assert_eq!(hit.path().to_string(), "cluster.pools[1].os");
        assert_eq!(hit.found(), "`Windows`");
        assert_eq!(doc.hit_at(8, 1), Some(Hit::Key { map: KeyPath::root(), key: "fault".into() }));
        assert_eq!(doc.value_before(8, 1).unwrap().path().to_string(), "cluster.labels.\"kubernetes.io/os\"");
        // Repeated keys still parse, so the second one can be named.
        let doc = YamlDoc::parse("a: 1\na: 2\n").unwrap();
        assert_eq!(doc.hit_at(2, 1), Some(Hit::Key { map: KeyPath::root(), key: "a".into() }));
    }

    #[test]
    fn display_has_position_and_hint() {
        let d = Diagnostic::new("bad").hint("fix it").in_file(Path::new("scenarios/x.yaml")).at(3, 5);
        assert_eq!(d.to_string(), "scenarios/x.yaml:3:5: bad\n  hint: fix it");
    }
}
