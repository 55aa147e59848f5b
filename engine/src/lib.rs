//! # pulldoctor
//!
//! Diagnoses why pods on AKS cannot pull their images from Azure Container Registry.
//!
//! The engine is a functional core inside an imperative shell:
//!
//! ```text
//! Evidence (pods, events, nodes, secrets + Azure resources)
//!     -> detectors (pure functions)
//!     -> Findings (stable codes, blamed resources, proof)
//!     -> Plan (typed remediation actions)
//! ```
//!
//! Every step up to the plan is pure and works offline on a `kubectl cluster-info dump`
//! directory plus a JSON inventory of ARM resources.

pub mod symptom;
