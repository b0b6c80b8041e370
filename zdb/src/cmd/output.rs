//! The reply side of a connection: replies collect in a buffer and leave only after the
//! buffered appends they acknowledge reached the files.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::engine::{Namespace, OpError};
use crate::protocol::Reply;
use crate::shared::{NsHandle, Shared};

/// Flush replies once this much is pending.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// Output side of a connection: a reply buffer and the socket it drains into.
pub struct Output<W> {
    /// Pending reply bytes.
    pub buf: BytesMut,
    writer: W,
    shared: Arc<Shared>,
    /// Namespaces holding buffered appends that replies in `buf` acknowledge.
    wrote: Vec<Arc<NsHandle>>,
    /// Where in `buf` the first reply acknowledging a buffered append starts.
    first_ack: Option<usize>,
}

impl<W: AsyncWrite + Unpin> Output<W> {
    /// An empty reply buffer in front of `writer`.
    pub fn new(writer: W, shared: Arc<Shared>) -> Self {
        Output {
            buf: BytesMut::new(),
            writer,
            shared,
            wrote: Vec::new(),
            first_ack: None,
        }
    }

    /// The socket's write half (a connection handed to another process is left open by
    /// forgetting it rather than dropping it).
    pub fn into_writer(self) -> W {
        self.writer
    }

    /// Append a reply.
    pub fn reply(&mut self, r: Reply) {
        r.encode(&mut self.buf);
    }

    /// Send pending bytes if there are many (keeps large replies bounded in memory).
    pub async fn flush_if_big(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Note that the reply about to be encoded at the current end of `buf` acknowledges an
    /// append buffered in `ns`: it may only leave once that append is in the file.
    pub fn acknowledges_write(&mut self, ns: &Arc<NsHandle>) {
        self.first_ack.get_or_insert(self.buf.len());
        if !self.wrote.iter().any(|w| Arc::ptr_eq(w, ns)) {
            self.wrote.push(ns.clone());
        }
    }

    /// Write the appends that pending replies acknowledge. If that fails, the replies from the
    /// first such acknowledgement on are replaced by one error and the connection must close.
    async fn settle(&mut self) -> std::io::Result<()> {
        let mut failed = None;
        let mut wrote = std::mem::take(&mut self.wrote);
        for ns in wrote.drain(..) {
            if let Err(e) = flush_appends(&ns).await {
                failed = Some(e);
            }
        }
        self.wrote = wrote;
        let first = self.first_ack.take();
        if let (Some(e), Some(pos)) = (failed, first) {
            self.buf.truncate(pos);
            Reply::err(e.to_string()).encode(&mut self.buf);
            return Err(std::io::Error::other("write failed before acknowledgement"));
        }
        Ok(())
    }

    /// Send all pending bytes (after the appends they acknowledge).
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wrote.is_empty() {
            // Let the other ready connections append first: the first of them to flush then
            // writes everyone's entries in one pwrite per file, and the rest find nothing to do.
            tokio::task::yield_now().await;
        }
        let settled = self.settle().await;
        if !self.buf.is_empty() {
            self.writer.write_all(&self.buf).await?;
            self.shared
                .stats
                .network_tx
                .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            self.buf.clear();
        }
        settled
    }
}

/// Write a namespace's buffered appends: on this worker while its disk is fast, on tokio's
/// blocking pool while it was slow lately ([`crate::shared::IoPace`]); how long the write took
/// decides for the next ones.
async fn flush_appends(ns: &Arc<NsHandle>) -> Result<(), OpError> {
    if !ns.io.is_slow() {
        return ns.with_timed_io(Namespace::flush_pending);
    }
    let ns = ns.clone();
    tokio::task::spawn_blocking(move || ns.with_timed_io(Namespace::flush_pending))
        .await
        .unwrap_or(Err(OpError::DataWrite))
}
