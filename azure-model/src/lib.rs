//! # azure-model
//!
//! Typed shapes of the Azure Resource Manager (ARM) and Microsoft Graph resources that decide
//! whether an AKS node can pull an image from Azure Container Registry.
//!
//! The types follow the wire format exactly (field names, casing, nesting under `properties`), so
//! the same structs deserialize a live ARM `GET`, a recorded payload and the emulator's answers.
//! Reads are lenient: unknown fields are ignored and most fields are optional, because ARM adds
//! fields with every api-version.
//!
//! ```
//! use azure_model::{Resource, container_registry::RegistryProperties};
//!
//! let body = r#"{
//!   "id": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myacr",
//!   "name": "myacr", "type": "Microsoft.ContainerRegistry/registries", "location": "westeurope",
//!   "properties": { "loginServer": "myacr.azurecr.io", "publicNetworkAccess": "Disabled" }
//! }"#;
//! let registry: Resource<RegistryProperties> = serde_json::from_str(body).unwrap();
//! assert_eq!(registry.properties.login_server.as_deref(), Some("myacr.azurecr.io"));
//! assert!(!registry.properties.public_access_enabled());
//! ```

pub mod api_version;
pub mod authorization;
pub mod compute;
pub mod container_registry;
pub mod container_service;
pub mod error;
pub mod graph;
pub mod id;
pub mod inventory;
pub mod network;
pub mod resource;

pub use error::{ArmError, ArmErrorBody};
pub use id::ResourceId;
pub use inventory::Inventory;
pub use resource::{Resource, SubResource};
