//! Running [`Step`]s: reads, the guard, writes, a re-read, and the audit record.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::kubernetes::{ApiFailure, KubernetesApi};
use super::translate::{Request, Service, Step, Verdict};
use super::{Audit, AuditRecord, Outcome};

/// The APIs a run may use (each optional: a plan without Kubernetes actions needs no cluster).
#[derive(Clone, Default)]
pub struct Connections {
    /// Resource Manager.
    pub arm: Option<azure_rest::Client>,
    /// Microsoft Graph.
    pub graph: Option<azure_rest::Client>,
    /// Kubernetes (a [`kube::Client`], or anything else that serves the objects).
    pub kube: Option<Arc<dyn KubernetesApi>>,
}

/// A failed request.
#[derive(Debug, Clone)]
struct Failed {
    status: Option<u16>,
    message: String,
}

impl From<azure_rest::RestError> for Failed {
    fn from(e: azure_rest::RestError) -> Self {
        Failed { status: e.status(), message: e.to_string() }
    }
}

impl From<ApiFailure> for Failed {
    fn from(e: ApiFailure) -> Self {
        Failed { status: e.status, message: e.message }
    }
}

/// Runs steps against live APIs.
pub struct Executor {
    /// The connections.
    pub connections: Connections,
    /// Whether to write (`--apply`); otherwise only read and judge.
    pub apply: bool,
    /// The time credentials are judged at.
    pub now: OffsetDateTime,
}

fn method(m: &str) -> azure_rest::Method {
    match m {
        "PUT" => azure_rest::Method::Put,
        "PATCH" => azure_rest::Method::Patch,
        "POST" => azure_rest::Method::Post,
        "DELETE" => azure_rest::Method::Delete,
        _ => azure_rest::Method::Get,
    }
}

impl Executor {
    fn client(&self, s: Service) -> Option<&azure_rest::Client> {
        match s {
            Service::Arm => self.connections.arm.as_ref(),
            Service::Graph => self.connections.graph.as_ref(),
            Service::Kubernetes => None,
        }
    }

    fn available(&self, s: Service) -> bool {
        match s {
            Service::Kubernetes => self.connections.kube.is_some(),
            other => self.client(other).is_some(),
        }
    }

    /// Sends a request. Reads (`read`) are safe to repeat whatever their method (a registry's
    /// `POST listCredentials`); a write `POST` is never sent twice by azure-rest's retries.
    async fn send(&self, r: &Request, body: Option<&Value>, read: bool) -> Result<Value, Failed> {
        debug_assert_ne!(r.method, "DELETE", "pulldoctor never deletes");
        match r.service {
            Service::Kubernetes => {
                let kube = self
                    .connections
                    .kube
                    .as_ref()
                    .ok_or(Failed { status: None, message: "no Kubernetes connection".into() })?;
                let mut b = http::Request::builder().method(r.method).uri(&r.path);
                let bytes = match body.or(r.body.as_ref()) {
                    Some(v) => {
                        b = b.header(http::header::CONTENT_TYPE, r.content_type.unwrap_or("application/json"));
                        serde_json::to_vec(v).unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                let req = b.body(bytes).map_err(|e| Failed { status: None, message: e.to_string() })?;
                Ok(kube.send(req).await?)
            }
            s => {
                let c = self.client(s).ok_or(Failed { status: None, message: format!("no {s:?} connection") })?;
                if r.paged {
                    return Ok(serde_json::json!({"value": c.list::<Value>(&r.path, &r.api_version).await?}));
                }
                let repeat = if read { azure_rest::Repeat::Safe } else { azure_rest::Repeat::of(method(r.method)) };
                Ok(c.send_with(method(r.method), &r.path, &r.api_version, body.or(r.body.as_ref()), repeat).await?)
            }
        }
    }

    async fn read_all(&self, step: &Step) -> Result<Vec<Value>, Failed> {
        let mut out = Vec::with_capacity(step.reads.len());
        for r in &step.reads {
            match self.send(r, None, true).await {
                Ok(v) => out.push(v),
                Err(Failed { status: Some(404), .. }) if r.absent_ok => out.push(Value::Null),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Runs every step, in order, and returns the audit trail.
    pub async fn run(&self, steps: &[Step]) -> Audit {
        let mut records = Vec::with_capacity(steps.len());
        for s in steps {
            let rec = self.run_step(s).await;
            tracing::info!(what = %rec.what, outcome = ?rec.outcome, "remediation step");
            records.push(rec);
        }
        Audit { applied: self.apply, records }
    }

    async fn run_step(&self, step: &Step) -> AuditRecord {
        let at = OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        // A merged step (rotate a secret, then replace the pull secret holding it) shares lines
        // such as `SECRET=$(...)`: each is printed once, in order.
        let commands = dedup(step.actions.iter().flat_map(|a| a.commands()));
        let mut rec = AuditRecord {
            what: step.summary.clone(),
            target: step.target.clone(),
            outcome: Outcome::Planned,
            before: Value::Null,
            after: Value::Null,
            requests: step.writes.iter().map(|w| w.request.line()).collect(),
            note: None,
            commands: Vec::new(),
            at,
        };
        if let Some(m) = &step.manual {
            rec.outcome = Outcome::Manual;
            rec.note = Some(m.description.clone());
            rec.commands = m.commands.clone();
            return rec;
        }
        let missing = dedup(
            step.reads
                .iter()
                .chain(step.writes.iter().map(|w| &w.request))
                .map(|r| r.service)
                .filter(|s| !self.available(*s))
                .map(|s| format!("{s:?}")),
        );
        if !missing.is_empty() {
            rec.note = Some(format!("no connection to {} to check or change it", missing.join(", ")));
            rec.outcome = if self.apply { Outcome::Failed } else { Outcome::Planned };
            rec.commands = commands;
            return rec;
        }
        let reads = match self.read_all(step).await {
            Ok(r) => r,
            Err(e) => {
                rec.outcome = if e.status == Some(403) { Outcome::Manual } else { Outcome::Failed };
                rec.note = Some(format!("cannot read the current state: {}", e.message));
                rec.commands = commands;
                return rec;
            }
        };
        rec.before = step.guard.summary(&reads, self.now);
        match step.guard.verdict(&reads, self.now) {
            Verdict::Done => {
                rec.outcome = Outcome::AlreadyDone;
                rec.requests.clear();
                return rec;
            }
            Verdict::Conflict(why) => {
                rec.outcome = Outcome::Conflict;
                rec.note = Some(format!("{why}; not overwritten"));
                rec.commands = commands;
                return rec;
            }
            Verdict::Needed if !self.apply => {
                rec.outcome = Outcome::WouldApply;
                return rec;
            }
            Verdict::Needed => {}
        }
        let mut bindings: BTreeMap<String, String> = BTreeMap::new();
        // Writes of this step already carried out, for the note when a later one fails.
        let mut sent: Vec<String> = Vec::new();
        let partial = |sent: &[String]| {
            if sent.is_empty() {
                String::new()
            } else {
                format!(" (after {} succeeded; a rerun repeats the whole step)", sent.join(", "))
            }
        };
        for w in &step.writes {
            let body = match &w.derive {
                Some(d) => match d.body(&reads, &bindings) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        rec.outcome = Outcome::Failed;
                        rec.note = Some(format!("{e}{}", partial(&sent)));
                        rec.commands = commands;
                        return rec;
                    }
                },
                None => None,
            };
            match self.send(&w.request, body.as_ref(), false).await {
                Ok(answer) => {
                    if let Some(c) = &w.capture {
                        match answer.pointer(&c.pointer).and_then(Value::as_str) {
                            Some(v) => {
                                bindings.insert(c.name.clone(), v.to_string());
                            }
                            None => {
                                rec.outcome = Outcome::Failed;
                                rec.note = Some(format!(
                                    "{} answered without {}{}",
                                    w.request.line(),
                                    c.pointer,
                                    partial(&sent)
                                ));
                                rec.commands = commands;
                                return rec;
                            }
                        }
                    }
                    sent.push(w.request.line());
                }
                Err(e) => {
                    rec.outcome = if e.status == Some(403) { Outcome::Manual } else { Outcome::Failed };
                    rec.note = Some(if e.status == Some(403) {
                        format!(
                            "pulldoctor's identity may not do this ({}){}; run the commands with an identity that may",
                            e.message,
                            partial(&sent)
                        )
                    } else {
                        format!("{}{}", e.message, partial(&sent))
                    });
                    rec.commands = commands;
                    return rec;
                }
            }
        }
        rec.outcome = Outcome::Applied;
        match self.read_all(step).await {
            Ok(after) => {
                rec.after = step.guard.summary(&after, self.now);
                if step.guard.observable() && step.guard.verdict(&after, self.now) != Verdict::Done {
                    rec.note = Some("written, but the check does not see the change yet".into());
                }
            }
            Err(e) => rec.note = Some(format!("written; cannot read the state after: {}", e.message)),
        }
        rec
    }
}

/// The items, each once, in the order of their first appearance.
fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|i| seen.insert(i.clone())).collect()
}
