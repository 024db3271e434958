use serde_json::{Value, json};

use super::*;

fn cpu(extra: Value) -> Value {
    let mut cpu = json!({"bench-client": 0.5, "vk": 0.75, "wall": 2.6, "cores": 2});
    cpu.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    cpu
}

fn ceiling_file() -> Value {
    json!({
        "kind": "ceiling", "pods": 100, "concurrency": 50, "method": "plain client",
        "creates_per_second": 850.123, "status_patches_per_second": 1200.0,
        "deletes_per_second": null,
        "failures": {"create": 0, "patch": 1, "delete": 0},
        "cpu_seconds_create": cpu(json!({})),
        "cpu_seconds_patch": cpu(json!({"machine_busy": 3.0, "machine_niced": 0.0, "other_processes": 0.3})),
        "cpu_seconds_delete": cpu(json!({})),
        "loadavg_before": "0.1 0.2 0.3", "unix_time": 1700000000.5,
    })
}

#[test]
fn a_result_file_reads_and_writes_back_unchanged() {
    let file = ceiling_file();
    let Measured::Ceiling(ceiling) = serde_json::from_value(file.clone()).unwrap() else {
        panic!("a ceiling file read as a run");
    };
    assert_eq!(ceiling.deletes_per_second, None);
    assert_eq!(ceiling.failures.patch, 1);
    assert_eq!(ceiling.cpu_seconds_patch.processes.len(), 2);
    assert_eq!(ceiling.cpu_seconds_patch.machine_busy, Some(3.0));
    assert_eq!(
        serde_json::to_value(Measured::Ceiling(ceiling)).unwrap(),
        file
    );
}

#[test]
fn a_ceiling_with_token_requests_reads_and_writes_back_unchanged() {
    let mut file = ceiling_file();
    file["token_requests_per_second"] = json!(900.5);
    file["failures"]["token"] = json!(2);
    file["cpu_seconds_token"] = cpu(json!({}));
    let Measured::Ceiling(ceiling) = serde_json::from_value(file.clone()).unwrap() else {
        panic!("a ceiling file read as a run");
    };
    assert_eq!(ceiling.token_requests_per_second, Some(900.5));
    assert_eq!(ceiling.failures.token, Some(2));
    assert_eq!(
        serde_json::to_value(Measured::Ceiling(ceiling)).unwrap(),
        file
    );
}

#[test]
fn cpu_figures_list_processes_and_machine_by_name_without_cores() {
    let cpu: CpuSeconds = serde_json::from_value(cpu(json!({"machine_busy": 3.0}))).unwrap();
    assert_eq!(
        cpu.seconds().into_iter().collect::<Vec<_>>(),
        [
            ("bench-client", 0.5),
            ("machine_busy", 3.0),
            ("vk", 0.75),
            ("wall", 2.6)
        ]
    );
}
