//! The result table: one row per workload, redis-pydict beside raw redis-rs,
//! the ratio, the design target and PASS/MISS.

use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::{fmt_dur, fmt_rate, group, share_text, Latencies};

/// A design target a row is judged against.
pub enum Target {
    /// Our time at most this multiple of raw's (latency).
    MaxRatio(f64),
    /// Our throughput at least this fraction of raw's.
    MinShare(f64),
    /// Our time (p99) at most this, absolute.
    MaxTime(Duration),
}

/// One row of the table.
pub struct Row {
    pub workload: String,
    pub ours: String,
    pub raw: String,
    pub ratio: String,
    pub target: String,
    pub pass: bool,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl Table {
    /// A latency row: medians compared, p99 shown.
    pub fn latency(&mut self, workload: &str, ours: &Latencies, raw: &Latencies, max_ratio: f64) {
        let ratio = ours.median().as_secs_f64() / raw.median().as_secs_f64().max(1e-12);
        self.rows.push(Row {
            workload: workload.to_owned(),
            ours: format!("{} (p99 {})", fmt_dur(ours.median()), fmt_dur(ours.p99())),
            raw: format!("{} (p99 {})", fmt_dur(raw.median()), fmt_dur(raw.p99())),
            ratio: format!("{ratio:.2}× time"),
            target: describe(&Target::MaxRatio(max_ratio)),
            pass: ratio <= max_ratio,
        });
    }

    /// A throughput row of entries: median run times compared.
    pub fn throughput(
        &mut self,
        workload: &str,
        entries: usize,
        ours: Duration,
        raw: Duration,
        min_share: f64,
    ) {
        self.rate(workload, entries, "entries", ours, raw, min_share);
    }

    /// A throughput row of `count` `unit`s: median run times compared.
    pub fn rate(
        &mut self,
        workload: &str,
        count: usize,
        unit: &str,
        ours: Duration,
        raw: Duration,
        min_share: f64,
    ) {
        let share = raw.as_secs_f64() / ours.as_secs_f64().max(1e-12);
        self.rows.push(Row {
            workload: workload.to_owned(),
            ours: format!("{} ({})", fmt_rate(count, unit, ours), fmt_dur(ours)),
            raw: format!("{} ({})", fmt_rate(count, unit, raw), fmt_dur(raw)),
            ratio: share_text(share),
            target: describe(&Target::MinShare(min_share)),
            pass: share >= min_share,
        });
    }

    /// An absolute-time row (p99 judged), beside a raw time.
    pub fn absolute(
        &mut self,
        workload: &str,
        ours: &Latencies,
        raw: Duration,
        raw_label: &str,
        max: Duration,
    ) {
        let speedup = raw.as_secs_f64() / ours.median().as_secs_f64().max(1e-12);
        self.rows.push(Row {
            workload: workload.to_owned(),
            ours: format!("{} (p99 {})", fmt_dur(ours.median()), fmt_dur(ours.p99())),
            raw: format!("{} ({raw_label})", fmt_dur(raw)),
            ratio: format!("{}× faster", group(speedup.round() as u64)),
            target: format!("{} (p99)", describe(&Target::MaxTime(max))),
            pass: ours.p99() <= max,
        });
    }
    pub fn render(&self) -> String {
        let header = [
            "workload",
            "redis-pydict",
            "raw redis-rs",
            "ratio",
            "target",
            "result",
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.workload.clone(),
                    r.ours.clone(),
                    r.raw.clone(),
                    r.ratio.clone(),
                    r.target.clone(),
                    if r.pass { "PASS" } else { "**MISS**" }.to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let mut s = String::from("|");
            for (c, w) in cols.iter().zip(widths) {
                let pad = w - c.chars().count();
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            }
            s
        };
        let mut out = line(&header.map(str::to_owned));
        out.push('\n');
        out.push('|');
        for w in widths {
            let _ = write!(out, "{}|", "-".repeat(w + 2));
        }
        out.push('\n');
        for row in &cells {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// A target as the table shows it, e.g. `≤ 1.15×`.
pub fn describe(target: &Target) -> String {
    match target {
        Target::MaxRatio(r) => format!("≤ {r:.2}×"),
        Target::MinShare(s) => format!("≥ {:.0} %", s * 100.0),
        Target::MaxTime(d) => format!("≤ {}", fmt_dur(*d)),
    }
}
