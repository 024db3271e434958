//! Values kept as their JSON, for what vk holds many of at once but reads seldom.
//!
//! k8s-openapi's types lay out every optional field inline, so a decoded object is several
//! times the size of its JSON: a `Volume` takes 3 KiB before any of its content, a `Container`
//! 2 KiB, a `PodStatus` 600 bytes, where a bench pod's whole JSON is 2.1 KiB. (Deflating the
//! JSON as well made vk's peak RSS at 10,000 pods 40-50 MiB larger, not smaller: each
//! compression allocates a few hundred KiB of state.)

use std::{fmt, marker::PhantomData};

use serde::{Serialize, de::DeserializeOwned};

/// A `T` as its JSON.
pub struct Packed<T> {
    bytes: Box<[u8]>,
    value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Packed<T> {
    pub fn new(value: &T) -> Self {
        let bytes = serde_json::to_vec(value)
            .expect("a value serialises into memory")
            .into_boxed_slice();
        Packed {
            bytes,
            value: PhantomData,
        }
    }

    /// A value already in JSON, as the API server sent it: `json` must decode as a `T`.
    pub fn from_json(json: Vec<u8>) -> Self {
        Packed {
            bytes: json.into_boxed_slice(),
            value: PhantomData,
        }
    }

    /// The value's JSON.
    pub fn json(&self) -> &[u8] {
        &self.bytes
    }

    pub fn unpack(&self) -> T {
        // The JSON was written from a `T` by `new`, or came from the API server as one.
        serde_json::from_slice(&self.bytes).expect("a packed value decodes")
    }

    /// Only the part of the value that `P` names: its other fields are skipped, not built.
    pub fn unpack_part<P: DeserializeOwned>(&self) -> P {
        // The JSON is a `T`'s (see `unpack`); `P` reads a subset of its fields.
        serde_json::from_slice(&self.bytes).expect("a packed value decodes")
    }
}

impl<T> Clone for Packed<T> {
    fn clone(&self) -> Self {
        Packed {
            bytes: self.bytes.clone(),
            value: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Packed({} bytes)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests;
