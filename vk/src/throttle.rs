//! The request rate of vk's API client, adapted to the API server's answers: at most
//! `--kube-api-qps` requests per second (bursts of `--kube-api-burst`), halved whenever the
//! API server answers 429 Too Many Requests (API Priority and Fairness rejecting, or the
//! max-in-flight limit), with every request held back for the `Retry-After` it gives, then
//! raised again by one request per second for each answer that is not a 429. So the flags are
//! ceilings, not a fixed low cap: vk goes as fast as the API server lets it.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response, StatusCode};
use parking_lot::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::metrics::METRICS;

/// The rate is never halved below this many requests per second.
const MIN_RATE: f64 = 5.0;
/// A Retry-After longer than this is cut to it (the API server asks for 1 s).
const MAX_PAUSE: Duration = Duration::from_secs(10);
/// The pause when a 429 gives no Retry-After.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests;

/// A token bucket whose rate follows the API server's answers; shared by clones.
#[derive(Debug)]
pub struct Throttle {
    ceiling: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    /// Nothing is sent before then (a 429's Retry-After).
    paused_until: Option<Instant>,
}

impl Throttle {
    pub fn new(qps: f64, burst: u32) -> Arc<Self> {
        let burst = f64::from(burst.max(1));
        Arc::new(Throttle {
            ceiling: qps,
            burst,
            state: Mutex::new(State {
                rate: qps,
                tokens: burst,
                refilled: Instant::now(),
                paused_until: None,
            }),
        })
    }

    /// Takes a token for one request, or says how long to wait for one.
    fn try_acquire(&self) -> Result<(), Duration> {
        let mut state = self.state.lock();
        let now = Instant::now();
        if let Some(until) = state.paused_until.filter(|until| *until > now) {
            return Err(until - now);
        }
        state.paused_until = None;
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * state.rate).min(self.burst);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - state.tokens) / state.rate))
        }
    }

    /// Waits until a request may be sent.
    #[cfg(test)]
    async fn acquire(&self) {
        while let Err(wait) = self.try_acquire() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Learns from one answer: a 429 halves the rate and pauses for its Retry-After; any other
    /// answer raises the rate towards the ceiling.
    pub fn observe(&self, status: StatusCode, retry_after: Option<Duration>) {
        let mut state = self.state.lock();
        if status == StatusCode::TOO_MANY_REQUESTS {
            METRICS.throttled_requests.inc();
            state.rate = (state.rate / 2.0).max(MIN_RATE.min(self.ceiling));
            state.tokens = state.tokens.min(1.0);
            let pause = retry_after.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE);
            let until = Instant::now() + pause;
            if state.paused_until.is_none_or(|current| current < until) {
                state.paused_until = Some(until);
            }
        } else {
            state.rate = (state.rate + 1.0).min(self.ceiling);
        }
        METRICS.request_rate.set(state.rate as i64);
    }

    #[cfg(test)]
    fn rate(&self) -> f64 {
        self.state.lock().rate
    }
}

/// The [`Throttle`] as a tower layer of the client.
#[derive(Debug, Clone)]
pub struct ThrottleLayer(pub Arc<Throttle>);

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttled<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Throttled {
            inner,
            throttle: self.0.clone(),
            waiting: None,
            permitted: false,
        }
    }
}

/// The client's service behind the [`Throttle`]: not ready until a request may be sent.
#[derive(Debug)]
pub struct Throttled<S> {
    inner: S,
    throttle: Arc<Throttle>,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A token is taken for the next call.
    permitted: bool,
}

impl<S, B, R> Service<Request<B>> for Throttled<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while !self.permitted {
            if let Some(waiting) = &mut self.waiting {
                std::task::ready!(waiting.as_mut().poll(cx));
                self.waiting = None;
            }
            match self.throttle.try_acquire() {
                Ok(()) => self.permitted = true,
                Err(wait) => self.waiting = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.permitted = false;
        let answer = self.inner.call(request);
        let throttle = self.throttle.clone();
        Box::pin(async move {
            let response = answer.await?;
            throttle.observe(response.status(), retry_after(&response));
            Ok(response)
        })
    }
}

/// A response's `Retry-After` in seconds.
fn retry_after<R>(response: &Response<R>) -> Option<Duration> {
    let seconds = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}
