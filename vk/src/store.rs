//! The pods bound to this node as the watch last showed them, kept compact.
//!
//! k8s-openapi's types lay out every optional field inline, so a decoded pod is several times
//! the size of its JSON (a `Volume` takes 3 KiB before any of its content, a `Container` 2 KiB):
//! at 10,000 pods the decoded objects were most of vk's memory. The store keeps each pod as
//! its JSON, without managed fields, deflated (a pod's JSON repeats its keys, and shrinks to
//! about a third), beside the few fields read without the rest (its name, UID, phase), and
//! decodes a pod when it is asked for one.

use std::{io::Read, sync::Arc};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};
use k8s_openapi::{
    NamespaceResourceScope, api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use serde::{Deserialize, Deserializer};

use crate::status::PodKey;

/// A watched pod as the store keeps it: its identity decoded, the rest as JSON.
#[derive(Debug, Clone)]
pub struct StoredPod {
    /// Name, namespace, UID and resource version only: what the store's keys are made of.
    metadata: ObjectMeta,
    phase: Option<String>,
    /// The pod's JSON, deflated.
    json: Box<[u8]>,
}

impl StoredPod {
    pub fn new(mut pod: Pod) -> Self {
        pod.metadata.managed_fields = None;
        let mut deflated = DeflateEncoder::new(Vec::new(), Compression::fast());
        serde_json::to_writer(&mut deflated, &pod).expect("a pod serialises into memory");
        let json = deflated
            .finish()
            .expect("deflating into memory cannot fail")
            .into_boxed_slice();
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
            json,
        }
    }

    /// The whole pod.
    pub fn pod(&self) -> Pod {
        let mut json = Vec::with_capacity(self.json.len() * 4);
        DeflateDecoder::new(&*self.json)
            .read_to_end(&mut json)
            .expect("inflating from memory cannot fail");
        // The JSON was written from a pod by `new`.
        serde_json::from_slice(&json).expect("a stored pod decodes")
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
