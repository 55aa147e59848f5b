//! The engine under test, behind one interface: pulldoctor in-process, or any program that
//! honours the engine contract (see the README).

use std::future::Future;

use pulldoctor::{Evidence, Report};

use super::backend::EngineInput;

/// A diagnosis engine.
pub trait Engine: Send + Sync {
    /// Its name in reports.
    fn name(&self) -> String;
    /// Diagnoses the world described by `input`.
    fn diagnose(&self, input: &EngineInput) -> impl Future<Output = Result<Report, String>> + Send;
}

/// pulldoctor, linked in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pulldoctor;

impl Engine for Pulldoctor {
    fn name(&self) -> String {
        format!("pulldoctor {}", env!("CARGO_PKG_VERSION"))
    }

    fn diagnose(&self, input: &EngineInput) -> impl Future<Output = Result<Report, String>> + Send {
        let input = input.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let evidence = Evidence::load(&input.dump_dir, Some(&input.inventory)).map_err(|e| e.to_string())?;
                let diagnosis = pulldoctor::diagnose(&evidence);
                Ok(Report::from_diagnosis(&diagnosis, evidence.azure.unavailable.clone()))
            })
            .await
            .map_err(|e| format!("engine task failed: {e}"))?
        }
    }
}
