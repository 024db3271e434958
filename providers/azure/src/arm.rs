//! The ARM client of the resource group's container groups: bearer tokens, retries of 429 and
//! 5xx answers (after `Retry-After`, else with jittered exponential back-off), ARM error bodies
//! turned into messages, and long-running operations followed to their end.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};

pub use crate::answer::{Answer, ArmError};
use crate::{
    answer::{decode, display_path, retry_after, status_error},
    auth::{AuthError, TokenSource},
    model::{
        API_VERSION, ContainerGroup, ExecRequest, ExecResponse, GroupList, Logs, TerminalSize,
    },
    operation::Operation,
};

/// How hard to insist on throttled or failing calls.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: ARM's `Retry-After` when given (capped), else
    /// full jitter over an exponential step.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let step = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        step.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// The container groups of one resource group.
#[derive(Debug, Clone)]
pub struct Arm {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    tokens: TokenSource,
    groups_path: String,
    retry: RetryPolicy,
}

impl Arm {
    pub fn new(http: reqwest::Client, tokens: TokenSource, resource_group: &str) -> Self {
        let groups_path = format!(
            "subscriptions/{}/resourceGroups/{resource_group}/providers/Microsoft.ContainerInstance/containerGroups",
            tokens.credentials().subscription_id
        );
        Arm {
            inner: Arc::new(Inner {
                http,
                tokens,
                groups_path,
                retry: RetryPolicy::default(),
            }),
        }
    }

    /// Checks that the credentials give a token.
    pub async fn authenticate(&self) -> Result<(), AuthError> {
        self.inner.tokens.token().await.map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.inner.tokens.credentials().resource_manager_endpoint
        )
    }

    fn group_path(&self, name: &str) -> String {
        format!("{}/{name}", self.inner.groups_path)
    }

    /// Sends one request to `url` (absolute), retrying throttling, server errors and a refused
    /// token; any other non-2xx answer is an error.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<Answer, ArmError> {
        let path = display_path(url);
        let retry = self.inner.retry;
        let mut renewed_token = false;
        let mut attempt = 0;
        loop {
            let token = self.inner.tokens.token().await?;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose());
            if !url.contains("api-version=") {
                request = request.query(&[("api-version", API_VERSION)]);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response
                        .bytes()
                        .await
                        .map(|body| Answer {
                            status,
                            headers,
                            body,
                        })
                        .map_err(|source| ArmError::Transport {
                            url: path.clone(),
                            source,
                        })
                }
                Err(source) => Err(ArmError::Transport {
                    url: path.clone(),
                    source,
                }),
            };
            let (error, retry_after) = match outcome {
                Ok(answer) if answer.status.is_success() => return Ok(answer),
                Ok(answer) if answer.status == StatusCode::UNAUTHORIZED && !renewed_token => {
                    // A token revoked or expired early: one fresh token, then ARM's word stands.
                    renewed_token = true;
                    self.inner.tokens.forget().await;
                    continue;
                }
                Ok(answer) => (
                    status_error(&method, &path, &answer),
                    retry_after(&answer.headers),
                ),
                Err(error) => (error, None),
            };
            attempt += 1;
            if !error.is_transient() || attempt >= retry.attempts {
                return Err(error);
            }
            tokio::time::sleep(retry.delay(attempt - 1, retry_after)).await;
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T, ArmError> {
        let answer = self.send(method, &self.url(path), body).await?;
        decode(path, &answer.body)
    }

    /// The group with its instance view; `None` if there is none by that name.
    pub async fn get_group(&self, name: &str) -> Result<Option<ContainerGroup>, ArmError> {
        match self
            .call(Method::GET, &self.group_path(name), None::<&()>)
            .await
        {
            Ok(group) => Ok(Some(group)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every group of the resource group (without instance views), following `nextLink`.
    pub async fn list_groups(&self) -> Result<Vec<ContainerGroup>, ArmError> {
        let mut groups = Vec::new();
        let mut url = self.url(&self.inner.groups_path);
        loop {
            let answer = self.send(Method::GET, &url, None::<&()>).await?;
            let page: GroupList = decode(&url, &answer.body)?;
            groups.extend(page.value);
            match page.next_link {
                Some(next) if !next.is_empty() => url = next,
                _ => return Ok(groups),
            }
        }
    }

    /// How operations poll: a GET of an absolute URL.
    fn poll(&self) -> impl AsyncFn(&str) -> Result<Answer, ArmError> {
        async |url| self.send(Method::GET, url, None::<&()>).await
    }

    /// Creates (or replaces) the group and waits, up to `patience`, for the operation to end.
    pub async fn put_group(
        &self,
        name: &str,
        group: &ContainerGroup,
        patience: Duration,
    ) -> Result<(), ArmError> {
        let path = self.group_path(name);
        let answer = self
            .send(Method::PUT, &self.url(&path), Some(group))
            .await?;
        let operation = Operation::started(&answer, self.url(&path));
        operation.follow(self.poll(), &path, patience).await
    }

    /// Deletes the group and waits, up to `patience`, for the operation to end; false if there
    /// was no such group.
    pub async fn delete_group(&self, name: &str, patience: Duration) -> Result<bool, ArmError> {
        let path = self.group_path(name);
        let answer = match self
            .send(Method::DELETE, &self.url(&path), None::<&()>)
            .await
        {
            Err(error) if error.is_not_found() => return Ok(false),
            other => other?,
        };
        if answer.status == StatusCode::NO_CONTENT {
            return Ok(false);
        }
        let operation = Operation::started(&answer, self.url(&path));
        operation
            .follow_deletion(self.poll(), &path, patience)
            .await?;
        Ok(true)
    }

    /// A container's log; the last `tail` lines when given.
    pub async fn logs(
        &self,
        group: &str,
        container: &str,
        tail: Option<i64>,
        timestamps: bool,
    ) -> Result<String, ArmError> {
        let mut path = format!(
            "{}/containers/{container}/logs?api-version={API_VERSION}&timestamps={timestamps}",
            self.group_path(group)
        );
        if let Some(tail) = tail.filter(|t| *t > 0) {
            path.push_str(&format!("&tail={tail}"));
        }
        let logs: Logs = self.call(Method::GET, &path, None::<&()>).await?;
        Ok(logs.content)
    }

    /// Starts an exec session; the answer holds the web socket's URI and password.
    pub async fn exec(
        &self,
        group: &str,
        container: &str,
        command: String,
        terminal_size: TerminalSize,
    ) -> Result<ExecResponse, ArmError> {
        let path = format!("{}/containers/{container}/exec", self.group_path(group));
        let request = ExecRequest {
            command,
            terminal_size,
        };
        self.call(Method::POST, &path, Some(&request)).await
    }
}

#[cfg(test)]
mod tests;
