//! The stable ABI between `vk` and its provider libraries.
//!
//! A provider is a `cdylib` that implements the safe [`Provider`] trait and exports it with
//! [`export_provider!`]; it never writes `unsafe` or FFI code. `vk` loads the library, checks
//! with `abi_stable` that its layout and version are compatible, and talks to it through the
//! raw vtable in [`raw`], with Kubernetes objects encoded as JSON so that both sides may use
//! different `k8s-openapi` versions.
//!
//! Versioning follows [`ABI_VERSION`]: same major, any minor. Methods are only appended, and a
//! method that an older provider lacks answers [`ErrorKind::Unsupported`].

pub mod admission;
pub mod error;
pub mod error_chain;
pub mod export;
pub mod host;
pub mod logging;
pub mod provider;
pub mod quantity;
pub mod raw;
pub mod stats;
pub mod types;

pub use abi_stable;
pub use k8s_openapi;

pub use error::{ErrorKind, ProviderError, Result};
pub use error_chain::error_chain;
pub use provider::{
    InputStream, NodeNotifier, OutputStream, PodNotifier, Provider, Resizes, Streams, TerminalSize,
};
pub use types::{
    Capabilities, EventType, ExecOptions, LogOptions, PodEvent, PortForwardOptions, ProviderInit,
    Refusal, RegistryCredential, ResolvedPod, VolumeFile, VolumeFiles,
};

/// The version of this ABI (this crate's version): a provider loads when its major matches.
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");
