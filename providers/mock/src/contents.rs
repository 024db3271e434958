//! Volume file contents shared by the pods that mount the same bytes. Every pod of a namespace
//! mounts its CA bundle (the `kube-root-ca.crt` ConfigMap, 1.2 KiB): at 10,000 pods one copy
//! instead of 10,000.

use std::{collections::HashSet, sync::Arc};

use parking_lot::Mutex;

/// Below this many contents the set is not swept.
const SWEEP_FLOOR: usize = 1024;

/// Each content in use, once.
#[derive(Debug, Default)]
pub struct SharedContents(Mutex<Contents>);

#[derive(Debug, Default)]
struct Contents {
    set: HashSet<Arc<[u8]>>,
    /// The set's size after its last sweep: it is swept again once it has doubled, so that
    /// contents no pod holds any more go in time linear in what was added. (`release` misses
    /// contents still held for a moment elsewhere, by a stream's copy of the pod.)
    swept_at: usize,
}

impl SharedContents {
    /// `data`, as the copy already in use if there is one.
    pub fn share(&self, data: Vec<u8>) -> Arc<[u8]> {
        let mut contents = self.0.lock();
        if let Some(shared) = contents.set.get(data.as_slice()) {
            return shared.clone();
        }
        if contents.set.len() >= (2 * contents.swept_at).max(SWEEP_FLOOR) {
            contents
                .set
                .retain(|content| Arc::strong_count(content) > 1);
            contents.swept_at = contents.set.len();
        }
        let shared: Arc<[u8]> = data.into();
        contents.set.insert(shared.clone());
        shared
    }

    /// Lets go of the contents of a pod that is gone: those no other pod holds leave the set.
    pub fn release(&self, released: impl IntoIterator<Item = Arc<[u8]>>) {
        let mut contents = self.0.lock();
        for content in released {
            // The set's reference and this one: nobody else holds it.
            if Arc::strong_count(&content) == 2 {
                contents.set.remove(&content);
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().set.len()
    }
}

#[cfg(test)]
mod tests;
