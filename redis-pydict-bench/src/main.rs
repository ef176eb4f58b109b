//! Benchmark of redis-pydict beside raw redis-rs, in the same run, on the same
//! server and the same kind of connection (`ConnectionManager`, RESP3; on a
//! cluster, redis-rs's async cluster connection on both sides).
//!
//! ```text
//! cargo run --release -p redis-pydict-bench                # full run
//! cargo run --release -p redis-pydict-bench -- --quick     # smaller run
//! cargo run --release -p redis-pydict-bench -- --only single,items
//! cargo run --release -p redis-pydict-bench -- --url redis://host:port/db
//! cargo run --release -p redis-pydict-bench -- --one-cpu   # server and client share one CPU
//! cargo run --release -p redis-pydict-bench -- --no-pin    # let the OS place threads
//! cargo run --release -p redis-pydict-bench -- --cluster   # against a private 3+3 cluster
//! cargo run --release -p redis-pydict-bench -- --cluster --spread   # nodes spread over the CPUs
//! cargo run --release -p redis-pydict-bench -- --cluster --spread --no-idle-replicas
//! cargo run --release -p redis-pydict-bench -- --cluster --url redis://h1:p1,redis://h2:p2
//! ```
//!
//! `--only` takes workload groups: `single` (get/set), `items`, `bulk`
//! (`set_many`), `cache` (near-cache hits and memory), `events`, `durable`,
//! `live` (live views), `scale` (the rows among other keys and the
//! 1,000,000-entry rows).
//!
//! Without `--url` it starts a private `redis-server` (with `--cluster`, a
//! private cluster of 3 masters with one replica each) on free ports (no
//! persistence) and stops it at the end. It pins itself and that server with
//! `taskset` (see `deploy::run_pinned`), because threads the scheduler moves
//! between CPUs make loopback round trips bimodal and noisy. By default the
//! client runs on the first CPU and the server on the last (`--split`): the
//! shape of a deployment, where server and client have a CPU (or a machine)
//! each and a client's work can overlap the server's. `--one-cpu` puts both
//! on one CPU: there every µs of work on either side adds up (a sum of CPU
//! time, the strictest setting), and round trips are shorter (~20 µs against
//! ~65 µs on this kind of VM), so fixed per-call costs weigh more. A
//! `--cluster` run puts its six nodes and the client on one CPU (the
//! strictest comparison); `--cluster --spread` puts the client on the first
//! CPU and deals the nodes out over the others, masters first (with 2 CPUs,
//! all six nodes share the second), so that cluster figures are not all CPU
//! contention; replicas that would share a master's CPU run at idle priority
//! (`SCHED_IDLE`) on every CPU, taking only time the masters and the client
//! leave, as on hosts of their own (see `deploy::spread_cluster`;
//! `--no-idle-replicas` deals them out like the masters).
//! With `--url` it writes
//! only keys under the `bench-*` namespaces and the `{bench-raw}:` /
//! `bench-filler:` prefixes, and deletes them when done; use an otherwise
//! empty database for figures comparable to the README's.
//!
//! It prints a markdown table: each workload's figure for redis-pydict, the
//! same work done with raw redis-rs "done well" (pipelines, MGET batches,
//! pre-encoded values), the ratio, the design target (`design.md`,
//! "Performance targets", and the scale targets of the cluster/scale issue)
//! and PASS/MISS. Rows marked "(extra)" are not design targets; they are
//! judged against the nearest one. A MISS is a finding, not a failure: the
//! exit code is non-zero only when the benchmark cannot run.
//!
//! The modules: `args` (the command line and the plan of a run), `deploy`
//! (servers, clusters, CPU pinning), `raw` (the raw redis-rs baselines),
//! `workloads` (one module per workload), `measure` and `table`.
//!
//! Workloads: single `get`/`set`; `items`/`to_map`; bulk `set_many`; change
//! events (set → subscriber latency and events per second, plain and
//! durable); and on one server the scale rows: `len`/`contains`/`get`/`set`
//! among 1,000 and among 1,000,000 other keys, `set_many` of 1,000,000
//! entries with a probe client measuring how long the server is unavailable,
//! and `items()` over 1,000,000 entries with its peak memory measured in a
//! fresh child process. `--cluster` prints the core rows (get/set, set_many,
//! items, len, events) against the cluster.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use crate::args::{parse_args, Plan};
use crate::deploy::{deploy, run_pinned, PINNED_ENV};
use crate::workloads::{rss_probe, run};

/// Any error, with a message for the user.
pub type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The system allocator, counting the bytes this process holds: the memory
/// rows read their growth (`measure::heap_bytes`), which memory freed by
/// earlier workloads cannot hide, as it hid growth of the resident set.
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

mod args;
mod deploy;
mod measure;
mod raw;
mod table;
mod workloads;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    // One thread: the client's work is measured, not thread hand-offs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(which) = &args.rss_probe {
        // The memory probe child of the scale workload (see `rss_child`).
        let url = args.url.clone().unwrap_or_default();
        return match runtime.block_on(rss_probe(which, &url, args.entries)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let pinned_cpu = std::env::var(PINNED_ENV).ok();
    if args.pin && args.url.is_none() && pinned_cpu.is_none() {
        let split = if args.cluster {
            args.spread
        } else {
            args.split
        };
        if let Some(code) = run_pinned(split) {
            return code;
        }
    }
    // Our own server or cluster (if any) lives for the whole run and is
    // stopped when dropped at the end.
    let (private, deployment, setup) = match deploy(&args, pinned_cpu.as_deref()) {
        Ok(deployed) => deployed,
        Err(code) => return code,
    };
    let result = runtime.block_on(run(Plan::new(args.quick, args.only), deployment, &setup));
    drop(private);
    match result {
        // A missed target is a finding, not a failure of the program: the
        // table says MISS, and the exit code stays 0.
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
