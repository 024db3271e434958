use k8s_openapi::jiff::Timestamp;
use vk_abi::stats::{ContainerStats, NodeStats, PodReference, PodStats};

use super::*;

fn at(second: i64) -> Time {
    Time(Timestamp::from_second(second).unwrap())
}

fn cpu(nanos: u64) -> Option<CpuStats> {
    Some(CpuStats {
        time: at(1_700_000_000),
        usage_nano_cores: Some(1),
        usage_core_nano_seconds: Some(nanos),
    })
}

fn memory(bytes: u64) -> Option<MemoryStats> {
    Some(MemoryStats {
        time: at(1_700_000_000),
        available_bytes: None,
        usage_bytes: None,
        working_set_bytes: Some(bytes),
        rss_bytes: None,
    })
}

#[test]
fn series_carry_labels_timestamps_and_never_zero() {
    let summary = Summary {
        node: NodeStats {
            node_name: "vk".into(),
            start_time: None,
            cpu: cpu(2_000_000_000),
            memory: memory(1024),
        },
        pods: vec![PodStats {
            pod_ref: PodReference {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u".into(),
            },
            start_time: None,
            containers: vec![ContainerStats {
                name: "c".into(),
                start_time: Some(at(1_600_000_000)),
                cpu: cpu(0),
                memory: memory(0),
            }],
            cpu: cpu(0),
            memory: memory(0),
        }],
    };
    let text = render(Some(&summary));
    assert!(text.contains("# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 2 1700000000000\n"), "{text}");
    assert!(text.contains(r#"container_cpu_usage_seconds_total{container="c",namespace="ns",pod="p"} 0.000000001 1700000000000"#), "{text}");
    assert!(text.contains(r#"container_memory_working_set_bytes{container="c",namespace="ns",pod="p"} 1 1700000000000"#), "{text}");
    assert!(
        text.contains(
            r#"container_start_time_seconds{container="c",namespace="ns",pod="p"} 1600000000"#
        ),
        "{text}"
    );
    assert!(text.contains("resource_scrape_error 0\n"), "{text}");
}

#[test]
fn a_failed_collection_says_so() {
    assert_eq!(
        render(None),
        "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n"
    );
}
