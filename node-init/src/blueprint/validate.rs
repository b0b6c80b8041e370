//! Static validation of a deployment and of an update, before any action.

use super::BlueprintError;
use super::network::check_address;
use super::spec::{Pool, WorkloadSpec};
use crate::keys::parse_public;
use bus::api::node::{Deployment, Signers};
use std::collections::{BTreeMap, HashSet};

/// Most workloads in one deployment.
pub const MAX_WORKLOADS: usize = 64;
/// Most signer keys.
pub const MAX_SIGNERS: usize = 32;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1024;

fn valid_ident(s: &str, allow_dash: bool) -> bool {
    !s.is_empty()
        && s.len() <= 36
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (allow_dash && b == b'-'))
}

fn check_key(what: &str, key: &str) -> Result<(), BlueprintError> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(BlueprintError::Invalid(format!(
            "{what} {key:?} must be lower-case hex"
        )));
    }
    parse_public(key)?;
    Ok(())
}

fn check_signers(s: &Signers) -> Result<(), BlueprintError> {
    let bad = |m: String| Err(BlueprintError::Invalid(format!("signers: {m}")));
    if s.keys.is_empty() || s.keys.len() > MAX_SIGNERS {
        return bad(format!("between 1 and {MAX_SIGNERS} keys needed"));
    }
    if s.threshold == 0 {
        return bad("threshold must be at least 1".into());
    }
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    for k in &s.keys {
        check_key("signer key", &k.key)?;
        if k.weight == 0 {
            return bad(format!("key {} has weight 0", k.key));
        }
        if !seen.insert(k.key.as_str()) {
            return bad(format!("key {} listed twice", k.key));
        }
        total += u64::from(k.weight);
    }
    if total < u64::from(s.threshold) {
        return bad(format!(
            "threshold {} exceeds the total weight {total}",
            s.threshold
        ));
    }
    Ok(())
}

/// Checks every field of `d` and parses its workloads (in the order given).
pub fn validate_deployment(d: &Deployment) -> Result<Vec<WorkloadSpec>, BlueprintError> {
    if !valid_ident(&d.id, true) {
        return Err(BlueprintError::Invalid(format!(
            "id {:?} must match ^[a-zA-Z0-9_-]{{1,36}}$",
            d.id
        )));
    }
    check_key("owner", &d.owner)?;
    check_signers(&d.signers)?;
    if d.description
        .as_ref()
        .is_some_and(|s| s.len() > MAX_DESCRIPTION)
    {
        return Err(BlueprintError::Invalid("description too long".into()));
    }
    if d.workloads.len() > MAX_WORKLOADS {
        return Err(BlueprintError::Invalid(format!(
            "more than {MAX_WORKLOADS} workloads"
        )));
    }
    let mut names = HashSet::new();
    let mut specs = Vec::with_capacity(d.workloads.len());
    for wl in &d.workloads {
        if !valid_ident(&wl.name, false) {
            return Err(BlueprintError::Invalid(format!(
                "workload name {:?} must match ^[a-zA-Z0-9_]{{1,36}}$",
                wl.name
            )));
        }
        if !names.insert(wl.name.as_str()) {
            return Err(BlueprintError::Invalid(format!(
                "workload name {:?} used twice",
                wl.name
            )));
        }
        if wl.version > d.version {
            return Err(BlueprintError::InvalidWorkload {
                name: wl.name.clone(),
                reason: format!(
                    "version {} is above the deployment version {}",
                    wl.version, d.version
                ),
            });
        }
        if wl
            .description
            .as_ref()
            .is_some_and(|s| s.len() > MAX_DESCRIPTION)
        {
            return Err(BlueprintError::Invalid("description too long".into()));
        }
        specs.push(WorkloadSpec::parse(wl)?);
    }
    for (wl, spec) in d.workloads.iter().zip(&specs) {
        if let WorkloadSpec::Container(c) = spec
            && let Some(net) = &c.network
        {
            let invalid = |reason: String| BlueprintError::InvalidWorkload {
                name: wl.name.clone(),
                reason,
            };
            let named = d.workloads.iter().zip(&specs).find_map(|(w, s)| match s {
                WorkloadSpec::Network(n) if w.name == *net => Some(n),
                _ => None,
            });
            let n = named.ok_or_else(|| {
                invalid(format!(
                    "network {net:?} names no network of this deployment"
                ))
            })?;
            if let Some(a) = c.address {
                check_address(a, n).map_err(invalid)?;
            }
        }
        if let WorkloadSpec::Container(c) = spec {
            for m in &c.mounts {
                let is_volume = d
                    .workloads
                    .iter()
                    .any(|w| w.name == m.volume && w.kind == "volume");
                if !is_volume {
                    return Err(BlueprintError::InvalidWorkload {
                        name: wl.name.clone(),
                        reason: format!("mount {:?} names no volume of this deployment", m.volume),
                    });
                }
            }
        }
    }
    for s in &d.signatures {
        check_key("signature key", &s.key)?;
    }
    Ok(specs)
}

/// Checks `new` against the deployment it replaces (`None` for a creation) and returns the extra
/// bytes it needs per pool. `new` must have passed [`validate_deployment`].
pub fn validate_update(
    old: Option<&Deployment>,
    new: &Deployment,
) -> Result<BTreeMap<Pool, u64>, BlueprintError> {
    let mut need: BTreeMap<Pool, u64> = BTreeMap::new();
    for wl in &new.workloads {
        let spec = WorkloadSpec::parse(wl)?;
        let previous = old.and_then(|o| o.workloads.iter().find(|w| w.name == wl.name));
        let extra = match previous {
            None => {
                if wl.version != new.version {
                    return Err(BlueprintError::InvalidWorkload {
                        name: wl.name.clone(),
                        reason: format!(
                            "a new workload must carry the deployment version {}",
                            new.version
                        ),
                    });
                }
                spec.size()
            }
            Some(prev) => {
                if prev.kind != wl.kind {
                    return Err(BlueprintError::ImmutableChange {
                        name: wl.name.clone(),
                        reason: format!("type {} cannot become {}", prev.kind, wl.kind),
                    });
                }
                let unchanged = prev.data == wl.data && prev.description == wl.description;
                if unchanged && wl.version != prev.version {
                    return Err(BlueprintError::InvalidWorkload {
                        name: wl.name.clone(),
                        reason: format!("unchanged, so its version must stay {}", prev.version),
                    });
                }
                if !unchanged && wl.version != new.version {
                    return Err(BlueprintError::InvalidWorkload {
                        name: wl.name.clone(),
                        reason: format!("changed, so its version must be {}", new.version),
                    });
                }
                spec.check_update(&wl.name, &WorkloadSpec::parse(prev)?)?
            }
        };
        *need.entry(spec.pool()).or_default() += extra;
        // a replaced container gives its memory back first
        let old_memory = previous
            .and_then(|p| WorkloadSpec::parse(p).ok())
            .map_or(0, |p| p.memory());
        *need.entry(Pool::Memory).or_default() += spec.memory().saturating_sub(old_memory);
    }
    Ok(need)
}
