//! What the engine holds of this node's pods, found by label: the engine is the record, so a
//! restarted vk sees exactly the containers that are there.

use std::collections::{BTreeMap, HashMap};

use bollard::{
    models::{ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum},
    query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder},
};

use crate::{
    engine::Engine,
    spec::{
        CONTAINER_LABEL, INDEX_LABEL, NAMESPACE_LABEL, NODE_LABEL, POD_LABEL, PodIdentity, PodPlan,
        RESTART_POLICY_LABEL, ROLE_LABEL, Role, UID_LABEL,
    },
};

/// One container of a pod, as inspected.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub index: usize,
    pub inspect: ContainerInspectResponse,
}

/// A pod's containers on the engine.
#[derive(Debug, Clone)]
pub struct PodView {
    pub identity: PodIdentity,
    pub restart_policy: String,
    pub infra: Option<ContainerView>,
    /// Init containers, then app containers, in the pod's order.
    pub containers: Vec<ContainerView>,
}

impl PodView {
    pub fn container(&self, name: &str) -> Option<&ContainerView> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Whether every container that `plan` makes exists (creation was not cut short).
    pub fn covers(&self, plan: &PodPlan) -> bool {
        self.infra.is_some()
            && plan
                .containers
                .iter()
                .all(|planned| self.container(&planned.name).is_some())
    }
}

/// A listed container's labels, when it is one of this node's.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub identity: PodIdentity,
    pub name: String,
    pub role: Role,
    pub index: usize,
    pub restart_policy: String,
    pub image: String,
    pub running: bool,
    /// Created and never started.
    pub created: bool,
}

impl Listed {
    fn of(summary: ContainerSummary) -> Option<Listed> {
        let labels = summary.labels?;
        let label = |name: &str| labels.get(name).cloned();
        Some(Listed {
            id: summary.id?,
            identity: PodIdentity {
                namespace: label(NAMESPACE_LABEL)?,
                name: label(POD_LABEL)?,
                uid: label(UID_LABEL)?,
            },
            name: label(CONTAINER_LABEL)?,
            role: Role::from_label(&label(ROLE_LABEL)?)?,
            index: label(INDEX_LABEL).and_then(|i| i.parse().ok()).unwrap_or(0),
            restart_policy: label(RESTART_POLICY_LABEL).unwrap_or_else(|| "Always".into()),
            image: summary.image.unwrap_or_default(),
            running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
            created: summary.state == Some(ContainerSummaryStateEnum::CREATED),
        })
    }
}

/// The containers of `node`, optionally only those of one pod.
pub async fn list(
    engine: &Engine,
    node: &str,
    pod: Option<(&str, &str)>,
) -> Result<Vec<Listed>, bollard::errors::Error> {
    let mut labels = vec![format!("{NODE_LABEL}={node}")];
    if let Some((namespace, name)) = pod {
        labels.push(format!("{NAMESPACE_LABEL}={namespace}"));
        labels.push(format!("{POD_LABEL}={name}"));
    }
    let filters = HashMap::from([("label", labels)]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = readable(|| engine.docker.list_containers(Some(options.clone()))).await?;
    Ok(containers.into_iter().filter_map(Listed::of).collect())
}

/// The listed containers grouped by pod UID.
pub fn by_pod(listed: Vec<Listed>) -> BTreeMap<String, Vec<Listed>> {
    let mut pods: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    for container in listed {
        pods.entry(container.identity.uid.clone())
            .or_default()
            .push(container);
    }
    pods
}

/// The pod `namespace/name` of `node`, inspected; `None` when the engine has none of it.
pub async fn inspect_pod(
    engine: &Engine,
    node: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<PodView>, bollard::errors::Error> {
    let listed = list(engine, node, Some((namespace, name))).await?;
    // A pod recreated under the same name may briefly overlap its predecessor: the engine
    // lists the newest containers first, and their UID wins.
    let Some(uid) = listed.first().map(|c| c.identity.uid.clone()) else {
        return Ok(None);
    };
    let listed = listed
        .into_iter()
        .filter(|c| c.identity.uid == uid)
        .collect();
    view_of(engine, listed).await
}

/// The listed containers of one pod, inspected; `None` when there are none.
pub async fn view_of(
    engine: &Engine,
    listed: Vec<Listed>,
) -> Result<Option<PodView>, bollard::errors::Error> {
    let Some(first) = listed.first() else {
        return Ok(None);
    };
    let mut view = PodView {
        identity: first.identity.clone(),
        restart_policy: first.restart_policy.clone(),
        infra: None,
        containers: Vec::new(),
    };
    let inspections =
        futures::future::join_all(listed.iter().map(|c| inspect(engine, &c.id))).await;
    for (container, inspect) in listed.into_iter().zip(inspections) {
        let inspect = match inspect {
            Ok(inspect) => inspect,
            // Removed between the list and the inspection.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => continue,
            Err(error) => return Err(error),
        };
        let container = ContainerView {
            id: container.id,
            name: container.name,
            role: container.role,
            index: container.index,
            inspect,
        };
        match container.role {
            Role::Infra => view.infra = Some(container),
            Role::Init | Role::Sidecar | Role::App => view.containers.push(container),
        }
    }
    view.containers.sort_by_key(|c| c.index);
    Ok(Some(view))
}

/// Inspects container `id`.
pub async fn inspect(
    engine: &Engine,
    id: &str,
) -> Result<ContainerInspectResponse, bollard::errors::Error> {
    readable(|| engine.docker.inspect_container(id, None)).await
}

/// The engine's answer to `ask`, asked again while it cannot be read: Podman briefly reports a
/// container that just stopped in a state the API does not define (`stopped`), in a listing
/// as in an inspection.
async fn readable<T, F, Fut>(mut ask: F) -> Result<T, bollard::errors::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, bollard::errors::Error>>,
{
    let mut attempts = 0;
    loop {
        match ask().await {
            Err(
                bollard::errors::Error::JsonDataError { .. }
                | bollard::errors::Error::JsonSerdeError { .. },
            ) if attempts < 40 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            answer => return answer,
        }
    }
}

/// The engine volumes of pod `uid` (its emptyDirs).
pub async fn volumes(
    engine: &Engine,
    node: &str,
    uid: &str,
) -> Result<Vec<String>, bollard::errors::Error> {
    let filters = HashMap::from([(
        "label",
        vec![format!("{NODE_LABEL}={node}"), format!("{UID_LABEL}={uid}")],
    )]);
    let listed = engine
        .docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await?;
    Ok(listed
        .volumes
        .into_iter()
        .flatten()
        .map(|volume| volume.name)
        .collect())
}
