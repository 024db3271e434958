//! vk's own Prometheus metrics (`/metrics`): provider calls, API requests, lease renewals, and
//! at scrape time pods by phase and the sync queue's depth.

use std::sync::LazyLock;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub call: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallName {
    pub call: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub request: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Every metric vk exports.
#[derive(Debug)]
pub struct Metrics {
    pub provider_calls: Family<CallLabels, Counter>,
    pub provider_call_seconds: Family<CallName, Histogram>,
    pub api_requests: Family<RequestLabels, Counter>,
    pub lease_renewals: Family<OutcomeLabels, Counter>,
    pub pods: Family<PhaseLabels, Gauge>,
    pub queue_depth: Gauge,
    pub status_backlog: Gauge,
    pub throttled_requests: Counter,
    pub request_rate: Gauge,
    registry: Registry,
}

fn call_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0])
}

impl Metrics {
    fn new() -> Self {
        let provider_calls = Family::<CallLabels, Counter>::default();
        let provider_call_seconds = Family::<CallName, Histogram>::new_with_constructor(
            call_histogram as fn() -> Histogram,
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        let lease_renewals = Family::<OutcomeLabels, Counter>::default();
        let pods = Family::<PhaseLabels, Gauge>::default();
        let queue_depth = Gauge::default();
        let status_backlog = Gauge::default();
        let throttled_requests = Counter::default();
        let request_rate = Gauge::default();
        let mut registry = Registry::with_prefix("vk");
        registry.register(
            "provider_calls",
            "Provider calls by call and outcome",
            provider_calls.clone(),
        );
        registry.register(
            "provider_call_seconds",
            "Latency of provider calls",
            provider_call_seconds.clone(),
        );
        registry.register(
            "api_requests",
            "Kubernetes API requests by request and outcome",
            api_requests.clone(),
        );
        registry.register(
            "lease_renewals",
            "Node lease renewals by outcome",
            lease_renewals.clone(),
        );
        registry.register("pods", "Pods bound to this node by phase", pods.clone());
        registry.register(
            "pod_sync_queue_depth",
            "Pods waiting to be synced",
            queue_depth.clone(),
        );
        registry.register(
            "pod_status_backlog",
            "Pod statuses waiting to be written",
            status_backlog.clone(),
        );
        registry.register(
            "api_throttled_requests",
            "API requests answered 429 Too Many Requests",
            throttled_requests.clone(),
        );
        registry.register(
            "api_request_rate",
            "Requests per second the API client allows itself now (at most --kube-api-qps)",
            request_rate.clone(),
        );
        Metrics {
            provider_calls,
            provider_call_seconds,
            api_requests,
            lease_renewals,
            pods,
            queue_depth,
            status_backlog,
            throttled_requests,
            request_rate,
            registry,
        }
    }

    /// Counts one Kubernetes API request.
    pub fn api_request<T, E>(&self, request: &'static str, result: &Result<T, E>) {
        let outcome = if result.is_ok() { "success" } else { "error" };
        self.api_requests
            .get_or_create(&RequestLabels { request, outcome })
            .inc();
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
