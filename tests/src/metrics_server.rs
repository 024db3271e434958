//! metrics-server on the test cluster, as the resource metrics API (`kubectl top`, the HPA):
//! started once per test process by `scripts/cluster.sh metrics-server up` (in a network
//! namespace of its cluster, see `scripts/cluster/metrics-server.sh`) and stopped with the
//! cluster by its watchdog (`cluster.sh stop`/`down`); on a kept cluster it keeps running.
//!
//! metrics-server dials each node's InternalIP and verifies its serving certificate against the
//! cluster CA, so a vk it is to scrape runs with [`crate::vk_process::VkBuilder::node_ip`] set to
//! [`MetricsServer::node_ip`] (which gives it a serving certificate for that address).

use std::{net::IpAddr, sync::OnceLock};

use crate::cluster::{self, Cluster};

/// metrics-server of [`Cluster::shared`].
#[derive(Debug)]
pub struct MetricsServer {
    node_ip: IpAddr,
}

impl MetricsServer {
    /// metrics-server of this test process's cluster, started on first use. Panics, in every
    /// test that asks, if it could not be started.
    pub fn shared() -> &'static MetricsServer {
        static SERVER: OnceLock<Result<MetricsServer, String>> = OnceLock::new();
        match SERVER.get_or_init(|| Self::start(Cluster::shared())) {
            Ok(server) => server,
            Err(error) => panic!("metrics-server could not be started: {error}"),
        }
    }

    fn start(cluster: &Cluster) -> Result<MetricsServer, String> {
        let output = cluster::cluster_sh(!cluster.is_kept())
            .args(["metrics-server", "up", "--name", cluster.name()])
            .arg("--dir")
            .arg(cluster.dir())
            .output()
            .map_err(|e| format!("cannot run cluster.sh: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!(
                "cluster.sh metrics-server up: {}\n{stdout}{stderr}",
                output.status
            ));
        }
        let node_ip = stdout
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| format!("cluster.sh metrics-server up printed no node IP: {stdout}"))?;
        eprintln!("vk-tests: metrics-server up; its nodes use --node-ip {node_ip}");
        Ok(MetricsServer { node_ip })
    }

    /// The `--node-ip` of the nodes metrics-server scrapes (the host side of its namespace's
    /// veth pair).
    pub fn node_ip(&self) -> IpAddr {
        self.node_ip
    }
}
