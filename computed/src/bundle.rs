//! The OCI bundle (`config.json`) of a container, built with `oci-spec` from our spec: what
//! isolation every container gets is decided here and nowhere else.
//!
//! Every container gets mount, pid, ipc, uts and network namespaces (the network one is made by
//! computed beforehand and joined by path, so the network daemon can attach to it later), cgroup
//! limits for cpu, memory (swap included) and pids, Docker's default capability set, no new
//! privileges, the masked and read-only `/proc` paths of the runtime spec, and the seccomp
//! profile of [`crate::seccomp`].

use crate::error::{Error, Result};
use bus::api::compute::ContainerSpec;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, get_default_maskedpaths, get_default_mounts,
    get_default_readonly_paths,
};
use std::collections::HashSet;
use std::path::Path;

/// CFS period used for the CPU quota, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// Default `PATH` inside a container.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capabilities a container keeps (the set container engines grant by default): enough to run
/// an ordinary init and services as root inside, none that reaches the host (no SYS_ADMIN,
/// SYS_MODULE, SYS_PTRACE, NET_ADMIN, SYS_TIME...).
pub const CAPABILITIES: &[Capability] = &[
    Capability::AuditWrite,
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Mknod,
    Capability::NetBindService,
    Capability::NetRaw,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// Where a container lives on the host.
pub struct Placement<'a> {
    /// The merged root filesystem (the overlay).
    pub rootfs: &'a Path,
    /// Network namespace file to join.
    pub netns: &'a Path,
    /// cgroup path (`/<parent>/<name>`).
    pub cgroup: &'a str,
}

fn oci(e: oci_spec::OciSpecError) -> Error {
    Error::Invalid(format!("OCI config: {e}"))
}

/// Builds the runtime config of `spec` placed at `at`.
pub fn config(spec: &ContainerSpec, at: &Placement<'_>) -> Result<Spec> {
    let mut env: Vec<String> = Vec::with_capacity(spec.env.len() + 2);
    if !spec.env.contains_key("PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !spec.env.contains_key("HOSTNAME") {
        env.push(format!("HOSTNAME={}", hostname(spec)));
    }
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    let caps: HashSet<Capability> = CAPABILITIES.iter().copied().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(oci)?;
    let process = ProcessBuilder::default()
        .args(spec.entrypoint.clone())
        .env(env)
        .cwd(spec.workdir.clone())
        .no_new_privileges(true)
        .capabilities(capabilities)
        .build()
        .map_err(oci)?;

    let mut mounts = get_default_mounts();
    // No cgroup namespace: the container does not see the cgroup tree at all.
    mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
    for m in &spec.mounts {
        let mut options = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
        options.push(if m.readonly { "ro" } else { "rw" }.into());
        mounts.push(
            MountBuilder::default()
                .destination(&m.target)
                .typ("bind")
                .source(&m.source)
                .options(options)
                .build()
                .map_err(oci)?,
        );
    }

    let namespaces = [
        (LinuxNamespaceType::Mount, None),
        (LinuxNamespaceType::Pid, None),
        (LinuxNamespaceType::Ipc, None),
        (LinuxNamespaceType::Uts, None),
        (LinuxNamespaceType::Network, Some(at.netns)),
    ]
    .into_iter()
    .map(|(typ, path)| {
        let b = LinuxNamespaceBuilder::default().typ(typ);
        match path {
            Some(p) => b.path(p),
            None => b,
        }
        .build()
        .map_err(oci)
    })
    .collect::<Result<Vec<_>>>()?;

    let memory = i64::try_from(spec.memory)
        .map_err(|_| Error::Invalid(format!("memory {} out of range", spec.memory)))?;
    let mut resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(memory)
                .swap(memory)
                .build()
                .map_err(oci)?,
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(i64::try_from(spec.pids).unwrap_or(i64::MAX))
                .build()
                .map_err(oci)?,
        );
    if spec.cpu > 0.0 {
        let quota = (spec.cpu * CPU_PERIOD as f64).round().max(1000.0) as i64;
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(CPU_PERIOD)
                .quota(quota)
                .build()
                .map_err(oci)?,
        );
    }

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(at.cgroup)
        .resources(resources.build().map_err(oci)?)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .seccomp(crate::seccomp::profile()?)
        .build()
        .map_err(oci)?;

    let mut cfg = Spec::default();
    cfg.set_process(Some(process))
        .set_root(Some(
            RootBuilder::default()
                .path(at.rootfs)
                .readonly(false)
                .build()
                .map_err(oci)?,
        ))
        .set_hostname(Some(hostname(spec)))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux))
        .set_annotations(None);
    Ok(cfg)
}

/// The container's host name.
pub fn hostname(spec: &ContainerSpec) -> String {
    match &spec.hostname {
        Some(h) => h.clone(),
        None => spec.name.chars().take(63).collect(),
    }
}
