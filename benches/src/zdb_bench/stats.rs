//! Medians and ranges of repeated runs, and their rendering.

#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat {
    pub(crate) med: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

pub(crate) fn stat(v: &[f64]) -> Stat {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stat {
        med,
        min: *s.first().unwrap_or(&f64::NAN),
        max: *s.last().unwrap_or(&f64::NAN),
    }
}

/// `12.3k (12.0k–12.9k)`-style rendering with a unit-specific scale.
pub(crate) fn fmt_stat(s: Option<Stat>, f: fn(f64) -> String) -> String {
    match s {
        Some(s) => format!("{} ({}–{})", f(s.med), f(s.min), f(s.max)),
        None => "–".into(),
    }
}
pub(crate) fn kops(v: f64) -> String {
    format!("{:.1}k", v / 1000.0)
}
pub(crate) fn us(v: f64) -> String {
    format!("{v:.2}")
}
pub(crate) fn mbs(v: f64) -> String {
    format!("{v:.0}")
}
pub(crate) fn secs(v: f64) -> String {
    format!("{v:.2}")
}
