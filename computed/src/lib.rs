//! computed: containers booted from flists (issue 9; not built yet).
