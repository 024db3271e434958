//! Turns a [`Provider`] into the raw vtable. Providers use it through [`export_provider!`].
//!
//! Every call is guarded: a panic inside the provider becomes an error instead of unwinding
//! across the FFI boundary (which would abort the host).

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RStr, RVec},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    admission,
    error::{ProviderError, Result},
    logging,
    provider::{InputStream, NodeNotifier, OutputStream, PodNotifier, Provider, Streams},
    raw::{
        ByteSinkBox, ByteSourceBox, Json, LogSinkBox, NodeNotifierBox, PodNotifierBox,
        ProviderModule, ProviderModuleRef, RawError, RawProvider, RawProvider_TO, RawProviderBox,
        RawResult, RawStreams,
    },
};

/// Exports `$provider` (a type implementing [`Provider`]) as this library's vk provider named
/// `$name`. Use it once, at the crate root of a `cdylib`:
///
/// ```ignore
/// vk_abi::export_provider!(MyProvider, "my");
/// ```
#[macro_export]
macro_rules! export_provider {
    ($provider:ty, $name:literal) => {
        /// The library header `vk` looks up, the same static that `abi_stable`'s
        /// `#[export_root_module]` would generate, written out here so that provider crates
        /// need neither a direct `abi_stable` dependency nor any unsafe code of their own.
        // SAFETY: the symbol name is the one abi_stable's loader looks up (checked by a test in
        // vk-abi), nothing else in the library may define it, and the header is built for the
        // root module type that the constructor returns.
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static VK_PROVIDER_LIBRARY_HEADER: $crate::abi_stable::library::LibHeader = {
            extern "C" fn constructor() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(|| {
                    $crate::export::root_module::<$provider>($name, env!("CARGO_PKG_VERSION"))
                })
            }
            // SAFETY: `constructor` returns the root module `ProviderModuleRef`, the type the
            // header is declared for, and the layout is checked by the loader.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<
                    $crate::raw::ProviderModuleRef,
                >(
                    constructor,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// Builds the root module for `P`. Called by [`export_provider!`].
pub fn root_module<P: Provider>(name: &'static str, version: &'static str) -> ProviderModuleRef {
    ProviderModule {
        name: RStr::from_str(name),
        version: RStr::from_str(version),
        new_provider: new_provider::<P>,
        new_provider_with_log: new_provider_with_log::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn new_provider<P: Provider>(init: RSlice<'_, u8>) -> RawResult<RawProviderBox> {
    guarded(|| {
        let provider = P::new(serde_json::from_slice(init.as_slice())?)?;
        Ok(RawProvider_TO::from_value(Exported(provider), TD_Opaque))
    })
}

extern "C" fn new_provider_with_log<P: Provider>(
    init: RSlice<'_, u8>,
    log: LogSinkBox,
) -> RawResult<RawProviderBox> {
    logging::install(log, crate_of::<P>());
    new_provider::<P>(init)
}

/// The crate that defines `P` (`vk_hyper`), the log target of the provider's panics.
fn crate_of<P>() -> &'static str {
    let path = std::any::type_name::<P>();
    path.split("::").next().unwrap_or(path)
}

/// Runs `call`, turning a panic into an error.
fn guarded<T>(call: impl FnOnce() -> Result<T>) -> RawResult<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(RawError::from).into(),
        Err(panic) => {
            let detail = logging::panic_text(&*panic);
            RResult::RErr(ProviderError::other(format!("provider panicked: {detail}")).into())
        }
    }
}

fn decode<T: DeserializeOwned>(json: RSlice<'_, u8>) -> Result<T> {
    Ok(serde_json::from_slice(json.as_slice())?)
}

fn encode<T: Serialize>(value: &T) -> Result<Json> {
    serde_json::to_vec(value)
        .map(RVec::from)
        .map_err(|error| ProviderError::other(format!("cannot encode a provider answer: {error}")))
}

/// `None` crosses as an empty vector.
fn encode_option<T: Serialize>(value: Option<T>) -> Result<Json> {
    value.map_or(Ok(RVec::new()), |value| encode(&value))
}

struct Exported<P>(P);

impl<P: Provider> RawProvider for Exported<P> {
    fn create_pod(&self, pod: RSlice<'_, u8>) -> RawResult<()> {
        guarded(|| self.0.create_pod(decode(pod)?))
    }
    fn update_pod(&self, pod: RSlice<'_, u8>) -> RawResult<()> {
        guarded(|| self.0.update_pod(decode(pod)?))
    }
    fn delete_pod(&self, pod: RSlice<'_, u8>, grace_period_seconds: i64) -> RawResult<()> {
        guarded(|| self.0.delete_pod(decode(pod)?, grace_period_seconds))
    }
    fn get_pod(&self, namespace: RStr<'_>, name: RStr<'_>) -> RawResult<Json> {
        guarded(|| encode_option(self.0.get_pod(namespace.as_str(), name.as_str())?))
    }
    fn get_pod_status(&self, namespace: RStr<'_>, name: RStr<'_>) -> RawResult<Json> {
        guarded(|| encode_option(self.0.get_pod_status(namespace.as_str(), name.as_str())?))
    }
    fn list_pods(&self) -> RawResult<Json> {
        guarded(|| encode(&self.0.list_pods()?))
    }
    fn notify_pods(&self, notifier: PodNotifierBox) -> RawResult<bool> {
        guarded(|| Ok(self.0.notify_pods(PodNotifier::new(notifier))))
    }
    fn configure_node(&self, node: RSlice<'_, u8>) -> RawResult<Json> {
        guarded(|| encode(&self.0.configure_node(decode(node)?)?))
    }
    fn ping(&self) -> RawResult<()> {
        guarded(|| self.0.ping())
    }
    fn notify_node_status(&self, notifier: NodeNotifierBox) -> RawResult<bool> {
        guarded(|| Ok(self.0.notify_node_status(NodeNotifier::new(notifier))))
    }
    fn container_logs(&self, options: RSlice<'_, u8>, sink: ByteSinkBox) -> RawResult<()> {
        guarded(|| {
            self.0
                .container_logs(decode(options)?, OutputStream::new(sink))
        })
    }
    fn exec(&self, options: RSlice<'_, u8>, io: RawStreams) -> RawResult<i32> {
        guarded(|| self.0.exec(decode(options)?, Streams::from_raw(io)))
    }
    fn attach(&self, options: RSlice<'_, u8>, io: RawStreams) -> RawResult<i32> {
        guarded(|| self.0.attach(decode(options)?, Streams::from_raw(io)))
    }
    fn port_forward(
        &self,
        options: RSlice<'_, u8>,
        input: ByteSourceBox,
        output: ByteSinkBox,
    ) -> RawResult<()> {
        guarded(|| {
            self.0.port_forward(
                decode(options)?,
                InputStream::new(input),
                OutputStream::new(output),
            )
        })
    }
    fn stats_summary(&self) -> RawResult<Json> {
        guarded(|| encode(&self.0.stats_summary()?))
    }
    fn pod_stats(&self, namespace: RStr<'_>, name: RStr<'_>) -> RawResult<Json> {
        guarded(|| encode_option(self.0.pod_stats(namespace.as_str(), name.as_str())?))
    }
    fn resize_pod(&self, pod: RSlice<'_, u8>) -> RawResult<()> {
        guarded(|| self.0.resize_pod(decode(pod)?))
    }

    /// Fields this library cannot read are refused before the provider is asked.
    fn check_pod(&self, pod: RSlice<'_, u8>) -> RawResult<Json> {
        guarded(|| {
            let refusal = match admission::understand(pod.as_slice())? {
                (_, Some(unknown_fields)) => Some(unknown_fields),
                (pod, None) => self.0.check_pod(&pod)?,
            };
            encode_option(refusal)
        })
    }
    fn capabilities(&self) -> RawResult<Json> {
        guarded(|| encode(&self.0.capabilities()))
    }
    fn restart_container(
        &self,
        pod: RSlice<'_, u8>,
        container: RStr<'_>,
        grace_period_seconds: i64,
    ) -> RawResult<()> {
        guarded(|| {
            self.0
                .restart_container(decode(pod)?, container.as_str(), grace_period_seconds)
        })
    }
}

#[cfg(test)]
mod tests;
