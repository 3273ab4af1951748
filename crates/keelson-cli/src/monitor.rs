//! `keelson monitor …`: drift reports between dataset versions and monitors on a running server,
//! with exit statuses CI/CD pipelines can gate on.

use crate::cli::{MonitorArgs, MonitorCommand};
use crate::client::{segment, ApiClient};
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

/// Exit status when `--fail-on-drift` / `--fail-on-alert` finds what it looks for.
const FOUND: u8 = 3;

pub async fn run(args: MonitorArgs) -> ExitCode {
    match execute(args).await {
        Ok(found) if found => ExitCode::from(FOUND),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// `NAME` (newest version) or `NAME:VERSION`.
fn dataset_ref(text: &str) -> Result<Value> {
    match text.rsplit_once(':') {
        Some((name, version)) => {
            let version: i64 = version
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| anyhow!("`{text}`: the version after `:` must be a positive number"))?;
            Ok(json!({"dataset": name, "version": version}))
        }
        None => Ok(json!({"dataset": text})),
    }
}

/// A YAML or JSON file (JSON is YAML) as a JSON value; `-` reads standard input.
fn read_spec(path: &Path, what: &str) -> Result<Value> {
    use std::io::Read;
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("the {what} is not YAML or JSON"))?;
    serde_json::to_value(value).with_context(|| format!("the {what} cannot be written as JSON"))
}

fn score(value: &Value) -> String {
    value.as_f64().map(|v| format!("{v:.6}")).unwrap_or_else(|| "—".into())
}

fn print_drift(drift: &Value) {
    println!("{:<24} {:<12} {:<18} {:>12} {:>10}  verdict", "column", "kind", "method", "score", "threshold");
    for column in drift["columns"].as_array().into_iter().flatten() {
        let verdict = match (column["not_computable"].as_str(), column["drifted"].as_bool()) {
            (Some(reason), _) => format!("not computable: {reason}"),
            (None, Some(true)) => "DRIFT".into(),
            _ => "ok".into(),
        };
        println!(
            "{:<24} {:<12} {:<18} {:>12} {:>10}  {verdict}",
            column["column"].as_str().unwrap_or_default(),
            column["kind"].as_str().unwrap_or_default(),
            column["method"].as_str().unwrap_or_default(),
            score(&column["score"]),
            score(&column["threshold"]),
        );
    }
    println!(
        "{} of {} columns drifted (share {:.3}; the dataset drifts at {}): {}",
        drift["drifted"],
        drift["compared"],
        drift["share"].as_f64().unwrap_or_default(),
        drift["drift_share"],
        if drift["dataset_drift"].as_bool() == Some(true) { "DATASET DRIFT" } else { "no dataset drift" }
    );
}

async fn execute(args: MonitorArgs) -> Result<bool> {
    let client = ApiClient::new(&args.server, args.token)?;
    match args.command {
        MonitorCommand::Report { reference, current, options, json, html, fail_on_drift } => {
            let options = match options {
                Some(path) => read_spec(&path, "options file")?,
                None => json!({}),
            };
            let body =
                json!({"reference": dataset_ref(&reference)?, "current": dataset_ref(&current)?, "options": options});
            let answer = client.post("/api/v1/monitoring/reports", &body).await?;
            let report = &answer["report"];
            print_drift(&report["drift"]);
            let id = report["id"].as_str().unwrap_or_default();
            println!("report {id}");
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(report)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if let Some(path) = html {
                let page = client.download(&format!("/api/v1/monitoring/reports/{}/html", segment(id))).await?;
                std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(fail_on_drift && report["drift"]["dataset_drift"].as_bool() == Some(true))
        }
        MonitorCommand::Create { spec } => {
            let answer = client.post("/api/v1/monitors", &read_spec(&spec, "monitor spec")?).await?;
            println!("{}", serde_json::to_string_pretty(&answer["monitor"])?);
            Ok(false)
        }
        MonitorCommand::Update { spec } => {
            let spec = read_spec(&spec, "monitor spec")?;
            let name = spec["name"].as_str().ok_or_else(|| anyhow!("the monitor spec has no `name`"))?.to_string();
            let answer = client.put(&format!("/api/v1/monitors/{}", segment(&name)), &spec).await?;
            println!("{}", serde_json::to_string_pretty(&answer["monitor"])?);
            Ok(false)
        }
        MonitorCommand::List => {
            let answer = client.get("/api/v1/monitors", &[]).await?;
            for monitor in answer["monitors"].as_array().into_iter().flatten() {
                println!(
                    "{:<32} enabled={} last_report={} last_error={}",
                    monitor["name"].as_str().unwrap_or_default(),
                    monitor["enabled"],
                    monitor["last_report"].as_str().unwrap_or("-"),
                    monitor["last_error"].as_str().unwrap_or("-")
                );
            }
            Ok(false)
        }
        MonitorCommand::Run { name, fail_on_alert } => {
            let outcome = client.post(&format!("/api/v1/monitors/{}/run", segment(&name)), &json!({})).await?;
            let mut failed = false;
            for test in outcome["tests"].as_array().into_iter().flatten() {
                let passed = test["passed"].as_bool() == Some(true);
                failed |= !passed;
                println!(
                    "{:<6} {:<40} {:>12}  {}",
                    if passed { "pass" } else { "FAIL" },
                    test["rule"].as_str().unwrap_or_default(),
                    score(&test["value"]),
                    test["condition"].as_str().unwrap_or_default()
                );
            }
            println!("report {}", outcome["report"]["id"].as_str().unwrap_or_default());
            if let Some(job) = outcome["triggered_job"].as_str() {
                println!("triggered job {job}");
            }
            Ok(fail_on_alert && failed)
        }
        MonitorCommand::Alerts { monitor, status } => {
            let mut query = Vec::new();
            if let Some(monitor) = monitor {
                query.push(("monitor", monitor));
            }
            if let Some(status) = status {
                query.push(("status", status));
            }
            let answer = client.get("/api/v1/monitoring/alerts", &query).await?;
            println!("{}", serde_json::to_string_pretty(&answer["alerts"])?);
            Ok(false)
        }
    }
}
