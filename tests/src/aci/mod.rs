//! An emulator of Azure Container Instances for the azure provider's tests (`tests/azure.rs`):
//! the AAD v1 token endpoint, the ARM container group operations (create with a long-running
//! operation, get, list with paging, delete), container logs and exec (a real web socket that
//! runs a few built-in commands). Request bodies are validated against the API description's
//! definitions (`schema.rs`) and answers follow its shapes and status codes.
//!
//! Tests drive it: containers exit with a code, the next N ARM requests are throttled with
//! 429, long-running operations take longer, and every request is recorded.
//!
//! ```no_run
//! # use vk_tests::aci::Emulator;
//! let aci = Emulator::start();
//! let auth_file = aci.write_auth_file(Emulator::CLIENT_SECRET);
//! // vk gets AZURE_AUTH_LOCATION=auth_file; later:
//! assert!(aci.group_names().is_empty());
//! ```

mod exec;
mod groups;
mod schema;
mod server;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::cluster;
use groups::Group;
use schema::Spec;

/// One request as the emulator received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: Value,
    pub status: u16,
}

/// A long-running operation.
#[derive(Debug, Clone)]
struct Operation {
    key: GroupKey,
    done_at: Instant,
    deleting: bool,
}

/// An exec session waiting for its web socket.
#[derive(Debug, Clone)]
struct Session {
    key: GroupKey,
    container: String,
    command: String,
    password: String,
}

/// Resource group and group name.
type GroupKey = (String, String);

#[derive(Debug)]
struct Inner {
    groups: BTreeMap<GroupKey, Group>,
    requests: Vec<Recorded>,
    tokens: HashSet<String>,
    throttle: u32,
    throttled: u32,
    lro_delay: Duration,
    operations: HashMap<String, Operation>,
    sessions: HashMap<String, Session>,
    next_id: u64,
}

/// What the HTTP and web socket servers share.
#[derive(Debug)]
struct State {
    spec: Spec,
    base: String,
    ws_base: String,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Advances every group and ends the deletions that are due.
    fn sweep(&mut self) {
        let now = Instant::now();
        let done: Vec<GroupKey> = self
            .operations
            .values()
            .filter(|op| op.deleting && op.done_at <= now)
            .map(|op| op.key.clone())
            .collect();
        for key in done {
            self.groups.remove(&key);
        }
        self.groups.values_mut().for_each(Group::advance);
    }
}

/// A running emulator; dropping it stops it.
#[derive(Debug)]
pub struct Emulator {
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Emulator {
    pub const SUBSCRIPTION: &str = "00000000-0000-4000-8000-000000000001";
    pub const TENANT: &str = "vk-test-tenant";
    pub const CLIENT_ID: &str = "vk-test-client";
    pub const CLIENT_SECRET: &str = "vk-test-client-secret";
    pub const RESOURCE_GROUP: &str = "vk-test-rg";
    /// Groups per page of a list (small, so that paging is exercised).
    pub const PAGE_SIZE: usize = 2;

    /// Starts the emulator on two free ports of 127.0.0.1.
    pub fn start() -> Self {
        let spec = Spec::bundled();
        let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the ARM port");
        let ws = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the exec port");
        let address =
            |l: &std::net::TcpListener| -> SocketAddr { l.local_addr().expect("address") };
        let state = Arc::new(State {
            spec,
            base: format!("http://{}", address(&http)),
            ws_base: format!("ws://{}", address(&ws)),
            inner: Mutex::new(Inner {
                groups: BTreeMap::new(),
                requests: Vec::new(),
                tokens: HashSet::new(),
                throttle: 0,
                throttled: 0,
                lro_delay: Duration::from_millis(500),
                operations: HashMap::new(),
                sessions: HashMap::new(),
                next_id: 0,
            }),
        });
        let (stop, stopped) = oneshot::channel();
        let served = state.clone();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the emulator's runtime");
            runtime.block_on(async move {
                http.set_nonblocking(true).expect("nonblocking");
                ws.set_nonblocking(true).expect("nonblocking");
                let http = tokio::net::TcpListener::from_std(http).expect("ARM listener");
                let ws = tokio::net::TcpListener::from_std(ws).expect("exec listener");
                tokio::spawn(server::serve(served.clone(), http));
                tokio::spawn(exec::serve(served, ws));
                let _ = stopped.await;
            });
        });
        Emulator {
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the AAD and ARM endpoint.
    pub fn url(&self) -> &str {
        &self.state.base
    }

    /// Writes an SDK auth file (`az ad sp create-for-rbac --sdk-auth`) for this emulator with
    /// `client_secret`, as UTF-16LE with a BOM as PowerShell writes it; returns its path.
    pub fn write_auth_file(&self, client_secret: &str) -> PathBuf {
        let contents = json!({
            "clientId": Self::CLIENT_ID,
            "clientSecret": client_secret,
            "subscriptionId": Self::SUBSCRIPTION,
            "tenantId": Self::TENANT,
            "activeDirectoryEndpointUrl": self.url(),
            "resourceManagerEndpointUrl": format!("{}/", self.url()),
            "activeDirectoryGraphResourceId": "https://graph.windows.net/",
            "sqlManagementEndpointUrl": "https://management.core.windows.net:8443/",
            "galleryEndpointUrl": "https://gallery.azure.com/",
            "managementEndpointUrl": "https://management.core.windows.net/",
        });
        let text = serde_json::to_string_pretty(&contents).expect("JSON");
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let path = cluster::run_dir().join(format!("{}.azureauth", cluster::unique_name("aci")));
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().requests.clone()
    }

    /// The names of the groups in the test resource group.
    pub fn group_names(&self) -> Vec<String> {
        let mut inner = self.state.lock();
        inner.sweep();
        inner
            .groups
            .keys()
            .filter(|(rg, _)| rg == Self::RESOURCE_GROUP)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// The group's body as the provider PUT it (secrets included).
    pub fn put_body(&self, name: &str) -> Option<Value> {
        let key = (Self::RESOURCE_GROUP.to_string(), name.to_string());
        self.state.lock().groups.get(&key).map(|g| g.body.clone())
    }

    /// Makes a container exit with `code`; false if there is no such group or container.
    pub fn exit_container(&self, group: &str, container: &str, code: i32) -> bool {
        let key = (Self::RESOURCE_GROUP.to_string(), group.to_string());
        let mut inner = self.state.lock();
        inner.sweep();
        inner
            .groups
            .get_mut(&key)
            .is_some_and(|g| g.exit(container, code))
    }

    /// Adds an event of `kind` (Normal or Warning) to the group's own instance view; false if
    /// there is no such group.
    pub fn add_group_event(&self, group: &str, name: &str, message: &str, kind: &str) -> bool {
        let key = (Self::RESOURCE_GROUP.to_string(), group.to_string());
        let mut inner = self.state.lock();
        inner.groups.get_mut(&key).is_some_and(|g| {
            groups::record(&mut g.events, name, message, kind);
            true
        })
    }

    /// Answers the next `requests` ARM requests with 429 and `Retry-After: 1`.
    pub fn throttle(&self, requests: u32) {
        self.state.lock().throttle = requests;
    }

    /// How many requests were throttled so far.
    pub fn throttled(&self) -> u32 {
        self.state.lock().throttled
    }

    /// How long creations and deletions take from now on (default 0.5 s).
    pub fn set_operation_time(&self, time: Duration) {
        self.state.lock().lro_delay = time;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
