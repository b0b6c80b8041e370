//! The `flist` binary: parse the command line and run it; exit 0 only on success.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flist_fuse::cli::Cli::parse();
    match flist_fuse::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each error's message already holds its causes: printed once.
            eprintln!("flist: {e}");
            ExitCode::FAILURE
        }
    }
}
