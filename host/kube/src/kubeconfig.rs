//! Kubeconfig files for the components, the harness, engines and people.
//!
//! Written as JSON (a kubeconfig is YAML, and JSON is YAML), with file references for the CA and
//! the client certificate, so the files stay short and no key is copied.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::pki::CertFiles;

/// One user's access to one API server.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// `https://HOST:PORT`.
    pub server: String,
    /// The cluster CA file.
    pub ca_file: PathBuf,
    /// The client certificate and key.
    pub client: CertFiles,
    /// The context's default namespace, if any.
    pub namespace: Option<String>,
}

impl Kubeconfig {
    /// The document.
    pub fn render(&self, cluster: &str, user: &str) -> String {
        let mut context = json!({ "cluster": cluster, "user": user });
        if let Some(ns) = &self.namespace {
            context["namespace"] = json!(ns);
        }
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": cluster, "cluster": {
                "server": self.server,
                "certificate-authority": self.ca_file,
            }}],
            "users": [{ "name": user, "user": {
                "client-certificate": self.client.cert,
                "client-key": self.client.key,
            }}],
            "contexts": [{ "name": cluster, "context": context }],
            "current-context": cluster,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }

    /// Writes the document to `path`.
    pub fn write(&self, path: &Path, cluster: &str, user: &str) -> std::io::Result<()> {
        std::fs::write(path, self.render(cluster, user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_single_context_config() {
        let k = Kubeconfig {
            server: "https://127.0.0.1:6443".into(),
            ca_file: "/pki/ca.crt".into(),
            client: CertFiles { cert: "/pki/admin.crt".into(), key: "/pki/admin.key".into() },
            namespace: Some("scenario".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&k.render("pullproof", "admin")).unwrap();
        assert_eq!(v["current-context"], "pullproof");
        assert_eq!(v["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(v["users"][0]["user"]["client-key"], "/pki/admin.key");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "scenario");
    }
}
