//! `bus`: call any method of a daemon and watch its events, for operators.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "bus",
    about = "Call methods and watch events on the node's local bus"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Call METHOD (`name` or `name@version`) with JSON parameters and print the reply.
    Call {
        /// Socket path, e.g. /run/zos/storaged.sock
        socket: PathBuf,
        /// Method, e.g. storage.disk.list@1 or health
        method: String,
        /// Parameters as JSON (default `{}`)
        params: Option<String>,
        /// Reply timeout in seconds
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Print events (one JSON object per line) whose topic starts with TOPIC (default: all).
    Watch {
        /// Socket path
        socket: PathBuf,
        /// Topic filter, e.g. storage or storage.zdb
        topic: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Call {
            socket,
            method,
            params,
            timeout,
        } => {
            let (name, version) = bus::parse_method(&method)?;
            let params: serde_json::Value = match params {
                Some(p) => serde_json::from_str(&p).context("parameters are not valid JSON")?,
                None => serde_json::json!({}),
            };
            let client = bus::Client::new(socket).call_timeout(Duration::from_secs(timeout));
            let reply = client.call_raw(&name, version, params).await?;
            println!("{}", serde_json::to_string_pretty(&reply)?);
        }
        Cmd::Watch { socket, topic } => {
            let client = bus::Client::new(socket);
            let mut sub = client.subscribe(topic.as_deref().unwrap_or("")).await?;
            while let Some(ev) = sub.next().await? {
                println!("{}", serde_json::to_string(&ev)?);
            }
            eprintln!("{} ended the event stream", client.service());
        }
    }
    Ok(())
}
