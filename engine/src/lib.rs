//! # pulldoctor
//!
//! Diagnoses why pods on AKS cannot pull their images from Azure Container Registry, and plans
//! the fix.
//!
//! The engine is a functional core inside an imperative shell:
//!
//! ```text
//! Evidence (pods, events, nodes, secrets + Azure inventory)
//!     -> detectors (pure functions)      detect::diagnose
//!     -> Findings (codes, blame, proof)  finding::Finding
//!     -> Plan (typed actions)            plan::Plan
//!     -> Report (text or JSON)           report::Report
//! ```
//!
//! Everything up to the report is pure and runs offline on a `kubectl cluster-info dump`
//! directory plus a JSON inventory of ARM resources.
//!
//! ```
//! use pulldoctor::symptom::{Symptom, SymptomClass};
//!
//! let s = Symptom::parse(r#"Failed to pull image "myacr.azurecr.io/app:v1": failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": myacr.azurecr.io/app:v1: not found"#);
//! assert_eq!(s.class, SymptomClass::NotFound);
//! ```

pub mod apply;
pub mod collect;
pub mod credential;
pub mod detect;
pub mod evidence;
pub mod explain;
pub mod finding;
pub mod plan;
pub mod report;
pub mod symptom;

pub use detect::{Diagnosis, diagnose};
pub use evidence::Evidence;
pub use finding::{Finding, FindingCode};
pub use plan::{Action, Plan};
pub use report::Report;
