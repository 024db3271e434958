//! vk, a virtual kubelet: it registers a Node in a Kubernetes cluster and runs the pods bound to
//! that node on a backend reached through a provider library (see `vk-abi`).

pub mod cli;
pub mod kubelet;
pub mod provider;
