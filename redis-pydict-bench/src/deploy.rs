//! Where the benchmark runs: a private server or cluster (or one given by
//! `--url`), and the CPUs the client and a private server are pinned to.

use std::process::ExitCode;

use redis_pydict_test::{RedisCluster, RedisServer, INSTALL_HINT};

use crate::args::Args;
use crate::workloads::progress;

/// Set in the environment of the pinned re-run of this program.
pub const PINNED_ENV: &str = "REDIS_PYDICT_BENCH_CPU";
/// Set, with `--split`, to the CPU the pinned re-run moves its server to.
pub const SERVER_CPU_ENV: &str = "REDIS_PYDICT_BENCH_SERVER_CPU";

/// On a shared or virtual machine, loopback round trips are bimodal when the
/// scheduler moves the client between CPUs at will, which drowns a 15 %
/// difference in noise. So the benchmark re-runs itself under `taskset`: on
/// the first CPU with `split` (its private server is then moved to the last
/// CPU once started, see [`pin_server`]), else on the last CPU, which its
/// private server inherits. Returns the exit code of the pinned run, or
/// `None` to go on unpinned here.
pub fn run_pinned(split: bool) -> Option<ExitCode> {
    let cpus = cpu_count();
    if split && cpus < 2 {
        eprintln!("note: one CPU only: server and client share it");
    }
    let cpu = if split && cpus >= 2 { 0 } else { cpus - 1 }.to_string();
    let usable = std::process::Command::new("taskset")
        .args(["-c", &cpu, "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("note: `taskset` is not usable here; running unpinned (figures will be noisier)");
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = std::process::Command::new("taskset")
        .args(["-c", &cpu])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(PINNED_ENV, format!("{cpu} (of {cpus})"))
        .env(
            SERVER_CPU_ENV,
            if split && cpus >= 2 {
                (cpus - 1).to_string()
            } else {
                String::new()
            },
        )
        .status();
    match status {
        Ok(status) => Some(match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        }),
        Err(e) => {
            eprintln!("note: cannot run under taskset ({e}); running unpinned");
            None
        }
    }
}

/// Moves the private server to `cpu` (`--split`).
pub fn pin_server(server: &RedisServer, cpu: &str) -> bool {
    let pinned = server.pid().is_some_and(|pid| {
        std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpu, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !pinned {
        eprintln!("note: could not pin the server to CPU {cpu}; it shares the client's");
    }
    pinned
}

/// Deals the nodes of a private cluster out over CPUs `1..=last` (`--cluster
/// --spread`; the client runs on CPU 0), masters first so that they get CPUs
/// of their own before the replicas. Each node's `redis-server` process is
/// found by the `process_id` its `INFO server` reports (the nodes run under
/// a wrapper shell).
///
/// Replicas that would share a CPU with a master instead run at idle
/// priority (`SCHED_IDLE`, see [`idle_priority`]) on every CPU, the
/// client's included: they take only time the masters and the client leave,
/// as replicas on hosts of their own take none of theirs. Sharing a
/// master's CPU at normal priority, a replica woken by its master's
/// replication stream took the CPU before the master had written its
/// replies and messages (Redis writes the replica's stream first), which put
/// the replica's work into the latency of every replicated write and into
/// none of the raw side's SPUBLISH rows. Confined to the masters' CPU at idle
/// priority, replicas got no CPU while their master was saturated, and the
/// raw side's SPUBLISH floods ran at a third of their speed.
/// `idle_replicas` false (`--no-idle-replicas`) deals the replicas out like
/// the masters, at normal priority.
///
/// Returns where the nodes run, e.g. "3 masters on CPU 1, 3 replicas at
/// idle priority on CPUs 0-1", or `None` when a node could not be pinned
/// (it is then said why).
pub fn spread_cluster(cluster: &RedisCluster, last: usize, idle_replicas: bool) -> Option<String> {
    let masters = cluster.masters();
    let mut ports = masters.clone();
    ports.extend(cluster.ports().into_iter().filter(|p| !masters.contains(p)));
    let first = 1.min(last);
    let node_cpus = last - first + 1;
    let idle_cpus = if last == 0 {
        "0".to_owned()
    } else {
        format!("0-{last}")
    };
    let mut idled = 0;
    for (i, port) in ports.iter().enumerate() {
        let replica = i >= masters.len();
        let shares_with_a_master = node_cpus < masters.len() || i % node_cpus < masters.len();
        let idle = idle_replicas && replica && shares_with_a_master;
        let cpu = if idle {
            idle_cpus.clone()
        } else {
            (first + i % node_cpus).to_string()
        };
        let pid = redis::Client::open(redis_pydict_test::node_url(*port))
            .and_then(|client| client.get_connection())
            .and_then(|mut conn| redis::cmd("INFO").arg("server").query::<String>(&mut conn))
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("process_id:"))
                    .and_then(|pid| pid.trim().parse::<u32>().ok())
            });
        let pinned = pid.is_some_and(|pid| {
            std::process::Command::new("taskset")
                .args(["-a", "-p", "-c", &cpu, &pid.to_string()])
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !pinned {
            eprintln!("note: could not pin the cluster node on port {port} to CPU {cpu}");
            return None;
        }
        if idle {
            match pid.map(idle_priority) {
                Some(Ok(())) => idled += 1,
                Some(Err(why)) => eprintln!(
                    "note: the replica on port {port} runs on CPUs {cpu} at normal priority ({why})"
                ),
                None => {}
            }
        }
    }
    let cpus = if node_cpus == 1 {
        format!("CPU {first}")
    } else {
        format!("CPUs {first}-{last}")
    };
    Some(match idled {
        0 => format!("6 nodes spread over {cpus} (masters first)"),
        n => format!(
            "{} masters on {cpus}, {n} replicas at idle priority on CPUs {idle_cpus}",
            masters.len()
        ),
    })
}

/// Puts every thread of process `pid` under `SCHED_IDLE`: it runs only when
/// no normal-priority thread wants its CPU (`chrt --idle`).
fn idle_priority(pid: u32) -> Result<(), String> {
    let status = std::process::Command::new("chrt")
        .args(["--idle", "-a", "-p", "0", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run chrt: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chrt --idle failed: {status}"))
    }
}

/// Says why the benchmark cannot start `what` and how to get on.
pub fn cannot_start(what: &str, msg: &str) -> ExitCode {
    eprintln!("error: cannot start {what}: {msg}");
    if !msg.contains("was not found on PATH") {
        eprintln!("hint: {INSTALL_HINT}");
    }
    eprintln!("or point the benchmark at running servers: --url redis://host:port/db");
    ExitCode::FAILURE
}

/// CPUs this process may run on.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts a private server that allows `DEBUG POPULATE` from loopback
/// (Redis ≥ 7 blocks DEBUG by default); falls back to a plain server.
pub fn start_server() -> Result<RedisServer, String> {
    match RedisServer::try_start_with(&["--enable-debug-command", "local"]) {
        Ok(server) => Ok(server),
        Err(msg) if msg == INSTALL_HINT => Err(msg),
        Err(_) => RedisServer::try_start_with(&[]),
    }
}

/// The private cluster's `cluster-node-timeout`: Redis's default, as in a
/// deployment. The tests' 2 s makes their failovers quick; here a replica at
/// idle priority may get no CPU for a while, which must not count as its
/// failure.
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Starts a private cluster (3 masters, 3 replicas), trying again when a
/// node loses the race for its free port to another process.
pub fn start_cluster() -> Result<RedisCluster, String> {
    let mut last_error = String::new();
    for _ in 0..3 {
        match RedisCluster::try_start_with(NODE_TIMEOUT, &[]) {
            Ok(cluster) => return Ok(cluster),
            Err(msg) if msg.contains("was not found on PATH") => return Err(msg),
            Err(msg) => last_error = msg,
        }
    }
    Err(last_error)
}

/// Where the benchmark runs.
pub struct Deployment {
    /// The server's URL, or a cluster's seed URLs.
    pub urls: Vec<String>,
    pub cluster: bool,
    /// A private server or cluster of our own (free to configure).
    pub own: bool,
}

/// A private server or cluster of our own, stopped when dropped; nothing
/// with `--url`.
pub struct Private {
    _server: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

/// Starts the private server or cluster `args` asks for (none with `--url`),
/// moves a private server to its own CPU when this run is pinned with
/// `--split` (`pinned_cpu`: the CPU this process runs on), and describes the
/// setup for the table's header. On failure, says why and returns the exit
/// code.
pub fn deploy(
    args: &Args,
    pinned_cpu: Option<&str>,
) -> Result<(Private, Deployment, String), ExitCode> {
    let (mut server, mut cluster) = (None, None);
    let urls = match (&args.url, args.cluster) {
        (Some(url), _) => url.split(',').map(str::to_owned).collect::<Vec<_>>(),
        (None, false) => match start_server() {
            Ok(started) => vec![server.insert(started).url()],
            Err(msg) => return Err(cannot_start("a private redis-server", &msg)),
        },
        (None, true) => {
            progress("starting a private cluster (3 masters, 3 replicas)");
            match start_cluster() {
                Ok(started) => cluster.insert(started).urls(),
                Err(msg) => return Err(cannot_start("a private redis cluster", &msg)),
            }
        }
    };
    let own = args.url.is_none();
    let server_cpu = std::env::var(SERVER_CPU_ENV).ok();
    let split_cpu = match (&server, server_cpu.as_deref()) {
        (Some(server), Some(cpu)) if !cpu.is_empty() => pin_server(server, cpu).then_some(cpu),
        _ => None,
    };
    let spread_cpus = match (&cluster, server_cpu.as_deref().map(str::parse::<usize>)) {
        (Some(cluster), Some(Ok(last))) if args.spread => {
            spread_cluster(cluster, last, args.idle_replicas)
        }
        _ => None,
    };
    let place = match (pinned_cpu, args.cluster) {
        (Some(cpu), true) if spread_cpus.is_some() => format!(
            "its {} and the client on CPU {cpu}",
            spread_cpus.as_deref().unwrap_or_default()
        ),
        (Some(cpu), false) if split_cpu.is_some() => format!(
            "it pinned to CPU {} and the client to CPU {cpu}",
            split_cpu.unwrap_or_default()
        ),
        (Some(cpu), false) => format!("it and the client pinned to CPU {cpu}"),
        (Some(cpu), true) => format!("its 6 nodes and the client pinned to CPU {cpu}"),
        (None, _) => format!("unpinned on {} CPUs", cpu_count()),
    };
    let setup = match (own, args.cluster) {
        (true, false) => format!("private server on loopback, {place}"),
        (true, true) => format!("private 3-master/3-replica cluster on loopback, {place}"),
        (false, false) => format!(
            "server at {}, client unpinned on {} CPUs",
            urls[0],
            cpu_count()
        ),
        (false, true) => format!(
            "cluster seeded by {}, client unpinned on {} CPUs",
            urls.join(","),
            cpu_count()
        ),
    };
    let deployment = Deployment {
        urls,
        cluster: args.cluster,
        own,
    };
    let private = Private {
        _server: server,
        _cluster: cluster,
    };
    Ok((private, deployment, setup))
}
