//! Reports: what a drift comparison (and, for monitors, each signal's test) found, as JSON and as
//! one self-contained HTML page (inline CSS and SVG charts, no scripts or remote assets), both
//! stored as artifacts under `monitoring/reports/{id}/`.

use crate::drift::{Chart, ColumnDrift, DriftResult};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// Store prefix of reports.
pub const REPORTS_PREFIX: &str = "monitoring/reports";

/// A pass/fail test a monitor ran (a signal against its threshold).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// `data_drift:petal_length`, `quality:null_share:age`, `performance:accuracy` …
    pub rule: String,
    pub signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The condition the value had to meet, e.g. `<= 0.1`.
    pub condition: String,
    pub description: String,
    /// Set when the value is an estimate (performance without labels).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// One report, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: String,
    /// RFC 3339.
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    /// What was compared: `{"dataset": …, "version": …}`, or a traffic window.
    pub reference: Value,
    pub current: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
    /// Further signal values (quality, performance) by name.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub metrics: serde_json::Map<String, Value>,
}

impl Report {
    pub fn json_key(&self) -> String {
        format!("{REPORTS_PREFIX}/{}/report.json", self.id)
    }

    pub fn html_key(&self) -> String {
        format!("{REPORTS_PREFIX}/{}/report.html", self.id)
    }

    /// The headline numbers kept in the metadata store for listing and trends.
    pub fn summary(&self) -> Value {
        let mut summary = serde_json::json!({
            "tests": self.tests.len(),
            "failed_tests": self.tests.iter().filter(|t| !t.passed).count(),
        });
        if let Some(drift) = &self.drift {
            summary["dataset_drift"] = Value::Bool(drift.dataset_drift);
            summary["drifted_columns"] = drift.drifted.into();
            summary["compared_columns"] = drift.compared.into();
            summary["drift_share"] = drift.share.into();
            summary["scores"] = drift
                .columns
                .iter()
                .filter_map(|c| {
                    c.score.map(|s| {
                        (c.column.clone(), serde_json::json!({"score": s, "drifted": c.drifted, "method": c.method}))
                    })
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        summary
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "—".to_string(),
        Some(v) if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// A bar chart of two count series over the same bars, each scaled to shares of its side.
fn svg_chart(labels: &[String], reference: &[u64], current: &[u64]) -> String {
    const WIDTH: f64 = 420.0;
    const HEIGHT: f64 = 120.0;
    let totals = (reference.iter().sum::<u64>().max(1) as f64, current.iter().sum::<u64>().max(1) as f64);
    let shares: Vec<(f64, f64)> =
        reference.iter().zip(current).map(|(r, c)| (*r as f64 / totals.0, *c as f64 / totals.1)).collect();
    let top = shares.iter().map(|(r, c)| r.max(*c)).fold(0.0, f64::max).max(1e-12);
    let slot = WIDTH / shares.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" width=\"{WIDTH}\" height=\"{}\" role=\"img\">",
        HEIGHT + 14.0,
        HEIGHT + 14.0
    );
    for (i, ((r, c), label)) in shares.iter().zip(labels).enumerate() {
        let x = i as f64 * slot;
        for (offset, share, class) in [(0.0, r, "ref"), (slot * 0.45, c, "cur")] {
            let h = share / top * HEIGHT;
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {class} {:.2}%</title></rect>",
                x + offset,
                HEIGHT - h,
                slot * 0.45,
                escape(label),
                share * 100.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn chart_html(column: &ColumnDrift) -> String {
    match &column.chart {
        Some(Chart::Histogram { edges, reference, current }) => {
            let labels: Vec<String> =
                edges.windows(2).map(|w| format!("[{}, {})", number(Some(w[0])), number(Some(w[1])))).collect();
            svg_chart(&labels, reference, current)
        }
        Some(Chart::Categories { categories, reference, current }) => svg_chart(categories, reference, current),
        None => String::new(),
    }
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}\
td,th{border-bottom:1px solid #ddd;padding:.35rem .7rem;text-align:left;vertical-align:top}\
.drift{color:#b00020;font-weight:600}.ok{color:#1b5e20}.chart .ref{fill:#4e79a7}.chart .cur{fill:#f28e2b}\
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}";

/// The report as one HTML page.
pub fn render_html(report: &Report) -> String {
    let mut html = String::new();
    let title = match &report.monitor {
        Some(monitor) => format!("Monitor {monitor}: report {}", report.id),
        None => format!("Drift report {}", report.id),
    };
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(&title),
        escape(&title)
    );
    let _ = write!(
        html,
        "<p>Created {}. Reference: <code>{}</code>. Current: <code>{}</code>.</p>",
        escape(&report.created),
        escape(&report.reference.to_string()),
        escape(&report.current.to_string())
    );
    if !report.tests.is_empty() {
        html.push_str("<h2>Tests</h2><table><tr><th>rule</th><th>result</th><th>value</th><th>condition</th><th>description</th></tr>");
        for test in &report.tests {
            let (class, verdict) = if test.passed { ("ok", "passed") } else { ("drift", "failed") };
            let estimate = if test.estimated { " (estimate)" } else { "" };
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"{class}\">{verdict}</td><td>{}{estimate}</td><td>{}</td><td>{}</td></tr>",
                escape(&test.rule),
                number(test.value),
                escape(&test.condition),
                escape(&test.description)
            );
        }
        html.push_str("</table>");
    }
    if let Some(drift) = &report.drift {
        let verdict = if drift.dataset_drift {
            "<span class=\"drift\">dataset drift</span>"
        } else {
            "<span class=\"ok\">no dataset drift</span>"
        };
        let _ = write!(
            html,
            "<h2>Data drift</h2><p>{verdict}: {} of {} columns drifted ({:.1}%; the dataset drifts at {:.1}%).</p>",
            drift.drifted,
            drift.compared,
            drift.share * 100.0,
            drift.drift_share * 100.0
        );
        html.push_str("<p class=\"legend\"><span style=\"background:#4e79a7\"></span>reference<span style=\"background:#f28e2b\"></span>current</p>");
        html.push_str("<table><tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th><th>drift</th><th>distribution</th></tr>");
        for column in &drift.columns {
            let verdict = match (&column.not_computable, column.drifted) {
                (Some(reason), _) => format!("not computable: {}", escape(reason)),
                (None, true) => "<span class=\"drift\">drifted</span>".to_string(),
                (None, false) => "<span class=\"ok\">no drift</span>".to_string(),
            };
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td></tr>",
                escape(&column.column),
                column.kind,
                column.method.name(),
                number(column.score),
                number(Some(column.threshold)),
                chart_html(column)
            );
        }
        html.push_str("</table>");
        if !drift.skipped.is_empty() {
            html.push_str("<h3>Columns not compared</h3><ul>");
            for (column, why) in &drift.skipped {
                let _ = write!(html, "<li>{}: {}</li>", escape(column), escape(why));
            }
            html.push_str("</ul>");
        }
    }
    if !report.metrics.is_empty() {
        html.push_str("<h2>Metrics</h2><table>");
        for (name, value) in &report.metrics {
            let _ = write!(html, "<tr><td>{}</td><td>{}</td></tr>", escape(name), escape(&value.to_string()));
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{compare_sources, DriftOptions, InMemory};
    use crate::sample::ColumnSample;

    #[test]
    fn the_html_page_is_self_contained_and_escapes_what_users_named() {
        let reference = InMemory(vec![ColumnSample::numeric("<b>x</b>", (0..50).map(|i| Some(i as f64)))]);
        let current = InMemory(vec![ColumnSample::numeric("<b>x</b>", (0..50).map(|i| Some(i as f64 + 25.0)))]);
        let drift = compare_sources(&reference, &current, &DriftOptions::default(), None).unwrap();
        let report = Report {
            id: "r1".into(),
            created: "2026-01-01T00:00:00.000Z".into(),
            monitor: Some("m&m".into()),
            reference: serde_json::json!({"dataset": "a"}),
            current: serde_json::json!({"dataset": "b"}),
            drift: Some(drift),
            tests: vec![],
            metrics: serde_json::Map::new(),
        };
        let html = render_html(&report);
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"));
        assert!(html.contains("m&amp;m"));
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(!html.contains("<script") && !html.contains("src="));
        assert_eq!(report.summary()["drifted_columns"], 1);
        assert_eq!(report.json_key(), "monitoring/reports/r1/report.json");
    }
}
