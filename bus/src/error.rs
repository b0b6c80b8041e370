//! Errors: [`RemoteError`] is what a handler returns and travels on the wire; [`BusError`] is what
//! a caller sees.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Machine-readable class of a handler error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// The object does not exist.
    NotFound,
    /// The request conflicts with the current state (exists, wrong mode, shrink, ...).
    Conflict,
    /// Not enough capacity to satisfy the request.
    NoCapacity,
    /// The request was refused (bad signature, not allowed).
    Refused,
    /// A dependency of the daemon is unavailable; retrying later may succeed.
    Unavailable,
    /// No handler for this method name and version.
    UnknownMethod,
    /// Anything else; see the message.
    Internal,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::NotFound => "not found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NoCapacity => "no capacity",
            ErrorCode::Refused => "refused",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::UnknownMethod => "unknown method",
            ErrorCode::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// An error returned by a method handler, sent to the caller as is. Never put secrets in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RemoteError {
    /// Class of the error.
    pub code: ErrorCode,
    /// Human-readable message, lower-case, no trailing period.
    pub message: String,
}

impl RemoteError {
    /// Builds an error of any class.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RemoteError {
            code,
            message: message.into(),
        }
    }
    /// [`ErrorCode::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    /// [`ErrorCode::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    /// [`ErrorCode::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    /// [`ErrorCode::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// What a caller of the bus can get wrong or meet.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Nothing listens at the socket: the daemon is down.
    #[error("{service} is not running ({reason} at {})", path.display())]
    NotRunning {
        /// Service name (socket file stem).
        service: String,
        /// Socket path.
        path: PathBuf,
        /// `no socket` or `connection refused`.
        reason: &'static str,
    },
    /// Connecting did not finish in time.
    #[error("{service} did not accept a connection within {after:?} (socket {})", path.display())]
    ConnectTimeout {
        /// Service name.
        service: String,
        /// Socket path.
        path: PathBuf,
        /// The timeout.
        after: Duration,
    },
    /// The reply did not arrive in time.
    #[error("{service} did not answer {method} within {after:?}")]
    Timeout {
        /// Service name.
        service: String,
        /// `name@version`.
        method: String,
        /// The timeout.
        after: Duration,
    },
    /// The handler answered with an error.
    #[error("{service}: {method}: {source}")]
    Remote {
        /// Service name.
        service: String,
        /// `name@version`.
        method: String,
        /// The error the handler returned.
        #[source]
        source: RemoteError,
    },
    /// Reading or writing the socket failed.
    #[error("{service}: i/o on {}", path.display())]
    Io {
        /// Service name.
        service: String,
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The peer closed the connection before answering.
    #[error("{service} closed the connection before answering (did it crash?)")]
    Closed {
        /// Service name.
        service: String,
    },
    /// A frame was not valid bus JSON or did not match the expected shape.
    #[error("{service}: protocol error: {message}")]
    Protocol {
        /// Service name.
        service: String,
        /// What was wrong.
        message: String,
    },
    /// A method spec was not `name` or `name@version`.
    #[error("bad method spec {0:?}: expected name or name@version")]
    BadMethod(String),
    /// The socket path is in use by a live server.
    #[error("another server is already listening at {}", .0.display())]
    AlreadyRunning(PathBuf),
    /// Preparing or binding the socket failed.
    #[error("cannot bind {}", path.display())]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl BusError {
    /// The handler error, when the call reached the handler and it refused.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            BusError::Remote { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the daemon could not be reached at all (down, not started, stuck).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            BusError::NotRunning { .. } | BusError::ConnectTimeout { .. } | BusError::Closed { .. }
        )
    }
}
