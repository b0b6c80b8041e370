//! The `flist` binary: parse the command line and run it; exit 0 only on success.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flist_fuse::cli::Cli::parse();
    match flist_fuse::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flist: {e:#}");
            ExitCode::FAILURE
        }
    }
}
