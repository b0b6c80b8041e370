//! SET and GET against redis-server, plain and pipelined (redis-benchmark on both).

use super::super::R;
use super::super::load::{VAL100, load, rb_key};
use super::super::redis_benchmark::measured;
use super::super::report::Report;
use super::super::servers::Env;
use super::{alternate, progress, vs_redis_row};

pub(crate) fn bench_set(e: &Env, rep: &mut Report, pipeline: u32) -> R<()> {
    let o = &e.o;
    let n = if pipeline > 1 {
        o.n_pipe()
    } else {
        o.n_plain()
    };
    let (mut r, mut z) = (Vec::new(), Vec::new());
    let label = format!(
        "SET -c50 -d100 -r 1e8{}",
        if pipeline > 1 { " -P16" } else { "" }
    );
    eprintln!(
        "== {label}, n={n}, {} runs each, fresh server + folder per run",
        o.runs
    );
    alternate(o.runs, 2, |run, who| {
        if who == 0 {
            let d = e.fresh("redis-set");
            let s = e.redis(&d, false)?;
            let m = measured(o, &s, "set", n, 100_000_000, pipeline, None)?;
            progress("SET", run, "redis", &m);
            r.push(m);
        } else {
            let d = e.fresh("zdb-set");
            let (s, _) = e.zdb(&d, &[])?;
            let m = measured(o, &s, "set", n, 100_000_000, pipeline, Some(&d))?;
            progress("SET", run, "zdb", &m);
            s.stop()?;
            z.push(m);
        }
        Ok(())
    })?;
    let (ops, cpu) = if pipeline > 1 { (1.0, 0.8) } else { (1.1, 0.8) };
    rep.rows.push(vs_redis_row(&label, &r, &z, ops, cpu));
    Ok(())
}

pub(crate) fn bench_get(e: &Env, rep: &mut Report, pipeline: u32) -> R<()> {
    let o = &e.o;
    let n = if pipeline > 1 {
        o.n_pipe()
    } else {
        o.n_plain()
    };
    let label = format!("GET -c50 -r 1e5{}", if pipeline > 1 { " -P16" } else { "" });
    eprintln!(
        "== {label}, n={n}, {} runs each, after loading the 100k keys",
        o.runs
    );
    let rs = e.redis(&e.fresh("redis-get"), false)?;
    let (zs, _) = e.zdb(&e.fresh("zdb-get"), &[])?;
    for s in [&rs, &zs] {
        let errs = load(s.port, 100_000, 2, rb_key, &VAL100)?;
        if errs > 0 {
            return Err(format!("{}: {errs} errors while filling", s.name).into());
        }
    }
    let (mut r, mut z) = (Vec::new(), Vec::new());
    alternate(o.runs, 2, |run, who| {
        let (s, v, name) = if who == 0 {
            (&rs, &mut r, "redis")
        } else {
            (&zs, &mut z, "zdb")
        };
        let m = measured(o, s, "get", n, 100_000, pipeline, None)?;
        progress("GET", run, name, &m);
        v.push(m);
        Ok(())
    })?;
    let (ops, cpu) = if pipeline > 1 { (1.0, 0.8) } else { (1.1, 0.8) };
    rep.rows.push(vs_redis_row(&label, &r, &z, ops, cpu));
    zs.stop()?;
    Ok(())
}
