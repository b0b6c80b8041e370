//! The default seccomp profile: allow by default, refuse with `EPERM` the system calls that
//! reach the host kernel's global state (modules, kexec, reboot, clocks, swap, keyrings, BPF,
//! perf, namespaces and mounts, other processes' memory).
//!
//! A deny list rather than an allow list: the dropped capabilities already refuse most of these
//! calls, so the filter is the second wall, and an allow list that misses a new but harmless call
//! breaks ordinary programs on a newer libc.

use crate::error::{Error, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};

/// Refused system calls.
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// The profile, for the host's architecture.
pub fn profile() -> Result<LinuxSeccomp> {
    let oci = |e: oci_spec::OciSpecError| Error::Invalid(format!("seccomp profile: {e}"));
    let deny = LinuxSyscallBuilder::default()
        .names(DENIED.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(rustix::io::Errno::PERM.raw_os_error() as u32)
        .build()
        .map_err(oci)?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchNative])
        .syscalls(vec![deny])
        .build()
        .map_err(oci)
}
