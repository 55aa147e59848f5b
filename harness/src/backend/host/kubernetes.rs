//! The host cluster model served the way pulldoctor's remediation talks to Kubernetes.
//!
//! pulldoctor's [`Executor`](pulldoctor::apply::Executor) reads and patches single objects
//! (`GET`/`PATCH` of a Secret or a Deployment). [`ClusterApi`] answers those requests from the
//! in-process [`Cluster`] with the API server's semantics: JSON merge patch for secrets, strategic
//! merge patch (lists of named items merged by `name`) for workloads, `404`/`405` `Status`
//! answers otherwise. So the catalog runs the very steps `pulldoctor fix --apply` runs against a
//! real cluster, not a re-implementation of them.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use pulldoctor::apply::{ApiFailure, ApiFuture, KubernetesApi};
use pullproof_host_kubelet::Cluster;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// Secret values the API has been given (new pull-secret passwords), for redaction.
pub type Learned = Arc<std::sync::Mutex<Vec<String>>>;

/// The Kubernetes API of one host world.
#[derive(Clone)]
pub struct ClusterApi {
    cluster: Arc<Mutex<Cluster>>,
    learned: Learned,
}

/// A path below the API server, split into what it addresses.
#[derive(Debug, PartialEq, Eq)]
enum Object<'a> {
    Secret { namespace: &'a str, name: &'a str },
    Deployment { namespace: &'a str, name: &'a str },
    Pod { namespace: &'a str, name: &'a str },
}

fn parse_path(path: &str) -> Option<Object<'_>> {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", "namespaces", ns, "secrets", name] => Some(Object::Secret { namespace: ns, name }),
        ["api", "v1", "namespaces", ns, "pods", name] => Some(Object::Pod { namespace: ns, name }),
        ["apis", "apps", "v1", "namespaces", ns, "deployments", name] => {
            Some(Object::Deployment { namespace: ns, name })
        }
        _ => None,
    }
}

fn not_found(what: &str, namespace: &str, name: &str) -> ApiFailure {
    ApiFailure::status(404, format!("{what} \"{name}\" not found in namespace \"{namespace}\""))
}

impl ClusterApi {
    /// Serves `cluster`; passwords written into pull secrets are added to `learned`.
    pub fn new(cluster: Arc<Mutex<Cluster>>, learned: Learned) -> Self {
        Self { cluster, learned }
    }

    async fn handle(&self, request: http::Request<Vec<u8>>) -> Result<Value, ApiFailure> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let content_type =
            request.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let object = parse_path(&path)
            .ok_or_else(|| ApiFailure::status(404, format!("the host cluster does not serve {path}")))?;
        let patch = if method == http::Method::PATCH {
            Some(
                serde_json::from_slice::<Value>(request.body())
                    .map_err(|e| ApiFailure::status(400, format!("the patch is not JSON: {e}")))?,
            )
        } else if method == http::Method::GET {
            None
        } else {
            return Err(ApiFailure::status(405, format!("{method} is not served by the host cluster")));
        };
        let strategic = content_type.starts_with("application/strategic-merge-patch+json");
        if patch.is_some() && !strategic && !content_type.starts_with("application/merge-patch+json") {
            return Err(ApiFailure::status(415, format!("unsupported patch type `{content_type}`")));
        }
        let mut cluster = self.cluster.lock().await;
        match object {
            Object::Secret { namespace, name } => {
                let current = cluster.secret(namespace, name).ok_or_else(|| not_found("secrets", namespace, name))?;
                let mut value = to_value(current)?;
                let Some(patch) = patch else { return Ok(value) };
                apply_patch(&mut value, &patch, strategic);
                let secret: Secret = from_value(value)?;
                self.learn(&secret);
                cluster.put_secret_object(namespace, name, secret);
                to_value(cluster.secret(namespace, name).ok_or_else(|| not_found("secrets", namespace, name))?)
            }
            Object::Deployment { namespace, name } => {
                let current = cluster
                    .deployment(namespace, name)
                    .ok_or_else(|| not_found("deployments.apps", namespace, name))?;
                let mut value = to_value(current)?;
                let Some(patch) = patch else { return Ok(value) };
                apply_patch(&mut value, &patch, strategic);
                let patched: Deployment = from_value(value)?;
                let template = patched.spec.map(|s| s.template).unwrap_or_default();
                cluster
                    .update_template(namespace, name, |t| {
                        *t = template;
                        Ok(())
                    })
                    .map_err(|e| ApiFailure::status(422, e.to_string()))?;
                to_value(
                    cluster
                        .deployment(namespace, name)
                        .ok_or_else(|| not_found("deployments.apps", namespace, name))?,
                )
            }
            Object::Pod { namespace, name } => {
                if patch.is_some() {
                    return Err(ApiFailure::status(
                        405,
                        "the host cluster changes pods through their Deployment; patch the Deployment",
                    ));
                }
                to_value(cluster.pod(namespace, name).ok_or_else(|| not_found("pods", namespace, name))?)
            }
        }
    }

    /// Remembers the passwords of a pull secret's docker config.
    fn learn(&self, secret: &Secret) {
        let Some(data) = &secret.data else { return };
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        for key in [".dockerconfigjson", ".dockercfg"] {
            let Some(config) = data.get(key).and_then(|b| serde_json::from_slice::<Value>(&b.0).ok()) else {
                continue;
            };
            let auths = config.get("auths").unwrap_or(&config);
            for entry in auths.as_object().into_iter().flat_map(|o| o.values()) {
                for field in ["password", "auth", "identitytoken"] {
                    if let Some(v) = entry.get(field).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                        learned.push(v.to_string());
                    }
                }
            }
        }
    }
}

impl KubernetesApi for ClusterApi {
    fn send(&self, request: http::Request<Vec<u8>>) -> ApiFuture<'_> {
        Box::pin(self.handle(request))
    }
}

fn to_value<T: serde::Serialize>(object: &T) -> Result<Value, ApiFailure> {
    serde_json::to_value(object).map_err(|e| ApiFailure::status(500, e.to_string()))
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiFailure> {
    serde_json::from_value(value).map_err(|e| ApiFailure::status(422, format!("the patched object is invalid: {e}")))
}

/// Applies a JSON merge patch (RFC 7386), or with `strategic` Kubernetes' strategic merge patch
/// as far as pod templates go: the lists Kubernetes merges by key (containers, volumes, env,
/// imagePullSecrets by `name`; ports by `containerPort`; volumeMounts by `mountPath`;
/// hostAliases by `ip`) are merged item by item; other lists are replaced.
fn apply_patch(target: &mut Value, patch: &Value, strategic: bool) {
    patch_field(target, patch, strategic, None);
}

/// The merge key of a list field in a pod spec (`patchMergeKey` in the Kubernetes API).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        _ => return None,
    })
}

fn patch_field(target: &mut Value, patch: &Value, strategic: bool, field: Option<&str>) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, value) in p {
                if value.is_null() {
                    t.remove(key);
                } else {
                    let slot = t.entry(key.clone()).or_insert(Value::Null);
                    patch_field(slot, value, strategic, Some(key));
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if strategic && field.and_then(merge_key).is_some() => {
            let key = field.and_then(merge_key).unwrap_or("name");
            for item in p {
                let id = item.get(key).cloned();
                match t.iter_mut().find(|x| id.is_some() && x.get(key) == id.as_ref()) {
                    Some(existing) => patch_field(existing, item, strategic, None),
                    None => {
                        let mut fresh = Value::Object(Map::new());
                        patch_field(&mut fresh, item, strategic, None);
                        t.push(fresh);
                    }
                }
            }
        }
        // An object over anything else: the patch applied to an empty object, so its nulls go.
        (t, p @ Value::Object(_)) => {
            let mut fresh = Value::Object(Map::new());
            patch_field(&mut fresh, p, strategic, field);
            *t = fresh;
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pullproof_host_kubelet::WorkloadSpec;
    use serde_json::json;

    fn api() -> (ClusterApi, Learned) {
        let mut c = Cluster::new();
        c.create_workload(&WorkloadSpec::new("shop", "web", "reg.azurecr.io/shop/web:1.0").pull_secret("acr")).unwrap();
        c.put_secret("shop", "acr", "reg.azurecr.io", "old-user", "old-pass");
        let learned = Learned::default();
        (ClusterApi::new(Arc::new(Mutex::new(c)), learned.clone()), learned)
    }

    fn req(method: &str, path: &str, content_type: Option<&str>, body: Option<Value>) -> http::Request<Vec<u8>> {
        let mut b = http::Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        b.body(body.map(|v| serde_json::to_vec(&v).unwrap()).unwrap_or_default()).unwrap()
    }

    #[tokio::test]
    async fn get_answers_the_object_and_404_for_a_missing_one() {
        let (api, _) = api();
        let d = api.send(req("GET", "/apis/apps/v1/namespaces/shop/deployments/web", None, None)).await.unwrap();
        assert_eq!(d["kind"], "Deployment");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "reg.azurecr.io/shop/web:1.0");
        let missing = api.send(req("GET", "/api/v1/namespaces/shop/secrets/nope", None, None)).await.unwrap_err();
        assert_eq!(missing.status, Some(404));
        let unknown = api.send(req("GET", "/api/v1/namespaces/shop/configmaps/x", None, None)).await.unwrap_err();
        assert_eq!(unknown.status, Some(404));
        let delete = api.send(req("DELETE", "/api/v1/namespaces/shop/secrets/acr", None, None)).await.unwrap_err();
        assert_eq!(delete.status, Some(405));
    }

    #[tokio::test]
    async fn strategic_patch_changes_one_container_by_name_and_rolls_the_deployment() {
        let (api, _) = api();
        let path = "/apis/apps/v1/namespaces/shop/deployments/web";
        let before = api.send(req("GET", path, None, None)).await.unwrap();
        let name = before["spec"]["template"]["spec"]["containers"][0]["name"].as_str().unwrap().to_string();
        let patch = json!({"spec": {"template": {"spec": {
            "containers": [{"name": name, "image": "reg.azurecr.io/shop/web:2.0"}],
            "nodeSelector": {"kubernetes.io/os": "linux"}
        }}}});
        let after =
            api.send(req("PATCH", path, Some("application/strategic-merge-patch+json"), Some(patch))).await.unwrap();
        let spec = &after["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
        assert_eq!(spec["containers"][0]["image"], "reg.azurecr.io/shop/web:2.0");
        assert_eq!(
            spec["containers"][0]["imagePullPolicy"],
            before["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
        );
        assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
        assert_eq!(spec["imagePullSecrets"][0]["name"], "acr");
        assert!(after["metadata"]["generation"].as_i64() > before["metadata"]["generation"].as_i64());
    }

    #[tokio::test]
    async fn merge_patch_replaces_the_secret_data_and_learns_the_password() {
        let (api, learned) = api();
        let path = "/api/v1/namespaces/shop/secrets/acr";
        let config = json!({"auths": {"reg.azurecr.io": {"username": "u", "password": "fresh-secret"}}});
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&config).unwrap());
        let patch = json!({"data": {".dockerconfigjson": encoded}});
        let after = api.send(req("PATCH", path, Some("application/merge-patch+json"), Some(patch))).await.unwrap();
        assert_eq!(after["data"][".dockerconfigjson"], encoded);
        assert_eq!(after["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(learned.lock().unwrap().as_slice(), ["fresh-secret".to_string()]);
        let bad = api.send(req("PATCH", path, Some("application/json-patch+json"), Some(json!([])))).await.unwrap_err();
        assert_eq!(bad.status, Some(415));
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [{"name": "x", "v": 1}]});
        apply_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "l": [{"name": "y"}]}), false);
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "l": [{"name": "y"}]}));
        // Strategic: lists with a merge key merge by it; others are replaced; nulls never land.
        let mut target = json!({"containers": [{"name": "x", "v": 1}], "ports": [{"containerPort": 80, "name": "http"}], "args": ["a"]});
        let patch = json!({
            "containers": [{"name": "y", "gone": null}, {"name": "x", "v": 2}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "args": ["b"],
            "scalar": {"k": "v", "n": null}
        });
        apply_patch(&mut target, &patch, true);
        assert_eq!(
            target,
            json!({
                "containers": [{"name": "x", "v": 2}, {"name": "y"}],
                "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                "args": ["b"],
                "scalar": {"k": "v"}
            })
        );
        let mut over = json!({"a": "text"});
        apply_patch(&mut over, &json!({"a": {"b": 1, "c": null}}), false);
        assert_eq!(over, json!({"a": {"b": 1}}));
    }
}
