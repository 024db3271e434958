//! The ConfigMaps and Secrets of one resolution, each read once and reduced to its keys.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use k8s_openapi::ByteString;

use super::{ObjectError, ObjectKind, Objects};

/// A ConfigMap's or Secret's keys. (The API server refuses a key in both maps.)
#[derive(Debug, Default)]
pub(super) struct ObjectData {
    /// What environment variables and volumes see: a ConfigMap's `data`, a Secret's `data`.
    pub(super) data: BTreeMap<String, ByteString>,
    /// What only volumes see: a ConfigMap's `binaryData`.
    pub(super) binary_data: BTreeMap<String, ByteString>,
}

impl ObjectData {
    /// The value of `key` in a volume.
    pub(super) fn file(&self, key: &str) -> Option<&ByteString> {
        self.data.get(key).or_else(|| self.binary_data.get(key))
    }

    /// Every key of a volume without `items`.
    pub(super) fn files(&self) -> impl Iterator<Item = (&String, &ByteString)> {
        self.data.iter().chain(&self.binary_data)
    }
}

/// The objects already read, by kind and name; `None` for those that do not exist.
#[derive(Debug, Default)]
pub(super) struct ObjectCache {
    read: HashMap<(ObjectKind, String), Option<Arc<ObjectData>>>,
}

impl ObjectCache {
    /// The object from the cache, or else from `objects`; `Ok(None)` when it does not exist.
    pub(super) async fn get(
        &mut self,
        objects: &impl Objects,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<ObjectData>>, ObjectError> {
        let key = (kind, name.to_string());
        if let Some(read) = self.read.get(&key) {
            return Ok(read.clone());
        }
        let data = match kind {
            ObjectKind::ConfigMap => {
                objects
                    .config_map(namespace, name)
                    .await?
                    .map(|map| ObjectData {
                        data: (map.data.unwrap_or_default().into_iter())
                            .map(|(key, value)| (key, ByteString(value.into_bytes())))
                            .collect(),
                        binary_data: map.binary_data.unwrap_or_default(),
                    })
            }
            ObjectKind::Secret => objects
                .secret(namespace, name)
                .await?
                .map(|secret| ObjectData {
                    data: secret.data.unwrap_or_default(),
                    binary_data: BTreeMap::new(),
                }),
        }
        .map(Arc::new);
        self.read.insert(key, data.clone());
        Ok(data)
    }
}
