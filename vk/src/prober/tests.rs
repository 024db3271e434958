use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ExecAction, PodSpec,
};

use super::{
    termination::{self, tail_bytes},
    worker::{Kind, Streak, Timing},
    *,
};

fn probe() -> k8s_openapi::api::core::v1::Probe {
    k8s_openapi::api::core::v1::Probe {
        exec: Some(ExecAction {
            command: Some(vec!["true".into()]),
        }),
        ..Default::default()
    }
}

fn pod(containers: Vec<Container>) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: kube::api::ObjectMeta {
            namespace: Some("ns".into()),
            name: Some("p".into()),
            uid: Some("u1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers,
            ..PodSpec::default()
        }),
        status: None,
    })
}

fn running(name: &str, id: &str, ready: bool) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        container_id: Some(id.into()),
        ready,
        started: Some(true),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning { started_at: None }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn ready_status(statuses: Vec<ContainerStatus>) -> PodStatus {
    let condition = |kind: &str| PodCondition {
        type_: kind.into(),
        status: "True".into(),
        ..PodCondition::default()
    };
    PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![condition("ContainersReady"), condition("Ready")]),
        container_statuses: Some(statuses),
        ..PodStatus::default()
    }
}

fn condition<'a>(status: &'a PodStatus, kind: &str) -> &'a PodCondition {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind)
        .unwrap()
}

#[test]
fn probe_fields_default_as_in_the_api() {
    let timing = Timing::of(&probe(), Kind::Readiness);
    assert_eq!(
        timing,
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    );
    let mut liveness = probe();
    liveness.success_threshold = Some(3);
    liveness.failure_threshold = Some(2);
    let timing = Timing::of(&liveness, Kind::Liveness);
    assert_eq!((timing.success_threshold, timing.failure_threshold), (1, 2));
    assert_eq!(Timing::of(&liveness, Kind::Readiness).success_threshold, 3);
}

#[test]
fn a_result_is_published_at_its_threshold_of_consecutive_results() {
    let timing = Timing {
        success_threshold: 2,
        failure_threshold: 3,
        ..Timing::of(&probe(), Kind::Readiness)
    };
    let mut streak = Streak::default();
    assert_eq!(streak.count(false, &timing), None);
    assert_eq!(streak.count(false, &timing), None);
    // A success breaks the failures' run.
    assert_eq!(streak.count(true, &timing), None);
    assert_eq!(streak.count(false, &timing), None);
    assert_eq!(streak.count(false, &timing), None);
    assert_eq!(streak.count(false, &timing), Some(false));
    assert_eq!(streak.count(false, &timing), Some(false));
    assert_eq!(streak.count(true, &timing), None);
    assert_eq!(streak.count(true, &timing), Some(true));
}

#[test]
fn readiness_results_decide_ready_and_the_conditions() {
    let probed = Container {
        name: "app".into(),
        readiness_probe: Some(probe()),
        ..Container::default()
    };
    let plain = Container {
        name: "side".into(),
        ..Container::default()
    };
    let pod = pod(vec![probed, plain]);
    let mut followed = Followed::new("u1".into(), pod);
    let reported = ready_status(vec![
        running("app", "c1", true),
        running("side", "c2", true),
    ]);
    assert_eq!(followed.track_instances(&reported), ["app", "side"]);

    // A new instance is not ready until its readiness probe succeeds.
    let mut status = reported.clone();
    lay_over(&followed.containers, &mut status);
    let statuses = status.container_statuses.as_ref().unwrap();
    assert!(!statuses[0].ready);
    assert!(
        statuses[1].ready,
        "a container without probes keeps its own readiness"
    );
    let ready = condition(&status, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [app]")
    );
    assert_eq!(condition(&status, "ContainersReady").status, "False");

    followed.containers.get_mut("app").unwrap().ready = true;
    let mut status = reported.clone();
    lay_over(&followed.containers, &mut status);
    assert!(status.container_statuses.as_ref().unwrap()[0].ready);
    assert_eq!(condition(&status, "Ready").status, "True");

    // A restarted container (a new ID) starts over, not ready.
    let restarted = ready_status(vec![
        running("app", "c3", true),
        running("side", "c2", true),
    ]);
    assert!(
        followed
            .track_instances(&restarted)
            .contains(&"app".to_string())
    );
    assert!(!followed.containers["app"].ready);
}

#[test]
fn a_startup_probe_holds_started_and_ready() {
    let container = Container {
        name: "app".into(),
        startup_probe: Some(probe()),
        ..Container::default()
    };
    let mut followed = Followed::new("u1".into(), pod(vec![container]));
    let reported = ready_status(vec![running("app", "c1", true)]);
    followed.track_instances(&reported);
    let mut status = reported.clone();
    lay_over(&followed.containers, &mut status);
    let app = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!((app.started, app.ready), (Some(false), false));

    followed.containers.get_mut("app").unwrap().startup = Some(true);
    let mut status = reported;
    lay_over(&followed.containers, &mut status);
    let app = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!((app.started, app.ready), (Some(true), true));
}

#[test]
fn a_finished_pod_keeps_its_conditions() {
    let container = Container {
        name: "app".into(),
        readiness_probe: Some(probe()),
        ..Container::default()
    };
    let followed = Followed::new("u1".into(), pod(vec![container]));
    let mut status = ready_status(vec![running("app", "c1", false)]);
    status.phase = Some("Succeeded".into());
    lay_over(&followed.containers, &mut status);
    assert_eq!(condition(&status, "Ready").status, "True");
}

#[test]
fn messages_are_cut_to_the_pods_share_of_12_kib() {
    let containers = (0..3)
        .map(|i| Container {
            name: format!("c{i}"),
            ..Container::default()
        })
        .collect();
    let pod = pod(containers);
    let terminated = |message: String| ContainerStatus {
        name: "c0".into(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 1,
                message: Some(message),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    };
    let mut status = PodStatus {
        container_statuses: Some(vec![terminated("é".repeat(5000))]),
        ..PodStatus::default()
    };
    assert!(termination::has_messages(&status), "a message to cut");
    limit_messages(&pod, &mut status);
    let state = status.container_statuses.unwrap()[0].state.clone().unwrap();
    let message = state.terminated.unwrap().message.unwrap();
    assert_eq!(message.len(), 4096, "12 KiB / 3 containers");
    let running = PodStatus {
        container_statuses: Some(vec![running("c0", "docker://c0", true)]),
        ..PodStatus::default()
    };
    assert!(!termination::has_messages(&running), "nothing to cut");
}

#[test]
fn log_messages_fill_in_empty_messages_only() {
    let mut messages = HashMap::new();
    messages.insert("docker://c1".to_string(), "panic: oops".to_string());
    let terminated = |message: Option<&str>| PodStatus {
        container_statuses: Some(vec![ContainerStatus {
            name: "app".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 2,
                    container_id: Some("docker://c1".into()),
                    message: message.map(String::from),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]),
        ..PodStatus::default()
    };
    let message = |status: PodStatus| {
        status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
            .message
    };
    let mut status = terminated(None);
    termination::fill_in(&messages, &mut status);
    assert_eq!(message(status).as_deref(), Some("panic: oops"));
    let mut status = terminated(Some("from the file"));
    termination::fill_in(&messages, &mut status);
    assert_eq!(message(status).as_deref(), Some("from the file"));
    assert_eq!(tail_bytes(b"abcdef", 3), "def");
    assert_eq!(tail_bytes(b"ab", 3), "ab");
}
