//! The pods bound to this node as the watch last showed them, kept compact.
//!
//! At 10,000 pods the decoded pods were most of vk's memory. The store keeps each pod packed
//! (see [`Packed`]), without managed fields, beside the few fields read without the rest (its
//! name, UID, phase), and decodes a pod when it is asked for one.

use std::sync::Arc;

use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::{Pod, PodStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use serde::{Deserialize, Deserializer};

use crate::{packed::Packed, status::PodKey};

/// A watched pod as the store keeps it: its identity decoded, the rest as JSON.
#[derive(Debug, Clone)]
pub struct StoredPod {
    /// Name, namespace, UID and resource version only: what the store's keys are made of.
    metadata: ObjectMeta,
    phase: Option<String>,
    pod: Packed<Pod>,
}

impl StoredPod {
    pub fn new(mut pod: Pod) -> Self {
        pod.metadata.managed_fields = None;
        let packed = Packed::new(&pod);
        let metadata = ObjectMeta {
            name: pod.metadata.name,
            namespace: pod.metadata.namespace,
            uid: pod.metadata.uid,
            resource_version: pod.metadata.resource_version,
            ..ObjectMeta::default()
        };
        let phase = pod.status.and_then(|status| status.phase);
        StoredPod {
            metadata,
            phase,
            pod: packed,
        }
    }

    /// The whole pod.
    pub fn pod(&self) -> Pod {
        self.pod.unpack()
    }

    /// The pod's status alone, decoded without the rest: the status writer compares every
    /// status it is given with it.
    pub fn status(&self) -> Option<PodStatus> {
        #[derive(Deserialize)]
        struct StatusOnly {
            status: Option<PodStatus>,
        }
        self.pod.unpack_part::<StatusOnly>().status
    }

    pub fn key(&self) -> Option<PodKey> {
        Some(PodKey {
            namespace: self.metadata.namespace.clone()?,
            name: self.metadata.name.clone()?,
        })
    }

    pub fn uid(&self) -> Option<&str> {
        self.metadata.uid.as_deref()
    }

    pub fn phase(&self) -> Option<&str> {
        self.phase.as_deref()
    }
}

impl<'de> Deserialize<'de> for StoredPod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Pod::deserialize(deserializer).map(StoredPod::new)
    }
}

impl k8s_openapi::Resource for StoredPod {
    const API_VERSION: &'static str = <Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for StoredPod {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The watched pods; cheap to clone.
#[derive(Debug, Clone)]
pub struct PodStore(Store<StoredPod>);

impl PodStore {
    /// The store, and the writer that the watch fills it through.
    pub fn new() -> (Self, Writer<StoredPod>) {
        let (store, writer) = reflector::store();
        (PodStore(store), writer)
    }

    /// The pod `key` as stored.
    pub fn stored(&self, key: &PodKey) -> Option<Arc<StoredPod>> {
        self.0
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    /// The pod `key`, decoded.
    pub fn get(&self, key: &PodKey) -> Option<Arc<Pod>> {
        self.stored(key).map(|stored| Arc::new(stored.pod()))
    }

    /// Every pod, as stored.
    pub fn state(&self) -> Vec<Arc<StoredPod>> {
        self.0.state()
    }

    /// Waits until the watch has listed every pod once; an error if it stopped before.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.0.wait_until_ready().await
    }
}

#[cfg(test)]
mod tests;
