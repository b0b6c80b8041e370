//! The markdown report: rows against redis, other measures, notes.

use std::fmt::Write as _;

use super::stats::{Stat, fmt_stat, kops, us};

pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) peer_ops: Option<Stat>,
    pub(crate) zdb_ops: Option<Stat>,
    pub(crate) peer_cpu: Option<Stat>,
    pub(crate) zdb_cpu: Option<Stat>,
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
    pub(crate) notes: String,
}

pub(crate) struct Other {
    pub(crate) item: String,
    pub(crate) reference: String,
    pub(crate) zdb: String,
    pub(crate) ratio: String,
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
}

impl Other {
    /// A figure reported without a peer or a target.
    pub(crate) fn report(item: String, zdb: String) -> Other {
        Other {
            item,
            reference: "–".into(),
            zdb,
            ratio: "–".into(),
            target: "report".into(),
            met: None,
        }
    }
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) other: Vec<Other>,
    pub(crate) notes: Vec<String>,
}

pub(crate) fn yes(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "–",
    }
}

pub(crate) fn ratio(a: Option<Stat>, b: Option<Stat>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a.med > 0.0 => format!("{:.2}x", b.med / a.med),
        _ => "–".into(),
    }
}

impl Report {
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        if !self.rows.is_empty() {
            s.push_str(
                "| workload | redis ops/s | zdb ops/s | ratio | redis CPU µs/req | zdb CPU µs/req | ratio | target | met? | notes |\n\
                 |---|---|---|---|---|---|---|---|---|---|\n",
            );
            for r in &self.rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.workload,
                    fmt_stat(r.peer_ops, kops),
                    fmt_stat(r.zdb_ops, kops),
                    ratio(r.peer_ops, r.zdb_ops),
                    fmt_stat(r.peer_cpu, us),
                    fmt_stat(r.zdb_cpu, us),
                    ratio(r.peer_cpu, r.zdb_cpu),
                    r.target,
                    yes(r.met),
                    r.notes
                );
            }
            s.push('\n');
        }
        if !self.other.is_empty() {
            s.push_str("| measure | reference | zdb | ratio | target | met? |\n|---|---|---|---|---|---|\n");
            for r in &self.other {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.item,
                    r.reference,
                    r.zdb,
                    r.ratio,
                    r.target,
                    yes(r.met)
                );
            }
            s.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        s
    }
}
