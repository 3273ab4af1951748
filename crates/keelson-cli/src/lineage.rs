//! `keelson lineage …`: the lineage graph on a running server.

use crate::cli::{LineageArgs, LineageCommand};
use crate::client::{exit_code, ApiClient};
use anyhow::Result;
use std::process::ExitCode;

pub async fn run(args: LineageArgs) -> ExitCode {
    exit_code(execute(args).await)
}

async fn execute(args: LineageArgs) -> Result<()> {
    let client = ApiClient::new(&args.server, args.token)?;
    match args.command {
        LineageCommand::Show { node_id, upstream, downstream, depth } => {
            let direction = match (upstream, downstream) {
                (true, _) => "upstream",
                (_, true) => "downstream",
                _ => "both",
            };
            let query = [("nodeId", node_id), ("depth", depth.to_string()), ("direction", direction.to_string())];
            let answer = client.get("/api/v1/lineage", &query).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
    }
    Ok(())
}
