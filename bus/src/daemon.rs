//! What every node daemon's `main` does the same way: log set-up and the shutdown signal.

/// Logs to stderr at `info` (`debug` when `verbose`), `RUST_LOG` overriding, in the format
/// `ZOS_LOG_FORMAT` names (default: colours only on a terminal, plain in a log file). Daemons
/// with a `--log-format` flag call [`nodeutil::log::init`] with it instead.
pub fn init_logging(verbose: bool) {
    nodeutil::log::init(verbose, None);
}

/// Completes on SIGTERM or SIGINT (Ctrl-C); if SIGTERM cannot be watched, on SIGINT only.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        } => {}
    }
}
