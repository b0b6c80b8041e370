//! netd: private WireGuard overlay networks (not built yet).
