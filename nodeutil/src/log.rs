//! Logging set-up shared by every daemon: to stderr, colours only on a terminal, plain text
//! when redirected to a file (as supervisors and tests do), JSON lines on request.
//!
//! The format comes from the daemon's `--log-format` flag when it has one, else from
//! `ZOS_LOG_FORMAT` (`auto`, `plain`, `color`, `json`), else `auto`. `RUST_LOG` overrides the
//! level.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// The environment variable naming the log format (`auto`, `plain`, `color`, `json`).
pub const ENV: &str = "ZOS_LOG_FORMAT";

/// The format [`init`] chose for this process.
static CHOSEN: OnceLock<LogFormat> = OnceLock::new();

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Colour on a terminal, plain otherwise.
    #[default]
    Auto,
    /// Plain text, never colour.
    Plain,
    /// Coloured text, even when redirected.
    Color,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "plain" | "text" => Ok(Self::Plain),
            "color" | "colour" => Ok(Self::Color),
            "json" => Ok(Self::Json),
            _ => Err(format!(
                "unknown log format {s:?} (auto, plain, color, json)"
            )),
        }
    }
}

impl LogFormat {
    /// The format named by `ZOS_LOG_FORMAT`, `Auto` when unset or unknown.
    pub fn from_env() -> Self {
        std::env::var(ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
}

/// Installs the global subscriber at `info` (`debug` when `verbose`). `format: None` reads
/// `ZOS_LOG_FORMAT`. Calling it twice keeps the first (tests may call it per case).
pub fn init(verbose: bool, format: Option<LogFormat>) {
    let level = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = format.unwrap_or_else(LogFormat::from_env);
    let _ = CHOSEN.set(format);
    let _ = match format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Color => builder.with_ansi(true).try_init(),
        LogFormat::Plain => builder.with_ansi(false).try_init(),
        LogFormat::Auto => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// The value of [`ENV`] for a child process whose output goes to a log file: `json` when this
/// process logs JSON (an operator who asked for JSON wants it from the whole tree), `plain`
/// otherwise, whatever this process's own terminal or environment says.
pub fn for_children() -> &'static str {
    match CHOSEN.get() {
        Some(LogFormat::Json) => "json",
        _ => "plain",
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn formats_parse_and_children_log_plain_unless_json() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("colour".parse(), Ok(LogFormat::Color));
        assert!("fancy".parse::<LogFormat>().is_err());
        assert_eq!(for_children(), "plain");
        init(false, Some(LogFormat::Json));
        assert_eq!(for_children(), "json");
    }
}
