//! vk, a virtual kubelet: it registers a Node in a Kubernetes cluster and runs the pods bound to
//! that node on a backend reached through a provider library (see `vk-abi`).

pub mod auth;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod events;
pub mod kubelet;
pub mod metrics;
pub mod node;
pub mod objects;
pub mod pods;
pub mod provider;
pub mod queue;
pub mod resolve;
pub mod server;
pub mod spdy;
pub mod status;
pub mod streams;
pub mod tls;
