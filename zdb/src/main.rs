use anyhow::Context;
use clap::Parser;
use zdb::config::{Args, Config};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    nodeutil::log::init(args.verbose, args.log_format);
    let cfg = Config::from_args(&args).map_err(anyhow::Error::msg)?;
    if let Some(zdb::config::Tool::Check { namespaces, repair }) = &args.command {
        let clean = zdb::daemon::check(&cfg, namespaces, *repair)?;
        std::process::exit(if clean { 0 } else { 1 });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let served = runtime.block_on(zdb::daemon::serve(args, cfg));
    // A namespace still loading when a signal came is not waited for (an interrupted load
    // is what any crash leaves: the next start repairs it).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}
