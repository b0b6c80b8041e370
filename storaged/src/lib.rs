//! storaged: disks, pools, volumes and zdb namespaces (issue 7; not built yet).
