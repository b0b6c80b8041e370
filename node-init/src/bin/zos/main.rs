//! `zos`: keys, signing and the deployments of a local node. One file per subcommand.

mod delete;
mod deploy;
mod get;
mod key;
mod logs;
mod node;
mod remote;
mod services;
mod sign;
mod store;
mod upgrade;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "zos",
    about = "Sign blueprints and manage the deployments of a node"
)]
struct Cli {
    /// The node's folder (its API socket is DIR/run/node-init.sock)
    #[arg(long, env = "ZOS_NODE", global = true, value_name = "DIR")]
    node: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Owner keys
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Add your signature to a blueprint file (owners sign in turn)
    Sign(sign::Args),
    /// Submit a blueprint (signing it first with each --key)
    Deploy(deploy::Args),
    /// Show a deployment (passwords redacted)
    Get(get::GetArgs),
    /// List deployments
    List(get::ListArgs),
    /// Delete a deployment (signed with each --key)
    Delete(delete::Args),
    /// Show the node's identity
    Node(node::Args),
    /// Print a service's log (`zos logs storaged`) or a container workload's output
    /// (`zos logs ID WORKLOAD`); -f to follow
    Logs(logs::Args),
    /// The daemons node-init supervises: state, pid, uptime, restarts, readiness, version
    Services(services::Args),
    /// Versions of zos, node-init and the daemons it runs
    Version(services::VersionArgs),
    /// Objects in the storage farm (put, get, ls, rm, status)
    Store(store::StoreArgs),
    /// Upgrade a daemon to a new binary (`--from PATH`), or roll it back (`--rollback`)
    Upgrade(upgrade::Args),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Key(k) => key::run(k),
        Cmd::Sign(a) => sign::run(a),
        Cmd::Deploy(a) => deploy::run(cli.node, a).await,
        Cmd::Get(a) => get::get(cli.node, a).await,
        Cmd::List(a) => get::list(cli.node, a).await,
        Cmd::Delete(a) => delete::run(cli.node, a).await,
        Cmd::Node(a) => node::run(cli.node, a).await,
        Cmd::Logs(a) => logs::run(cli.node, a).await,
        Cmd::Services(a) => services::run(cli.node, a).await,
        Cmd::Version(a) => services::version(cli.node, a).await,
        Cmd::Store(a) => store::run(a).await,
        Cmd::Upgrade(a) => upgrade::run(cli.node, a).await,
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap checks the flag definitions only when parsing: check them here, not in use.
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
