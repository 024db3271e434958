//! Pod fields a provider library does not know.
//!
//! Pods cross the ABI as JSON, and each provider reads them into its own `k8s-openapi` types,
//! which silently drop every field they do not know: one newer than the library. Run as read,
//! such a pod would run without the field, so the export glue refuses it before the provider's
//! own check. Only `spec` counts: it is what the provider runs, while metadata and status fields
//! it does not know change nothing it does.

use k8s_openapi::api::core::v1::{Pod, PodSpec, Volume};
use serde_ignored::Path;
use serde_json::Value;

use crate::types::Refusal;

/// The reason of a refusal for fields the provider does not know.
pub const UNKNOWN_POD_FIELD: &str = "UnknownPodField";

/// Reads a pod's JSON as this library's `k8s-openapi` understands it, with a refusal naming
/// the fields of its `spec` lost in reading.
pub fn understand(received: &[u8]) -> serde_json::Result<(Pod, Option<Refusal>)> {
    // One pass that notes what the types skip: this runs for every pod, and a pod of known
    // fields, the usual one, is read once.
    let mut skipped_in_spec = false;
    let mut reader = serde_json::Deserializer::from_slice(received);
    let pod: Pod = serde_ignored::deserialize(&mut reader, |path| {
        skipped_in_spec |= is_in_spec(&path);
    })?;
    reader.end()?;
    if !skipped_in_spec {
        return Ok((pod, None));
    }
    // Named as the JSON has them, where a field that is null is no field at all.
    let received: Value = serde_json::from_slice(received)?;
    let mut lost = Vec::new();
    if let Some(received) = received.get("spec") {
        let understood = serde_json::to_value(&pod.spec)?;
        lost_paths(received, &understood, "spec", &mut lost);
    }
    let refusal = (!lost.is_empty()).then(|| {
        Refusal::new(
            UNKNOWN_POD_FIELD,
            format!(
                "{}: not in the Kubernetes API this provider was built with, so it cannot run \
                 the pod as written",
                lost.join(", ")
            ),
        )
    });
    Ok((pod, refusal))
}

/// Whether `path` is inside the pod's `spec`.
fn is_in_spec(path: &Path<'_>) -> bool {
    match path {
        Path::Root => false,
        Path::Map {
            parent: Path::Root,
            key,
        } => key == "spec",
        Path::Map { parent, .. }
        | Path::Seq { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => is_in_spec(parent),
    }
}

/// The kind of `volume`: the name of its source field, as `emptyDir` or `image`, for a
/// provider to tell the kinds it mounts from those it refuses, and to name them.
pub fn volume_kind(volume: &Volume) -> Option<String> {
    let Ok(Value::Object(fields)) = serde_json::to_value(volume) else {
        return None;
    };
    fields
        .into_iter()
        .find(|(field, value)| field != "name" && !value.is_null())
        .map(|(field, _)| field)
}

/// Whether a pod-level `spec.resources` asks for anything.
pub fn has_pod_level_resources(spec: &PodSpec) -> bool {
    spec.resources.as_ref().is_some_and(|resources| {
        resources.requests.as_ref().is_some_and(|r| !r.is_empty())
            || resources.limits.as_ref().is_some_and(|l| !l.is_empty())
    })
}

/// Appends to `lost` the paths, from `path`, that hold a value in `received` and are missing
/// in `understood`. Null means absent on both sides; values that were read but written back
/// differently (a default filled in) were known, so only presence is compared.
fn lost_paths(received: &Value, understood: &Value, path: &str, lost: &mut Vec<String>) {
    match (received, understood) {
        (Value::Object(received), Value::Object(understood)) => {
            for (key, value) in received.iter().filter(|(_, value)| !value.is_null()) {
                let path = format!("{path}.{key}");
                match understood.get(key) {
                    Some(kept) => lost_paths(value, kept, &path, lost),
                    None => lost.push(path),
                }
            }
        }
        (Value::Array(received), Value::Array(understood)) => {
            for (index, value) in received.iter().enumerate() {
                if let Some(kept) = understood.get(index) {
                    lost_paths(value, kept, &format!("{path}[{index}]"), lost);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
