//! `keelson endpoint …`: online endpoints on a running server.

use crate::cli::{EndpointArgs, EndpointCommand};
use crate::client::{exit_code, read_json_file, segment, ApiClient};
use anyhow::{anyhow, Result};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::process::ExitCode;

pub async fn run(args: EndpointArgs) -> ExitCode {
    exit_code(execute(args).await)
}

async fn execute(args: EndpointArgs) -> Result<()> {
    let client = ApiClient::new(&args.server, args.token)?;
    let base = |name: &str| format!("/api/v1/endpoints/{}", segment(name));
    match args.command {
        EndpointCommand::List => {
            let answer = client.get("/api/v1/endpoints", &[]).await?;
            for endpoint in answer["endpoints"].as_array().into_iter().flatten() {
                println!(
                    "{:<32} {:>2} deployments  traffic {}",
                    endpoint["name"].as_str().unwrap_or(""),
                    endpoint["deployments"].as_array().map_or(0, Vec::len),
                    shares_text(&endpoint["traffic"])
                );
            }
        }
        EndpointCommand::Show { name } => {
            println!("{}", serde_json::to_string_pretty(&client.get(&base(&name), &[]).await?)?);
        }
        EndpointCommand::Create { name, description } => {
            client.post("/api/v1/endpoints", &json!({ "name": name, "description": description })).await?;
            println!("endpoint {name} created");
        }
        EndpointCommand::Deploy { name, deployment, file } => {
            let spec = read_json_file(&file, "deployment spec")?;
            let path = format!("{}/deployments/{}", base(&name), segment(&deployment));
            let answer = client.put(&path, &spec).await?;
            println!(
                "{name}/{deployment} ready: {} ({})",
                answer["execution"].as_str().unwrap_or(""),
                answer["runtime"].as_str().unwrap_or("")
            );
        }
        EndpointCommand::Traffic { name, shares, mirror, reason } => {
            let mut body = json!({ "traffic": parse_shares(&shares)? });
            if !mirror.is_empty() {
                body["mirror"] = parse_shares(&mirror)?;
            }
            if let Some(reason) = reason {
                body["reason"] = Value::String(reason);
            }
            let answer = client.call(Method::PUT, &format!("{}/traffic", base(&name)), &[], Some(&body)).await?;
            println!("{name}: traffic {}  mirror {}", shares_text(&answer["traffic"]), shares_text(&answer["mirror"]));
        }
        EndpointCommand::Rollback { name } => {
            let answer = client.post(&format!("{}/rollback", base(&name)), &json!({})).await?;
            println!("{name} rolled back: traffic {}", shares_text(&answer["traffic"]));
        }
        EndpointCommand::History { name, limit } => {
            let answer = client.get(&format!("{}/history", base(&name)), &[("limit", limit.to_string())]).await?;
            for change in answer["changes"].as_array().into_iter().flatten() {
                println!(
                    "{:>6}  {}  {} -> {}  by {}: {}",
                    change["id"],
                    keelson_core::time::format_rfc3339_ms(change["timestamp"].as_i64().unwrap_or(0)),
                    shares_text(&change["before"]["traffic"]),
                    shares_text(&change["after"]["traffic"]),
                    change["actor"].as_str().unwrap_or(""),
                    change["reason"].as_str().unwrap_or("")
                );
            }
        }
        EndpointCommand::Rollout { name, file } => {
            let spec = read_json_file(&file, "rollout spec")?;
            let answer = client.post(&format!("{}/rollouts", base(&name)), &spec).await?;
            println!(
                "rollout {} of {name} started: {} at {}%",
                answer["id"],
                answer["spec"]["canary"].as_str().unwrap_or(""),
                answer["weight"]
            );
        }
        EndpointCommand::AbortRollout { name } => {
            let answer = client.post(&format!("{}/rollouts/abort", base(&name)), &json!({})).await?;
            println!("rollout {} of {name} aborted", answer["id"]);
        }
    }
    Ok(())
}

/// `name=share` arguments as a JSON object of shares.
fn parse_shares(shares: &[String]) -> Result<Value> {
    let mut map = Map::new();
    for share in shares {
        let (name, value) =
            share.split_once('=').ok_or_else(|| anyhow!("`{share}` is not DEPLOYMENT=SHARE, e.g. blue=90"))?;
        let value: u32 = value.parse().map_err(|_| anyhow!("share `{value}` of `{name}` is not a whole number"))?;
        if map.insert(name.to_string(), json!(value)).is_some() {
            return Err(anyhow!("deployment `{name}` is given twice"));
        }
    }
    Ok(Value::Object(map))
}

fn shares_text(shares: &Value) -> String {
    let parts: Vec<String> =
        shares.as_object().into_iter().flatten().map(|(name, share)| format!("{name}={share}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shares_parse_and_mistakes_are_named() {
        assert_eq!(parse_shares(&["blue=90".into(), "green=10".into()]).unwrap(), json!({"blue": 90, "green": 10}));
        assert!(parse_shares(&["blue".into()]).unwrap_err().to_string().contains("DEPLOYMENT=SHARE"));
        assert!(parse_shares(&["blue=x".into()]).unwrap_err().to_string().contains("not a whole number"));
        assert!(parse_shares(&["a=1".into(), "a=2".into()]).unwrap_err().to_string().contains("twice"));
    }
}
