//! Reading a `kubectl cluster-info dump --output-directory DIR --all-namespaces` directory.
//!
//! Layout: `DIR/nodes.json`, and per namespace `DIR/NS/pods.json`, `events.json`,
//! `replicasets.json`. `cluster-info dump` leaves secrets and service accounts out; pulldoctor
//! also reads `DIR/NS/secrets.json` and `DIR/NS/serviceaccounts.json` when present
//! (`kubectl get secrets -o json`), which lets it check pull secrets. Each file is a Kubernetes
//! `List` (`{"kind": "PodList", "items": [...]}`).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::Evidence;

/// Why a dump directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The directory does not exist or cannot be listed.
    #[error(
        "cannot read dump directory {path}: {source} (expected the output of `kubectl cluster-info dump --all-namespaces --output-directory DIR`)"
    )]
    Dir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file in it cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a Kubernetes list of the expected kind.
    #[error("{path} is not a valid Kubernetes list: {source}")]
    Json {
        /// The file.
        path: String,
        /// The decoding error (with line and column).
        source: serde_json::Error,
    },
    /// Nothing recognisable was found.
    #[error(
        "{path} holds no nodes.json and no NAMESPACE/pods.json: is it a `kubectl cluster-info dump --output-directory` directory?"
    )]
    Empty {
        /// The directory.
        path: String,
    },
}

#[derive(serde::Deserialize)]
struct ItemList<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

fn read_list<T: DeserializeOwned>(path: &Path) -> Result<Option<Vec<T>>, DumpError> {
    if !path.is_file() {
        return Ok(None);
    }
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| DumpError::Io { path: shown.clone(), source })?;
    let list: ItemList<T> = serde_json::from_slice(&bytes).map_err(|source| DumpError::Json { path: shown, source })?;
    Ok(Some(list.items))
}

/// Loads every list the engine uses from a dump directory.
pub fn load_dump(dir: &Path) -> Result<Evidence, DumpError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|source| DumpError::Dir { path: shown.clone(), source })?;
    let mut ev = Evidence::default();
    let mut found = false;
    if let Some(nodes) = read_list(&dir.join("nodes.json"))? {
        ev.nodes = nodes;
        found = true;
    }
    let mut namespaces: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    namespaces.sort();
    for ns in namespaces {
        if let Some(pods) = read_list(&ns.join("pods.json"))? {
            ev.pods.extend(pods);
            found = true;
        }
        if let Some(events) = read_list(&ns.join("events.json"))? {
            ev.events.extend(events);
        }
        if let Some(secrets) = read_list(&ns.join("secrets.json"))? {
            ev.secrets.extend(secrets);
        }
        if let Some(sas) = read_list(&ns.join("serviceaccounts.json"))? {
            ev.service_accounts.extend(sas);
        }
        if let Some(rs) = read_list(&ns.join("replicasets.json"))? {
            ev.replica_sets.extend(rs);
        }
    }
    if !found {
        return Err(DumpError::Empty { path: shown });
    }
    Ok(ev)
}
