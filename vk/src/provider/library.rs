//! The FFI seam: opening a provider library and finding its header. The only unsafe code in
//! `vk` lives here.
#![allow(unsafe_code)]

use std::path::Path;

use abi_stable::{
    StableAbi,
    abi_stability::abi_checking::check_layout_compatibility,
    library::{AbiHeaderRef, LibHeader, LibraryError, ROOT_MODULE_LOADER_NAME_WITH_NUL},
};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use vk_abi::raw::ProviderModuleRef;

/// Why a file could not be opened as an `abi_stable` library.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot load it as a shared library")]
    Dlopen(#[source] libloading::Error),
    #[error("it exports no vk provider header")]
    NoHeader(#[source] libloading::Error),
    #[error("it was built with an incompatible abi_stable")]
    Header(#[source] LibraryError),
}

/// Opens the library at `path` and returns its `abi_stable` header. The library stays loaded
/// for the life of the process: the header and everything reached through it are `'static`.
pub fn open(path: &Path) -> Result<&'static LibHeader, OpenError> {
    // SAFETY: loading a library runs its initialisers; vk only loads files that the operator
    // placed in the plugin directory. RTLD_NOW makes unresolved symbols fail here, with a
    // message, instead of crashing at the first call; RTLD_LOCAL keeps the provider's symbols
    // (its own copies of abi_stable, tokio...) out of the global namespace.
    let library =
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(OpenError::Dlopen)?;
    // SAFETY: abi_stable libraries export this symbol as a static `AbiHeaderRef`; a library that
    // exports a different type under this mangled, abi_stable-specific name is not supported.
    let header =
        unsafe { library.get::<AbiHeaderRef>(ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(OpenError::NoHeader)?;
    // The header's references borrow from the library, which must never be unloaded.
    std::mem::forget(library);
    header.upgrade().map_err(OpenError::Header)
}

/// The provider module of `header`, checked for compatibility.
///
/// abi_stable's own check only accepts a library whose layout extends vk's (abi_stable issue
/// #118), so it refuses a provider built against an older minor ABI. Such a library is accepted
/// when the reverse check passes: its layout is a prefix of vk's, and the methods it lacks run
/// their defaults, which answer "unsupported".
pub fn provider_module(header: &'static LibHeader) -> Result<ProviderModuleRef, LibraryError> {
    let error = match header.init_root_module::<ProviderModuleRef>() {
        Ok(module) => return Ok(module),
        Err(error) => error,
    };
    let (LibraryError::AbiInstability(_), Some(layout)) = (&error, header.layout()) else {
        return Err(error);
    };
    if check_layout_compatibility(layout, <ProviderModuleRef as StableAbi>::LAYOUT).is_err() {
        return Err(error);
    }
    // SAFETY: the version was checked by `init_root_module` before it compared layouts, and
    // every type shared with vk was checked equal, except that the library's prefix types may
    // end earlier; abi_stable checks each access past a prefix against the library's own
    // vtable metadata and falls back to the method's default.
    unsafe { header.init_root_module_with_unchecked_layout::<ProviderModuleRef>() }
}
