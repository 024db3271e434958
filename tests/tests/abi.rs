//! The provider loader's rules, shown on real libraries: an older provider of the same ABI major
//! loads and lacks only the newer calls, another major is refused with both versions named, a
//! foreign library is refused, and a provider that panics or hangs cannot take vk down.
//!
//! Needs `cargo build --workspace` (for `vk`, `libvk_mock.so` and `libvk_faulty.so`); the old
//! provider (`tests/fixtures/abi-1.0`, a workspace of its own) is built here, under the target
//! directory.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use vk::provider::{self, LoadError, Provider};
use vk_abi::{
    ABI_VERSION, ErrorKind, LogOptions, ProviderInit, ResolvedPod,
    host::byte_sink,
    k8s_openapi::{
        api::core::v1::{Container, Pod, PodSpec},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    },
    raw::ProviderModuleRef,
};
use vk_tests::paths;

/// Time limit of provider calls, except in the hang test.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vk-abi-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// A plugin directory holding `library` as `libvk_NAME.so`.
    fn with_provider(label: &str, name: &str, library: &Path) -> Self {
        let dir = TempDir::new(label);
        std::fs::copy(library, provider::library_path(dir.path(), name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", library.display()));
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The two builds of the ABI 1.0 fixture's `libvk_old.so`.
struct OldProviders {
    /// Stamped ABI 1.0.0, as vk-abi 1.0.0 was.
    v1: PathBuf,
    /// Stamped ABI 2.0.0 (`VK_ABI_FIXTURE_VERSION`), with the same layout.
    v2: PathBuf,
}

/// Builds the fixture once per test process, whichever test asks first.
fn old_providers() -> &'static OldProviders {
    static BUILT: OnceLock<OldProviders> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = paths::target_dir().join("fixtures").join("abi-1.0");
        // Both builds share the target directory, so the second one only recompiles the two
        // fixture crates; each library is copied out before the next build overwrites it.
        let keep = |version: &str| {
            let started = Instant::now();
            build_old_provider(&target, version);
            eprintln!(
                "built the ABI {version} fixture in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            let kept = target.join(format!("libvk_old-{version}.so"));
            std::fs::copy(target.join("debug").join("libvk_old.so"), &kept)
                .expect("the fixture build produced libvk_old.so");
            kept
        };
        OldProviders {
            v1: keep("1.0.0"),
            v2: keep("2.0.0"),
        }
    })
}

/// `cargo build` of tests/fixtures/abi-1.0, with `version` stamped in the root module unless
/// it is the snapshot's own 1.0.0. Offline first: its dependencies are vk's own.
fn build_old_provider(target: &Path, version: &str) {
    let manifest = paths::workspace().join("tests/fixtures/abi-1.0/Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = |offline: bool| {
        let mut command = Command::new(&cargo);
        command
            .args(["build", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target);
        if offline {
            command.arg("--offline");
        }
        if version == "1.0.0" {
            command.env_remove("VK_ABI_FIXTURE_VERSION");
        } else {
            command.env("VK_ABI_FIXTURE_VERSION", version);
        }
        command.output().expect("run cargo")
    };
    let offline = build(true);
    if offline.status.success() {
        return;
    }
    let online = build(false);
    assert!(
        online.status.success(),
        "cannot build {} (VK_ABI_FIXTURE_VERSION={version}):\n{}\n(offline: {})",
        manifest.display(),
        String::from_utf8_lossy(&online.stderr),
        String::from_utf8_lossy(&offline.stderr)
    );
}

fn init(config: &str) -> ProviderInit {
    ProviderInit {
        config: config.to_string(),
        node_name: "vk-abi-test".into(),
        operating_system: "Linux".into(),
        ..ProviderInit::default()
    }
}

fn pod(name: &str) -> ResolvedPod {
    ResolvedPod {
        pod: Pod {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("busybox".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        },
        ..ResolvedPod::default()
    }
}

async fn create(provider: &Provider, name: &str) -> vk_abi::Result<()> {
    let pod = pod(name);
    provider
        .call("create_pod", move |client| client.create_pod(&pod))
        .await
}

async fn pod_names(provider: &Provider) -> Vec<String> {
    let pods = provider
        .call("list_pods", |client| client.list_pods())
        .await
        .expect("list_pods");
    let mut names: Vec<String> = pods
        .into_iter()
        .map(|pod| pod.metadata.name.unwrap_or_default())
        .collect();
    names.sort();
    names
}

async fn phase(provider: &Provider, name: &str) -> Option<String> {
    let name = name.to_string();
    provider
        .call("get_pod_status", move |client| {
            client.get_pod_status("default", &name)
        })
        .await
        .expect("get_pod_status")
        .and_then(|status| status.phase)
}

/// The faulty provider of the workspace build.
fn faulty() -> ProviderModuleRef {
    provider::load(&paths::build_dir(), "faulty")
        .unwrap_or_else(|e| panic!("{e} (run `cargo build --workspace` first)"))
}

/// Why provider `name` in `dir` does not load (`ProviderModuleRef` has no `Debug`).
fn load_error(dir: &Path, name: &str) -> LoadError {
    match provider::load(dir, name) {
        Ok(_) => panic!("provider {name} in {} loaded", dir.display()),
        Err(error) => error,
    }
}

/// Runs the `vk` binary, with none of its environment fallbacks set, and gives up after a
/// minute (vk must fail or answer long before).
fn vk(args: &[&OsStr]) -> Output {
    vk_with_env(args, &[])
}

/// [`vk`] with environment variables `env` set.
fn vk_with_env(args: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(paths::vk_binary())
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("VK_PLUGIN_DIR")
        .env_remove("VK_PROVIDER")
        .env_remove("VK_PROVIDER_CONFIG")
        .env_remove("VK_LOG_LEVEL")
        .env_remove("VK_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vk");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for vk").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vk {args:?} did not exit within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect vk's output")
}

/// Runs `vk --provider NAME --plugin-dir DIR ARGS...` with a kubeconfig and a node IP, so that
/// vk gets as far as constructing the provider without contacting anything.
fn vk_run(plugin_dir: &Path, name: &str, args: &[&OsStr]) -> Output {
    vk_run_with_env(plugin_dir, name, args, &[])
}

/// [`vk_run`] with environment variables `env` set.
fn vk_run_with_env(plugin_dir: &Path, name: &str, args: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let dir = TempDir::new("kubeconfig");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {}}]\n\
         contexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .unwrap();
    let mut all: Vec<&OsStr> = vec![
        "--provider".as_ref(),
        name.as_ref(),
        "--plugin-dir".as_ref(),
        plugin_dir.as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_ref(),
        "--node-ip".as_ref(),
        "127.0.0.1".as_ref(),
    ];
    all.extend_from_slice(args);
    vk_with_env(&all, env)
}

/// Asserts that vk failed with exactly one line on stderr and no panic, and returns that line.
fn one_line_failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "vk succeeded; stderr: {stderr}");
    let lower = stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "vk crashed: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    lines[0].to_string()
}

/// `vk providers --plugin-dir DIR`: must succeed; answers its stdout.
fn vk_providers(dir: &Path) -> String {
    let output = vk(&["providers".as_ref(), "--plugin-dir".as_ref(), dir.as_ref()]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "vk providers failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The columns of the line of provider `name` in `vk providers`' output.
fn providers_row(stdout: &str, name: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .find(|columns| columns.first().is_some_and(|first| first == name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"))
}

#[tokio::test]
async fn older_compatible_provider_loads_and_works() {
    let dir = TempDir::with_provider("old", "old", &old_providers().v1);
    let library = provider::open(dir.path(), "old").expect("open libvk_old.so");
    assert_eq!(library.abi_version, "1.0.0");

    let module = provider::load(dir.path(), "old").unwrap_or_else(|e| {
        panic!(
            "a 1.0 provider must load into vk {ABI_VERSION}: {e} (abi_stable's own check refuses \
             it, see abi_stable_alone_refuses_an_older_minor: the loader must accept a library \
             whose layout is a prefix of vk's)"
        )
    });
    assert_eq!(module.name().as_str(), "old");
    let provider = Provider::new(module, init(""), CALL_TIMEOUT)
        .await
        .expect("construct the old provider");

    create(&provider, "a").await.expect("create a");
    create(&provider, "b").await.expect("create b");
    assert_eq!(pod_names(&provider).await, ["a", "b"]);
    assert_eq!(phase(&provider, "a").await.as_deref(), Some("Running"));
    assert_eq!(phase(&provider, "nope").await, None);

    // The calls that ABI 1.1 appended are missing from the library's vtable: abi_stable runs
    // their default bodies, which answer "unsupported".
    let stats = provider
        .call("stats_summary", |client| client.stats_summary())
        .await
        .unwrap_err();
    assert_eq!(stats.kind, ErrorKind::Unsupported, "{stats}");
    let logs = provider
        .stream("container_logs", |client| {
            let options = LogOptions {
                namespace: "default".into(),
                pod: "a".into(),
                container: "app".into(),
                ..LogOptions::default()
            };
            client.container_logs(&options, byte_sink(|_| Ok(())))
        })
        .await
        .unwrap_err();
    assert_eq!(logs.kind, ErrorKind::Unsupported, "{logs}");
    // So does the resize call of 1.3: vk then marks a resize Infeasible.
    let resize = provider
        .call("resize_pod", |client| client.resize_pod(&Pod::default()))
        .await
        .unwrap_err();
    assert_eq!(resize.kind, ErrorKind::Unsupported, "{resize}");

    // The 1.3 check before create: a provider that cannot check has no objection.
    let checked = pod("d").pod;
    let refusal = provider
        .call("check_pod", move |client| client.check_pod(&checked))
        .await;
    assert_eq!(refusal, Ok(None));

    // The 1.4 calls: a provider that does not say what it does itself does none of it (vk runs
    // the probes), and one that cannot restart a container says so (vk records it in an event).
    let capabilities = provider
        .call("capabilities", |client| client.capabilities())
        .await;
    assert_eq!(capabilities, Ok(vk_abi::Capabilities::default()));
    let restart = provider
        .call("restart_container", |client| {
            client.restart_container(&Pod::default(), "app", 30)
        })
        .await
        .unwrap_err();
    assert_eq!(restart.kind, ErrorKind::Unsupported, "{restart}");

    // And the 1.0 calls still work afterwards.
    create(&provider, "c").await.expect("create c");
    assert_eq!(pod_names(&provider).await, ["a", "b", "c"]);

    let row = providers_row(&vk_providers(dir.path()), "old");
    assert_eq!(row[1..4], ["1.0.0", "1.0.0", "yes"], "{row:?}");
}

/// Why the loader cannot rely on abi_stable's check alone: `init_root_module` compares vk's
/// layout (the interface) with the library's and refuses a library whose vtable is shorter than
/// vk's ("too many fields", abi_stable issue #118), although the methods it lacks have defaults.
/// The reverse comparison, the library's layout as a prefix of vk's, accepts it.
#[test]
fn abi_stable_alone_refuses_an_older_minor() {
    use vk_abi::abi_stable::{
        StableAbi, abi_stability::abi_checking::check_layout_compatibility,
        library::lib_header_from_path,
    };

    let dir = TempDir::with_provider("direction", "old", &old_providers().v1);
    let header = lib_header_from_path(&provider::library_path(dir.path(), "old"))
        .unwrap_or_else(|e| panic!("{e}"));
    let old = header.layout().expect("the library carries its layout");
    let ours = <ProviderModuleRef as StableAbi>::LAYOUT;
    let refused = check_layout_compatibility(ours, old).expect_err("abi_stable accepts it now");
    assert!(refused.to_string().contains("too many fields"), "{refused}");
    if let Err(error) = check_layout_compatibility(old, ours) {
        panic!("the 1.0 layout is not a prefix of {ABI_VERSION}'s: {error}");
    }
}

#[test]
fn incompatible_version_is_refused_with_both_versions() {
    let dir = TempDir::with_provider("v2", "old", &old_providers().v2);
    let path = provider::library_path(dir.path(), "old");

    let error = load_error(dir.path(), "old");
    match &error {
        LoadError::IncompatibleAbi {
            path: refused,
            expected,
            found,
        } => {
            assert_eq!(refused, &path);
            assert_eq!(expected, ABI_VERSION);
            assert_eq!(found, "2.0.0");
        }
        other => panic!("expected IncompatibleAbi, got {other:?}"),
    }
    let message = error.to_string();
    for part in [&path.display().to_string(), ABI_VERSION, "2.0.0"] {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }

    let output = vk_run(dir.path(), "old", &[]);
    let line = one_line_failure(&output);
    for part in [&path.display().to_string(), ABI_VERSION, "2.0.0"] {
        assert!(line.contains(part), "{line:?} lacks {part:?}");
    }

    let row = providers_row(&vk_providers(dir.path()), "old");
    assert_eq!(row[1..4], ["-", "2.0.0", "no"], "{row:?}");
}

/// A shared library that is certainly not a vk provider and is harmless to load twice.
fn foreign_library() -> PathBuf {
    let candidates = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/aarch64-linux-gnu/libz.so.1",
        "/usr/lib/aarch64-linux-gnu/libz.so.1",
        "/usr/lib64/libz.so.1",
        "/usr/lib/libz.so.1",
        "/lib/libz.so.1",
    ];
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return found;
    }
    // Otherwise libgcc_s or libm, which this very process has loaded.
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|path| {
            let file = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
            file.starts_with("libgcc_s.so") || file.starts_with("libm.so")
        })
        .expect("no system library to use as a foreign library")
}

#[test]
fn foreign_library_is_refused() {
    let dir = TempDir::with_provider("foreign", "x", &foreign_library());
    let x = provider::library_path(dir.path(), "x");
    let text = provider::library_path(dir.path(), "text");
    std::fs::write(&text, "this is not a shared library\n").unwrap();

    for (name, path) in [("x", &x), ("text", &text)] {
        let error = load_error(dir.path(), name);
        assert!(
            matches!(&error, LoadError::NotAProvider { path: p, .. } if p == path),
            "{name}: expected NotAProvider, got {error:?}"
        );
        let output = vk_run(dir.path(), name, &[]);
        let line = one_line_failure(&output);
        assert!(line.contains(&path.display().to_string()), "{line:?}");
    }
    // The foreign library has no header; the text file is not a library at all.
    let x_error = load_error(dir.path(), "x");
    let no_header = std::error::Error::source(&x_error).map(ToString::to_string);
    assert_eq!(
        no_header.as_deref(),
        Some("it exports no vk provider header")
    );

    let stdout = vk_providers(dir.path());
    for name in ["x", "text"] {
        let row = providers_row(&stdout, name);
        assert_eq!(row[1..4], ["-", "-", "no"], "{row:?}");
    }
}

#[tokio::test]
async fn panicking_provider_call_becomes_an_error() {
    let provider = Provider::new(faulty(), init(""), CALL_TIMEOUT)
        .await
        .expect("construct the faulty provider");
    let error = create(&provider, "panic-x").await.unwrap_err();
    assert!(error.message.contains("provider panicked"), "{error:?}");

    create(&provider, "ok-1").await.expect("create ok-1");
    assert_eq!(pod_names(&provider).await, ["ok-1"]);
    assert_eq!(phase(&provider, "ok-1").await.as_deref(), Some("Running"));
}

#[tokio::test]
async fn rejected_pod_is_invalid_input() {
    let provider = Provider::new(faulty(), init("{}"), CALL_TIMEOUT)
        .await
        .expect("construct the faulty provider");
    let error = create(&provider, "reject-x").await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput, "{error:?}");
    assert!(
        error.message.contains("the backend rejects this pod"),
        "{error:?}"
    );
    create(&provider, "ok-3").await.expect("create ok-3");
    assert_eq!(pod_names(&provider).await, ["ok-3"]);
}

#[test]
fn hanging_provider_call_is_cut_off() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let limit = Duration::from_secs(1);
        let provider = Provider::new(faulty(), init(""), limit)
            .await
            .expect("construct the faulty provider");
        let started = Instant::now();
        let error = create(&provider, "hang-x").await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable, "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(30));

        create(&provider, "ok-2").await.expect("create ok-2");
        assert_eq!(pod_names(&provider).await, ["ok-2"]);
    });
    // The hung call still sleeps on a blocking thread; dropping the runtime would wait for it.
    runtime.shutdown_background();
}

#[test]
fn vk_providers_lists_mock() {
    let build = paths::build_dir();
    let mock = provider::load(&build, "mock").expect("load the mock provider");
    let stdout = vk_providers(&build);
    let row = providers_row(&stdout, "mock");
    assert_eq!(
        row[1..4],
        [mock.version().as_str(), ABI_VERSION, "yes"],
        "{row:?}"
    );
    assert_eq!(
        row[4],
        provider::library_path(&build, "mock").display().to_string()
    );
    let row = providers_row(&stdout, "faulty");
    assert_eq!(row[2..4], [ABI_VERSION, "yes"], "{row:?}");
}

#[test]
fn unknown_provider_names_those_found() {
    let output = vk_run(&paths::build_dir(), "nosuch", &[]);
    let line = one_line_failure(&output);
    for part in ["nosuch", "libvk_nosuch.so", "mock", "faulty"] {
        assert!(line.contains(part), "{line:?} lacks {part:?}");
    }
}

#[tokio::test]
async fn bad_config_is_refused() {
    // Through the library: empty and `{}` are fine, anything else is refused as InvalidInput.
    for good in ["", "{}", " {\"any\": 1}\n"] {
        Provider::new(faulty(), init(good), CALL_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("config {good:?} refused: {e}"));
    }
    for bad in ["not json", "[1]", "3"] {
        let error = Provider::new(faulty(), init(bad), CALL_TIMEOUT)
            .await
            .unwrap_err();
        match &error {
            LoadError::Refused { name, source } => {
                assert_eq!(name, "faulty");
                assert_eq!(source.kind, ErrorKind::InvalidInput, "{source:?}");
            }
            other => panic!("config {bad:?}: expected Refused, got {other:?}"),
        }
    }

    // Through vk: one line that says so.
    let dir = TempDir::new("config");
    let config = dir.path().join("faulty.json");
    std::fs::write(&config, "not json").unwrap();
    let output = vk_run(
        &paths::build_dir(),
        "faulty",
        &["--provider-config".as_ref(), config.as_ref()],
    );
    let line = one_line_failure(&output);
    assert!(line.contains("refused its configuration"), "{line:?}");
    assert!(line.contains("faulty"), "{line:?}");
}

/// Runs vk with the faulty provider configured to log one line at every level (target
/// `vk_faulty::chatty`) and then panic while starting, with `args` and `RUST_LOG=rust_log`.
fn chatty_faulty_vk(args: &[&str], rust_log: Option<&str>) -> Output {
    let dir = TempDir::new("chatty");
    let config = dir.path().join("faulty.json");
    std::fs::write(&config, r#"{"logEveryLevel": true, "panicOnStart": true}"#).unwrap();
    let mut all: Vec<&OsStr> = vec!["--provider-config".as_ref(), config.as_ref()];
    all.extend(args.iter().map(OsStr::new));
    let env: Vec<(&str, &str)> = rust_log
        .map(|filter| ("RUST_LOG", filter))
        .into_iter()
        .collect();
    vk_run_with_env(&paths::build_dir(), "faulty", &all, &env)
}

/// One run of the chatty faulty provider: vk's flags, `RUST_LOG`, and what must show: the
/// levels of its lines, in order, and whether its panic is logged.
struct FilterCase {
    args: &'static [&'static str],
    rust_log: Option<&'static str>,
    levels: &'static [&'static str],
    panic_shown: bool,
}

#[test]
fn provider_logs_reach_vk_log_through_its_filter() {
    const ALL: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
    let case = |args, rust_log, levels, panic_shown| FilterCase {
        args,
        rust_log,
        levels,
        panic_shown,
    };
    let cases = [
        case(&[], None, &ALL[..3], true),
        case(&["--log-level", "trace"], None, &ALL, true),
        case(&["--log-level", "error"], None, &ALL[..1], true),
        case(&[], Some("vk_faulty::chatty=debug"), &ALL[..4], true),
        case(
            &["--log-level", "trace"],
            Some("vk_faulty=warn"),
            &ALL[..2],
            true,
        ),
        case(&[], Some("vk_faulty::chatty=off"), &[], true),
        case(&[], Some("vk_faulty=off"), &[], false),
    ];
    for FilterCase {
        args,
        rust_log,
        levels,
        panic_shown,
    } in cases
    {
        let output = chatty_faulty_vk(args, rust_log);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let case = format!("vk {args:?} with RUST_LOG={rust_log:?}");
        assert!(!output.status.success(), "{case} succeeded: {stderr}");
        let shown: Vec<&str> = stderr
            .lines()
            .filter_map(|line| line.split_once("faulty log line at level "))
            .map(|(head, level)| {
                assert!(
                    head.ends_with(&format!("{level:<5} vk_faulty::chatty] ")),
                    "{case}: wrong level or target in {head:?}"
                );
                level
            })
            .collect();
        assert_eq!(shown, levels, "{case}:\n{stderr}");
        let panic_line = stderr.lines().find(|line| line.contains("panicked at "));
        assert_eq!(panic_line.is_some(), panic_shown, "{case}:\n{stderr}");
        if let Some(line) = panic_line {
            assert!(
                line.contains("ERROR vk_faulty] panicked at "),
                "{case}: {line}"
            );
            assert!(
                line.ends_with(": the faulty provider panics on start"),
                "{case}: {line}"
            );
        }
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("vk: provider \"faulty\" refused its configuration"),
            "{case}: {last}"
        );
    }
}

#[test]
fn json_log_lines_are_objects_with_time_level_target_message_and_node() {
    let output = chatty_faulty_vk(&["--log-format", "json", "--nodename", "n-json"], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
        })
        .collect();
    for record in &records {
        for key in ["time", "level", "target", "message"] {
            assert!(record[key].is_string(), "{key} missing in {record}");
        }
        assert_eq!(record["node"], "n-json", "{record}");
    }
    let chatty: Vec<(&str, &str)> = records
        .iter()
        .filter(|record| record["target"] == "vk_faulty::chatty")
        .map(|record| {
            (
                record["level"].as_str().unwrap_or_default(),
                record["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        chatty,
        [
            ("error", "faulty log line at level ERROR"),
            ("warn", "faulty log line at level WARN"),
            ("info", "faulty log line at level INFO"),
        ]
    );
    // The reason vk stops is a record too, the last one.
    let last = records.last().expect("vk logged something");
    assert_eq!(
        (&last["level"], &last["target"]),
        (&"error".into(), &"vk".into())
    );
    let message = last["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused its configuration"), "{message}");
}
