//! Where the pinned real components live: the binaries `scripts/kubernetes.sh` builds from Go
//! modules into a cache keyed by component and version.
//!
//! The versions are compiled in from `scripts/kubernetes.env`, so a checkout always looks for
//! the binaries it pins; `PULLPROOF_CACHE` moves the cache (default `~/.cache/pullproof`).
//!
//! ```
//! use pullproof_host_runtime::components::{Components, Pins};
//! let pins = Pins::pinned();
//! assert!(pins.kubernetes.starts_with("v1."));
//! let c = Components::at("/var/cache/pp", &pins);
//! assert!(c.kubelet().ends_with(format!("kubernetes/{}/bin/kubelet", pins.kubernetes)));
//! ```

use std::path::{Path, PathBuf};

/// The version file, as compiled in.
const PINS: &str = include_str!("../../../scripts/kubernetes.env");

/// The pinned versions of the real components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// `k8s.io/kubernetes` (kube-apiserver, controller-manager, scheduler, kubelet, kubectl).
    pub kubernetes: String,
    /// `go.etcd.io/etcd/server/v3`.
    pub etcd: String,
    /// `sigs.k8s.io/cloud-provider-azure` (`acr-credential-provider`).
    pub acr_credential_provider: String,
    /// `github.com/containerd/containerd/v2`.
    pub containerd: String,
}

impl Pins {
    /// The versions this checkout pins.
    pub fn pinned() -> Self {
        Self::parse(PINS)
    }

    /// Reads `KEY=VALUE` lines (comments and blanks ignored). Missing keys are empty.
    pub fn parse(text: &str) -> Self {
        let get = |key: &str| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        Self {
            kubernetes: get("KUBERNETES_VERSION"),
            etcd: get("ETCD_VERSION"),
            acr_credential_provider: get("ACR_CREDENTIAL_PROVIDER_VERSION"),
            containerd: get("CONTAINERD_VERSION"),
        }
    }
}

/// Paths of the cached binaries for one set of [`Pins`].
#[derive(Debug, Clone)]
pub struct Components {
    cache: PathBuf,
    /// The versions the paths are for.
    pub pins: Pins,
}

/// A component binary that is not in the cache.
#[derive(Debug, thiserror::Error)]
#[error(
    "{binary} is missing from the cache ({path}): build the pinned Kubernetes, etcd, containerd and \
     acr-credential-provider once with `just kubernetes` (scripts/kubernetes.sh; Go and the Go module \
     proxy are needed, about 15 minutes cold), or set PULLPROOF_CACHE to where they were built"
)]
pub struct Missing {
    /// The binary's name.
    pub binary: String,
    /// Where it was looked for.
    pub path: PathBuf,
}

impl Components {
    /// The pinned components in the default cache (`PULLPROOF_CACHE`, else
    /// `$XDG_CACHE_HOME/pullproof`, else `~/.cache/pullproof`).
    pub fn pinned() -> Self {
        Self::at(default_cache(), &Pins::pinned())
    }

    /// The components of `pins` in the cache at `cache`.
    pub fn at(cache: impl Into<PathBuf>, pins: &Pins) -> Self {
        Self { cache: cache.into(), pins: pins.clone() }
    }

    fn bin(&self, component: &str, version: &str, name: &str) -> PathBuf {
        self.cache.join(component).join(version).join("bin").join(name)
    }

    /// A Kubernetes binary (`kube-apiserver`, `kubelet`, `kubectl`, ...).
    pub fn kubernetes(&self, name: &str) -> PathBuf {
        self.bin("kubernetes", &self.pins.kubernetes, name)
    }

    /// The kubelet.
    pub fn kubelet(&self) -> PathBuf {
        self.kubernetes("kubelet")
    }

    /// kubectl.
    pub fn kubectl(&self) -> PathBuf {
        self.kubernetes("kubectl")
    }

    /// etcd.
    pub fn etcd(&self) -> PathBuf {
        self.bin("etcd", &self.pins.etcd, "etcd")
    }

    /// The upstream `acr-credential-provider`.
    pub fn acr_credential_provider(&self) -> PathBuf {
        self.bin("acr-credential-provider", &self.pins.acr_credential_provider, "acr-credential-provider")
    }

    /// The folder holding `acr-credential-provider` (the kubelet's plugin bin dir).
    pub fn credential_provider_dir(&self) -> PathBuf {
        self.acr_credential_provider().parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// containerd (`containerd`, `containerd-shim-runc-v2`, `ctr`).
    pub fn containerd(&self, name: &str) -> PathBuf {
        self.bin("containerd", &self.pins.containerd, name)
    }

    /// Every binary a host world runs, so a missing one is reported before anything starts.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"]
            .iter()
            .map(|n| self.kubernetes(n))
            .collect();
        v.push(self.etcd());
        v.push(self.acr_credential_provider());
        v.extend(["containerd", "containerd-shim-runc-v2", "ctr"].iter().map(|n| self.containerd(n)));
        v
    }

    /// The first binary that is missing, if any.
    pub fn check(&self) -> Result<(), Missing> {
        match self.all().into_iter().find(|p| !p.is_file()) {
            None => Ok(()),
            Some(path) => Err(Missing {
                binary: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                path,
            }),
        }
    }
}

/// The cache folder: `PULLPROOF_CACHE`, else `$XDG_CACHE_HOME/pullproof`, else `~/.cache/pullproof`.
pub fn default_cache() -> PathBuf {
    if let Some(p) = std::env::var_os("PULLPROOF_CACHE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root")).join(".cache")
    });
    base.join("pullproof")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_file_names_every_component() {
        let p = Pins::pinned();
        for (what, v) in [
            ("kubernetes", &p.kubernetes),
            ("etcd", &p.etcd),
            ("acr-credential-provider", &p.acr_credential_provider),
            ("containerd", &p.containerd),
        ] {
            assert!(v.starts_with('v') && v.matches('.').count() == 2, "{what} pin looks wrong: {v:?}");
        }
    }

    #[test]
    fn comments_and_other_keys_are_ignored() {
        let p =
            Pins::parse("# KUBERNETES_VERSION=v0\nKUBERNETES_VERSION=v1.2.3\nETCD_VERSION_X=v9\nETCD_VERSION = v3\n");
        assert_eq!(p.kubernetes, "v1.2.3");
        assert_eq!(p.etcd, "");
    }

    #[test]
    fn a_missing_binary_names_the_recipe() {
        let c = Components::at("/nonexistent-pp-cache", &Pins::pinned());
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("just kubernetes") && e.contains("/nonexistent-pp-cache/kubernetes/"), "{e}");
    }
}
