//! The bus service: `bus::api::network` methods, each run on the blocking pool under the one
//! engine lock (they wait for netlink, `nft` and thread joins).

use crate::engine::Engine;
use crate::host::Host;
use bus::api::Empty;
use bus::api::network::*;
use bus::{RemoteError, Server};
use std::sync::{Arc, Mutex};

/// Bus service name (socket `netd.sock`).
pub const SERVICE: &str = "netd";

/// The engine, shared by handlers and the supervision loop.
pub type Shared<H> = Arc<Mutex<Engine<H>>>;

/// Runs `f` on the engine off the async threads.
pub async fn blocking<H: Host, T: Send + 'static>(
    shared: &Shared<H>,
    f: impl FnOnce(&mut Engine<H>) -> crate::Result<T> + Send + 'static,
) -> Result<T, RemoteError> {
    let sh = shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut e = sh
            .lock()
            .map_err(|_| RemoteError::internal("engine lock poisoned"))?;
        f(&mut e).map_err(RemoteError::from)
    })
    .await
    .map_err(|e| RemoteError::internal(e.to_string()))?
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

/// A bus server with every netd method registered.
pub fn server<H: Host>(shared: Shared<H>) -> Server {
    let mut server = Server::new(SERVICE);
    handler!(server, shared, ApplyNetwork, |e, r| e.apply(&r));
    handler!(server, shared, DeleteNetwork, |e, r| e
        .delete(&r.id)
        .map(|()| Empty {}));
    handler!(server, shared, GetNetwork, |e, r| e.get(&r.id));
    handler!(server, shared, ListNetworks, |e, _r| Ok(NetworkList {
        networks: e.list()
    }));
    handler!(server, shared, AttachNetwork, |e, r| e.attach(&r));
    handler!(server, shared, DetachNetwork, |e, r| e
        .detach(&r)
        .map(|()| Empty {}));
    server
}
