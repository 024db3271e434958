//! Where the workspace's build outputs are.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// The directory of the debug build: the `vk` binary and every `libvk_*.so`. The tests expect
/// `cargo build --workspace` to have run (scripts/test.sh does).
pub fn build_dir() -> PathBuf {
    let dir = target_dir().join("debug");
    assert!(
        dir.join("vk").is_file() && dir.join("libvk_mock.so").is_file(),
        "{} lacks vk or libvk_mock.so: run `cargo build --workspace` first (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// The `vk` binary.
pub fn vk_binary() -> PathBuf {
    build_dir().join("vk")
}
