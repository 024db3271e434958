//! Finding, loading and calling provider libraries.
//!
//! `vk --provider NAME --plugin-dir DIR` loads `DIR/libvk_NAME.so`. Every failure is one clear
//! sentence; nothing that a library contains can crash `vk`: incompatible libraries are refused
//! by `abi_stable`'s layout and version checks, and provider calls run on blocking threads with
//! a time limit, with panics already turned into errors on the provider's side.

mod library;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use abi_stable::library::LibraryError;
use parking_lot::Mutex;
use vk_abi::{
    ABI_VERSION, ProviderError, ProviderInit, host::ProviderClient, raw::ProviderModuleRef,
};

const PREFIX: &str = "libvk_";
const SUFFIX: &str = ".so";

/// Why a provider could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin directory {dir}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown provider {name:?}: no {file} in {dir} (providers found: {found})", found = found_list(.found))]
    UnknownProvider {
        name: String,
        file: String,
        dir: PathBuf,
        found: Vec<String>,
    },
    #[error("{path} is not a usable vk provider")]
    NotAProvider {
        path: PathBuf,
        #[source]
        source: library::OpenError,
    },
    #[error("{path} uses provider ABI {found}, but this vk speaks ABI {expected}: rebuild the provider against vk-abi {expected_major}.x", expected_major = ABI_VERSION.split('.').next().unwrap_or("?"))]
    IncompatibleAbi {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path} is not a vk provider: {reason}")]
    WrongLayout { path: PathBuf, reason: String },
    #[error("provider {name:?} refused its configuration")]
    Refused {
        name: String,
        #[source]
        source: ProviderError,
    },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "none".to_string()
    } else {
        found.join(", ")
    }
}

/// A provider library whose header was read, compatible or not.
pub struct Library {
    pub path: PathBuf,
    /// The `NAME` in `libvk_NAME.so`.
    pub file_name: String,
    /// The vk-abi version the library was built against.
    pub abi_version: String,
    /// The loaded module, or why the library is not compatible.
    pub module: Result<ProviderModuleRef, LoadError>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("abi_version", &self.abi_version)
            .field("module", &self.module.as_ref().map(|m| m.name()))
            .finish()
    }
}

/// The path of the library of provider `name` in `dir`.
pub fn library_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{name}{SUFFIX}"))
}

/// Names (`NAME` of `libvk_NAME.so`) of the provider files in `dir`, sorted.
pub fn provider_files(dir: &Path) -> Result<Vec<String>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|file| Some(file.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.to_string()))
        .filter(|name| !name.is_empty())
        .collect();
    names.sort();
    Ok(names)
}

/// Opens `libvk_NAME.so` in `dir` and checks that it is a compatible vk provider.
pub fn open(dir: &Path, name: &str) -> Result<Library, LoadError> {
    let path = library_path(dir, name);
    if !path.is_file() {
        return Err(LoadError::UnknownProvider {
            name: name.to_string(),
            file: format!("{PREFIX}{name}{SUFFIX}"),
            dir: dir.to_path_buf(),
            found: provider_files(dir).unwrap_or_default(),
        });
    }
    let header = library::open(&path).map_err(|source| LoadError::NotAProvider {
        path: path.clone(),
        source,
    })?;
    let abi_version = header.version_strings().version.to_string();
    Ok(Library {
        module: library::provider_module(header).map_err(|error| describe(&path, error)),
        path,
        file_name: name.to_string(),
        abi_version,
    })
}

fn describe(path: &Path, error: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match error {
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::IncompatibleAbi {
            path,
            expected: expected_version.to_string(),
            found: actual_version.to_string(),
        },
        // The full layout report is long; its `Error:` line says what differs.
        other => {
            let report = other.to_string();
            let mut lines = report.lines().map(str::trim);
            let reason = lines
                .clone()
                .find_map(|line| line.strip_prefix("Error:"))
                .or_else(|| lines.find(|line| !line.is_empty()))
                .unwrap_or("its types differ from vk's")
                .trim()
                .to_string();
            LoadError::WrongLayout { path, reason }
        }
    }
}

/// Loads provider `name` from `dir`, ready to be constructed.
pub fn load(dir: &Path, name: &str) -> Result<ProviderModuleRef, LoadError> {
    open(dir, name)?.module
}

/// A constructed provider, called from blocking threads with a time limit per call.
#[derive(Debug, Clone)]
pub struct Provider {
    client: Arc<ProviderClient>,
    pub name: String,
    pub call_timeout: Duration,
}

impl Provider {
    /// Constructs the provider of a loaded module.
    pub async fn new(
        module: ProviderModuleRef,
        init: ProviderInit,
        call_timeout: Duration,
    ) -> Result<Self, LoadError> {
        let name = module.name().to_string();
        let refused = |source| LoadError::Refused {
            name: name.clone(),
            source,
        };
        let client = run_blocking("new", call_timeout, move || {
            ProviderClient::new(module, &init)
        })
        .await
        .map_err(refused)?;
        Ok(Provider {
            client: Arc::new(client),
            name,
            call_timeout,
        })
    }

    /// Runs `call` on a blocking thread, giving up after the call timeout.
    pub async fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl FnOnce(&ProviderClient) -> Result<T, ProviderError> + Send + 'static,
    ) -> Result<T, ProviderError> {
        let client = self.client.clone();
        measured(
            what,
            run_blocking(what, self.call_timeout, move || call(&client)),
        )
        .await
    }

    /// Runs `call`, then `then` if `call` succeeded, in one trip to a blocking thread (see
    /// [`Provider::trip`]); the call timeout is for the two together.
    pub async fn call_then<T: Send + 'static, U: Send + 'static>(
        &self,
        names: (&'static str, &'static str),
        call: impl FnOnce(&ProviderClient) -> Result<T, ProviderError> + Send + 'static,
        then: impl FnOnce(&ProviderClient) -> Result<U, ProviderError> + Send + 'static,
    ) -> Result<(T, Result<U, ProviderError>), ProviderError> {
        run_two(names, self.call_timeout, self.client.clone(), call, then).await
    }

    /// Makes the calls of `calls` in one trip to a blocking thread, `first` the name of the
    /// first. Each trip wakes two threads, and those wake-ups were a fifth of vk's CPU at
    /// 10,000 pods. Each call is counted and timed as its own; the call timeout is for the trip.
    pub async fn trip<R: Send + 'static>(
        &self,
        first: &'static str,
        calls: impl FnOnce(&Trip<ProviderClient>) -> Result<R, ProviderError> + Send + 'static,
    ) -> Result<R, ProviderError> {
        run_trip(first, self.call_timeout, self.client.clone(), calls).await
    }

    /// Runs a streaming `call` (logs, exec, port-forward) on a blocking thread, without a time
    /// limit: streams end when either side closes.
    pub async fn stream<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl FnOnce(&ProviderClient) -> Result<T, ProviderError> + Send + 'static,
    ) -> Result<T, ProviderError> {
        let client = self.client.clone();
        let joined = tokio::task::spawn_blocking(move || call(&client));
        measured(what, async move { join(what, joined.await) }).await
    }
}

/// Counts a provider call and its latency.
async fn measured<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let started = Instant::now();
    let result = call.await;
    record(what, started, &result);
    result
}

fn record<T>(what: &'static str, started: Instant, result: &Result<T, ProviderError>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(error) if error.kind == vk_abi::ErrorKind::Unsupported => "unsupported",
        Err(_) => "error",
    };
    let metrics = &crate::metrics::METRICS;
    metrics
        .provider_calls
        .get_or_create(&crate::metrics::CallLabels {
            call: what,
            outcome,
        })
        .inc();
    metrics
        .provider_call_seconds
        .get_or_create(&crate::metrics::CallName { call: what })
        .observe(started.elapsed().as_secs_f64());
}

/// The calls of one [`Provider::trip`], on the blocking thread.
#[derive(Debug)]
pub struct Trip<C> {
    client: Arc<C>,
    /// The call under way, or the next one before the trip starts; `None` between calls.
    unanswered: Arc<Mutex<Option<&'static str>>>,
}

impl<C> Trip<C> {
    /// Makes the call `what`, counted and timed.
    pub fn call<T>(
        &self,
        what: &'static str,
        call: impl FnOnce(&C) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        *self.unanswered.lock() = Some(what);
        let started = Instant::now();
        let result = call(&self.client);
        record(what, started, &result);
        *self.unanswered.lock() = None;
        result
    }
}

/// [`Provider::call_then`], the calls given `client`.
async fn run_two<C: Send + Sync + 'static, T: Send + 'static, U: Send + 'static>(
    (what, then_what): (&'static str, &'static str),
    limit: Duration,
    client: Arc<C>,
    call: impl FnOnce(&C) -> Result<T, ProviderError> + Send + 'static,
    then: impl FnOnce(&C) -> Result<U, ProviderError> + Send + 'static,
) -> Result<(T, Result<U, ProviderError>), ProviderError> {
    run_trip(what, limit, client, move |trip| {
        let value = trip.call(what, call)?;
        Ok((value, trip.call(then_what, then)))
    })
    .await
}

/// [`Provider::trip`], the calls given `client`.
async fn run_trip<C: Send + Sync + 'static, R: Send + 'static>(
    first: &'static str,
    limit: Duration,
    client: Arc<C>,
    calls: impl FnOnce(&Trip<C>) -> Result<R, ProviderError> + Send + 'static,
) -> Result<R, ProviderError> {
    let unanswered = Arc::new(Mutex::new(Some(first)));
    let trip = Trip {
        client,
        unanswered: unanswered.clone(),
    };
    let started = Instant::now();
    let result = run_blocking(first, limit, move || calls(&trip)).await;
    let Some(unanswered) = *unanswered.lock() else {
        return result;
    };
    // The call that did not return (it hung, or vk's side of the trip panicked) is counted
    // here, and named.
    let result = result.map_err(|error| match error.kind {
        vk_abi::ErrorKind::Unavailable => no_answer(unanswered, limit),
        _ => error,
    });
    record(unanswered, started, &result);
    result
}

async fn run_blocking<T: Send + 'static>(
    what: &'static str,
    limit: Duration,
    call: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(call)).await {
        Ok(joined) => join(what, joined),
        // The blocking thread cannot be stopped; it finishes (or hangs) on its own while vk
        // goes on. The caller retries later or reports the failure.
        Err(_) => Err(no_answer(what, limit)),
    }
}

fn no_answer(what: &str, limit: Duration) -> ProviderError {
    ProviderError::unavailable(format!(
        "provider call {what} did not answer within {}s",
        limit.as_secs_f64()
    ))
}

fn join<T>(
    what: &str,
    joined: Result<Result<T, ProviderError>, tokio::task::JoinError>,
) -> Result<T, ProviderError> {
    joined.unwrap_or_else(|error| {
        Err(ProviderError::other(format!(
            "provider call {what} failed: {error}"
        )))
    })
}

#[cfg(test)]
mod tests;
