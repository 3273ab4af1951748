//! HTTP request metrics in Prometheus text format (exposition format 0.0.4), labelled by route
//! template, method and status so cardinality stays bounded.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label value for requests that matched no route, so scanners cannot grow the label set.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<SeriesKey, Series>>,
    /// Mutating calls whose audit record could not be written.
    pub audit_failures: std::sync::atomic::AtomicU64,
}

impl HttpMetrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = SeriesKey { method: method.to_string(), route: route.to_string(), status };
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        let mut series = self.series.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = series.entry(key).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        entry.buckets[bucket] += 1;
    }

    /// Appends the HTTP families to `out`.
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        out.push_str(
            "# HELP keelson_http_requests_total HTTP requests handled, by route template, method and status.\n",
        );
        out.push_str("# TYPE keelson_http_requests_total counter\n");
        for (key, s) in &series {
            let _ = writeln!(out, "keelson_http_requests_total{{{}}} {}", labels(key), s.count);
        }
        out.push_str("# HELP keelson_http_request_duration_seconds HTTP request latency, by route template, method and status.\n");
        out.push_str("# TYPE keelson_http_request_duration_seconds histogram\n");
        for (key, s) in &series {
            let labels = labels(key);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i];
                let _ = writeln!(
                    out,
                    "keelson_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += s.buckets[BUCKETS.len()];
            let _ = writeln!(out, "keelson_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
            let _ = writeln!(out, "keelson_http_request_duration_seconds_sum{{{labels}}} {}", s.sum_seconds);
            let _ = writeln!(out, "keelson_http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        drop(series);
        out.push_str(
            "# HELP keelson_audit_write_failures_total Mutating calls whose audit record could not be written.\n",
        );
        out.push_str("# TYPE keelson_audit_write_failures_total counter\n");
        let failures = self.audit_failures.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "keelson_audit_write_failures_total {failures}");
    }
}

fn labels(key: &SeriesKey) -> String {
    format!("method=\"{}\",route=\"{}\",status=\"{}\"", escape_label(&key.method), escape_label(&key.route), key.status)
}

/// Prometheus label escaping: backslash, double quote and newline.
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware: times every request and records it under its route template.
pub async fn record(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_string());
    let response = next.run(request).await;
    metrics.observe(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let metrics = HttpMetrics::default();
        metrics.observe("GET", "/a/{id}", 200, 0.0001);
        metrics.observe("GET", "/a/{id}", 200, 0.003);
        metrics.observe("GET", "/a/{id}", 200, 60.0);
        let mut out = String::new();
        metrics.render(&mut out);
        let labels = "method=\"GET\",route=\"/a/{id}\",status=\"200\"";
        assert!(out.contains(&format!("keelson_http_requests_total{{{labels}}} 3\n")), "{out}");
        assert!(out.contains(&format!("_bucket{{{labels},le=\"0.0005\"}} 1\n")), "{out}");
        assert!(out.contains(&format!("_bucket{{{labels},le=\"0.005\"}} 2\n")), "{out}");
        assert!(out.contains(&format!("_bucket{{{labels},le=\"10\"}} 2\n")), "{out}");
        assert!(out.contains(&format!("_bucket{{{labels},le=\"+Inf\"}} 3\n")), "{out}");
        assert!(out.contains(&format!("_count{{{labels}}} 3\n")), "{out}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
