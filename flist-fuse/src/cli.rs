//! The `flist` command line: one function per subcommand.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::blocks::BlockReader;
use crate::chunk;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, Flist, Params, S_IFMT, hex};
use crate::pack::{self, PackOptions, SourceKind};
use crate::sign;
use crate::store;

/// flist: pack, inspect, verify and unpack flist images.
#[derive(Debug, Parser)]
#[command(name = "flist", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceArg {
    Auto,
    Dir,
    Tar,
    Image,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Pack a directory, tar (plain/gzip/zstd), OCI layout or docker-save archive.
    Pack {
        /// Block store URL (repeatable; `LO-HI=URL` shards by id prefix, overlapping ranges replicate).
        #[arg(long = "store", required = true)]
        stores: Vec<String>,
        /// The flist file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// Chunking: `fixed:SIZE` or `cdc:AVG` (sizes with K/M suffix, at most 8M).
        #[arg(long, default_value = "fixed:1M")]
        chunking: String,
        /// zstd level.
        #[arg(long, default_value_t = 3)]
        level: i32,
        /// Convergent encryption of blocks.
        #[arg(long)]
        encrypt: bool,
        /// How to read SOURCE.
        #[arg(long = "source-type", value_enum, default_value = "auto")]
        source_type: SourceArg,
        /// Do not show a progress bar.
        #[arg(long)]
        quiet: bool,
        source: PathBuf,
    },
    /// Unpack to a folder (which must not exist or be empty).
    Unpack {
        /// Store URLs overriding the flist's routes.
        #[arg(long = "store")]
        stores: Vec<String>,
        file: PathBuf,
        dest: PathBuf,
    },
    /// Check the file, its signatures, and that every block is present and matches its id.
    Verify {
        #[arg(long = "store")]
        stores: Vec<String>,
        /// Require a valid signature by this ed25519 public key (hex).
        #[arg(long)]
        pubkey: Option<String>,
        file: PathBuf,
    },
    /// List a folder (or one entry) inside the flist.
    Ls {
        /// List everything below PATH.
        #[arg(long, short = 'R')]
        recursive: bool,
        file: PathBuf,
        path: Option<String>,
    },
    /// Show the metadata of one entry.
    Stat { file: PathBuf, path: String },
    /// Write a file's content to stdout.
    Cat {
        #[arg(long = "store")]
        stores: Vec<String>,
        file: PathBuf,
        path: String,
    },
    /// Sign the flist with an ed25519 key (adds to the trailer; the identity is unchanged).
    Sign {
        /// Secret key file (64 hex digits), see `keygen`.
        #[arg(long)]
        key: PathBuf,
        file: PathBuf,
    },
    /// Create an ed25519 key pair: KEY (secret, mode 0600) and KEY.pub.
    Keygen {
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Summary: identity, parameters, entry counts, sizes, dedup ratio.
    Inspect { file: PathBuf },
    /// Convert an rfs `.fl` into our format. Every distinct block is fetched once from the
    /// `.fl`'s routes (or --from-store), verified against its id and key, re-encoded as our
    /// block (same 512 KiB boundaries) and stored in --store (blocks it holds are kept).
    Convert {
        /// Block store to write our blocks to (repeatable; `LO-HI=URL` allowed).
        #[arg(long = "store", required = true)]
        stores: Vec<String>,
        /// Store URLs to read the rfs blocks from, replacing the `.fl`'s routes.
        #[arg(long = "from-store")]
        from_stores: Vec<String>,
        /// The flist file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// zstd level.
        #[arg(long, default_value_t = 3)]
        level: i32,
        /// Convergent encryption of the new blocks.
        #[arg(long)]
        encrypt: bool,
        file: PathBuf,
    },
    /// Mount read-only with FUSE, fetching blocks on first touch; serves in the foreground
    /// until unmounted or signalled (SIGTERM/SIGINT unmount cleanly).
    Mount(MountCmd),
    /// Embed a prefetch list recorded by `mount --record` in the flist (no LIST: remove it).
    EmbedPrefetch {
        file: PathBuf,
        list: Option<PathBuf>,
    },
    /// Containers: overlayfs (writable upper) on a shared read-only mount.
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
}

/// Arguments of `flist mount`.
#[derive(Debug, clap::Args)]
pub struct MountCmd {
    /// Block cache folder, shared by all mounts of the node.
    #[arg(long, default_value = crate::mount::DEFAULT_CACHE)]
    pub cache: PathBuf,
    /// Bound of the cache (K/M/G/T suffixes).
    #[arg(long = "cache-size", default_value = "10G")]
    pub cache_size: String,
    /// Store URLs replacing the flist's routes (repeatable, `LO-HI=URL` allowed).
    #[arg(long = "store")]
    pub stores: Vec<String>,
    /// Write the blocks this run reads to FILE at unmount (a prefetch list).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Prefetch the blocks of this list at mount (repeatable; adds to the embedded list).
    #[arg(long)]
    pub prefetch: Vec<PathBuf>,
    /// Parallel store fetches.
    #[arg(long = "fetch-workers", default_value_t = 32)]
    pub fetch_workers: usize,
    /// Threads answering the kernel.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Memory cache of decoded blocks (K/M/G suffixes).
    #[arg(long = "mem-cache", default_value = "256M")]
    pub mem_cache: String,
    /// Detach: run the daemon in its own session (log to --log) and return once mounted.
    #[arg(long)]
    pub daemon: bool,
    /// Log file of the detached daemon.
    #[arg(long, default_value = "/dev/null")]
    pub log: PathBuf,
    /// Internal: call setsid() first (used by --daemon).
    #[arg(long = "new-session", hide = true)]
    pub new_session: bool,
    pub flist: PathBuf,
    pub mountpoint: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// Mount a container: overlay with upper RW/upper, work RW/work on TARGET.
    Start {
        #[arg(long, default_value = crate::mount::overlay::DEFAULT_STATE)]
        state: PathBuf,
        #[arg(long, default_value = crate::mount::DEFAULT_CACHE)]
        cache: PathBuf,
        #[arg(long = "cache-size", default_value = "10G")]
        cache_size: String,
        #[arg(long = "store")]
        stores: Vec<String>,
        flist: PathBuf,
        rw: PathBuf,
        target: PathBuf,
    },
    /// Unmount a container; the shared read-only mount goes with the last one.
    Stop {
        #[arg(long, default_value = crate::mount::overlay::DEFAULT_STATE)]
        state: PathBuf,
        target: PathBuf,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Pack {
            stores,
            output,
            chunking,
            level,
            encrypt,
            source_type,
            quiet,
            source,
        } => cmd_pack(PackArgs {
            stores,
            output,
            chunking,
            level,
            encrypt,
            source_type,
            quiet,
            source,
        }),
        Cmd::Unpack { stores, file, dest } => cmd_unpack(&stores, &file, &dest),
        Cmd::Verify {
            stores,
            pubkey,
            file,
        } => cmd_verify(&stores, pubkey.as_deref(), &file),
        Cmd::Ls {
            recursive,
            file,
            path,
        } => cmd_ls(&file, path.as_deref().unwrap_or("/"), recursive),
        Cmd::Stat { file, path } => cmd_stat(&file, &path),
        Cmd::Cat { stores, file, path } => cmd_cat(&stores, &file, &path),
        Cmd::Sign { key, file } => cmd_sign(&key, &file),
        Cmd::Keygen { output } => cmd_keygen(&output),
        Cmd::Inspect { file } => cmd_inspect(&file),
        Cmd::Convert {
            stores,
            from_stores,
            output,
            level,
            encrypt,
            file,
        } => cmd_convert(&file, &from_stores, &stores, &output, level, encrypt),
        Cmd::Mount(m) => cmd_mount(m),
        Cmd::EmbedPrefetch { file, list } => {
            let n = crate::mount::prefetch::embed(&file, list.as_deref())?;
            println!("{}: {n} blocks in the prefetch list", file.display());
            Ok(())
        }
        Cmd::Container { cmd } => match cmd {
            ContainerCmd::Start {
                state,
                cache,
                cache_size,
                stores,
                flist,
                rw,
                target,
            } => crate::mount::overlay::start(&crate::mount::overlay::StartArgs {
                cache_size: size_arg(&cache_size, &cache)?,
                state,
                flist,
                rw,
                target,
                cache,
                stores,
            }),
            ContainerCmd::Stop { state, target } => crate::mount::overlay::stop(&state, &target),
        },
    }
}

fn size_arg(s: &str, what: &Path) -> Result<u64> {
    crate::mount::parse_size(s).map_err(|m| Error::invalid(what, m))
}

/// `flist mount`.
pub fn cmd_mount(m: MountCmd) -> Result<()> {
    let args = crate::mount::MountArgs {
        cache_size: size_arg(&m.cache_size, &m.cache)?,
        mem_cache: size_arg(&m.mem_cache, Path::new("--mem-cache"))?,
        flist: m.flist.clone(),
        mountpoint: m.mountpoint.clone(),
        cache: m.cache.clone(),
        stores: m.stores.clone(),
        record: m.record.clone(),
        prefetch: m.prefetch.clone(),
        fetch_workers: m.fetch_workers,
        threads: m.threads,
        new_session: m.new_session,
    };
    if !m.daemon {
        return crate::mount::run(&args);
    }
    // Re-run ourselves detached with the same options (absolute paths: the daemon's cwd
    // does not matter), and return once the mount is there.
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut a: Vec<std::ffi::OsString> = vec![
        "--cache".into(),
        abs(&m.cache).into(),
        "--cache-size".into(),
        m.cache_size.into(),
        "--fetch-workers".into(),
        m.fetch_workers.to_string().into(),
        "--threads".into(),
        m.threads.to_string().into(),
        "--mem-cache".into(),
        m.mem_cache.into(),
    ];
    for s in &m.stores {
        a.push("--store".into());
        a.push(s.into());
    }
    if let Some(r) = &m.record {
        a.push("--record".into());
        a.push(r.clone().into());
    }
    for p in &m.prefetch {
        a.push("--prefetch".into());
        a.push(abs(p).into());
    }
    a.push(abs(&m.flist).into());
    a.push(abs(&m.mountpoint).into());
    let pid = crate::mount::spawn_daemon(&a, &m.mountpoint, &m.log)?;
    println!("{pid}");
    Ok(())
}

/// Arguments of `pack`.
pub struct PackArgs {
    pub stores: Vec<String>,
    pub output: PathBuf,
    pub chunking: String,
    pub level: i32,
    pub encrypt: bool,
    pub source_type: SourceArg,
    pub quiet: bool,
    pub source: PathBuf,
}

/// `flist pack`.
pub fn cmd_pack(a: PackArgs) -> Result<()> {
    let chunk = chunk::parse_chunking(&a.chunking).map_err(|m| Error::invalid(&a.source, m))?;
    let opts = PackOptions {
        stores: a.stores,
        params: Params {
            chunk,
            level: a.level,
            encrypted: a.encrypt,
            ..Params::default()
        },
        progress: !a.quiet,
        kind: match a.source_type {
            SourceArg::Auto => SourceKind::Auto,
            SourceArg::Dir => SourceKind::Dir,
            SourceArg::Tar => SourceKind::Tar,
            SourceArg::Image => SourceKind::Image,
        },
    };
    let r = pack::pack(&a.source, &a.output, &opts)?;
    let s = &r.stats;
    eprintln!(
        "packed {} entries, {} bytes in {} blocks ({} unique, {} stored) in {:.2}s, dedup {:.2}x",
        r.entries,
        s.plain_bytes,
        s.chunks,
        s.unique_blocks,
        s.unique_stored,
        r.elapsed.as_secs_f64(),
        ratio(s.plain_bytes, s.unique_plain)
    );
    println!("{}", hex(&r.identity));
    Ok(())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Open the block reader for an flist: `--store` overrides, else the trailer's routes.
pub fn reader(fl: &Flist, file: &Path, stores: &[String]) -> Result<BlockReader> {
    let specs: Vec<String> = if stores.is_empty() {
        fl.trailer.routes.clone()
    } else {
        stores.to_vec()
    };
    if specs.is_empty() {
        return Err(Error::invalid(
            file,
            "the flist names no store; pass --store URL",
        ));
    }
    let check: store::Check = if fl.params.hash == crate::rfs::HASH_RFS {
        crate::rfs::check
    } else {
        store::check
    };
    let st = store::open_checked(&specs, check).map_err(|e| Error::Store {
        path: file.to_path_buf(),
        source: e,
    })?;
    Ok(BlockReader::new(st, fl.params, file))
}

/// `flist convert`.
pub fn cmd_convert(
    file: &Path,
    from: &[String],
    stores: &[String],
    output: &Path,
    level: i32,
    encrypt: bool,
) -> Result<()> {
    if !crate::rfs::is_rfs(file)? {
        return Err(Error::invalid(
            file,
            "not an rfs .fl (no SQLite header): nothing to convert",
        ));
    }
    let fl = crate::rfs::read_file(file)?;
    let r = reader(&fl, file, from)?;
    let rep = crate::rfs::convert(&fl, &r, stores, output, level, encrypt)?;
    eprintln!(
        "converted {} entries; {} distinct blocks ({} bytes) fetched, verified and re-stored",
        rep.entries, rep.blocks, rep.plain_bytes
    );
    println!("{}", hex(&rep.identity));
    Ok(())
}

/// `flist unpack`.
pub fn cmd_unpack(stores: &[String], file: &Path, dest: &Path) -> Result<()> {
    let fl = crate::rfs::read_any(file)?;
    let r = reader(&fl, file, stores)?;
    crate::unpack::unpack(&fl, &r, dest)
}

/// `flist verify`.
pub fn cmd_verify(stores: &[String], pubkey: Option<&str>, file: &Path) -> Result<()> {
    let fl = crate::rfs::read_any(file)?;
    let req = pubkey.map(|k| sign::parse_public(k, file)).transpose()?;
    let signers = sign::verify(&fl, file, req.as_ref())?;
    let n = if fl.blocks.is_empty() {
        0
    } else {
        reader(&fl, file, stores)?.verify_all(&fl)?
    };
    println!(
        "{}: ok, identity {}, {} blocks verified, {}",
        file.display(),
        hex(&fl.identity),
        n,
        if signers.is_empty() {
            "unsigned".to_string()
        } else {
            format!("signed by {}", signers.join(", "))
        }
    );
    Ok(())
}

fn lookup(fl: &Flist, file: &Path, path: &str) -> Result<u32> {
    fl.lookup(path.as_bytes())
        .ok_or_else(|| Error::invalid(file, format!("{path}: no such entry")))
}

fn mode_string(mode: u32) -> String {
    let t = match mode & S_IFMT {
        format::S_IFDIR => 'd',
        format::S_IFLNK => 'l',
        format::S_IFCHR => 'c',
        format::S_IFBLK => 'b',
        format::S_IFIFO => 'p',
        format::S_IFSOCK => 's',
        _ => '-',
    };
    let mut s = String::from(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (k, (b, c)) in bits.iter().enumerate() {
        let set = mode & b != 0;
        let special = match k {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        s.push(match (set, special, k) {
            (true, true, 8) => 't',
            (false, true, 8) => 'T',
            (true, true, _) => 's',
            (false, true, _) => 'S',
            (true, false, _) => *c,
            _ => '-',
        });
    }
    s
}

fn ls_line(fl: &Flist, ino: u32, name: &[u8], out: &mut Vec<u8>) {
    let Some(i) = fl.inode(ino) else { return };
    let size = if matches!(i.file_type(), format::S_IFCHR | format::S_IFBLK) {
        format!(
            "{},{}",
            rustix::fs::major(i.rdev),
            rustix::fs::minor(i.rdev)
        )
    } else {
        i.size.to_string()
    };
    out.extend_from_slice(
        format!(
            "{} {:>3} {:>5} {:>5} {:>10} {}.{:09} ",
            mode_string(i.mode),
            i.nlink,
            i.uid,
            i.gid,
            size,
            i.mtime_sec,
            i.mtime_nsec
        )
        .as_bytes(),
    );
    out.extend_from_slice(if name.is_empty() { b"/" } else { name });
    if i.is_symlink() {
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(fl.symlink_target(ino));
    }
    out.push(b'\n');
}

/// `flist ls`.
pub fn cmd_ls(file: &Path, path: &str, recursive: bool) -> Result<()> {
    let fl = crate::rfs::read_any(file)?;
    let ino = lookup(&fl, file, path)?;
    let mut out = Vec::new();
    if recursive {
        let prefix = path.trim_matches('/').as_bytes();
        for (p, i) in fl.walk() {
            let inside = prefix.is_empty()
                || p == prefix
                || (p.starts_with(prefix) && p.get(prefix.len()) == Some(&b'/'));
            if inside {
                ls_line(&fl, i, &p, &mut out);
            }
        }
    } else if fl.inode(ino).is_some_and(|i| i.is_dir()) {
        for d in fl.children(ino) {
            ls_line(&fl, d.ino, fl.name(d), &mut out);
        }
    } else {
        ls_line(&fl, ino, path.as_bytes(), &mut out);
    }
    std::io::stdout().write_all(&out).ctx("stdout")
}

/// `flist stat`.
pub fn cmd_stat(file: &Path, path: &str) -> Result<()> {
    let fl = crate::rfs::read_any(file)?;
    let ino = lookup(&fl, file, path)?;
    let i = fl
        .inode(ino)
        .ok_or_else(|| Error::corrupt(file, "bad inode"))?;
    let mut o = Vec::new();
    let _ = writeln!(o, "path: {path}");
    let _ = writeln!(o, "inode: {ino}");
    let _ = writeln!(o, "mode: {:06o} ({})", i.mode, mode_string(i.mode));
    let _ = writeln!(
        o,
        "uid: {}\ngid: {}\nnlink: {}\nsize: {}",
        i.uid, i.gid, i.nlink, i.size
    );
    let _ = writeln!(o, "mtime: {}.{:09}", i.mtime_sec, i.mtime_nsec);
    if matches!(i.file_type(), format::S_IFCHR | format::S_IFBLK) {
        let _ = writeln!(
            o,
            "rdev: {},{}",
            rustix::fs::major(i.rdev),
            rustix::fs::minor(i.rdev)
        );
    }
    if i.is_symlink() {
        o.extend_from_slice(b"target: ");
        o.extend_from_slice(fl.symlink_target(ino));
        o.push(b'\n');
    }
    if i.is_reg() {
        let _ = writeln!(o, "blocks: {}", fl.file_blocks(ino).len());
    }
    for (n, v) in fl.xattrs_of(ino) {
        o.extend_from_slice(b"xattr: ");
        o.extend_from_slice(n);
        let _ = writeln!(o, " = {}", hex(v));
    }
    std::io::stdout().write_all(&o).ctx("stdout")
}

/// `flist cat`.
pub fn cmd_cat(stores: &[String], file: &Path, path: &str) -> Result<()> {
    let fl = crate::rfs::read_any(file)?;
    let ino = lookup(&fl, file, path)?;
    if !fl.inode(ino).is_some_and(|i| i.is_reg()) {
        return Err(Error::invalid(file, format!("{path}: not a regular file")));
    }
    let r = reader(&fl, file, stores)?;
    // Buffer the whole file so that a failing block writes nothing.
    let mut buf = Vec::new();
    r.copy_file(&fl, ino, &mut buf, Path::new("stdout"))?;
    std::io::stdout().write_all(&buf).ctx("stdout")
}

/// `flist sign`.
pub fn cmd_sign(key: &Path, file: &Path) -> Result<()> {
    let k = sign::read_key(key)?;
    let mut fl = format::read_file(file)?;
    sign::sign(&mut fl, &k);
    pack::write_atomic(file, &fl.to_bytes())?;
    println!("{}", hex(&k.verifying_key().to_bytes()));
    Ok(())
}

/// `flist keygen`.
pub fn cmd_keygen(output: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let k = sign::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .ctx(output)?;
    writeln!(f, "{}", hex(&k.to_bytes())).ctx(output)?;
    let mut pubp = output.as_os_str().to_owned();
    pubp.push(".pub");
    let pk = hex(&k.verifying_key().to_bytes());
    std::fs::write(&pubp, format!("{pk}\n")).ctx(PathBuf::from(&pubp))?;
    println!("{pk}");
    Ok(())
}

/// `flist inspect`.
pub fn cmd_inspect(file: &Path) -> Result<()> {
    let fl = crate::rfs::read_any(file)?;
    let mut counts = [0usize; 7];
    let mut bytes = 0u64;
    for i in &fl.inodes {
        let k = match i.file_type() {
            format::S_IFREG => 0,
            format::S_IFDIR => 1,
            format::S_IFLNK => 2,
            format::S_IFCHR | format::S_IFBLK => 3,
            format::S_IFIFO => 4,
            format::S_IFSOCK => 5,
            _ => 6,
        };
        counts[k] += 1;
        if i.is_reg() {
            bytes += i.size;
        }
    }
    let mut seen = HashSet::new();
    let (mut up, mut us) = (0u64, 0u64);
    for b in &fl.blocks {
        if seen.insert(b.id) {
            up += b.plain_len as u64;
            us += b.stored_len as u64;
        }
    }
    let p = &fl.params;
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(o, "file: {}", file.display());
    let _ = writeln!(o, "identity: {}", hex(&fl.identity));
    if p.hash == crate::rfs::HASH_RFS {
        let _ = writeln!(
            o,
            "format: rfs .fl (SQLite); fixed 512 KiB blocks, BLAKE2b-256 ids and keys, snappy, AES-256-GCM"
        );
    } else {
        let _ = writeln!(o, "format: v{}", format::VERSION);
        let _ = writeln!(
            o,
            "chunking: {:?} min {} avg {} max {}; hash blake3; compression zstd level {}; encryption {}",
            p.chunk.chunking,
            p.chunk.min,
            p.chunk.avg,
            p.chunk.max,
            p.level,
            if p.encrypted {
                "convergent chacha20poly1305"
            } else {
                "none"
            }
        );
    }
    let _ = writeln!(
        o,
        "inodes: {} (files {}, dirs {}, symlinks {}, devices {}, fifos {}, sockets {}); entries {}",
        fl.inodes.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        fl.dirents.len() + 1
    );
    let _ = writeln!(
        o,
        "content: {bytes} bytes in {} block references",
        fl.blocks.len()
    );
    let _ = writeln!(
        o,
        "unique blocks: {} ({up} bytes, {us} stored); dedup ratio {:.2}x; compression {:.2}x",
        seen.len(),
        ratio(bytes, up),
        ratio(up, us)
    );
    let _ = writeln!(o, "metadata: {} bytes", fl.body.len());
    for r in &fl.trailer.routes {
        let _ = writeln!(o, "route: {}", store::redact(r));
    }
    for s in &fl.trailer.signatures {
        let _ = writeln!(o, "signature: {}", hex(&s.public_key));
    }
    std::io::stdout().write_all(o.as_bytes()).ctx("stdout")
}
