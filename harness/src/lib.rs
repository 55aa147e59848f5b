//! # pullproof
//!
//! A conformance suite for image-pull diagnosis on AKS + ACR. Each scenario builds a healthy
//! world (a [`baseline::Baseline`]), breaks exactly one thing ([`scenario::Fault`]), and checks
//! that a diagnosis engine names the cause and that its remediation makes the workload healthy.
//!
//! - [`scenario`]: the scenario format (YAML, validated, with a generated JSON Schema).
//! - [`baseline`]: healthy worlds.
//! - [`catalog`]: loading, cross-checking and selecting scenarios.
//! - [`plan`]: what a run of a scenario will do, phase by phase, without doing it.
//! - [`diagnostic`]: file:line:column errors with hints.

pub mod arm;
pub mod backend;
pub mod baseline;
pub mod catalog;
pub mod diagnostic;
pub mod plan;
pub mod run;
pub mod scenario;
