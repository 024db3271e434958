//! Command-line flags, compatible with upstream virtual-kubelet's where they exist, each with
//! its environment fallback.

use std::{net::IpAddr, path::PathBuf, sync::LazyLock, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::LogFormat;

/// `vk --version`: vk's own version and the provider ABI it speaks.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (provider ABI {})",
        env!("CARGO_PKG_VERSION"),
        vk_abi::ABI_VERSION
    )
});

#[derive(Debug, Parser)]
#[command(name = "vk", version = VERSION.as_str(), about = "A virtual kubelet: a Kubernetes node whose pods run on a provider")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Directory holding the provider libraries (`libvk_NAME.so`).
    #[arg(
        long,
        env = "VK_PLUGIN_DIR",
        default_value = "/usr/lib/vk",
        global = true
    )]
    pub plugin_dir: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lists the providers in the plugin directory, with their versions and ABI compatibility.
    Providers,
    /// Writes vk's man page or a shell's completions to stdout, made from these flags so that
    /// packages never drift from `vk --help`.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generated,
    },
}

/// What `vk generate` writes.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Generated {
    /// The man page vk(1), in roff.
    Man,
    /// The completion script of a shell.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// kubeconfig file; without it and without $KUBECONFIG, ~/.kube/config, then in-cluster.
    /// With --bootstrap-kubeconfig: used if its credentials are valid, else written after TLS
    /// bootstrap.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig with a bootstrap token: when --kubeconfig is missing or holds no valid
    /// credentials, vk requests a client certificate with it (TLS bootstrap), keeps it in
    /// --cert-dir and writes --kubeconfig (when given) to use it.
    #[arg(long, env = "VK_BOOTSTRAP_KUBECONFIG")]
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// Directory of the certificates vk gets from the cluster (kubelet-client-current.pem,
    /// kubelet-server-current.pem).
    #[arg(long, env = "VK_CERT_DIR", default_value = "/var/lib/vk/pki")]
    pub cert_dir: PathBuf,
    /// Renew the client certificate of --cert-dir before it expires.
    #[arg(long)]
    pub rotate_certificates: bool,
    /// Serve the kubelet API with a certificate of the kubernetes.io/kubelet-serving signer
    /// (someone must approve its CSRs), renewed before it expires; self-signed until then.
    /// Ignored with --tls-cert-file.
    #[arg(long)]
    pub rotate_server_certificates: bool,
    /// Lifetime vk asks for in its CSRs (spec.expirationSeconds, at least 600), for tests.
    #[arg(long, hide = true, value_parser = clap::value_parser!(i32).range(600..))]
    pub certificate_expiration_seconds: Option<i32>,
    /// Renew certificates at this fraction of their lifetime instead of a random point between
    /// 0.7 and 0.9, for tests.
    #[arg(long, hide = true, value_parser = parse_fraction)]
    pub certificate_renewal_fraction: Option<f64>,
    /// Name of the node to register.
    #[arg(long, env = "DEFAULT_NODE_NAME", default_value = "virtual-kubelet", value_parser = parse_node_name)]
    pub nodename: String,
    /// Operating system of the node.
    #[arg(long, value_enum, default_value_t = OperatingSystem::Linux, ignore_case = true)]
    pub os: OperatingSystem,
    /// Provider to load from the plugin directory.
    #[arg(long, env = "VK_PROVIDER", default_value = "mock")]
    pub provider: String,
    /// Provider configuration file, handed to the provider as it is.
    #[arg(long, env = "VK_PROVIDER_CONFIG")]
    pub provider_config: Option<PathBuf>,
    /// IP address the node advertises as its InternalIP (the apiserver reaches vk there).
    #[arg(long, env = "VKUBELET_POD_IP")]
    pub node_ip: Option<IpAddr>,
    /// Port of the kubelet API.
    #[arg(long, env = "KUBELET_PORT", default_value_t = 10250, value_parser = clap::value_parser!(u16).range(1..))]
    pub listen_port: u16,
    /// Pods synced with the provider at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pod_sync_workers: u16,
    /// How often every pod is synced again even without changes.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub full_resync_period: Duration,
    /// Give up if the node is not ready within this time (0: wait forever).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub startup_timeout: Duration,
    /// Time limit of one provider call.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub provider_call_timeout: Duration,
    /// Register the node without the provider taint.
    #[arg(long)]
    pub disable_taint: bool,
    /// Key of the node's taint.
    #[arg(
        long,
        env = "VKUBELET_TAINT_KEY",
        default_value = "virtual-kubelet.io/provider"
    )]
    pub taint_key: String,
    /// Value of the node's taint (default: the provider's name).
    #[arg(long, env = "VKUBELET_TAINT_VALUE")]
    pub taint_value: Option<String>,
    /// Effect of the node's taint.
    #[arg(long, env = "VKUBELET_TAINT_EFFECT", default_value = "NoSchedule", value_parser = ["NoSchedule", "PreferNoSchedule", "NoExecute"])]
    pub taint_effect: String,
    /// Most requests per second to the Kubernetes API; vk sends fewer while the API server
    /// answers 429 Too Many Requests.
    #[arg(long, default_value_t = 2000.0, value_parser = parse_qps)]
    pub kube_api_qps: f64,
    /// Burst of requests to the Kubernetes API above the QPS.
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_burst: u32,
    /// Serving certificate of the kubelet API (PEM); without it a self-signed one is made.
    #[arg(
        long,
        env = "APISERVER_CERT_LOCATION",
        requires = "tls_private_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "APISERVER_KEY_LOCATION", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA bundle that verifies client certificates (default: the cluster CA of the kubeconfig).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Serve kubelet API requests that carry no credentials, as system:anonymous.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// How long a client may take to open the streams of an exec, attach or port-forward.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub stream_creation_timeout: Duration,
    /// How long an exec, attach or port-forward session may go without traffic.
    #[arg(long, default_value = "4h", value_parser = parse_duration)]
    pub streaming_connection_idle_timeout: Duration,
    /// Run as one of several vk processes for this node, of which only the holder of a Lease
    /// acts (registers the node, runs its pods, serves the kubelet API); the others stand by
    /// and take over when it dies.
    #[arg(long, env = "VK_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the leader election's Lease.
    #[arg(
        long,
        env = "VK_LEADER_ELECT_NAMESPACE",
        default_value = "kube-system",
        requires = "leader_elect"
    )]
    pub leader_elect_resource_namespace: String,
    /// Who this process is in the Lease's holderIdentity (default: the host's name, which is
    /// not the pod's on the host's network); a random suffix is always added.
    #[arg(long, env = "VK_LEADER_ELECT_IDENTITY", requires = "leader_elect")]
    pub leader_elect_identity: Option<String>,
    /// Name of the leader election's Lease (default: vk-NODENAME).
    #[arg(long, requires = "leader_elect", value_parser = parse_node_name)]
    pub leader_elect_resource_name: Option<String>,
    /// How long a standby waits, after the Lease last changed, before it takes the node over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader may fail to renew the Lease before it exits.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often the leader renews the Lease and a standby checks it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// Log level (error, warn, info, debug, trace); RUST_LOG, when set, refines it.
    #[arg(long, env = "VK_LOG_LEVEL", default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,
    /// Log format: text, or json (one object per line: time, level, target, message, node, pod).
    #[arg(long, env = "VK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OperatingSystem {
    Linux,
    Windows,
}

impl OperatingSystem {
    /// As Kubernetes writes it in `kubernetes.io/os` and `nodeInfo.operatingSystem`.
    pub fn label(self) -> &'static str {
        match self {
            OperatingSystem::Linux => "linux",
            OperatingSystem::Windows => "windows",
        }
    }
    /// As providers are told (upstream virtual-kubelet's spelling).
    pub fn name(self) -> &'static str {
        match self {
            OperatingSystem::Linux => "Linux",
            OperatingSystem::Windows => "Windows",
        }
    }
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|error| format!("{error} (for example 30s, 1m, 1h30m)"))
}

fn parse_fraction(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(fraction) if fraction > 0.0 && fraction < 1.0 => Ok(fraction),
        _ => Err("must be a number between 0 and 1".to_string()),
    }
}

fn parse_qps(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(qps) if qps.is_finite() && qps > 0.0 => Ok(qps),
        _ => Err("must be a number above 0".to_string()),
    }
}

/// Node names are DNS subdomains (RFC 1123): lowercase alphanumerics, '-' and '.', at most 253.
fn parse_node_name(value: &str) -> Result<String, String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if value.len() <= 253 && value.split('.').all(label_ok) {
        Ok(value.to_string())
    } else {
        Err("must be a lowercase RFC 1123 subdomain, such as virtual-kubelet".to_string())
    }
}

#[cfg(test)]
mod tests;
