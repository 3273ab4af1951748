//! `keelson model …`: registry governance commands against a running server.

use crate::cli::{CatalogArgs, CatalogCommand, ModelArgs, ModelCommand};
use crate::client::{exit_code, read_json_file, segment, ApiClient};
use anyhow::Result;
use serde_json::{json, Value};
use std::process::ExitCode;

pub async fn run(args: ModelArgs) -> ExitCode {
    exit_code(execute(args).await)
}

async fn execute(args: ModelArgs) -> Result<()> {
    let client = ApiClient::new(&args.server, args.token)?;
    match args.command {
        ModelCommand::SetAlias { name, alias, version, reason } => {
            let path = format!("/api/v1/models/{}/aliases/{}", segment(&name), segment(&alias));
            client.put(&path, &json!({ "version": version, "reason": reason })).await?;
            println!("{name}@{alias} -> version {version}");
        }
        ModelCommand::Rollback { name, alias } => {
            let path = format!("/api/v1/models/{}/aliases/{}/rollback", segment(&name), segment(&alias));
            let answer = client.post(&path, &json!({})).await?;
            let event = &answer["event"];
            println!(
                "{name}@{alias} rolled back: version {} -> version {}",
                event["from_version"].as_str().unwrap_or("?"),
                event["to_version"].as_str().unwrap_or("?")
            );
        }
        ModelCommand::History { name, alias } => {
            let path = format!("/api/v1/models/{}/alias-history", segment(&name));
            let query: Vec<(&str, String)> = alias.map(|a| ("alias", a)).into_iter().collect();
            let answer = client.get(&path, &query).await?;
            for event in answer["events"].as_array().into_iter().flatten() {
                println!(
                    "{:>6}  {}  {:<12} {:>6} -> {:<6} by {:<12} {}",
                    event["id"],
                    keelson_core::time::format_rfc3339_ms(event["timestamp"].as_i64().unwrap_or(0)),
                    event["alias"].as_str().unwrap_or(""),
                    event["from_version"].as_str().unwrap_or("-"),
                    event["to_version"].as_str().unwrap_or("-"),
                    event["actor"].as_str().unwrap_or(""),
                    event["reason"].as_str().unwrap_or("")
                );
            }
        }
        ModelCommand::SetPolicy { name, alias, file } => {
            let policy = read_json_file(&file, "policy file")?;
            let path = format!("/api/v1/models/{}/aliases/{}/policy", segment(&name), segment(&alias));
            let answer = client.put(&path, &policy).await?;
            println!("{}", serde_json::to_string_pretty(&answer["policy"])?);
        }
        ModelCommand::Policy { name, alias } => {
            let path = format!("/api/v1/models/{}/aliases/{}/policy", segment(&name), segment(&alias));
            let answer = client.get(&path, &[]).await?;
            println!("{}", serde_json::to_string_pretty(&answer["policy"])?);
        }
        ModelCommand::Approve { name, version, alias, comment } => {
            let path = format!("/api/v1/models/{}/versions/{}/approvals", segment(&name), segment(&version));
            let answer = client.post(&path, &json!({ "alias": alias, "comment": comment })).await?;
            let approval = &answer["approval"];
            println!(
                "approved {name} version {version} for '{alias}' as {} (roles: {})",
                approval["approver"].as_str().unwrap_or("?"),
                approval["roles"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            );
        }
        ModelCommand::Lineage { name, version, json } => {
            let path = format!("/api/v1/models/{}/versions/{}/lineage", segment(&name), segment(&version));
            let answer = client.get(&path, &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_tree(&answer["lineage"], "", true, None);
            }
        }
        ModelCommand::Export { model, dir } => crate::package::export(&client, &model, &dir).await?,
        ModelCommand::Import { dir, name } => crate::package::import(&client, &dir, name.as_deref()).await?,
    }
    Ok(())
}

/// Prints a lineage node (`{label, detail, children}`) and its children as a tree.
fn print_tree(node: &Value, prefix: &str, last: bool, branch: Option<&str>) {
    let label = node["label"].as_str().unwrap_or("?");
    let detail = node["detail"].as_str().map(|d| format!("  {d}")).unwrap_or_default();
    match branch {
        None => println!("{label}{detail}"),
        Some(_) => println!("{prefix}{}{label}{detail}", if last { "└── " } else { "├── " }),
    }
    let children = node["children"].as_array().cloned().unwrap_or_default();
    let child_prefix = match branch {
        None => String::new(),
        Some(_) => format!("{prefix}{}", if last { "    " } else { "│   " }),
    };
    for (i, child) in children.iter().enumerate() {
        print_tree(child, &child_prefix, i + 1 == children.len(), Some(label));
    }
}

pub async fn run_catalog(args: CatalogArgs) -> ExitCode {
    exit_code(catalog(args).await)
}

async fn catalog(args: CatalogArgs) -> Result<()> {
    let client = ApiClient::new(&args.server, args.token)?;
    match args.command {
        CatalogCommand::List { all } => {
            let query = if all { vec![("include_removed", "true".to_string())] } else { Vec::new() };
            let answer = client.get("/api/v1/catalog/models", &query).await?;
            for model in answer["models"].as_array().into_iter().flatten() {
                let price = model["price"]
                    .as_object()
                    .map(|p| {
                        format!(
                            "{}/{} {} per 1k",
                            p["input_per_1k"],
                            p["output_per_1k"],
                            p["currency"].as_str().unwrap_or("")
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<36} {:<18} {:<14} ctx {:<8} {:<28} {:<8} {}",
                    model["id"].as_str().unwrap_or(""),
                    model["provider"].as_str().unwrap_or(""),
                    model["task"].as_str().unwrap_or(""),
                    model["context_length"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                    price,
                    model["status"].as_str().unwrap_or(""),
                    model["source"].as_str().unwrap_or("")
                );
            }
        }
        CatalogCommand::Sync { source, location } => {
            let answer =
                client.post("/api/v1/catalog/sync", &json!({ "source": source, "location": location })).await?;
            for report in answer["reports"].as_array().into_iter().flatten() {
                let list = |key: &str| {
                    report[key]
                        .as_array()
                        .map(|v| v.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                };
                println!(
                    "{}: added [{}] changed [{}] removed [{}] unchanged {}",
                    report["source"].as_str().unwrap_or(""),
                    list("added"),
                    list("changed"),
                    list("removed"),
                    report["unchanged"]
                );
            }
        }
    }
    Ok(())
}
