//! The pods bound to this node as the watch last showed them, kept compact.
//!
//! At 10,000 pods the decoded pods were most of vk's memory. The store keeps each pod packed
//! (see [`Packed`]), without managed fields, beside the few fields read without the rest (its
//! name, UID, phase), and decodes a pod when it is asked for one.
//!
//! A pod from the watch is never decoded whole on its way in: its JSON is split at the top and
//! in its metadata only, the managed fields are cut out, and the rest is kept as it came.
//! (Decoding each watched pod, managed fields and all, then encoding it again, was a tenth of
//! vk's CPU at 10,000 pods.)

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::{Pod, PodSpec, PodStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
    jiff::Timestamp,
};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use serde::{Deserialize, Deserializer, de::DeserializeOwned, de::Error as _};
use serde_json::value::RawValue;
use vk_abi::host::RawPod;

use crate::{packed::Packed, status::PodKey};

/// A watched pod as the store keeps it: its identity decoded, the rest as JSON.
#[derive(Debug, Clone)]
pub struct StoredPod {
    /// Name, namespace, UID and resource version, what the store's keys are made of; the
    /// deletion timestamp and grace period, which a sync of a pod being deleted reads alone;
    /// and the generation, which a status reports.
    metadata: ObjectMeta,
    phase: Option<String>,
    /// A digest of everything but the status and the resource version: equal digests tell a
    /// change of status alone, such as the echo of vk's own status write.
    digest_without_status: u64,
    pod: Packed<Pod>,
}

/// A JSON object's fields, each as its JSON text within the object's (a watched pod is read
/// from the watch's buffer, not copied field by field). Borrowing needs a deserializer over a
/// string or bytes, as kube's for lists and watches.
type RawFields<'a> = BTreeMap<&'a str, &'a RawValue>;

impl StoredPod {
    /// A pod stored as it would come from the watch.
    #[cfg(test)]
    pub fn new(pod: Pod) -> Self {
        let json = serde_json::to_string(&pod).expect("a pod serialises into memory");
        serde_json::from_str(&json).expect("a pod's JSON is a pod")
    }

    /// A pod's fields as the API server sent them, managed fields left out.
    fn from_fields(fields: RawFields<'_>) -> serde_json::Result<Self> {
        let mut metadata: RawFields<'_> = match fields.get("metadata") {
            Some(raw) => serde_json::from_str(raw.get())?,
            None => RawFields::new(),
        };
        let identity = ObjectMeta {
            name: field(&metadata, "name")?,
            namespace: field(&metadata, "namespace")?,
            uid: field(&metadata, "uid")?,
            resource_version: field(&metadata, "resourceVersion")?,
            deletion_timestamp: field(&metadata, "deletionTimestamp")?,
            deletion_grace_period_seconds: field(&metadata, "deletionGracePeriodSeconds")?,
            generation: field(&metadata, "generation")?,
            ..ObjectMeta::default()
        };
        let mut hasher = DefaultHasher::new();
        let without_managed_fields = match metadata.remove("managedFields") {
            Some(_) => Some(RawValue::from_string(serde_json::to_string(&metadata)?)?),
            None => None,
        };
        for (name, value) in metadata
            .iter()
            .filter(|(name, _)| **name != "resourceVersion")
        {
            (name, value.get()).hash(&mut hasher);
        }
        fields.get("spec").map(|spec| spec.get()).hash(&mut hasher);
        #[derive(Deserialize)]
        struct Phase {
            phase: Option<String>,
        }
        let status: Option<Phase> = field(&fields, "status")?;
        let mut kept = fields;
        if let Some(metadata) = &without_managed_fields {
            kept.insert("metadata", metadata);
        }
        Ok(StoredPod {
            metadata: identity,
            phase: status.and_then(|status| status.phase),
            digest_without_status: hasher.finish(),
            pod: Packed::from_json(serde_json::to_vec(&kept)?),
        })
    }

    /// The whole pod.
    pub fn pod(&self) -> Pod {
        self.pod.unpack()
    }

    /// The whole pod as the API server sent it, managed fields left out: what the provider is
    /// given.
    pub fn json(&self) -> RawPod<'_> {
        RawPod(self.pod.json())
    }

    /// The pod without its status: what vk lays over a status from the provider reads its
    /// metadata and spec only.
    pub fn without_status(&self) -> Pod {
        #[derive(Deserialize)]
        struct WithoutStatus {
            metadata: ObjectMeta,
            spec: Option<PodSpec>,
        }
        let WithoutStatus { metadata, spec } = self.pod.unpack_part();
        Pod {
            metadata,
            spec,
            status: None,
        }
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

    /// When the pod's grace period ends, once it is being deleted.
    pub fn deletion_timestamp(&self) -> Option<Timestamp> {
        self.metadata.deletion_timestamp.as_ref().map(|time| time.0)
    }

    pub fn deletion_grace_period_seconds(&self) -> Option<i64> {
        self.metadata.deletion_grace_period_seconds
    }

    pub fn generation(&self) -> Option<i64> {
        self.metadata.generation
    }

    pub fn phase(&self) -> Option<&str> {
        self.phase.as_deref()
    }

    /// Whether this pod differs from `earlier` in its status (and resource version) alone: the
    /// same UID, metadata and spec.
    pub fn differs_only_in_status(&self, earlier: &StoredPod) -> bool {
        self.digest_without_status == earlier.digest_without_status
            && self.metadata.uid == earlier.metadata.uid
    }
}

/// The field `name` of `fields`, decoded; `None` where it is missing or null.
fn field<T: DeserializeOwned>(fields: &RawFields<'_>, name: &str) -> serde_json::Result<Option<T>> {
    match fields.get(name) {
        Some(raw) => serde_json::from_str(raw.get()),
        None => Ok(None),
    }
}

impl<'de> Deserialize<'de> for StoredPod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = RawFields::deserialize(deserializer)?;
        StoredPod::from_fields(fields).map_err(D::Error::custom)
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
