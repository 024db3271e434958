//! The fields of a pod that the engine cannot honour, refused before the pod is created (see
//! the README's "Refused pods") rather than run without them.

#[cfg(test)]
mod tests;

use vk_abi::{
    Refusal,
    admission::{has_pod_level_resources, volume_kind},
    k8s_openapi::api::core::v1::Pod,
};

/// The reason for a field the engine cannot express.
const UNSUPPORTED: &str = "UnsupportedPodSpec";
/// The kubelet's reason when it cannot enforce pod-level resources.
const POD_LEVEL_RESOURCES: &str = "PodLevelResourcesNotSupported";
/// Volume kinds this provider mounts: its own, and those vk resolves into files.
const VOLUME_KINDS: [&str; 6] = [
    "emptyDir",
    "hostPath",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
];

/// Why the provider will not run `pod`, naming the first field it cannot honour.
pub fn refusal(pod: &Pod) -> Option<Refusal> {
    let spec = pod.spec.as_ref()?;
    if spec.host_users == Some(false) {
        return Some(Refusal::new(
            UNSUPPORTED,
            "spec.hostUsers: false is not supported by the hyper provider: it cannot give a \
             pod a user namespace of its own through the Docker API",
        ));
    }
    if has_pod_level_resources(spec) {
        return Some(Refusal::new(
            POD_LEVEL_RESOURCES,
            "spec.resources: pod-level resources are not supported by the hyper provider: the \
             Docker API limits each container, and no cgroup bounds the pod as a whole",
        ));
    }
    spec.volumes
        .iter()
        .flatten()
        .enumerate()
        .find_map(|(index, volume)| {
            let kind = volume_kind(volume)?;
            (!VOLUME_KINDS.contains(&kind.as_str())).then(|| {
                Refusal::new(
                    UNSUPPORTED,
                    format!(
                        "spec.volumes[{index}].{kind}: {kind} volumes (volume {:?}) are not \
                     supported by the hyper provider, which mounts only {}",
                        volume.name,
                        VOLUME_KINDS.join(", "),
                    ),
                )
            })
        })
}
