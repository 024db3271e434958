//! Runs the virtual kubelet: loads the provider, then the node and pod controllers.

use std::path::PathBuf;

use anyhow::Context;
use vk_abi::ProviderInit;

use crate::{cli::RunArgs, provider};

pub async fn run(args: RunArgs, plugin_dir: PathBuf) -> anyhow::Result<()> {
    let module = provider::load(&plugin_dir, &args.provider)?;
    let config = match &args.provider_config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read provider config {}", path.display()))?,
        None => String::new(),
    };
    let init = ProviderInit {
        config_path: args
            .provider_config
            .as_ref()
            .map(|p| p.display().to_string()),
        config,
        node_name: args.nodename.clone(),
        operating_system: args.os.name().to_string(),
        internal_ip: args.node_ip.map(|ip| ip.to_string()),
        daemon_port: i32::from(args.listen_port),
    };
    let provider = provider::Provider::new(module, init, args.provider_call_timeout).await?;
    log::info!("loaded provider {}", provider.name);
    Ok(())
}
