//! The command line, and the plan of a run (how much of each workload).

/// How much of each workload a run does (`--quick` or full), and which
/// workload groups run (`--only`).
pub struct Plan {
    pub quick: bool,
    /// Workload groups to run; all when empty (`--only`).
    pub only: Vec<String>,
    /// Sequential single-key operations per measured series.
    pub single_ops: usize,
    pub bulk_entries: usize,
    pub bulk_runs: usize,
    pub items_entries: usize,
    pub items_runs: usize,
    /// Other keys in the database for the small and big `len` etc. rows.
    pub small_others: usize,
    pub filler_keys: usize,
    pub len_entries: usize,
    pub len_ops: usize,
    pub scan_runs: usize,
    pub big_ops: usize,
    /// Sequential set → event round trips per measured series.
    pub event_ops: usize,
    /// Events per throughput run, and runs.
    pub event_entries: usize,
    pub event_runs: usize,
    /// Entries of the scale workloads (`set_many` with a probe, `items` memory).
    pub scale_entries: usize,
}

impl Plan {
    /// Whether the workload group `name` is to run (`--only`).
    pub fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    pub fn new(quick: bool, only: Vec<String>) -> Plan {
        if quick {
            Plan {
                quick,
                only,
                single_ops: 5_000,
                bulk_entries: 100_000,
                bulk_runs: 3,
                items_entries: 10_000,
                items_runs: 10,
                small_others: 1_000,
                filler_keys: 1_000_000,
                len_entries: 1_000,
                len_ops: 500,
                scan_runs: 1,
                big_ops: 2_000,
                event_ops: 2_000,
                event_entries: 100_000,
                event_runs: 1,
                scale_entries: 1_000_000,
            }
        } else {
            Plan {
                quick,
                only,
                single_ops: 20_000,
                bulk_entries: 100_000,
                bulk_runs: 7,
                items_entries: 10_000,
                items_runs: 40,
                small_others: 1_000,
                filler_keys: 1_000_000,
                len_entries: 1_000,
                len_ops: 5_000,
                scan_runs: 3,
                big_ops: 10_000,
                event_ops: 10_000,
                event_entries: 100_000,
                event_runs: 3,
                scale_entries: 1_000_000,
            }
        }
    }
}

/// The command line.
pub struct Args {
    pub quick: bool,
    pub url: Option<String>,
    pub pin: bool,
    /// Server and client on separate CPUs (the default; `--one-cpu` clears it).
    pub split: bool,
    pub cluster: bool,
    /// With `--cluster`: the client on the first CPU, the masters spread over
    /// the others, replicas that would share a master's CPU at idle priority
    /// on every CPU (`--spread`), instead of all on one CPU.
    pub spread: bool,
    /// With `--spread`: deal the replicas out like the masters, at normal
    /// priority (`--no-idle-replicas`), competing with them for their CPUs.
    pub idle_replicas: bool,
    /// Internal: run as the memory probe child (`--rss-probe ours|raw`).
    pub rss_probe: Option<String>,
    pub entries: usize,
    /// Workload groups to run (all when empty): single, items, bulk, cache, events, durable, live, scale.
    pub only: Vec<String>,
}

/// The workload groups `--only` can name.
pub const GROUPS: [&str; 8] = [
    "single", "items", "bulk", "cache", "events", "durable", "live", "scale",
];

/// The usage line, printed for `--help` and bad arguments.
pub const USAGE: &str =
    "usage: cargo run --release -p redis-pydict-bench -- [--quick] [--split | --one-cpu | --no-pin] [--only single,items,bulk,cache,events,durable,live,scale] [--url redis://host:port/db] [--cluster [--spread [--no-idle-replicas]] [--url redis://seed1,redis://seed2,...]]";

/// Parses the command line; the error is the message to print.
pub fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        url: None,
        pin: true,
        split: true,
        cluster: false,
        spread: false,
        idle_replicas: true,
        rss_probe: None,
        entries: 0,
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--no-pin" => args.pin = false,
            "--split" => args.split = true,
            "--one-cpu" => args.split = false,
            "--cluster" => args.cluster = true,
            "--spread" => args.spread = true,
            "--no-idle-replicas" => args.idle_replicas = false,
            "--url" => args.url = Some(it.next().ok_or("--url needs a value")?),
            s if s.starts_with("--url=") => args.url = Some(s["--url=".len()..].to_owned()),
            "--rss-probe" => args.rss_probe = Some(it.next().ok_or("--rss-probe needs a value")?),
            "--entries" => {
                let n = it.next().ok_or("--entries needs a value")?;
                args.entries = n.parse().map_err(|_| format!("bad --entries {n:?}"))?;
            }
            "--only" => {
                let list = it.next().ok_or("--only needs a value")?;
                args.only = list.split(',').map(str::to_owned).collect();
                if let Some(unknown) = args.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(format!(
                        "unknown workload group {unknown:?} in --only\n{USAGE}"
                    ));
                }
            }
            "--bench" => {} // passed by `cargo bench`-style runners; harmless
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.spread && !args.cluster {
        return Err(format!("--spread goes with --cluster\n{USAGE}"));
    }
    if !args.idle_replicas && !args.spread {
        return Err(format!("--no-idle-replicas goes with --spread\n{USAGE}"));
    }
    Ok(args)
}
