//! The catalog: every scenario and baseline in a project tree, loaded and cross-checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::baseline::Baseline;
use crate::diagnostic::{Diagnostic, KeyPath, YamlDoc, closest, from_yaml_error};
use crate::scenario::{Fault, Remediation, Scenario};

/// A scenario with its file, source text and resolved baseline.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The scenario file.
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
    /// Its baseline.
    pub baseline: Arc<Baseline>,
}

/// Every scenario that loaded, plus the diagnostics of those that did not.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Valid scenarios, sorted by name.
    pub entries: Vec<Entry>,
    /// Problems found, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Scenario files that did not load (their problems are in `diagnostics`).
    pub invalid: Vec<PathBuf>,
}

/// Where scenario and baseline files live under a project root.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `scenarios/`.
    pub scenarios: PathBuf,
    /// `fixtures/baselines/`.
    pub baselines: PathBuf,
}

impl Layout {
    /// The standard layout under `root`.
    pub fn under(root: &Path) -> Self {
        Self { scenarios: root.join("scenarios"), baselines: root.join("fixtures").join("baselines") }
    }

    /// Finds the project root: `$PULLPROOF_ROOT`, or the nearest ancestor of the current
    /// directory holding `scenarios/`.
    pub fn discover() -> Self {
        if let Ok(root) = std::env::var("PULLPROOF_ROOT") {
            return Self::under(Path::new(&root));
        }
        let mut dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        loop {
            if dir.join("scenarios").is_dir() {
                return Self::under(&dir);
            }
            if !dir.pop() {
                return Self::under(Path::new("."));
            }
        }
    }
}

/// The 1-based line and column of the first occurrence of `needle` in `text` (searching
/// `after` first when given, e.g. a key name), for pointing at a bad value.
pub fn locate(text: &str, needle: &str, after: Option<&str>) -> Option<(u64, u64)> {
    let start = after.and_then(|a| text.find(a)).unwrap_or(0);
    let offset = text[start..].find(needle).map(|o| o + start).or_else(|| text.find(needle))?;
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = (offset - before.rfind('\n').map(|p| p + 1).unwrap_or(0)) as u64 + 1;
    Some((line, column))
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostic::new(format!("cannot read {}: {e}", dir.display()))
            .hint("run from the project root, or set PULLPROOF_ROOT to it")
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads and checks one baseline file.
pub fn load_baseline(path: &Path) -> Result<Baseline, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Diagnostic::new(format!("cannot read baseline: {e}")).in_file(path)])?;
    let baseline: Baseline = serde_saphyr::from_str(&text).map_err(|e| vec![from_yaml_error(path, &text, &e)])?;
    let doc = YamlDoc::parse(&text);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let mut diags = Vec::new();
    if baseline.name != stem {
        let (l, c) = doc
            .as_ref()
            .and_then(|d| d.position(&KeyPath::of("name")))
            .or_else(|| locate(&text, &baseline.name, Some("name:")))
            .unwrap_or((1, 1));
        diags.push(
            Diagnostic::new(format!("baseline name `{}` differs from its file name `{stem}`", baseline.name))
                .hint(format!("rename one of them; scenarios refer to baselines by file name (`baseline: {stem}`)"))
                .in_file(path)
                .at(l, c),
        );
    }
    for (at, d) in baseline.check() {
        let (l, c) = doc.as_ref().and_then(|doc| doc.locate(&at)).unwrap_or((1, 1));
        diags.push(d.in_file(path).at(l, c));
    }
    if diags.is_empty() { Ok(baseline) } else { Err(diags) }
}

/// Checks a parsed scenario against its file name and baseline.
pub fn check_scenario(path: &Path, text: &str, s: &Scenario, baseline: &Baseline) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let doc = YamlDoc::parse(text);
    let at = |needle: &str, after: Option<&str>| locate(text, needle, after).unwrap_or((1, 1));
    // The value at `path`, else the key it belongs under, else the text search.
    let at_path = |path: &str, needle: &str, after: Option<&str>| {
        let path = KeyPath::of(path);
        doc.as_ref()
            .and_then(|d| d.position(&path).or_else(|| d.key_position(&path)))
            .unwrap_or_else(|| at(needle, after))
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if s.name != stem {
        let (l, c) = at_path("name", &s.name, Some("name:"));
        out.push(
            Diagnostic::new(format!("scenario name `{}` differs from its file name `{stem}`", s.name))
                .hint("rename one of them: `just scenario NAME` finds scenarios by file name")
                .in_file(path)
                .at(l, c),
        );
    }
    if !s.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') || s.name.is_empty() {
        let (l, c) = at_path("name", &s.name, Some("name:"));
        out.push(
            Diagnostic::new(format!("scenario name `{}` must be lowercase words joined by `-`", s.name))
                .in_file(path)
                .at(l, c),
        );
    }
    if s.backends.is_empty() {
        let (l, c) = at_path("backends", "backends", None);
        out.push(Diagnostic::new("`backends` is empty: name at least one of host, kind, aks").in_file(path).at(l, c));
    }
    for (needle, d) in s.fault.check(baseline) {
        let (l, c) = doc
            .as_ref()
            .and_then(|d| d.find_scalar(&KeyPath::of("fault"), &needle))
            .unwrap_or_else(|| at(&needle, Some("fault:")));
        out.push(d.in_file(path).at(l, c));
    }
    let e = &s.expect;
    match (&s.fault, e.symptom) {
        (Fault::None, Some(_)) => {
            let (l, c) = at_path("expect.symptom", "symptom", Some("expect:"));
            out.push(Diagnostic::new("a scenario without a fault cannot expect a symptom").in_file(path).at(l, c));
        }
        (f, None) if *f != Fault::None => {
            let (l, c) = at("expect:", None);
            out.push(
                Diagnostic::new("`expect.symptom` is missing: say what the node's pull shows once the fault is live")
                    .hint("one of unauthorized, forbidden, not_found, platform_mismatch, timeout, unreachable, dns, tls, throttled")
                    .in_file(path)
                    .at(l, c),
            );
        }
        _ => {}
    }
    match (&s.fault, &e.message) {
        (Fault::None, Some(_)) => {
            let (l, c) = at_path("expect.message", "message", Some("expect:"));
            out.push(Diagnostic::new("a scenario without a fault cannot expect a message").in_file(path).at(l, c));
        }
        (f, None) if *f != Fault::None => {
            let (l, c) = at("expect:", None);
            out.push(
                Diagnostic::new(
                    "`expect.message` is missing: a regular expression over the kubelet's event text once the fault is live",
                )
                .hint("copy the text from a run (`pullproof run NAME`, phase verify-injected) and keep the part that names the cause, e.g. '401 Unauthorized'")
                .in_file(path)
                .at(l, c),
            );
        }
        _ => {}
    }
    if s.fault != Fault::None && e.findings.is_empty() {
        let (l, c) = at("expect:", None);
        out.push(
            Diagnostic::new("`expect.findings` is empty: a fault must be detected as some code").in_file(path).at(l, c),
        );
    }
    if (s.fault == Fault::None) != (e.remediation == Remediation::None) {
        let (l, c) = at_path("expect.remediation", "remediation", Some("expect:"));
        out.push(
            Diagnostic::new("`remediation: none` goes with `fault: none`, and only with it").in_file(path).at(l, c),
        );
    }
    for code in &e.forbid {
        if e.findings.contains(code) {
            let (l, c) = doc
                .as_ref()
                .and_then(|d| d.find_scalar(&KeyPath::of("expect.forbid"), code.as_str()))
                .unwrap_or_else(|| at(code.as_str(), Some("forbid")));
            out.push(Diagnostic::new(format!("{code} is both expected and forbidden")).in_file(path).at(l, c));
        }
    }
    out
}

impl Catalog {
    /// Loads every baseline and scenario under `layout`.
    pub fn load(layout: &Layout) -> Self {
        Self::load_with(layout, &[])
    }

    /// [`Catalog::load`], plus scenario files named by path among `names` (a `.yaml`/`.yml` file
    /// outside `scenarios/`, e.g. one being written). [`Catalog::select`] then selects them by
    /// the same path.
    pub fn load_with(layout: &Layout, names: &[String]) -> Self {
        let mut cat = Catalog::default();
        let mut baselines: BTreeMap<String, Result<Arc<Baseline>, ()>> = BTreeMap::new();
        match yaml_files(&layout.baselines) {
            Ok(files) => {
                for f in files {
                    let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                    match load_baseline(&f) {
                        Ok(b) => {
                            baselines.insert(stem, Ok(Arc::new(b)));
                        }
                        Err(d) => {
                            cat.diagnostics.extend(d);
                            baselines.insert(stem, Err(()));
                        }
                    }
                }
            }
            Err(d) => cat.diagnostics.push(d),
        }
        let mut files = match yaml_files(&layout.scenarios) {
            Ok(f) => f,
            Err(d) => {
                cat.diagnostics.push(d);
                return cat;
            }
        };
        for name in names.iter().filter(|n| is_path(n)) {
            let path = PathBuf::from(name);
            if !path.is_file() {
                cat.diagnostics.push(
                    Diagnostic::new(format!("scenario file `{name}` does not exist"))
                        .hint("give a scenario name (`pullproof list`), a glob, or the path of a .yaml file"),
                );
                continue;
            }
            let known = files.iter().any(|f| same_file(f, &path));
            if !known {
                files.push(path);
            }
        }
        for path in files {
            match load_scenario_file(&path, &baselines) {
                Ok(entry) => cat.entries.push(entry),
                Err(d) => {
                    cat.diagnostics.extend(d);
                    cat.invalid.push(path);
                }
            }
        }
        cat.entries.sort_by(|a, b| a.scenario.name.cmp(&b.scenario.name));
        cat
    }

    /// The diagnostics that concern a selection by `patterns` (as given to
    /// [`Catalog::select`]): those of the scenario files the patterns name, of every baseline
    /// (a scenario whose baseline is broken points at it), and those about no file. No patterns
    /// concern everything.
    pub fn diagnostics_for(&self, patterns: &[String]) -> Vec<&Diagnostic> {
        let names_file = |d: &Diagnostic, p: &str| {
            d.file.as_ref().is_some_and(|f| {
                if is_path(p) {
                    same_file(f, Path::new(p))
                } else {
                    f.file_stem().and_then(|s| s.to_str()).is_some_and(|stem| glob_match(p, stem))
                }
            })
        };
        let scenario_file = |d: &Diagnostic| {
            d.file.as_ref().is_some_and(|f| {
                self.invalid.iter().any(|i| same_file(i, f)) || self.entries.iter().any(|e| same_file(&e.path, f))
            })
        };
        self.diagnostics
            .iter()
            .filter(|d| {
                patterns.is_empty()
                    || d.file.is_none()
                    || !scenario_file(d)
                    || patterns.iter().any(|p| names_file(d, p))
            })
            .collect()
    }

    /// Selects entries by names or globs (`vnet-*`) and tags. No patterns selects all.
    pub fn select(&self, patterns: &[String], tags: &[String]) -> Result<Vec<&Entry>, Diagnostic> {
        let mut out = Vec::new();
        let matches = |p: &str, e: &Entry| {
            if is_path(p) { same_file(Path::new(p), &e.path) } else { glob_match(p, &e.scenario.name) }
        };
        for e in &self.entries {
            let by_name = patterns.is_empty() || patterns.iter().any(|p| matches(p, e));
            let by_tag = tags.iter().all(|t| e.scenario.has_tag(t));
            if by_name && by_tag {
                out.push(e);
            }
        }
        for p in patterns {
            if is_path(p) && !self.entries.iter().any(|e| matches(p, e)) {
                return Err(Diagnostic::new(format!("scenario file `{p}` is not valid (errors above)")));
            }
            if !self.entries.iter().any(|e| matches(p, e)) {
                let broken: Vec<String> = self
                    .invalid
                    .iter()
                    .filter_map(|f| f.file_stem().and_then(|s| s.to_str()))
                    .filter(|stem| glob_match(p, stem))
                    .map(|stem| format!("`{stem}`"))
                    .collect();
                if !broken.is_empty() {
                    let which = if broken.len() == 1 && !p.contains(['*', '?']) {
                        format!("scenario `{p}` is invalid")
                    } else {
                        format!("`{p}` selects only invalid scenarios ({})", broken.join(", "))
                    };
                    return Err(Diagnostic::new(format!("{which}: fix the errors above"))
                        .hint(format!("`pullproof validate {p}` checks it again")));
                }
                let names = self.entries.iter().map(|e| e.scenario.name.as_str());
                let hint = closest(p, names)
                    .map(|c| format!("did you mean `{c}`? (`pullproof list` shows all)"))
                    .unwrap_or_else(|| "`pullproof list` shows all scenarios".into());
                return Err(Diagnostic::new(format!("no scenario matches `{p}`")).hint(hint));
            }
        }
        Ok(out)
    }
}

fn load_scenario_file(
    path: &Path,
    baselines: &BTreeMap<String, Result<Arc<Baseline>, ()>>,
) -> Result<Entry, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Diagnostic::new(format!("cannot read scenario: {e}")).in_file(path)])?;
    let scenario = Scenario::from_yaml(&text).map_err(|e| vec![from_yaml_error(path, &text, &e)])?;
    let baseline = match baselines.get(&scenario.baseline) {
        Some(Ok(b)) => b.clone(),
        Some(Err(())) => {
            let (l, c) = locate(&text, &scenario.baseline, Some("baseline:")).unwrap_or((1, 1));
            return Err(vec![
                Diagnostic::new(format!("baseline `{}` has errors (reported above)", scenario.baseline))
                    .in_file(path)
                    .at(l, c),
            ]);
        }
        None => {
            let (l, c) = locate(&text, &scenario.baseline, Some("baseline:")).unwrap_or((1, 1));
            let hint = closest(&scenario.baseline, baselines.keys().map(String::as_str))
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| format!("available: {}", baselines.keys().cloned().collect::<Vec<_>>().join(", ")));
            return Err(vec![
                Diagnostic::new(format!("baseline `{}` does not exist in fixtures/baselines/", scenario.baseline))
                    .hint(hint)
                    .in_file(path)
                    .at(l, c),
            ]);
        }
    };
    let diags = check_scenario(path, &text, &scenario, &baseline);
    if diags.is_empty() { Ok(Entry { path: path.to_path_buf(), scenario, baseline }) } else { Err(diags) }
}

/// Whether a selection argument names a file rather than a scenario (`./x.yaml`, `dir/x.yml`).
pub fn is_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml")
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Shell-style matching with `*` and `?`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("vnet-*", "vnet-peering-missing"));
        assert!(glob_match("*dns*", "private-dns-missing"));
        assert!(glob_match("acr?ull-*", "acrpull-abac-mode"));
        assert!(!glob_match("vnet-*", "nsg-blocks-registry"));
        assert!(glob_match("exact", "exact"));
    }

    #[test]
    fn locate_points_at_value() {
        let text = "name: x\nfault:\n  deleteVnetLink: { zone: z, vnet: aks-vnt }\n";
        assert_eq!(locate(text, "aks-vnt", Some("fault:")), Some((3, 36)));
        assert_eq!(locate(text, "nope", None), None);
    }
}
