//! `zos store ls|rm|status`: what the farm holds and how its nodes are.

use clap::Args;
use farm::meta::records::Progress;
use farm::ops::Farm;
use farm::ops::health::health;
use farm::ops::snapshot::Snapshot;
use farm::ops::states::state_of_view;
use farm::store::zdb::ZdbStore;

/// Names per etcd read while listing.
const PAGE: i64 = 500;

#[derive(Args)]
pub struct LsArgs {
    /// Only names starting with this
    #[arg(default_value = "")]
    prefix: String,
}

#[derive(Args)]
pub struct StatusArgs {
    /// An object: its shards' nodes and states, and its redundancy
    name: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Object name
    name: String,
}

pub async fn ls(farm: &Farm<ZdbStore>, a: LsArgs) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = farm.meta.names(after.as_deref(), PAGE).await?;
        for (name, id) in &page {
            if !name.starts_with(&a.prefix) {
                continue;
            }
            // Removed or replaced between the two reads: not listed.
            if let Some(c) = farm.meta.object_by_id(id).await? {
                println!("{name}\t{}\t{}\t{id}", c.meta.size, c.meta.created);
            }
        }
        if (page.len() as i64) < PAGE {
            return Ok(());
        }
        after = page.last().map(|(n, _)| n.clone());
    }
}

pub async fn rm(farm: &Farm<ZdbStore>, a: RmArgs) -> anyhow::Result<()> {
    match farm.meta.remove(&a.name).await? {
        Some(id) => {
            println!("removed {} ({id})", a.name);
            Ok(())
        }
        None => anyhow::bail!("object {} not found", a.name),
    }
}

pub async fn status(farm: &Farm<ZdbStore>, a: StatusArgs) -> anyhow::Result<()> {
    let nodes = farm.meta.nodes().await?;
    if let Some(name) = a.name {
        return object_status(farm, &name, Snapshot { nodes }).await;
    }
    let store = farm.meta.keys().store();
    println!(
        "farm: {} nodes\tstore={}",
        nodes.len(),
        store.unwrap_or("(unnamed)")
    );
    for v in &nodes {
        let r = &v.record;
        println!(
            "{}\t{}\tgroup={}\tfree={}\tcapacity={}\tzdb={}",
            r.id,
            state_of_view(v).word(),
            r.group.as_deref().unwrap_or("-"),
            v.alive.as_ref().map_or(0, |a| a.free),
            r.capacity,
            r.endpoint(store).map_or("-", |z| z.address.as_str()),
        );
    }
    let progress = farm
        .meta
        .get_json::<Progress>(&farm.meta.keys().progress())
        .await?;
    match progress {
        None => println!("repair: no pass yet"),
        Some((p, _)) => println!(
            "repair: leader={}\tpasses={}\tlast_pass={}\tpass_started={}\tobjects={}\t\
             verified={}\trebuilt={}\tcollected={}",
            p.leader,
            p.passes,
            p.last_pass
                .map_or_else(|| "-".to_string(), |t| t.to_string()),
            p.pass_started,
            p.objects,
            p.verified,
            p.rebuilt,
            p.collected,
        ),
    }
    Ok(())
}

/// `zos store status NAME`: one line per shard position (segment, position, node, state),
/// then the redundancy line.
async fn object_status(farm: &Farm<ZdbStore>, name: &str, nodes: Snapshot) -> anyhow::Result<()> {
    let Some(c) = farm.meta.object(name).await? else {
        anyhow::bail!("object {name} not found");
    };
    let m = &c.meta;
    println!(
        "{}\t{}\t{}+{}\t{}\tstripes={}",
        m.name,
        m.size,
        m.params.k,
        m.params.m,
        m.id,
        m.stripes()
    );
    let h = health(m, &nodes.states());
    for (s, positions) in h.segments.iter().enumerate() {
        for (p, pos) in positions.iter().enumerate() {
            println!(
                "segment {s}\tshard {p}\t{}\t{}",
                pos.node,
                pos.state.map_or("unknown", |st| st.word())
            );
        }
    }
    println!("{}", h.summary());
    Ok(())
}
