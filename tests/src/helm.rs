//! Helm and the project's chart: the helm binary that `scripts/chart.sh helm` builds from its Go
//! module the first time (cached in `~/.cache/vk/control-plane`), and `deploy/helm/vk`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use crate::paths;

/// The helm binary, built on first use.
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let output = Command::new(paths::workspace().join("scripts/chart.sh"))
            .arg("helm")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run scripts/chart.sh");
        assert!(
            output.status.success(),
            "scripts/chart.sh helm failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// The chart `deploy/helm/vk`.
pub fn chart() -> PathBuf {
    paths::workspace().join("deploy/helm/vk")
}
