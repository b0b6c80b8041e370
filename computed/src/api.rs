//! The bus service: `bus::api::compute` methods, each run on the blocking pool (queries read
//! files; operations wait for their thread, at most [`crate::engine::REPLY_WAIT`]). No lock is
//! held across a call: see [`crate::engine`].

use crate::engine::Engine;
use bus::api::Empty;
use bus::api::compute::*;
use bus::{RemoteError, Server};
use std::sync::Arc;

/// The engine, shared by handlers and the supervision loop.
pub type Shared = Arc<Engine>;

/// Bus service name (socket `computed.sock`).
pub const SERVICE: &str = "computed";
/// Event topic.
pub const TOPIC: &str = "compute.container";

/// Runs `f` on the engine off the async threads.
pub async fn blocking<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&Shared) -> crate::Result<T> + Send + 'static,
) -> Result<T, RemoteError> {
    let e = shared.clone();
    tokio::task::spawn_blocking(move || f(&e).map_err(RemoteError::from))
        .await
        .map_err(|e| RemoteError::internal(format!("computed handler failed: {e}")))?
}

macro_rules! handler {
    ($server:ident, $shared:ident, $method:ty, |$e:ident, $req:ident| $body:expr) => {{
        let sh = $shared.clone();
        $server.handle::<$method, _, _>(move |$req| {
            let sh = sh.clone();
            async move { blocking(&sh, move |$e| $body).await }
        });
    }};
}

/// A bus server with every computed method registered.
pub fn server(shared: Shared) -> Server {
    let mut server = Server::new(SERVICE);
    handler!(server, shared, CreateContainer, |e, r| e.create(r));
    handler!(server, shared, GetContainer, |e, r| e.get(&r.name));
    handler!(server, shared, ListContainers, |e, _r| Ok(ContainerList {
        containers: e.list()
    }));
    handler!(server, shared, StopContainer, |e, r| e.stop(&r.name));
    handler!(server, shared, StartContainer, |e, r| e.start(&r.name));
    handler!(server, shared, DeleteContainer, |e, r| e
        .delete(&r.name)
        .map(|()| Empty {}));
    handler!(server, shared, ContainerLogs, |e, r| e
        .logs(&r.name, r.offset, r.max));
    handler!(server, shared, GetComputeCapacity, |e, _r| Ok(e.capacity()));
    handler!(
        server,
        shared,
        bus::api::upgrade::UpgradeFlistMounts,
        |e, r| e.upgrade_flist(&r.binary)
    );
    server
}
