//! The harness of vk's integration tests: where the built binaries and provider libraries are,
//! and (in later modules) a real control plane and `vk` processes that are always torn down.
#![forbid(unsafe_code)]

pub mod aci;
pub mod cluster;
pub mod fixtures;
pub mod helm;
pub mod kubelet_client;
pub mod metrics_server;
pub mod paths;
pub mod podman;
pub mod takeover;
pub mod vk_process;
pub mod wait;
