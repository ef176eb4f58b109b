//! A private `redis-server` (or a 3+3 Redis Cluster) on free loopback ports,
//! for integration tests: started with no persistence, killed when dropped
//! (or when the test process ends), and able to kill, restart and
//! reconfigure itself. redis-pydict's own tests, examples and benchmark use
//! it; it is offered for your tests of code that uses redis-pydict, as
//! redis-rs offers `redis-test`.
//!
//! It needs `redis-server` on `PATH` (or at `$REDIS_SERVER`), and
//! `redis-cli` (or `$REDIS_CLI`) for a cluster; without them it panics with
//! how to install them, so that a test fails loudly instead of skipping.
//! `RedisServer` and `RedisCluster` always start their own processes on free
//! ports: they never touch a server you run (on 6379 or elsewhere).
//!
//! # In your integration tests
//!
//! ```toml
//! [dev-dependencies]
//! redis-pydict-test = { git = "https://example.invalid/redis-pydict" }
//! ```
//!
//! One server per test, so tests stay independent and may run in parallel:
//!
//! ```
//! use redis_pydict_test::RedisServer;
//!
//! let server = RedisServer::start(); // e.g. redis://127.0.0.1:41234/
//! // Your code connects to `server.url()`: with redis-pydict,
//! // `redis_pydict::Store::connect(&server.url()).await?`. Here plain
//! // redis-rs looks behind its back, as a test may.
//! let mut conn = redis::Client::open(server.url())?.get_connection()?;
//! redis::cmd("SET").arg("{app}:greeting").arg("hello").exec(&mut conn)?;
//! let got: String = redis::cmd("GET").arg("{app}:greeting").query(&mut conn)?;
//! assert_eq!(got, "hello");
//! # Ok::<(), redis::RedisError>(())
//! ```
//!
//! [`RedisServer::start_with`] passes `redis-server` options
//! (`&["--maxmemory", "2mb"]`, `&["--requirepass", "s3cret"]`);
//! [`RedisServer::kill`] and [`RedisServer::restart`] (same port; empty
//! unless started with `--appendonly yes`) test how your code lives through
//! a dead or restarted server.
//!
//! [`RedisCluster::start`] starts 3 masters with one replica each; give a
//! cluster client [`RedisCluster::urls`]. [`master_for_key`] tells which
//! master holds a key (`"{ns}"` for a redis-pydict namespace), to look at it
//! over a plain connection; [`RedisCluster::kill_node`],
//! [`RedisCluster::wait_for_failover`] and [`RedisCluster::migrate_slot`]
//! change the cluster's shape under your code.
//!
//! [`demo_server`] is for examples rather than tests: the server at
//! `REDIS_URL`, else one on 127.0.0.1:6379, else a private one.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get a `redis-server` binary, for messages.
pub const INSTALL_HINT: &str = "redis-server was not found on PATH; install it (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_SERVER to its path";

/// The least-privilege ACL rules the README documents ("Least-privilege
/// ACL"): what a user confined to one namespace needs, shared by the ACL
/// tests of the library, the CLI and the cluster (keep the README in step).
pub mod acl {
    /// One list of commands, two constants.
    macro_rules! rules {
        ($($command:literal,)*) => {
            /// The rules of a user that may use namespace `app` and nothing
            /// else: its keys and channels, then [`COMMANDS`].
            pub const APP_RULES: &[&str] = &[
                "resetkeys",
                "~{app}*",
                "resetchannels",
                "&{app}#ev",
                "&{app}#ev:*",
                $($command,)*
            ];

            /// The commands of [`APP_RULES`] (after its keys and channels).
            pub const COMMANDS: &[&str] = &[$($command,)*];
        };
    }

    rules! {
        "-@all",
        "+ping",
        "+client|setname",
        "+time",
        "+get",
        "+mget",
        "+exists",
        "+pttl",
        "+type",
        "+set",
        "+mset",
        "+del",
        "+unlink",
        "+getdel",
        "+incrby",
        "+pexpire",
        "+persist",
        "+hget",
        "+hset",
        "+zadd",
        "+zrem",
        "+zrange",
        "+zscan",
        "+zcard",
        "+zcount",
        "+zremrangebyscore",
        "+scan",
        "+eval",
        "+evalsha",
        "+script|load",
        "+multi",
        "+exec",
        "+watch",
        "+unwatch",
        "+xadd",
        "+xrange",
        "+xrevrange",
        "+xread",
        "+publish",
        "+subscribe",
        "+psubscribe",
    }

    /// The version `INFO server` reports: `redis_version:7.0.15` gives
    /// `[7, 0, 15]` (empty if there is none).
    pub fn redis_version(info: &str) -> Vec<u32> {
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| {
                v.trim()
                    .split('.')
                    .map(|n| n.parse().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The entries of `ACL LOG`, one text each, from a server whose `INFO
    /// server` is `info`. Redis before 7.0 also logs redis-rs's `CLIENT
    /// SETINFO` at every connection as denied (harmless: redis-rs ignores
    /// the answer; 7.0 refuses the unknown subcommand before any ACL
    /// check); those entries are left out.
    pub fn denials(
        entries: &[std::collections::HashMap<String, redis::Value>],
        info: &str,
    ) -> Vec<String> {
        let before_7 = redis_version(info).first().is_some_and(|&major| major < 7);
        entries
            .iter()
            .filter(|e| {
                let object = e
                    .get("object")
                    .and_then(|o| redis::from_redis_value::<String>(o.clone()).ok());
                !(before_7 && object.as_deref() == Some("client"))
            })
            .map(|e| format!("{e:?}"))
            .collect()
    }

    /// [`APP_RULES`] for namespace `ns`: its keys `{ns}*`, its channels
    /// `{ns}#ev` and `{ns}#ev:*`, then [`COMMANDS`].
    pub fn namespace_rules(ns: &str) -> Vec<String> {
        let mut rules = vec![
            "resetkeys".to_owned(),
            format!("~{{{ns}}}*"),
            "resetchannels".to_owned(),
            format!("&{{{ns}}}#ev"),
            format!("&{{{ns}}}#ev:*"),
        ];
        rules.extend(COMMANDS.iter().map(|c| (*c).to_owned()));
        rules
    }
}

/// A `redis-server` process of our own, on a free loopback port, with no
/// persistence. Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server, panicking with an install hint if there is no
    /// `redis-server` (tests must fail loudly, never skip).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (e.g.
    /// `["--notify-keyspace-events", "Ex"]`), panicking on failure.
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        match Self::try_start_with(extra_args) {
            Ok(server) => server,
            Err(e) => panic!("cannot start redis-server: {e}"),
        }
    }

    /// Starts a server, or says why not.
    pub fn try_start_with(extra_args: &[&str]) -> Result<RedisServer, String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let mut server = RedisServer {
                child: None,
                port,
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        // A directory per server, kept across restarts on the same port (so a
        // server started with `--appendonly yes` finds its data again).
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cmd = Command::new(&binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(for_version(&binary, &self.extra_args)?)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => INSTALL_HINT.to_owned(),
            _ => format!("{binary}: {e}"),
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "redis-server on port {} exited at start: {status}",
                        self.port
                    ));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(format!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        ))
    }

    /// The server's working directory (AOF and RDB files, if enabled).
    pub fn dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "redis-pydict-test-{}-{}",
            std::process::id(),
            self.port
        ))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs (e.g. to pin it to a CPU).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (if running) and starts it again on the same port and
    /// directory: empty, unless it was started with persistence (`--appendonly yes`).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("cannot restart redis-server: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// The server an example should use: `REDIS_URL`, else one answering on
/// 127.0.0.1:6379, else a private `redis-server` started here (returned too,
/// so that it lives as long as the caller keeps it). The error says how to
/// install `redis-server` when none can be started.
pub fn demo_server() -> Result<(String, Option<RedisServer>), String> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok((url, None));
    }
    if ping(6379) {
        return Ok(("redis://127.0.0.1:6379/".into(), None));
    }
    println!(
        "no Redis at REDIS_URL or 127.0.0.1:6379; starting a private redis-server for the demo"
    );
    let server = RedisServer::try_start_with(&[])?;
    Ok((server.url(), Some(server)))
}

/// A port free on 127.0.0.1 right now, and never handed out before by this
/// process: a killed server's port is not given to a new one, so a client
/// that still remembers the old server's address (a cluster client's stale
/// slot map, say) can never reach a server of another test there.
pub fn free_port() -> std::io::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "no port that this process has not used already",
    ))
}

/// The major version of a `redis-server` binary (`redis-server --version`
/// prints `v=7.0.15`), asked once per binary.
pub fn server_major_version(binary: &str) -> Result<u32, String> {
    static KNOWN: std::sync::Mutex<Vec<(String, u32)>> = std::sync::Mutex::new(Vec::new());
    let mut known = KNOWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, major)) = known.iter().find(|(b, _)| b == binary) {
        return Ok(*major);
    }
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => INSTALL_HINT.to_owned(),
            _ => format!("{binary} --version: {e}"),
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let major = text
        .split_once("v=")
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|major| major.parse().ok())
        .ok_or_else(|| format!("{binary} --version printed no version: {text}"))?;
    known.push((binary.to_owned(), major));
    Ok(major)
}

/// `redis-server` options as the binary's version takes them: before 7.0
/// DEBUG needs no `--enable-debug-command` (the option does not exist yet).
fn for_version(binary: &str, args: &[String]) -> Result<Vec<String>, String> {
    if server_major_version(binary)? >= 7 {
        return Ok(args.to_vec());
    }
    let mut kept = Vec::with_capacity(args.len());
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg == "--enable-debug-command" {
            skip_value = true;
            continue;
        }
        kept.push(arg.clone());
    }
    Ok(kept)
}

/// A free port whose port + 10000 is free too (a Redis < 7 cluster node's bus).
fn bus_at_port_plus_10000() -> Result<(u16, u16), String> {
    for _ in 0..200 {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return Ok((port, bus));
        }
    }
    Err("no free port whose port + 10000 is free too".to_owned())
}

/// True when a Redis server answers PING (with any reply) on 127.0.0.1:`port`.
pub fn ping(port: u16) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    // Any reply means the server is up: `+PONG`, or `-NOAUTH` with a password.
    let mut buf = [0u8; 1];
    stream.read_exact(&mut buf).is_ok() && (buf[0] == b'+' || buf[0] == b'-')
}

/// How to get `redis-cli` (needed to create a cluster), for messages.
pub const REDIS_CLI_HINT: &str = "redis-cli was not found on PATH; it comes with the redis-server package (Debian/Ubuntu: `sudo apt-get install redis-server` or `redis-tools`, macOS: `brew install redis`) or set REDIS_CLI to its path";

/// Number of hash slots of a Redis Cluster.
pub const CLUSTER_SLOTS: u16 = 16384;

/// Shell wrapper of one cluster node: starts `redis-server` in the background,
/// prints nothing, and kills it (SIGKILL) and removes its directory as soon as
/// its standard input closes: when the [`RedisCluster`] drops it, or when the
/// test process ends in any way (so a cluster kept in a `static` never leaks).
const LIFELINE: &str = r#"dir=$1; shift; "$@" & pid=$!; read -r _ignored; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir""#;

/// One node of a [`RedisCluster`].
#[derive(Debug)]
struct ClusterNode {
    port: u16,
    dir: std::path::PathBuf,
    /// The lifeline wrapper; `None` once the node is killed.
    wrapper: Option<Child>,
}

impl ClusterNode {
    fn spawn(binary: &str, node_timeout: Duration, extra_args: &[String]) -> Result<Self, String> {
        // Redis before 7.0 has no `--cluster-port`: its bus is the port + 10000.
        let fixed_bus = server_major_version(binary)? < 7;
        let (port, bus_port) = if fixed_bus {
            bus_at_port_plus_10000()?
        } else {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            (port, free_port().map_err(|e| format!("no free port: {e}"))?)
        };
        let dir = std::env::temp_dir().join(format!(
            "redis-pydict-cluster-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let timeout_ms = node_timeout.as_millis().to_string();
        let mut args: Vec<String> = [
            binary,
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout_ms,
            // A replica may always take over (no data-age limit): failover tests
            // kill masters on purpose.
            "--cluster-replica-validity-factor",
            "0",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--appendonly",
            "no",
            "--save",
            "",
            "--dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(dir.display().to_string());
        // An absolute path: Redis before 7.0 opens the log file as it reads
        // the option, relative to where it started, not to `--dir`.
        args.extend([
            "--logfile".to_owned(),
            dir.join("redis.log").display().to_string(),
        ]);
        if !fixed_bus {
            args.extend(["--cluster-port".to_owned(), bus_port.to_string()]);
        }
        args.extend(extra_args.iter().cloned());
        let wrapper = Command::new("sh")
            .arg("-c")
            .arg(LIFELINE)
            .arg("redis-cluster-node")
            .arg(&dir)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("sh: {e}"))?;
        Ok(ClusterNode {
            port,
            dir,
            wrapper: Some(wrapper),
        })
    }

    /// The node's log so far (for failure messages).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Kills the node (SIGKILL) and waits for it to be gone.
    fn kill(&mut self) {
        if let Some(mut wrapper) = self.wrapper.take() {
            // Closing its stdin makes the wrapper kill the server, wait for
            // it and remove its directory.
            drop(wrapper.stdin.take());
            let _ = wrapper.wait();
        }
    }

    fn is_alive(&self) -> bool {
        self.wrapper.is_some()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A range of slots (first, last) and the port of the master serving it.
type SlotRange = (u16, u16, u16);

/// What one node says about one node of the cluster (a line of `CLUSTER NODES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node id.
    pub id: String,
    /// Its client address (the IP it announces, `127.0.0.1` for ours).
    pub host: String,
    /// Its client port.
    pub port: u16,
    /// True for a master, false for a replica.
    pub master: bool,
    /// True when flagged `fail` (or `fail?` by the node asked).
    pub failed: bool,
    /// A replica's master id.
    pub master_id: Option<String>,
    /// The slot ranges a master serves (inclusive).
    pub slots: Vec<(u16, u16)>,
}

/// A Redis Cluster of our own: 3 masters with one replica each, on free
/// loopback ports, no persistence, each node in a directory of its own.
/// Everything is killed and removed when dropped (or when the process ends).
///
/// Needs `redis-server` and `redis-cli` (both in the redis-server package).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    node_timeout: Duration,
    /// The nodes' major Redis version.
    major_version: u32,
    /// Killed nodes, each with the replicas it had.
    killed: Vec<(u16, Vec<u16>)>,
}

impl RedisCluster {
    /// Default cluster-node-timeout: short, so that a killed master's replica
    /// takes over within a few seconds, long enough that a busy 2-core test
    /// machine does not fail nodes over by accident.
    pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(2000);

    /// Starts a healthy cluster (3 masters, 3 replicas), panicking with an
    /// install hint if `redis-server` or `redis-cli` is missing.
    pub fn start() -> RedisCluster {
        Self::start_with(Self::DEFAULT_NODE_TIMEOUT, &[])
    }

    /// Starts a cluster with this cluster-node-timeout and extra
    /// `redis-server` arguments for every node, panicking on failure.
    pub fn start_with(node_timeout: Duration, extra_args: &[&str]) -> RedisCluster {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start_with(node_timeout, extra_args) {
                Ok(cluster) => return cluster,
                Err(e) => last_error = e,
            }
        }
        panic!("cannot start a redis cluster: {last_error}")
    }

    /// Starts a cluster, or says why not.
    pub fn try_start_with(
        node_timeout: Duration,
        extra_args: &[&str],
    ) -> Result<RedisCluster, String> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let cli = redis_cli();
        check_binary(&binary, INSTALL_HINT)?;
        check_binary(&cli, REDIS_CLI_HINT)?;
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            node_timeout,
            major_version: server_major_version(&binary)?,
            killed: Vec::new(),
        };
        for _ in 0..6 {
            cluster
                .nodes
                .push(ClusterNode::spawn(&binary, node_timeout, &extra)?);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for node in &cluster.nodes {
            while !ping(node.port) {
                if Instant::now() > deadline {
                    return Err(format!(
                        "cluster node on port {} did not answer PING within 10 s:\n{}",
                        node.port,
                        node.log_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let output = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(
                cluster
                    .nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.port)),
            )
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{cli}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        cluster.try_wait_healthy(Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// The nodes' major Redis version (7 for 7.0.15): sharded pub/sub, for
    /// one, needs 7.
    pub fn major_version(&self) -> u32 {
        self.major_version
    }

    /// The cluster-node-timeout the nodes run with.
    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    /// Client ports of the live nodes, masters and replicas.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_alive())
            .map(|n| n.port)
            .collect()
    }

    /// `redis://127.0.0.1:<port>/` of every live node: seed URLs for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.ports().into_iter().map(node_url).collect()
    }

    /// What a live node says about the cluster (`CLUSTER NODES`).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let port = self.any_live_port();
        query::<String>(port, redis::cmd("CLUSTER").arg("NODES"))
            .map(|text| parse_cluster_nodes(&text))
            .unwrap_or_else(|e| panic!("CLUSTER NODES on {port}: {e}"))
    }

    /// Ports of the current masters (as a live node sees them), sorted.
    pub fn masters(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .nodes()
            .into_iter()
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .map(|n| n.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        query::<String>(port, redis::cmd("CLUSTER").arg("MYID"))
            .unwrap_or_else(|e| panic!("CLUSTER MYID on {port}: {e}"))
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.any_live_port();
        query::<u16>(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT on {port}: {e}"))
    }

    /// The port of the master serving `slot`, as a live node sees it.
    pub fn master_for_slot(&self, slot: u16) -> u16 {
        master_serving(&self.nodes(), slot)
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// The port of the master serving `key`'s slot, as a live node sees it.
    pub fn master_for_key(&self, key: &str) -> u16 {
        let url = node_url(self.any_live_port());
        master_for_key(&url, key)
            .map(|n| n.port)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The replicas (ports) of the master on `port`: those the cluster's
    /// gossip lists as its replicas, and those connected to it right now
    /// (its `INFO replication`; the gossip view of a live node may lag).
    pub fn replicas_of(&self, port: u16) -> Vec<u16> {
        let id = self.node_id(port);
        let mut replicas: Vec<u16> = self
            .nodes()
            .into_iter()
            .filter(|n| !n.master && n.master_id.as_deref() == Some(id.as_str()))
            .map(|n| n.port)
            .collect();
        let info = query::<String>(port, redis::cmd("INFO").arg("replication")).unwrap_or_default();
        // slave0:ip=127.0.0.1,port=30004,state=online,offset=...,lag=0
        let connected = info
            .lines()
            .filter(|line| line.starts_with("slave") && line.contains(":ip="))
            .filter_map(|line| {
                line.split(',')
                    .find_map(|field| field.strip_prefix("port="))
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
        for replica in connected {
            if !replicas.contains(&replica) {
                replicas.push(replica);
            }
        }
        replicas
    }

    /// Kills the node on `port` (SIGKILL), as a crash would.
    pub fn kill_node(&mut self, port: u16) {
        assert!(
            self.nodes.iter().any(|n| n.port == port && n.is_alive()),
            "no live cluster node on port {port}"
        );
        let replicas = self.replicas_of(port);
        self.killed.push((port, replicas));
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("checked above");
        node.kill();
    }

    /// Waits until the master on `old_master` (killed with
    /// [`RedisCluster::kill_node`]) has been replaced by its replica and the
    /// cluster is healthy again; returns the promoted replica's port.
    pub fn wait_for_failover(&self, old_master: u16, limit: Duration) -> u16 {
        let replicas = self
            .killed
            .iter()
            .find(|(port, _)| *port == old_master)
            .map(|(_, replicas)| replicas.clone())
            .unwrap_or_else(|| panic!("{old_master} is not a master killed by kill_node"));
        let deadline = Instant::now() + limit;
        let mut last_error;
        loop {
            match self.check_healthy().and_then(|()| self.nodes_seen_by_all()) {
                Ok(nodes) => {
                    let promoted = nodes.iter().find(|n| {
                        n.master && !n.failed && !n.slots.is_empty() && replicas.contains(&n.port)
                    });
                    match promoted {
                        Some(node) => return node.port,
                        None => {
                            last_error = format!(
                                "no replica of {old_master} (replicas {replicas:?}) promoted yet; the nodes see {nodes:?}"
                            )
                        }
                    }
                }
                Err(e) => last_error = e,
            }
            if Instant::now() > deadline {
                panic!("no failover of {old_master} within {limit:?}: {last_error}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every live node reports `cluster_state:ok`, all 16384
    /// slots are served by live masters, every live node agrees on who
    /// serves what, and every live replica's link to its master is up.
    pub fn wait_healthy(&self, limit: Duration) {
        if let Err(e) = self.try_wait_healthy(limit) {
            panic!("cluster not healthy within {limit:?}: {e}");
        }
    }

    fn try_wait_healthy(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.check_healthy() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    let logs: Vec<String> = self
                        .nodes
                        .iter()
                        .map(|n| format!("--- node {}:\n{}", n.port, n.log_tail()))
                        .collect();
                    return Err(format!("{e}\n{}", logs.join("\n")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// One health check (see [`RedisCluster::wait_healthy`]).
    pub fn check_healthy(&self) -> Result<(), String> {
        let nodes = self.nodes_seen_by_all()?;
        for port in self.ports() {
            let info = query::<String>(port, redis::cmd("CLUSTER").arg("INFO"))?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
                    .unwrap_or("")
                    .to_owned()
            };
            if field("cluster_state") != "ok" {
                return Err(format!(
                    "node {port}: cluster_state:{}",
                    field("cluster_state")
                ));
            }
            if field("cluster_slots_ok") != CLUSTER_SLOTS.to_string() {
                return Err(format!(
                    "node {port}: cluster_slots_ok:{}",
                    field("cluster_slots_ok")
                ));
            }
            let replication = query::<String>(port, redis::cmd("INFO").arg("replication"))?;
            if replication.contains("role:slave") {
                if !replication.contains("master_link_status:up") {
                    return Err(format!("replica {port}: link to its master not up"));
                }
            } else if !nodes
                .iter()
                .any(|n| n.port == port && n.master && !n.slots.is_empty())
            {
                return Err(format!(
                    "node {port} is neither a replica nor a serving master"
                ));
            }
        }
        Ok(())
    }

    /// The cluster as seen by the live nodes, provided they all agree on
    /// which live master serves which slots and every slot is served.
    fn nodes_seen_by_all(&self) -> Result<Vec<NodeInfo>, String> {
        let live = self.ports();
        let mut agreed: Option<(Vec<NodeInfo>, Vec<SlotRange>)> = None;
        for &port in &live {
            let text = query::<String>(port, redis::cmd("CLUSTER").arg("NODES"))?;
            let nodes = parse_cluster_nodes(&text);
            let mut map: Vec<SlotRange> = nodes
                .iter()
                .filter(|n| n.master && !n.failed)
                .flat_map(|n| n.slots.iter().map(move |&(lo, hi)| (lo, hi, n.port)))
                .collect();
            map.sort_unstable();
            let covered: u32 = map.iter().map(|&(lo, hi, _)| u32::from(hi - lo) + 1).sum();
            if covered != u32::from(CLUSTER_SLOTS) {
                return Err(format!("node {port} sees {covered} slots served"));
            }
            if let Some(&(_, _, dead)) = map.iter().find(|(_, _, p)| !live.contains(p)) {
                return Err(format!(
                    "node {port} still routes slots to dead node {dead}"
                ));
            }
            match &agreed {
                None => agreed = Some((nodes, map)),
                Some((_, first)) if *first != map => {
                    return Err(format!("node {port} disagrees on the slot map"));
                }
                Some(_) => {}
            }
        }
        agreed
            .map(|(nodes, _)| nodes)
            .ok_or_else(|| "no live node".to_owned())
    }

    /// Moves `slot` from the master serving it to the master on `to`:
    /// SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys `keys_per_step` at a
    /// time with `pause` between steps (so that clients meet ASK redirections
    /// meanwhile), then SETSLOT NODE on every master (MOVED afterwards).
    pub fn migrate_slot(&self, slot: u16, to: u16, keys_per_step: usize, pause: Duration) {
        if let Err(e) = self.try_migrate_slot(slot, to, keys_per_step, pause) {
            panic!("migrating slot {slot} to {to}: {e}");
        }
    }

    fn try_migrate_slot(
        &self,
        slot: u16,
        to: u16,
        keys_per_step: usize,
        pause: Duration,
    ) -> Result<(), String> {
        let from = self.master_for_slot(slot);
        if from == to {
            return Err(format!("slot {slot} is already on {to}"));
        }
        let from_id = self.node_id(from);
        let to_id = self.node_id(to);
        let setslot = |port: u16, args: &[&str]| {
            query::<()>(
                port,
                redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(args),
            )
        };
        setslot(to, &["IMPORTING", &from_id])?;
        setslot(from, &["MIGRATING", &to_id])?;
        loop {
            let keys: Vec<String> = query(
                from,
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(keys_per_step.max(1)),
            )?;
            if keys.is_empty() {
                break;
            }
            query::<()>(
                from,
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(to)
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("REPLACE")
                    .arg("KEYS")
                    .arg(&keys),
            )?;
            std::thread::sleep(pause);
        }
        // The new owner first, then the old one, then everyone else.
        setslot(to, &["NODE", &to_id])?;
        setslot(from, &["NODE", &to_id])?;
        for master in self.masters() {
            if master != to && master != from {
                setslot(master, &["NODE", &to_id])?;
            }
        }
        Ok(())
    }

    fn any_live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.is_alive())
            .map(|n| n.port)
            .expect("a live cluster node")
    }
}

/// `redis://127.0.0.1:<port>/`.
pub fn node_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}

fn redis_cli() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

/// Fails with `hint` if `binary` cannot be run.
fn check_binary(binary: &str, hint: &str) -> Result<(), String> {
    match Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(hint.to_owned()),
        Err(e) => Err(format!("{binary}: {e}")),
    }
}

/// Runs one command on the node on `port` over a fresh connection.
fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let run = || -> redis::RedisResult<T> {
        let client = redis::Client::open(node_url(port))?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        cmd.query(&mut conn)
    };
    run().map_err(|e| format!("node {port}: {e}"))
}

/// Parses `CLUSTER NODES` output.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let address = fields[1].split('@').next()?;
            let (host, port) = address.rsplit_once(':')?;
            let port = port.parse().ok()?;
            let flags: Vec<&str> = fields[2].split(',').collect();
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
                    None => {
                        let one = s.parse().ok()?;
                        Some((one, one))
                    }
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_owned(),
                host: host.to_owned(),
                port,
                master: flags.contains(&"master"),
                failed: flags.contains(&"fail") || flags.contains(&"fail?"),
                master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            })
        })
        .collect()
}

/// The live master serving `slot` in a `CLUSTER NODES` listing (see
/// [`parse_cluster_nodes`]), if any.
pub fn master_serving(nodes: &[NodeInfo], slot: u16) -> Option<&NodeInfo> {
    nodes.iter().find(|n| {
        n.master && !n.failed && n.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    })
}

/// The master serving `key`'s hash slot, as the cluster node at `node_url`
/// sees it (`CLUSTER KEYSLOT`, then `CLUSTER NODES`): where to open a plain
/// connection to look at a key or a namespace (`"{ns}"`) behind a cluster
/// client's back. Works on any cluster, ours or not; the URL may carry a
/// password or use TLS.
pub fn master_for_key(node_url: &str, key: &str) -> Result<NodeInfo, String> {
    let client = redis::Client::open(node_url).map_err(|e| format!("bad cluster node URL: {e}"))?;
    // The address alone in messages: the URL may carry a password.
    let node = client.get_connection_info().addr().to_string();
    let run = || -> redis::RedisResult<(u16, String)> {
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let slot = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)?;
        let nodes = redis::cmd("CLUSTER").arg("NODES").query(&mut conn)?;
        Ok((slot, nodes))
    };
    let (slot, nodes) = run().map_err(|e| format!("asking {node} where {key:?} lives: {e}"))?;
    master_serving(&parse_cluster_nodes(&nodes), slot)
        .cloned()
        .ok_or_else(|| format!("no live master serves slot {slot} (of {key:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules_of_app_are_app_rules() {
        assert_eq!(acl::namespace_rules("app"), acl::APP_RULES);
    }

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 master,fail - 0 1426238316232 5 connected 9000
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [42->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
";

    #[test]
    fn cluster_nodes_are_parsed_and_slots_found() {
        let nodes = parse_cluster_nodes(NODES);
        assert_eq!(nodes.len(), 5);
        let replica = &nodes[0];
        assert_eq!((replica.host.as_str(), replica.port), ("127.0.0.1", 30004));
        assert!(!replica.master);
        assert_eq!(
            replica.master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!(nodes[3].slots, [(10923, 16383)], "migration marks skipped");
        assert_eq!(master_serving(&nodes, 0).map(|n| n.port), Some(30001));
        assert_eq!(master_serving(&nodes, 5461).map(|n| n.port), Some(30002));
        assert_eq!(master_serving(&nodes, 16383).map(|n| n.port), Some(30003));
        // A failed master serves nothing: slot 9000 is 30002's.
        assert_eq!(master_serving(&nodes, 9000).map(|n| n.port), Some(30002));
        assert!(
            master_serving(&nodes[..1], 0).is_none(),
            "a replica serves nothing"
        );
    }
}
