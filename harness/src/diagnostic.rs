//! Diagnostics about scenario and baseline files: what is wrong, where, and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

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
        let expected: Vec<&str> =
            list.split(',').map(|x| x.trim().trim_matches('`')).filter(|x| !x.is_empty() && !x.contains(' ')).collect();
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

/// Converts a serde-saphyr error into a diagnostic for `file`.
pub fn from_yaml_error(file: &Path, err: &serde_saphyr::Error) -> Diagnostic {
    let raw = strip_position(&first_line(&err.to_string()));
    let (message, hint) = explain_serde_message(&raw);
    let mut d = Diagnostic::new(message).hint(hint).in_file(file);
    if let Some(loc) = err.location()
        && loc.line() > 0
    {
        d = d.at(loc.line(), loc.column());
    }
    d
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
    fn display_has_position_and_hint() {
        let d = Diagnostic::new("bad").hint("fix it").in_file(Path::new("scenarios/x.yaml")).at(3, 5);
        assert_eq!(d.to_string(), "scenarios/x.yaml:3:5: bad\n  hint: fix it");
    }
}
