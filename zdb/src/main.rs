use anyhow::Context;
use clap::Parser;
use zdb::config::{Args, Config};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = if args.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = Config::from_args(&args).map_err(anyhow::Error::msg)?;
    if let Some(zdb::config::Tool::Check { namespaces, repair }) = &args.command {
        let clean = zdb::daemon::check(&cfg, namespaces, *repair)?;
        std::process::exit(if clean { 0 } else { 1 });
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(zdb::daemon::serve(args, cfg))
}
