//! Termination messages from the file each container may write at its
//! `terminationMessagePath` (default `/dev/termination-log`), as the kubelet gives them: a file
//! of the host bind-mounted there, read (its last 4096 bytes) once the container has exited.
//!
//! Only a local engine can mount a file of vk's host; with a remote one there is no such file,
//! and vk's core still falls back to the log for `FallbackToLogsOnError`. The files live in
//! `$STATE_DIRECTORY/termination` (systemd's `StateDirectory=`), else in the temporary
//! directory, one directory per pod, removed with the pod.

use std::{
    fs,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::PermissionsExt,
    path::PathBuf,
};

use bollard::models::{Mount, MountType};
use vk_abi::k8s_openapi::api::core::v1::PodSpec;

use crate::spec::PodPlan;

/// The kubelet reads at most this much of a message file.
const MAX_MESSAGE: u64 = 4096;
/// The path the API server defaults `terminationMessagePath` to.
const DEFAULT_PATH: &str = "/dev/termination-log";

#[cfg(test)]
mod tests;

/// Where the message files of one node's pods are.
#[derive(Debug)]
pub struct MessageFiles {
    root: PathBuf,
}

impl MessageFiles {
    /// The message files of `node`, under systemd's state directory or the temporary one.
    pub fn for_node(node: &str) -> Self {
        let root = match std::env::var_os("STATE_DIRECTORY") {
            // systemd may list several, separated by colons: the first is this unit's.
            Some(dirs) => PathBuf::from(
                dirs.to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            )
            .join("termination")
            .join(node),
            None => std::env::temp_dir().join(format!("vk-hyper-{node}")),
        };
        MessageFiles { root }
    }

    #[cfg(test)]
    fn at(root: PathBuf) -> Self {
        MessageFiles { root }
    }

    /// Creates an empty, world-writable file for each container of `plan` (the container's
    /// user may be anyone) and mounts it at the container's message path.
    pub fn prepare(&self, plan: &mut PodPlan, spec: &PodSpec) -> io::Result<()> {
        let dir = self.root.join(&plan.identity.uid);
        fs::create_dir_all(&dir)?;
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers);
        for container in containers {
            let Some(planned) = plan
                .containers
                .iter_mut()
                .find(|c| c.name == container.name)
            else {
                continue;
            };
            let file = dir.join(&container.name);
            fs::write(&file, b"")?;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o666))?;
            let target = container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| DEFAULT_PATH.into());
            let host = planned
                .body
                .host_config
                .get_or_insert_with(Default::default);
            host.mounts.get_or_insert_with(Vec::new).push(Mount {
                target: Some(target),
                source: Some(file.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                ..Mount::default()
            });
        }
        Ok(())
    }

    /// The message container `name` of pod `uid` wrote: the last 4096 bytes of its file, if
    /// it wrote any.
    pub fn read(&self, uid: &str, name: &str) -> Option<String> {
        let mut file = fs::File::open(self.root.join(uid).join(name)).ok()?;
        let length = file.metadata().ok()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(MAX_MESSAGE)))
            .ok()?;
        let mut message = Vec::new();
        file.read_to_end(&mut message).ok()?;
        (!message.is_empty()).then(|| String::from_utf8_lossy(&message).into_owned())
    }

    /// Empties the file of a container about to run again: each run writes its own message.
    pub fn clear(&self, uid: &str, name: &str) {
        let file = self.root.join(uid).join(name);
        if file.exists()
            && let Err(error) = fs::write(&file, b"")
        {
            log::debug!("cannot empty {}: {error}", file.display());
        }
    }

    /// Removes the files of pod `uid`.
    pub fn remove(&self, uid: &str) {
        let dir = self.root.join(uid);
        if let Err(error) = fs::remove_dir_all(&dir)
            && error.kind() != io::ErrorKind::NotFound
        {
            log::warn!("cannot remove {}: {error}", dir.display());
        }
    }
}
