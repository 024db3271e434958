//! The two writes vk makes to every pod, its status and its final delete, sent without
//! decoding the answer.
//!
//! The API server answers each with the whole pod, managed fields and all, which vk does not
//! read: the watch brings the same pod a moment later. `kube::Api` would decode each answer
//! into a `Pod` (and a delete's into a JSON value first, to tell a pod from a `Status`); that
//! was nearly a tenth of vk's CPU at 10,000 pods.

use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Client, Resource,
    api::{DeleteParams, Patch, PatchParams},
    core::Request,
};
use serde_json::Value;

use crate::status::PodKey;

/// Sends the two writes through vk's client (its rate limit, its errors).
#[derive(Clone)]
pub struct PodWrites(Client);

impl fmt::Debug for PodWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodWrites").finish_non_exhaustive()
    }
}

impl PodWrites {
    pub fn new(client: Client) -> Self {
        PodWrites(client)
    }

    /// Merge-patches the status of the pod `key` with `body`.
    pub async fn patch_status(&self, key: &PodKey, body: &Value) -> Result<(), kube::Error> {
        let mut request = requests(key)
            .patch_subresource(
                "status",
                &key.name,
                &PatchParams::default(),
                &Patch::Merge(body),
            )
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("patch_status");
        self.send(request).await
    }

    /// Deletes the pod `key` as `params` say.
    pub async fn delete(&self, key: &PodKey, params: &DeleteParams) -> Result<(), kube::Error> {
        let mut request = requests(key)
            .delete(&key.name, params)
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("delete");
        self.send(request).await
    }

    /// Sends `request`; an answer other than 2xx is the usual `kube::Error::Api`.
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<(), kube::Error> {
        self.0.request_text(request).await.map(drop)
    }
}

/// Requests about pods in the namespace of `key`.
fn requests(key: &PodKey) -> Request {
    Request::new(Pod::url_path(&(), Some(&key.namespace)))
}
