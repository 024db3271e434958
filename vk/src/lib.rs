//! vk, a virtual kubelet: it registers a Node in a Kubernetes cluster and runs the pods bound to
//! that node on a backend reached through a provider library (see `vk-abi`).
//!
//! The library exists for the `vk` binary, the integration tests (`provider`) and the fuzz
//! targets (`spdy`); everything else stays private, so that the compiler reports dead code.

mod auth;
mod backoff;
mod certificates;
pub mod cli;
mod client;
mod election;
mod events;
mod handler;
pub mod kubelet;
mod lifecycle;
pub mod logging;
mod metrics;
mod node;
mod objects;
mod packed;
mod pod_writes;
mod pods;
mod prober;
pub mod provider;
mod queue;
mod resize;
mod resolve;
mod response;
mod server;
pub mod spdy;
mod status;
mod store;
mod streams;
mod throttle;
mod tls;
