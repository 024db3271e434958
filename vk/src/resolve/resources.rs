//! `resourceFieldRef` values: a container's requests and limits, in units of the divisor,
//! rounded up, with unset limits defaulted the kubelet's way.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Pod, ResourceFieldSelector, ResourceRequirements},
    apimachinery::pkg::api::resource::Quantity,
};

use vk_abi::quantity::{Amount, QuantityError, ceil_div};

#[cfg(test)]
mod tests;

/// Limits the kubelet fills in from the pod's limits, then the node's allocatable, when a
/// container leaves them unset or zero. Hugepages are never overcommitted, so never defaulted.
const DEFAULTED_LIMITS: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

/// Why a `resourceFieldRef` has no value.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("container {0} not found")]
    UnknownContainer(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("invalid quantity for {field}")]
    Quantity {
        field: String,
        #[source]
        source: QuantityError,
    },
}

/// The resources of the pod's container or init container called `name`.
pub(super) fn of_container<'p>(
    pod: &'p Pod,
    name: &str,
) -> Result<Option<&'p ResourceRequirements>, ResourceError> {
    let spec = pod.spec.as_ref();
    let containers = spec
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default();
    let init_containers = spec
        .and_then(|spec| spec.init_containers.as_deref())
        .unwrap_or_default();
    containers
        .iter()
        .chain(init_containers)
        .find(|container| container.name == name)
        .map(|container| container.resources.as_ref())
        .ok_or_else(|| ResourceError::UnknownContainer(name.to_string()))
}

/// The value of `selector` for a container with `resources`, as the kubelet prints it.
pub(super) fn value(
    pod: &Pod,
    resources: Option<&ResourceRequirements>,
    selector: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, ResourceError> {
    let unsupported = || ResourceError::UnsupportedResource(selector.resource.clone());
    let (kind, name) = selector.resource.split_once('.').ok_or_else(unsupported)?;
    if !DEFAULTED_LIMITS.contains(&name) && !name.starts_with("hugepages-") {
        return Err(unsupported());
    }
    let quantity = match kind {
        "requests" => resources
            .and_then(|resources| resources.requests.as_ref())
            .and_then(|requests| requests.get(name)),
        "limits" => {
            let own = resources
                .and_then(|resources| resources.limits.as_ref())
                .and_then(|limits| limits.get(name));
            if DEFAULTED_LIMITS.contains(&name) {
                let pod_limit = pod
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.resources.as_ref())
                    .and_then(|resources| resources.limits.as_ref())
                    .and_then(|limits| limits.get(name));
                first_nonzero([own, pod_limit, allocatable.get(name)], &selector.resource)?
            } else {
                own
            }
        }
        _ => return Err(unsupported()),
    };
    let amount = match quantity {
        Some(quantity) => parse(quantity, &selector.resource)?,
        None => Amount::ZERO,
    };
    let divisor = match &selector.divisor {
        Some(divisor) => Some(parse(divisor, "divisor")?).filter(|divisor| !divisor.is_zero()),
        None => None,
    }
    .unwrap_or(Amount::ONE);
    let (value, per) = if name == "cpu" {
        (amount.ceil_milli(), divisor.ceil_milli())
    } else {
        (amount.ceil_units(), divisor.ceil_units())
    };
    // Validation allows only positive divisors; never divide by anything smaller than one.
    Ok(ceil_div(value.into(), per.max(1).into()).to_string())
}

/// The first candidate that is set and not zero.
fn first_nonzero<'q>(
    candidates: [Option<&'q Quantity>; 3],
    field: &str,
) -> Result<Option<&'q Quantity>, ResourceError> {
    for quantity in candidates.into_iter().flatten() {
        if !parse(quantity, field)?.is_zero() {
            return Ok(Some(quantity));
        }
    }
    Ok(None)
}

fn parse(quantity: &Quantity, field: &str) -> Result<Amount, ResourceError> {
    Amount::parse(&quantity.0).map_err(|source| ResourceError::Quantity {
        field: field.to_string(),
        source,
    })
}
