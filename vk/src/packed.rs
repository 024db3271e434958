//! Values kept as their deflated JSON, for what vk holds many of at once but reads seldom.
//!
//! k8s-openapi's types lay out every optional field inline, so a decoded object is several
//! times the size of its JSON (a `Volume` takes 3 KiB before any of its content, a `Container`
//! 2 KiB, a `PodStatus` 600 bytes), and JSON, which repeats its keys, deflates to about a
//! third: a bench pod's 2.1 KiB of JSON to 0.8 KiB.

use std::{fmt, io::Read, marker::PhantomData};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};
use serde::{Serialize, de::DeserializeOwned};

/// A `T` as its deflated JSON.
pub struct Packed<T> {
    bytes: Box<[u8]>,
    value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Packed<T> {
    pub fn new(value: &T) -> Self {
        let mut deflated = DeflateEncoder::new(Vec::new(), Compression::fast());
        serde_json::to_writer(&mut deflated, value).expect("a value serialises into memory");
        let bytes = deflated
            .finish()
            .expect("deflating into memory cannot fail")
            .into_boxed_slice();
        Packed {
            bytes,
            value: PhantomData,
        }
    }

    pub fn unpack(&self) -> T {
        let mut json = Vec::with_capacity(self.bytes.len() * 4);
        DeflateDecoder::new(&*self.bytes)
            .read_to_end(&mut json)
            .expect("inflating from memory cannot fail");
        // The JSON was written from a `T` by `new`.
        serde_json::from_slice(&json).expect("a packed value decodes")
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
