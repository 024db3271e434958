//! ARM long-running operations: after a PUT or DELETE, poll the `Azure-AsyncOperation` URL if
//! ARM gave one, else the `Location` URL, else the resource's own `provisioningState`, waiting
//! `Retry-After` seconds between polls.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::time::Instant;

use crate::{
    answer::{Answer, ArmError, decode, retry_after},
    model::{ContainerGroup, OperationStatus},
};

/// The wait between polls when ARM does not say.
const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// What to poll to learn how an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Already over: the answer was final.
    Done,
    AsyncOperation(String),
    Location(String),
    /// The resource itself (absolute URL).
    Resource(String),
}

/// An operation ARM accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub poll: Poll,
    pub wait: Duration,
}

impl Operation {
    /// The operation that `answer` (to a PUT or DELETE of `resource_url`) started.
    pub fn started(answer: &Answer, resource_url: String) -> Self {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let poll = if let Some(url) = header("azure-asyncoperation") {
            Poll::AsyncOperation(url)
        } else if let Some(url) = header("location") {
            Poll::Location(url)
        } else if answer.status == StatusCode::OK && final_state(&answer.body).is_some() {
            Poll::Done
        } else {
            Poll::Resource(resource_url)
        };
        Operation {
            poll,
            wait: retry_after(&answer.headers).unwrap_or(DEFAULT_POLL),
        }
    }

    /// Follows a create or update of `path` until it ends or `patience` runs out (then the
    /// caller learns the outcome from later status polls), polling with `get` (the ARM client's
    /// GET of an absolute URL). A failed provisioning is an error.
    pub async fn follow(
        self,
        get: impl AsyncFn(&str) -> Result<Answer, ArmError>,
        path: &str,
        patience: Duration,
    ) -> Result<(), ArmError> {
        self.run(get, path, patience, false).await
    }

    /// Follows a delete the same way; the resource being gone is success.
    pub async fn follow_deletion(
        self,
        get: impl AsyncFn(&str) -> Result<Answer, ArmError>,
        path: &str,
        patience: Duration,
    ) -> Result<(), ArmError> {
        self.run(get, path, patience, true).await
    }

    async fn run(
        mut self,
        get: impl AsyncFn(&str) -> Result<Answer, ArmError>,
        path: &str,
        patience: Duration,
        deleting: bool,
    ) -> Result<(), ArmError> {
        let deadline = Instant::now() + patience;
        let failed = |message: String| ArmError::Operation {
            path: path.to_string(),
            message,
        };
        loop {
            let url = match &self.poll {
                Poll::Done => return Ok(()),
                Poll::AsyncOperation(url) | Poll::Location(url) | Poll::Resource(url) => {
                    url.clone()
                }
            };
            let now = Instant::now();
            if now + self.wait > deadline {
                return Ok(());
            }
            tokio::time::sleep(self.wait).await;
            let answer = match get(&url).await {
                Err(error) if deleting && error.is_not_found() => return Ok(()),
                Err(error) if matches!(self.poll, Poll::Location(_)) => {
                    // An error status from the Location URL is the operation's failure.
                    return Err(failed(error.to_string()));
                }
                other => other?,
            };
            if let Some(wait) = retry_after(&answer.headers) {
                self.wait = wait;
            }
            match &self.poll {
                Poll::AsyncOperation(_) => {
                    let status: OperationStatus = decode(&url, &answer.body)?;
                    match status.status.as_str() {
                        "Succeeded" => return Ok(()),
                        "Failed" | "Canceled" => {
                            let why = status
                                .error
                                .map_or_else(|| status.status.clone(), |e| e.to_string());
                            return Err(failed(why));
                        }
                        _ => {}
                    }
                }
                Poll::Location(_) => {
                    if answer.status != StatusCode::ACCEPTED {
                        return match final_state(&answer.body) {
                            Some(state) if !deleting && state != "Succeeded" => {
                                Err(failed(format!("provisioning ended {state}")))
                            }
                            _ => Ok(()),
                        };
                    }
                }
                Poll::Resource(_) => match final_state(&answer.body) {
                    Some(state) if deleting => {
                        return Err(failed(format!("the group is {state}, not deleted")));
                    }
                    Some(state) if state != "Succeeded" => {
                        return Err(failed(format!("provisioning ended {state}")));
                    }
                    Some(_) => return Ok(()),
                    None => {}
                },
                Poll::Done => return Ok(()),
            }
        }
    }
}

/// The group's `provisioningState` in `body`, if it is terminal.
fn final_state(body: &[u8]) -> Option<String> {
    let group: ContainerGroup = serde_json::from_slice(body).ok()?;
    group
        .properties
        .provisioning_state
        .filter(|state| matches!(state.as_str(), "Succeeded" | "Failed" | "Canceled"))
}

#[cfg(test)]
mod tests;
