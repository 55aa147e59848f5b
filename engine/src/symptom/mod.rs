//! The symptom parser: reads one raw Kubernetes image-pull message (an event, a
//! container waiting-state message, or a bare CRI `PullImage` error) and says what kind
//! of failure it is.
//!
//! Pure and offline: no I/O, and [`Symptom::parse`] never panics on any input.
//!
//! - [`class`]: the vocabularies ([`SymptomClass`], [`Credentials`], [`MessageKind`], [`PullStage`]).
//! - [`image`]: [`ImageRef`], Docker-style image references.
//! - [`attempt`]: [`PullAttempt`], one credential attempt of a pull.
//! - [`parse`]: [`Symptom`], the whole message.

pub mod attempt;
pub mod class;
pub mod image;
pub mod parse;

pub use attempt::PullAttempt;
pub use class::{Credentials, MessageKind, ParseSymptomClassError, PullStage, SymptomClass};
pub use image::ImageRef;
pub use parse::Symptom;
