//! node-init: supervisor, node identity and blueprint engine (issue 8; not built yet).
