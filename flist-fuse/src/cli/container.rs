//! `flist container start|stop`.

use std::path::PathBuf;

use clap::Subcommand;

use super::args::size_arg;
use super::stores::StoreArgs;
use crate::error::Result;
use crate::mount::overlay;

/// The container subcommands.
#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// Mount a container: overlay with upper RW/upper, work RW/work on TARGET.
    Start {
        /// State folder (references, shared mounts, daemon logs).
        #[arg(long, default_value = overlay::DEFAULT_STATE)]
        state: PathBuf,
        /// Block cache folder.
        #[arg(long, default_value = crate::mount::DEFAULT_CACHE)]
        cache: PathBuf,
        /// Bound of the cache (K/M/G/T suffixes).
        #[arg(long = "cache-size", default_value = "10G")]
        cache_size: String,
        /// Store URLs replacing the flist's routes.
        #[command(flatten)]
        stores: StoreArgs,
        /// The flist.
        flist: PathBuf,
        /// Holds the overlay's upper/ and work/.
        rw: PathBuf,
        /// Where the container's root appears.
        target: PathBuf,
    },
    /// Hand every shared read-only mount over to this binary, live: containers keep their
    /// mounts and see no error. Prints one JSON object per mount (identity, pid or error);
    /// fails if any was not upgraded (its old process serves on).
    Upgrade {
        /// State folder.
        #[arg(long, default_value = overlay::DEFAULT_STATE)]
        state: PathBuf,
        /// Also write the report (a JSON array) to FILE (temp + rename).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Unmount a container; the shared read-only mount goes with the last one.
    Stop {
        /// State folder.
        #[arg(long, default_value = overlay::DEFAULT_STATE)]
        state: PathBuf,
        /// The container's root.
        target: PathBuf,
    },
}

impl ContainerCmd {
    /// Start or stop.
    pub fn run(self) -> Result<()> {
        match self {
            ContainerCmd::Start {
                state,
                cache,
                cache_size,
                stores,
                flist,
                rw,
                target,
            } => overlay::start(&overlay::StartArgs {
                cache_size: size_arg(&cache_size, "--cache-size")?,
                stores: stores.resolve()?,
                state,
                flist,
                rw,
                target,
                cache,
            }),
            ContainerCmd::Stop { state, target } => overlay::stop(&state, &target),
            ContainerCmd::Upgrade {
                state,
                report: file,
            } => {
                let report = overlay::upgrade(&state)?;
                for r in &report {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                }
                if let Some(f) = file {
                    nodeutil::fs::write_json(&f, &report).map_err(|e| {
                        crate::error::Error::invalid(&f, format!("cannot write the report: {e}"))
                    })?;
                }
                let failed = report.iter().filter(|r| r.error.is_some()).count();
                if failed > 0 {
                    return Err(crate::error::Error::invalid(
                        &state,
                        format!("{failed} of {} mounts not upgraded", report.len()),
                    ));
                }
                Ok(())
            }
        }
    }
}
