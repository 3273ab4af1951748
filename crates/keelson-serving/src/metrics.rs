//! Serving metrics in Prometheus text format: per endpoint and deployment request counts by
//! outcome, mirrored requests, a latency histogram, in-flight requests, queue depth and the
//! configured traffic share.

use crate::collector::DataCollector;
use crate::endpoint::LiveEndpoint;
use crate::stats::{LATENCY_BUCKETS, OUTCOMES};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(endpoints: &[Arc<LiveEndpoint>], collector: Option<&DataCollector>, out: &mut String) {
    if let Some(collector) = collector {
        let counters = &collector.counters;
        let _ =
            writeln!(out, "# HELP keelson_serving_collector_records_total Collected records, by what became of them.");
        let _ = writeln!(out, "# TYPE keelson_serving_collector_records_total counter");
        for (result, counter) in
            [("offered", &counters.offered), ("written", &counters.written), ("dropped", &counters.dropped)]
        {
            let _ = writeln!(
                out,
                "keelson_serving_collector_records_total{{result=\"{result}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP keelson_serving_collector_files_total Files the collector wrote.");
        let _ = writeln!(out, "# TYPE keelson_serving_collector_files_total counter");
        let _ = writeln!(out, "keelson_serving_collector_files_total {}", counters.files.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP keelson_serving_collector_write_failures_total Collector files that could not be written (their records are lost)."
        );
        let _ = writeln!(out, "# TYPE keelson_serving_collector_write_failures_total counter");
        let _ = writeln!(
            out,
            "keelson_serving_collector_write_failures_total {}",
            counters.write_failures.load(Ordering::Relaxed)
        );
    }
    let series: Vec<(String, &Arc<crate::deployment::Deployment>, u32)> = endpoints
        .iter()
        .flat_map(|endpoint| {
            endpoint.deployments.values().map(move |d| {
                let labels = format!("endpoint=\"{}\",deployment=\"{}\"", escape(&endpoint.name), escape(&d.name));
                (labels, d, endpoint.config.traffic.get(&d.name).copied().unwrap_or(0))
            })
        })
        .collect();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    family(
        out,
        "keelson_serving_requests_total",
        "counter",
        "Live inference requests, by endpoint, deployment and outcome.",
    );
    for (labels, d, _) in &series {
        for (outcome, count) in OUTCOMES.iter().zip(d.stats.outcome_counts()) {
            let _ = writeln!(out, "keelson_serving_requests_total{{{labels},outcome=\"{outcome}\"}} {count}");
        }
    }
    family(
        out,
        "keelson_serving_mirrored_requests_total",
        "counter",
        "Mirrored copies computed, by endpoint and deployment.",
    );
    for (labels, d, _) in &series {
        let _ = writeln!(out, "keelson_serving_mirrored_requests_total{{{labels}}} {}", d.stats.mirrored());
    }
    family(
        out,
        "keelson_serving_request_duration_seconds",
        "histogram",
        "Live inference latency inside the deployment.",
    );
    for (labels, d, _) in &series {
        let (buckets, sum) = d.stats.latency();
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "keelson_serving_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += buckets[LATENCY_BUCKETS.len()];
        let _ = writeln!(out, "keelson_serving_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "keelson_serving_request_duration_seconds_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "keelson_serving_request_duration_seconds_count{{{labels}}} {cumulative}");
    }
    family(out, "keelson_serving_in_flight_requests", "gauge", "Requests being handled, mirrored copies included.");
    for (labels, d, _) in &series {
        let _ = writeln!(out, "keelson_serving_in_flight_requests{{{labels}}} {}", d.stats.in_flight());
    }
    family(out, "keelson_serving_queue_depth", "gauge", "Requests waiting for a replica.");
    for (labels, d, _) in &series {
        let _ = writeln!(out, "keelson_serving_queue_depth{{{labels}}} {}", d.queue_depth());
    }
    family(out, "keelson_serving_traffic_percent", "gauge", "Configured share of live traffic.");
    for (labels, _, share) in &series {
        let _ = writeln!(out, "keelson_serving_traffic_percent{{{labels}}} {share}");
    }
}
