//! The emulated container groups: what was PUT, and how the groups live on. A group is
//! `Creating` until its start time, then `Running` with every container running; tests make
//! containers exit, and the restart policy decides what follows.
//!
//! Containers keep events as ACI's instance views list them (`Pulling` on creation, `Pulled` and
//! `Started` when the group runs, `Terminated` on an exit, a warning unless the code is 0); a
//! repeat updates its entry's `count` and `lastTimestamp`. ACI seldom lists events on the group
//! itself: tests add them.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// One container's life.
#[derive(Debug, Clone)]
pub struct ContainerLife {
    pub name: String,
    pub state: &'static str,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub exit_code: Option<i32>,
    pub restarts: i32,
    pub previous: Option<Value>,
    pub log: Vec<(Timestamp, String)>,
    pub events: Vec<Value>,
}

/// A container group as the emulator keeps it.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// The body as PUT, secrets included (ARM keeps them; GET leaves them out).
    pub body: Value,
    pub ip: Option<String>,
    pub ready_at: Instant,
    pub provisioning: &'static str,
    pub containers: Vec<ContainerLife>,
    pub events: Vec<Value>,
}

/// Adds an event (`type` Normal or Warning) to `events`, or counts a repeat of one with the
/// same name and message.
pub fn record(events: &mut Vec<Value>, name: &str, message: &str, kind: &str) {
    let now = Timestamp::now().to_string();
    match (events.iter_mut()).find(|e| e["name"] == name && e["message"] == message) {
        Some(known) => {
            known["count"] = json!(known["count"].as_i64().unwrap_or(1) + 1);
            known["lastTimestamp"] = json!(now);
        }
        _ => events.push(json!({
            "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "name": name, "message": message, "type": kind,
        })),
    }
}

impl Group {
    pub fn new(id: String, name: String, body: Value, ip: Option<String>, delay: Duration) -> Self {
        let containers = body["properties"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let image = c["properties"]["image"].as_str().unwrap_or_default();
                let mut events = Vec::new();
                record(
                    &mut events,
                    "Pulling",
                    &format!("pulling image \"{image}\""),
                    "Normal",
                );
                ContainerLife {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    state: "Waiting",
                    started: None,
                    finished: None,
                    exit_code: None,
                    restarts: 0,
                    previous: None,
                    log: Vec::new(),
                    events,
                }
            })
            .collect();
        Group {
            id,
            name,
            body,
            ip,
            ready_at: Instant::now() + delay,
            provisioning: "Creating",
            containers,
            events: Vec::new(),
        }
    }

    fn image(&self, container: &str) -> String {
        self.container_body(container)["properties"]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The container's part of the PUT body.
    pub fn container_body(&self, container: &str) -> &Value {
        self.body["properties"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == container)
            .unwrap_or(&Value::Null)
    }

    fn restart_policy(&self) -> &str {
        self.body["properties"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
    }

    /// Moves the group on to where time has brought it.
    pub fn advance(&mut self) {
        if self.provisioning != "Creating" || Instant::now() < self.ready_at {
            return;
        }
        self.provisioning = "Succeeded";
        let now = Timestamp::now();
        for index in 0..self.containers.len() {
            let name = self.containers[index].name.clone();
            let image = self.image(&name);
            let container = &mut self.containers[index];
            container.state = "Running";
            container.started = Some(now);
            container
                .log
                .push((now, format!("container {name} started from {image}")));
            let pulled = format!("Successfully pulled image \"{image}\"");
            record(&mut container.events, "Pulled", &pulled, "Normal");
            record(
                &mut container.events,
                "Started",
                "Started container",
                "Normal",
            );
        }
    }

    /// The container exits with `code`; the restart policy may start it again.
    pub fn exit(&mut self, container: &str, code: i32) -> bool {
        let restart = match self.restart_policy() {
            "Always" => true,
            "OnFailure" => code != 0,
            _ => false,
        };
        let Some(life) = self.containers.iter_mut().find(|c| c.name == container) else {
            return false;
        };
        let now = Timestamp::now();
        life.log.push((now, format!("exiting with code {code}")));
        let ended = format!("Container {container} terminated with exit code {code}");
        let kind = if code == 0 { "Normal" } else { "Warning" };
        record(&mut life.events, "Terminated", &ended, kind);
        let terminated = json!({
            "state": "Terminated",
            "exitCode": code,
            "startTime": life.started.map(|t| t.to_string()),
            "finishTime": now.to_string(),
            "detailStatus": if code == 0 { "Completed" } else { "Error" },
        });
        if restart {
            life.previous = Some(terminated);
            life.restarts += 1;
            life.started = Some(now);
            life.state = "Running";
            record(&mut life.events, "Started", "Started container", "Normal");
        } else {
            life.state = "Terminated";
            life.exit_code = Some(code);
            life.finished = Some(now);
        }
        true
    }

    /// The group's instance state, from its containers.
    fn instance_state(&self) -> &'static str {
        if self.provisioning != "Succeeded" {
            return "Pending";
        }
        if self.containers.iter().all(|c| c.state == "Terminated") {
            if self.containers.iter().all(|c| c.exit_code == Some(0)) {
                "Succeeded"
            } else {
                "Failed"
            }
        } else {
            "Running"
        }
    }

    fn container_view(&self, life: &ContainerLife) -> Value {
        let current = match life.state {
            "Running" => json!({
                "state": "Running",
                "startTime": life.started.map(|t| t.to_string()),
                "detailStatus": "",
            }),
            "Terminated" => json!({
                "state": "Terminated",
                "exitCode": life.exit_code,
                "startTime": life.started.map(|t| t.to_string()),
                "finishTime": life.finished.map(|t| t.to_string()),
                "detailStatus": if life.exit_code == Some(0) { "Completed" } else { "Error" },
            }),
            _ => json!({ "state": "Waiting", "detailStatus": "" }),
        };
        let mut view = json!({
            "restartCount": life.restarts,
            "currentState": current,
            "events": life.events,
        });
        if let Some(previous) = &life.previous {
            view["previousState"] = previous.clone();
        }
        view
    }

    /// The group as GET answers: server fields, instance views, no secrets.
    pub fn view(&self, with_instance_view: bool) -> Value {
        let mut body = self.body.clone();
        body["id"] = json!(self.id);
        body["name"] = json!(self.name);
        body["type"] = json!("Microsoft.ContainerInstance/containerGroups");
        let properties = &mut body["properties"];
        properties["provisioningState"] = json!(self.provisioning);
        if let (Some(ip), Some(address)) = (&self.ip, properties.get_mut("ipAddress")) {
            address["ip"] = json!(ip);
        }
        // `get_mut`, not indexing: indexing a missing key would add it as null.
        for credential in properties
            .get_mut("imageRegistryCredentials")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            credential.as_object_mut().map(|c| c.remove("password"));
        }
        for volume in properties
            .get_mut("volumes")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(file) = volume.get_mut("azureFile").and_then(Value::as_object_mut) {
                file.remove("storageAccountKey");
            }
        }
        let views: BTreeMap<String, Value> = self
            .containers
            .iter()
            .map(|life| (life.name.clone(), self.container_view(life)))
            .collect();
        for container in properties["containers"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for variable in container["properties"]
                .get_mut("environmentVariables")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                variable.as_object_mut().map(|v| v.remove("secureValue"));
            }
            if with_instance_view {
                let name = container["name"].as_str().unwrap_or_default().to_string();
                container["properties"]["instanceView"] = views[&name].clone();
            }
        }
        if with_instance_view {
            properties["instanceView"] = json!({
                "state": self.instance_state(),
                "events": self.events,
            });
        }
        body
    }
}

#[cfg(test)]
mod tests;
