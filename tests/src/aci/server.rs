//! The emulator's HTTP side: AAD's token endpoint and ARM's container group operations.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{Emulator, GroupKey, Operation, Recorded, Session, State, groups::Group};

const API_VERSION: &str = "2026-05-01";

pub async fn serve(state: Arc<State>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An answer being built: status, headers, JSON body.
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    fn empty(status: StatusCode) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: None,
        }
    }
    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::json(
            status,
            json!({ "error": { "code": code, "message": message.into() } }),
        )
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (answer, recorded_body) = if segments.len() == 3 && segments[1..] == ["oauth2", "token"] {
        token(state, &method, segments[0], &bytes)
    } else {
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer = arm(
            state,
            &method,
            &segments,
            &query,
            authorization.as_deref(),
            &body,
        );
        (answer, body)
    };
    state.lock().requests.push(Recorded {
        method: method.to_string(),
        path,
        query,
        body: recorded_body,
        status: answer.status.as_u16(),
    });
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    let body = match &answer.body {
        Some(value) => {
            response = response.header("content-type", "application/json; charset=utf-8");
            Bytes::from(serde_json::to_vec(value).expect("JSON"))
        }
        None => Bytes::new(),
    };
    response.body(Full::new(body)).expect("a response")
}

/// AAD v1 client credentials: `expires_in` and friends as strings, as AAD v1 sends them. The
/// recorded body leaves the secret out.
fn token(state: &State, method: &Method, tenant: &str, body: &[u8]) -> (Answer, Value) {
    let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let recorded = json!({
        "grant_type": field("grant_type"),
        "client_id": field("client_id"),
        "resource": field("resource"),
    });
    let refuse = |status, error: &str, description: &str| {
        Answer::json(
            status,
            json!({ "error": error, "error_description": description, "error_codes": [7000215] }),
        )
    };
    let answer = if *method != Method::POST || field("grant_type") != "client_credentials" {
        refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: only client_credentials",
        )
    } else if tenant != Emulator::TENANT {
        refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found.",
        )
    } else if field("client_id") != Emulator::CLIENT_ID
        || field("client_secret") != Emulator::CLIENT_SECRET
    {
        refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        )
    } else {
        let mut inner = state.lock();
        let token = format!("token-{}", inner.next_id());
        inner.tokens.insert(token.clone());
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        Answer::json(
            StatusCode::OK,
            json!({
                "token_type": "Bearer",
                "expires_in": "3599",
                "ext_expires_in": "3599",
                "expires_on": (now + 3599).to_string(),
                "not_before": now.to_string(),
                "resource": field("resource"),
                "access_token": token,
            }),
        )
    };
    (answer, recorded)
}

/// Whether a segment is the literal `word` (ARM paths are case-insensitive).
fn is(segment: Option<&&str>, word: &str) -> bool {
    segment.is_some_and(|s| s.eq_ignore_ascii_case(word))
}

fn arm(
    state: &State,
    method: &Method,
    segments: &[&str],
    query: &BTreeMap<String, String>,
    authorization: Option<&str>,
    body: &Value,
) -> Answer {
    let mut inner = state.lock();
    let token = authorization.and_then(|a| a.strip_prefix("Bearer "));
    if !token.is_some_and(|t| inner.tokens.contains(t)) {
        return Answer::error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
    }
    if inner.throttle > 0 {
        inner.throttle -= 1;
        inner.throttled += 1;
        return Answer::error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "The request is throttled. Retry after 1 second.",
        )
        .header("retry-after", "1");
    }
    if query.get("api-version").map(String::as_str) != Some(API_VERSION) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{}' is invalid. The supported version is '{API_VERSION}'.",
                query.get("api-version").map(String::as_str).unwrap_or("")
            ),
        );
    }
    inner.sweep();
    drop(inner);
    if segments.first() == Some(&"operations") && segments.len() == 2 && *method == Method::GET {
        return operation(state, segments[1]);
    }
    let shape_ok = segments.len() >= 7
        && is(segments.first(), "subscriptions")
        && is(segments.get(2), "resourceGroups")
        && is(segments.get(4), "providers")
        && is(segments.get(5), "Microsoft.ContainerInstance")
        && is(segments.get(6), "containerGroups");
    if !shape_ok || segments[1] != Emulator::SUBSCRIPTION {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            "no such resource type",
        );
    }
    let rg = segments[3].to_string();
    match (&segments[7..], method.clone()) {
        ([], Method::GET) => list(state, &rg, query),
        ([name], Method::PUT) => put(state, (rg, name.to_string()), body, segments),
        ([name], Method::GET) => get(state, &(rg, name.to_string())),
        ([name], Method::DELETE) => delete(state, (rg, name.to_string())),
        ([name, containers, container, "logs"], Method::GET) if *containers == "containers" => {
            logs(state, &(rg, name.to_string()), container, query)
        }
        ([name, containers, container, "exec"], Method::POST) if *containers == "containers" => {
            exec(state, (rg, name.to_string()), container, body)
        }
        _ => Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not an operation of this emulator",
        ),
    }
}

fn not_found(name: &str) -> Answer {
    Answer::error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' under resource group was not found."
        ),
    )
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn put(state: &State, key: GroupKey, body: &Value, segments: &[&str]) -> Answer {
    let problems = state.spec.validate("ContainerGroup", body);
    if !problems.is_empty() {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid: {}", problems.join("; ")),
        );
    }
    if !valid_name(&key.1) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "InvalidContainerGroupName",
            format!("The container group name '{}' is invalid.", key.1),
        );
    }
    let mut inner = state.lock();
    if let Some(group) = inner.groups.get_mut(&key) {
        group.body = body.clone();
        return Answer::json(StatusCode::OK, group.view(true));
    }
    let id = format!("/{}", segments.join("/"));
    let number = inner.next_id();
    let ip = body["properties"]["ipAddress"].is_object().then(|| {
        format!(
            "10.{}.{}.{}",
            number / 65536 % 256,
            number / 256 % 256,
            number % 256
        )
    });
    let delay = inner.lro_delay;
    let group = Group::new(id, key.1.clone(), body.clone(), ip, delay);
    let view = group.view(true);
    let operation = format!("op-{}", inner.next_id());
    inner.operations.insert(
        operation.clone(),
        Operation {
            key: key.clone(),
            done_at: Instant::now() + delay,
            deleting: false,
        },
    );
    inner.groups.insert(key, group);
    Answer::json(StatusCode::CREATED, view)
        .header(
            "location",
            format!(
                "{}/operations/{operation}?api-version={API_VERSION}",
                state.base
            ),
        )
        .header("retry-after", "1")
}

fn get(state: &State, key: &GroupKey) -> Answer {
    match state.lock().groups.get(key) {
        Some(group) => Answer::json(StatusCode::OK, group.view(true)),
        None => not_found(&key.1),
    }
}

/// A page of `ListResultContainerGroup`s (no instance view), `$skipToken` being the offset.
fn list(state: &State, rg: &str, query: &BTreeMap<String, String>) -> Answer {
    let inner = state.lock();
    let all: Vec<&Group> = inner
        .groups
        .iter()
        .filter(|((group_rg, _), _)| group_rg == rg)
        .map(|(_, g)| g)
        .collect();
    let skip: usize = query
        .get("$skipToken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(Emulator::PAGE_SIZE)
        .map(|g| g.view(false))
        .collect();
    let mut body = json!({ "value": page });
    if skip + Emulator::PAGE_SIZE < all.len() {
        body["nextLink"] = json!(format!(
            "{}/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups?api-version={API_VERSION}&$skipToken={}",
            state.base,
            Emulator::SUBSCRIPTION,
            skip + Emulator::PAGE_SIZE
        ));
    }
    Answer::json(StatusCode::OK, body)
}

fn delete(state: &State, key: GroupKey) -> Answer {
    let mut inner = state.lock();
    let delay = inner.lro_delay;
    let Some(group) = inner.groups.get_mut(&key) else {
        return Answer::empty(StatusCode::NO_CONTENT);
    };
    if delay.is_zero() {
        let view = group.view(false);
        inner.groups.remove(&key);
        return Answer::json(StatusCode::OK, view);
    }
    group.provisioning = "Deleting";
    let operation = format!("op-{}", inner.next_id());
    inner.operations.insert(
        operation.clone(),
        Operation {
            key,
            done_at: Instant::now() + delay,
            deleting: true,
        },
    );
    Answer::empty(StatusCode::ACCEPTED)
        .header(
            "location",
            format!(
                "{}/operations/{operation}?api-version={API_VERSION}",
                state.base
            ),
        )
        .header("retry-after", "1")
}

/// A `Location` poll: 202 while running; then the group (create) or 204 (delete).
fn operation(state: &State, id: &str) -> Answer {
    let inner = state.lock();
    let Some(op) = inner.operations.get(id) else {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            "no such operation",
        );
    };
    if Instant::now() < op.done_at {
        return Answer::empty(StatusCode::ACCEPTED).header("retry-after", "1");
    }
    match inner.groups.get(&op.key) {
        Some(group) if !op.deleting => Answer::json(StatusCode::OK, group.view(true)),
        _ => Answer::empty(StatusCode::NO_CONTENT),
    }
}

fn logs(
    state: &State,
    key: &GroupKey,
    container: &str,
    query: &BTreeMap<String, String>,
) -> Answer {
    let inner = state.lock();
    let Some(group) = inner.groups.get(key) else {
        return not_found(&key.1);
    };
    let Some(life) = group.containers.iter().find(|c| c.name == container) else {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            format!("container {container} not found"),
        );
    };
    let timestamps = query.get("timestamps").is_some_and(|t| t == "true");
    let tail: usize = query
        .get("tail")
        .and_then(|t| t.parse().ok())
        .unwrap_or(usize::MAX);
    let skip = life.log.len().saturating_sub(tail);
    let content: String = life.log[skip..]
        .iter()
        .map(|(time, line)| {
            if timestamps {
                format!("{time} {line}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    Answer::json(StatusCode::OK, json!({ "content": content }))
}

fn exec(state: &State, key: GroupKey, container: &str, body: &Value) -> Answer {
    let problems = state.spec.validate("ContainerExecRequest", body);
    if !problems.is_empty() {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            problems.join("; "),
        );
    }
    let mut inner = state.lock();
    let running = inner.groups.get(&key).map(|g| {
        g.containers
            .iter()
            .any(|c| c.name == container && c.state == "Running")
    });
    match running {
        None => return not_found(&key.1),
        Some(false) => {
            return Answer::error(
                StatusCode::CONFLICT,
                "ContainerGroupNotRunning",
                format!("container {container} is not running"),
            );
        }
        Some(true) => {}
    }
    let id = inner.next_id();
    let session = format!("session-{id}");
    let password = format!("password-{id}-{}", id * 7919);
    inner.sessions.insert(
        session.clone(),
        Session {
            key,
            container: container.to_string(),
            command: body["command"].as_str().unwrap_or_default().to_string(),
            password: password.clone(),
        },
    );
    Answer::json(
        StatusCode::OK,
        json!({ "webSocketUri": format!("{}/exec/{session}", state.ws_base), "password": password }),
    )
}
