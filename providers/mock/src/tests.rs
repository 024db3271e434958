//! The mock's behaviour, exercised through the vtable as the host sees it.

use std::sync::{Arc, Mutex, mpsc};

use vk_abi::{
    ExecOptions, LogOptions, PortForwardOptions, ProviderInit, ResolvedPod, VolumeFile,
    VolumeFiles,
    host::{HostStreams, ProviderClient, byte_sink, byte_source},
    k8s_openapi::{
        ByteString,
        api::core::v1::{Container, ContainerStatus, EnvVar, Node, Pod, PodSpec, VolumeMount},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    },
};

fn client() -> ProviderClient {
    let module = vk_abi::export::root_module::<super::MockProvider>("mock", "test");
    let init = ProviderInit {
        node_name: "vk".into(),
        operating_system: "Linux".into(),
        internal_ip: Some("192.0.2.1".into()),
        ..ProviderInit::default()
    };
    ProviderClient::new(module, &init).unwrap()
}

fn pod(name: &str) -> ResolvedPod {
    let container = Container {
        name: "app".into(),
        image: Some("busybox".into()),
        env: Some(vec![EnvVar {
            name: "GREETING".into(),
            value: Some("hi".into()),
            ..EnvVar::default()
        }]),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: "/etc/config".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    ResolvedPod {
        pod: Pod {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![container],
                ..PodSpec::default()
            }),
            status: None,
        },
        volumes: [(
            "config".to_string(),
            VolumeFiles {
                files: [(
                    "key".to_string(),
                    VolumeFile {
                        data: ByteString(b"value".to_vec()),
                        mode: 0o644,
                    },
                )]
                .into(),
            },
        )]
        .into(),
        ..ResolvedPod::default()
    }
}

/// Collects what a provider writes into a sink.
fn collector() -> (vk_abi::raw::ByteSinkBox, Arc<Mutex<Vec<u8>>>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink_buffer = buffer.clone();
    let sink = byte_sink(move |data| {
        sink_buffer.lock().unwrap().extend_from_slice(data);
        Ok(())
    });
    (sink, buffer)
}

fn text(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
}

/// Runs `command` in pod `p`'s container with `stdin`, answering (exit code, stdout, stderr).
fn exec(client: &ProviderClient, command: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let (stdout, out) = collector();
    let (stderr, err) = collector();
    let input = Mutex::new(Some(stdin.to_vec()));
    let streams = HostStreams {
        stdin: Some(byte_source(move || {
            input.lock().unwrap().take().unwrap_or_default()
        })),
        stdout: Some(stdout),
        stderr: Some(stderr),
        resize: None,
    };
    let options = ExecOptions {
        namespace: "default".into(),
        pod: "p".into(),
        container: "app".into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        tty: false,
        timeout_seconds: None,
    };
    let code = client.exec(&options, streams).unwrap();
    (code, text(&out), text(&err))
}

#[test]
fn pods_run_at_once_and_every_change_is_notified() {
    let client = client();
    let (sender, notified) = mpsc::channel();
    let sender = Mutex::new(sender);
    assert!(
        client
            .notify_pods(
                move |pod: Pod| sender.lock().unwrap().send(pod).unwrap(),
                |_event| {}
            )
            .unwrap()
    );

    client.create_pod(&pod("p")).unwrap();
    let status = notified.try_recv().unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.host_ip.as_deref(), Some("192.0.2.1"));
    assert!(status.pod_ip.is_some());
    let conditions: Vec<_> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(
            conditions.contains(&(kind.to_string(), "True".to_string())),
            "{kind}"
        );
    }
    let container = &status.container_statuses.unwrap()[0];
    assert!(container.ready);
    assert!(
        container
            .state
            .as_ref()
            .unwrap()
            .running
            .as_ref()
            .unwrap()
            .started_at
            .is_some()
    );

    assert_eq!(client.list_pods().unwrap().len(), 1);
    let deleted = client.get_pod("default", "p").unwrap().unwrap();
    client.delete_pod(&deleted, 30).unwrap();
    let status = notified.try_recv().unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    let terminated = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 0);
    assert!(client.get_pod("default", "p").unwrap().is_none());
    assert!(client.list_pods().unwrap().is_empty());
}

#[test]
fn pod_ips_are_distinct() {
    let client = client();
    client.create_pod(&pod("a")).unwrap();
    client.create_pod(&pod("b")).unwrap();
    let ip = |name| {
        client
            .get_pod_status("default", name)
            .unwrap()
            .unwrap()
            .pod_ip
            .unwrap()
    };
    assert_ne!(ip("a"), ip("b"));
}

#[test]
fn node_gets_capacity_conditions_and_addresses() {
    let node = client().configure_node(&Node::default()).unwrap();
    let status = node.status.unwrap();
    assert_eq!(status.capacity.unwrap()["cpu"].0, "20");
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(status.addresses.unwrap()[0].address, "192.0.2.1");
    assert_eq!(status.node_info.unwrap().operating_system, "linux");
}

#[test]
fn logs_are_deterministic_and_honour_tail_and_limit() {
    let client = client();
    client.create_pod(&pod("p")).unwrap();
    let read = |options: LogOptions| {
        let (sink, buffer) = collector();
        client.container_logs(&options, sink).unwrap();
        text(&buffer)
    };
    let base = LogOptions {
        namespace: "default".into(),
        pod: "p".into(),
        container: "app".into(),
        ..LogOptions::default()
    };
    let all = read(base.clone());
    assert_eq!(all.lines().count(), super::streams::LOG_LINES);
    assert_eq!(all.lines().next(), Some("default/p app line 1"));
    let tail = read(LogOptions {
        tail_lines: Some(2),
        ..base.clone()
    });
    assert_eq!(tail, "default/p app line 9\ndefault/p app line 10\n");
    let limited = read(LogOptions {
        limit_bytes: Some(5),
        ..base.clone()
    });
    assert_eq!(limited, "defau");
    let stamped = read(LogOptions {
        timestamps: true,
        tail_lines: Some(1),
        ..base.clone()
    });
    assert!(stamped.ends_with("Z default/p app line 10\n"), "{stamped}");
    let fraction = stamped
        .split(' ')
        .next()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    assert_eq!(
        fraction.len(),
        "123456789Z".len(),
        "nine fractional digits: {stamped}"
    );
    let missing = client
        .container_logs(
            &LogOptions {
                container: "nope".into(),
                ..base
            },
            collector().0,
        )
        .unwrap_err();
    assert_eq!(missing.kind, vk_abi::ErrorKind::NotFound);
}

#[test]
fn followed_logs_end_when_the_client_goes_away() {
    let client = client();
    client.create_pod(&pod("p")).unwrap();
    let writes = Arc::new(Mutex::new(0));
    let counter = writes.clone();
    let sink = byte_sink(move |_| {
        let mut writes = counter.lock().unwrap();
        *writes += 1;
        if *writes > 11 {
            Err("client went away".into())
        } else {
            Ok(())
        }
    });
    let options = LogOptions {
        namespace: "default".into(),
        pod: "p".into(),
        container: "app".into(),
        follow: true,
        ..LogOptions::default()
    };
    client.container_logs(&options, sink).unwrap();
    assert_eq!(*writes.lock().unwrap(), 12);
}

#[test]
fn builtin_commands() {
    let client = client();
    client.create_pod(&pod("p")).unwrap();
    assert_eq!(
        exec(&client, &["echo", "hello", "world"], b""),
        (0, "hello world\n".into(), String::new())
    );
    assert_eq!(
        exec(&client, &["cat"], b"round trip"),
        (0, "round trip".into(), String::new())
    );
    assert_eq!(exec(&client, &["env"], b"").1, "GREETING=hi\n");
    assert_eq!(exec(&client, &["cat", "/etc/config/key"], b"").1, "value");
    assert_eq!(exec(&client, &["exit", "3"], b"").0, 3);
    assert_eq!(exec(&client, &["sleep", "0.01"], b"").0, 0);
    let (code, _, stderr) = exec(&client, &["nosuch"], b"");
    assert_eq!(
        (code, stderr.as_str()),
        (127, "mock: nosuch: command not found\n")
    );
    let (code, _, stderr) = exec(&client, &["cat", "/etc/missing"], b"");
    assert_eq!(
        (code, stderr.as_str()),
        (1, "cat: /etc/missing: No such file or directory\n")
    );
}

#[test]
fn port_forward_echoes() {
    let client = client();
    client.create_pod(&pod("p")).unwrap();
    let (output, echoed) = collector();
    let chunks = Mutex::new(vec![b"pong".to_vec(), b"ping".to_vec()]);
    let input = byte_source(move || chunks.lock().unwrap().pop().unwrap_or_default());
    let options = PortForwardOptions {
        namespace: "default".into(),
        pod: "p".into(),
        port: 8080,
    };
    client.port_forward(&options, input, output).unwrap();
    assert_eq!(text(&echoed), "pingpong");
}

#[test]
fn stats_cover_every_pod_and_container() {
    let client = client();
    client.create_pod(&pod("a")).unwrap();
    client.create_pod(&pod("b")).unwrap();
    let summary = client.stats_summary().unwrap();
    assert_eq!(summary.node.node_name, "vk");
    assert_eq!(summary.pods.len(), 2);
    let container = &summary.pods[0].containers[0];
    assert!(container.cpu.as_ref().unwrap().usage_nano_cores.unwrap() > 0);
    assert!(
        container
            .memory
            .as_ref()
            .unwrap()
            .working_set_bytes
            .unwrap()
            > 0
    );
    assert!(client.pod_stats("default", "a").unwrap().is_some());
    assert!(client.pod_stats("default", "zzz").unwrap().is_none());
}

#[test]
fn stats_are_taken_at_one_millisecond_instant_for_the_whole_node() {
    let client = client();
    client.create_pod(&pod("a")).unwrap();
    client.create_pod(&pod("b")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let summary = client.stats_summary().unwrap();
    let node = summary.node.cpu.unwrap();
    assert_eq!(node.time.0.subsec_nanosecond() % 1_000_000, 0);
    let pods: Vec<_> = summary
        .pods
        .iter()
        .map(|p| p.cpu.clone().unwrap())
        .collect();
    assert!(pods.iter().all(|cpu| cpu.time == node.time));
    let used: u64 = pods
        .iter()
        .map(|cpu| cpu.usage_core_nano_seconds.unwrap())
        .sum();
    assert_eq!(node.usage_core_nano_seconds, Some(used));
    // 20 ms at 1 to 10 millicores each: the CPU used grows by the nanosecond, not by the second.
    assert!(pods.iter().all(|cpu| cpu.usage_core_nano_seconds > Some(0)));
}

#[test]
fn bad_config_is_refused() {
    let module = vk_abi::export::root_module::<super::MockProvider>("mock", "test");
    let init = ProviderInit {
        config: "{not json".into(),
        node_name: "vk".into(),
        ..ProviderInit::default()
    };
    let error = ProviderClient::new(module, &init).unwrap_err();
    assert_eq!(error.kind, vk_abi::ErrorKind::InvalidInput);
}

#[test]
fn sidecars_run_beside_the_app_and_init_containers_complete() {
    let client = client();
    let mut sidecar_pod = pod("with-sidecar");
    let init = |name: &str, restart_policy: Option<&str>| Container {
        name: name.into(),
        image: Some("busybox".into()),
        restart_policy: restart_policy.map(str::to_string),
        ..Container::default()
    };
    sidecar_pod.pod.spec.as_mut().unwrap().init_containers =
        Some(vec![init("setup", None), init("proxy", Some("Always"))]);
    client.create_pod(&sidecar_pod).unwrap();
    let status = client
        .get_pod_status("default", "with-sidecar")
        .unwrap()
        .unwrap();
    let init = status.init_container_statuses.unwrap();
    let state = |s: &ContainerStatus| s.state.clone().unwrap();
    assert!(state(&init[0]).terminated.is_some(), "{:?}", init[0]);
    assert!(!init[0].ready);
    assert!(state(&init[1]).running.is_some(), "{:?}", init[1]);
    assert!(init[1].ready && init[1].started == Some(true));
}

#[test]
fn a_resize_is_applied_in_place_and_reported() {
    use vk_abi::k8s_openapi::{
        api::core::v1::ResourceRequirements, apimachinery::pkg::api::resource::Quantity,
    };
    let client = client();
    let mut resized = pod("web");
    client.create_pod(&resized).unwrap();
    let reported = |client: &ProviderClient| {
        let status = client.get_pod_status("default", "web").unwrap().unwrap();
        status.container_statuses.unwrap()[0].resources.clone()
    };
    assert_eq!(reported(&client), Some(ResourceRequirements::default()));

    let limits = ResourceRequirements {
        limits: Some([("cpu".to_string(), Quantity("300m".into()))].into()),
        ..ResourceRequirements::default()
    };
    resized.pod.spec.as_mut().unwrap().containers[0].resources = Some(limits.clone());
    client.resize_pod(&resized.pod).unwrap();
    assert_eq!(reported(&client), Some(limits));

    let unknown = client.resize_pod(&pod("gone").pod).unwrap_err();
    assert_eq!(unknown.kind, vk_abi::ErrorKind::NotFound);
}

#[test]
fn a_killed_container_restarts_with_back_off_unless_its_policy_is_never() {
    let client = client();
    client.create_pod(&pod("p")).unwrap();
    let app = |client: &ProviderClient, name: &str| -> (String, ContainerStatus) {
        let status = client.get_pod_status("default", name).unwrap().unwrap();
        let app = status.container_statuses.unwrap()[0].clone();
        (status.phase.unwrap(), app)
    };
    let spec = pod("p").pod;
    client.restart_container(&spec, "app", 30).unwrap();
    let (phase, status) = app(&client, "p");
    assert_eq!(phase, "Running");
    assert_eq!(status.restart_count, 1);
    assert!(
        status.state.unwrap().running.is_some(),
        "the first restart is at once"
    );
    let last = status.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 137);
    assert_eq!(last.container_id.as_deref(), Some("mock://uid-p/app"));
    assert_eq!(status.container_id.as_deref(), Some("mock://uid-p/app/1"));

    client.restart_container(&spec, "app", 30).unwrap();
    let (_, status) = app(&client, "p");
    let waiting = status.state.unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    assert!(!status.ready);

    let mut never = pod("n");
    never.pod.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    client.create_pod(&never).unwrap();
    client.restart_container(&never.pod, "app", 30).unwrap();
    let (phase, status) = app(&client, "n");
    assert_eq!(phase, "Failed");
    assert_eq!(status.state.unwrap().terminated.unwrap().exit_code, 137);
    assert!(client.restart_container(&spec, "nope", 30).is_err());
}

#[test]
fn an_exec_that_outlives_its_time_limit_is_abandoned() {
    let client = client();
    client.create_pod(&pod("p")).unwrap();
    let options = ExecOptions {
        namespace: "default".into(),
        pod: "p".into(),
        container: "app".into(),
        command: vec!["sleep".into(), "5".into()],
        timeout_seconds: Some(1),
        ..ExecOptions::default()
    };
    let started = std::time::Instant::now();
    let error = client.exec(&options, HostStreams::default()).unwrap_err();
    assert_eq!(error.kind, vk_abi::ErrorKind::Unavailable);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}
