//! Command throughput (issue #4): the live API on loopback under load, next to a raw rdkafka
//! producer appending the same events with the same settings, in the same run.
//!
//! Scenarios, each `BENCH_WARMUP` s of warm-up then `BENCH_SECONDS` s measured, one after the
//! other: `POST /v1/sessions` (a new aggregate: `SessionStarted` through a new head), the raw
//! producer appending `SessionStarted`, `POST /v1/sessions/{id}/attempts` spread over
//! `BENCH_SESSIONS` pre-created sessions per connection (`AttemptLogged` through an existing
//! head), and the raw producer appending `AttemptLogged`.
//!
//! Each API scenario runs twice:
//! - **closed loop**: `BENCH_CONCURRENCY` keep-alive HTTP/1.1 connections, each sending its
//!   next request when the last one is answered; it finds the most the API sustains at that
//!   concurrency, and the raw producer gets the same shape (that many appends awaited at
//!   once). Its latency hides stalls from callers that would have sent meanwhile.
//! - **paced** (open loop): `BENCH_RATE` commands per second (default the goal's 10,000;
//!   0 skips it) offered over `BENCH_PACED_CONNECTIONS` connections (default 256) taking turns,
//!   each request due at a fixed time and its latency counted from then, so a stall counts for
//!   every request that fell due in it (no coordinated omission). This is the goal's question
//!   asked directly: at 10,000 commands/s, what is the p99? Requests are sent on the load
//!   generator's 1 ms timer, so up to 1 ms of a latency can be the timer's.
//!
//! The client is a minimal HTTP/1.1 writer and reader over a `TcpStream` with the requests
//! pre-built: on a 2-core box shared with Kafka and PostgreSQL, every cycle the load
//! generator spends is taken from the API.
//!
//! `cargo bench -p cruxlog-command-api --bench load` with the stack's environment
//! (`make bench`). Goal: at least 10,000 commands/s at p99 <= 25 ms; the last lines say
//! whether the closed loop and the paced phases met it.
//!
//! 128 callers by default (64 before session 5): a command waits for two things a raw append
//! does not (its durable head mark, about 4–5 ms under load, then its append with the API's
//! linger), so a closed loop needs about that many callers to keep two cores busy. The app's
//! traffic is many independent phones, so the number of callers is a measuring device, not a
//! limit of the product. Each scenario also prints the machine's CPU per command (`/proc/stat`,
//! whoever spent it; comparable across runs on a host that steals time) and how it divides
//! between the API process, the load generator (its own thread and runtime), PostgreSQL and
//! the Kafka broker (`/proc/<pid>/stat`), how many commands shared each head statement, and
//! the mean time commands spent reserving their head and appending.
//!
//! Last, the raw `AttemptLogged` baseline runs again through Kafka transactions (one
//! transactional producer, then one per partition), pricing what ADR 0014's fenced partition
//! owners would append through (`BENCH_TXN=0` skips it; `BENCH_TXN_BACKOFF_MS` and
//! `BENCH_TXN_BACKOFF_MAX_MS` set their `retry.backoff.ms` and its maximum, default 2 and 5).
//!
//! `BENCH_HEAD_LANES` and `BENCH_LINGER_MS` override the API's `database.head_lanes` and
//! `http.append_linger_ms`; `BENCH_API_WORKERS` (default 1) is the number of worker threads of
//! the runtime the API runs on.

use std::time::{Duration, Instant};

use cruxlog_command_api::{Application, auth::TokenKeys, config::Config};
use cruxlog_runtime::{config::Secret, telemetry::TraceParent, testkit::TestEnv};
use cruxlog_schemas::{
    Actor, ActorRole, Event, EventMeta,
    events::{AttemptLogged, SessionStarted, aggregate},
};
use hdrhistogram::Histogram;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[path = "../tests/helpers/events.rs"]
mod events;
#[path = "support/txn.rs"]
mod txn;

/// Issue #4's goal: at least this many commands per second...
const GOAL_RATE: u64 = 10_000;
/// ...with a p99 latency no higher than this.
const GOAL_P99_MS: f64 = 25.0;

/// The service binary's allocator (`src/main.rs`), so the API here runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SESSION_BODY: &str = r#"{"discipline":"boulder","indoor":true,"planned_minutes":90}"#;
const ATTEMPT_BODY: &str =
    r#"{"style":"boulder","result":"fail","falls":1,"grade_system":"fontainebleau","grade":"6b+"}"#;

/// The load generator's thread: its own one-thread runtime, as a separate load-generating
/// process would be, so that its CPU is told apart from the API's and its tasks never queue
/// behind the API's on the API's workers.
const LOAD_THREAD: &str = "loadgen";

struct Settings {
    concurrency: usize,
    warmup: Duration,
    measured: Duration,
    sessions_per_connection: usize,
    /// Commands per second the paced phases offer (0: no paced phases).
    rate: u64,
    /// Connections the paced phases send over.
    paced_connections: usize,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One scenario's figures over its measured window.
struct Figures {
    done: u64,
    errors: u64,
    latency: Histogram<u64>,
    window: Duration,
    /// The whole machine's CPU over the window, if `/proc/stat` could be read.
    cpu: Option<CpuTime>,
    /// The CPU each part of the stack spent over the window.
    parts: Option<PartsTime>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.done as f64 / self.window.as_secs_f64()
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1_000.0
    }

    /// `process`: what this process's own CPU was spent on (the API, or the raw producer).
    fn print(&self, name: &str, process: &str) {
        println!(
            "  {name:<22} {:>8.0} cmd/s  p50 {:6.2} ms  p99 {:6.2} ms  max {:7.2} ms  ({} done, {} errors)",
            self.rate(),
            self.ms(0.50),
            self.ms(0.99),
            self.latency.max() as f64 / 1_000.0,
            self.done,
            self.errors
        );
        if let Some(cpu) = &self.cpu {
            println!(
                "  {:<22} CPU {:.0} us per command (machine busy {:.0} %, idle {:.0} % of which waiting for the disk {:.0} %, stolen by the host {:.0} %)",
                "",
                cpu.busy_seconds() * 1e6 / self.done.max(1) as f64,
                cpu.share(cpu.busy()),
                cpu.share(cpu.idle),
                cpu.share(cpu.iowait),
                cpu.share(cpu.steal)
            );
            if let Some(parts) = &self.parts {
                let per_command = |ticks: u64| ticks as f64 * 1e4 / self.done.max(1) as f64;
                println!(
                    "  {:<22}     of which: {process} {:.0} us, load generator {:.0} us, PostgreSQL {:.0} us, Kafka broker {:.0} us, the rest {:.0} us",
                    "",
                    per_command(parts.api),
                    per_command(parts.load),
                    per_command(parts.postgres),
                    per_command(parts.kafka),
                    per_command(cpu.busy().saturating_sub(parts.total())),
                );
            }
        }
    }
}

/// Machine-wide CPU time in clock ticks from `/proc/stat` ("cpu" line): what the measured
/// window cost, whoever spent it (API, load generator, PostgreSQL, Kafka), so that a run on
/// a host that steals time can still be compared with another.
#[derive(Clone, Copy, Default)]
struct CpuTime {
    user: u64,
    system: u64,
    idle: u64,
    /// Idle while a task waited for the disk (PostgreSQL's WAL flushes); inside `idle`.
    iowait: u64,
    steal: u64,
    total: u64,
}

impl CpuTime {
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| fields.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Some(Self {
            user: at(0) + at(1),
            system: at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            iowait: at(4),
            steal: at(7),
            total: (0..8).map(at).sum(),
        })
    }

    fn since(self, start: Self) -> Self {
        Self {
            user: self.user - start.user,
            system: self.system - start.system,
            idle: self.idle - start.idle,
            iowait: self.iowait - start.iowait,
            steal: self.steal - start.steal,
            total: self.total - start.total,
        }
    }

    fn busy(&self) -> u64 {
        self.user + self.system
    }

    fn busy_seconds(&self) -> f64 {
        // USER_HZ is 100 on every Linux the stack runs on.
        self.busy() as f64 / 100.0
    }

    fn share(&self, ticks: u64) -> f64 {
        100.0 * ticks as f64 / self.total.max(1) as f64
    }
}

/// CPU time (clock ticks, user and system) of each part of the stack, from `/proc`: this
/// process's threads apart from the load generator's (the API, or the raw producer), the load
/// generator's thread, every `postgres` process, and the Kafka broker's JVM. What is left of
/// the machine's busy time is the kernel's own threads and everything else.
#[derive(Clone, Copy, Default)]
struct PartsTime {
    api: u64,
    load: u64,
    postgres: u64,
    kafka: u64,
}

impl PartsTime {
    fn now() -> Option<Self> {
        let process = ticks_of(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let mut load = 0;
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim_end() == LOAD_THREAD {
                let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
                load += ticks_of(&stat).unwrap_or(0);
            }
        }
        let (mut postgres, mut kafka) = (0, 0);
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let dir = entry.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let part = match comm.trim_end() {
                "postgres" => &mut postgres,
                "java" => {
                    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
                    if !cmdline.split(|&b| b == 0).any(|arg| arg == b"kafka.Kafka") {
                        continue;
                    }
                    &mut kafka
                }
                _ => continue,
            };
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            *part += ticks_of(&stat).unwrap_or(0);
        }
        Some(Self {
            api: process.saturating_sub(load),
            load,
            postgres,
            kafka,
        })
    }

    fn since(self, start: Self) -> Self {
        // A process that ended inside the window takes its ticks with it (saturate, never
        // wrap); one that started inside it counts whole.
        Self {
            api: self.api.saturating_sub(start.api),
            load: self.load.saturating_sub(start.load),
            postgres: self.postgres.saturating_sub(start.postgres),
            kafka: self.kafka.saturating_sub(start.kafka),
        }
    }

    fn total(&self) -> u64 {
        self.api + self.load + self.postgres + self.kafka
    }
}

/// `utime + stime` from a `/proc/.../stat` line (fields 14 and 15; the command name, field
/// 2, may hold spaces and parentheses, so fields are counted from its closing one).
fn ticks_of(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

/// Samples the machine's CPU time, and each part's, at the start and at the end of `window`.
fn sample_cpu(window: Window) -> tokio::task::JoinHandle<(Option<CpuTime>, Option<PartsTime>)> {
    tokio::spawn(async move {
        tokio::time::sleep_until(window.from.into()).await;
        let start = (CpuTime::now(), PartsTime::now());
        tokio::time::sleep_until(window.until.into()).await;
        let end = (CpuTime::now(), PartsTime::now());
        (
            start.0.zip(end.0).map(|(start, end)| end.since(start)),
            start.1.zip(end.1).map(|(start, end)| end.since(start)),
        )
    })
}

/// The API's head statements (`cruxlog_api_head_batch_rows`: how many commands shared each)
/// and its write steps (`cruxlog_api_write_step_seconds`: where a command's time went).
struct ApiMetrics {
    head_rows: prometheus::HistogramVec,
    write_steps: prometheus::HistogramVec,
}

/// (sample count, sample sum) of each head kind, then of each write step.
type Snapshot = Vec<(u64, f64)>;

impl ApiMetrics {
    const HEAD_KINDS: [&str; 2] = ["read", "write"];
    const STEPS: [&str; 2] = ["reserve", "append"];

    fn snapshot(&self) -> Snapshot {
        let sums = |vec: &prometheus::HistogramVec, label: &str| {
            let histogram = vec.with_label_values(&[label]);
            (histogram.get_sample_count(), histogram.get_sample_sum())
        };
        let kinds = Self::HEAD_KINDS.map(|kind| sums(&self.head_rows, kind));
        let steps = Self::STEPS.map(|step| sums(&self.write_steps, step));
        kinds.into_iter().chain(steps).collect()
    }

    /// Rows per head statement and mean time per write step since `before` (warm-up
    /// included).
    fn print_since(&self, before: &Snapshot, figures: &Figures) {
        let delta: Vec<(u64, f64)> = self
            .snapshot()
            .iter()
            .zip(before)
            .map(|((count, sum), (count0, sum0))| (count - count0, sum - sum0))
            .collect();
        let (kinds, steps) = delta.split_at(Self::HEAD_KINDS.len());
        let kinds: Vec<String> = Self::HEAD_KINDS
            .iter()
            .zip(kinds)
            .map(|(kind, (statements, rows))| {
                let each = rows / (*statements).max(1) as f64;
                format!("{kind} {statements} statements, {each:.1} rows each")
            })
            .collect();
        let steps: Vec<String> = Self::STEPS
            .iter()
            .zip(steps)
            .map(|(step, (count, seconds))| {
                format!("{step} {:.2} ms", 1e3 * seconds / (*count).max(1) as f64)
            })
            .collect();
        println!(
            "  {:<22} heads: {} ({} commands measured)",
            "",
            kinds.join("; "),
            figures.done
        );
        println!(
            "  {:<22} mean time per command in: {}",
            "",
            steps.join(", ")
        );
    }
}

/// The measured window every worker of a scenario shares.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    fn after(settings: &Settings) -> Self {
        let from = Instant::now() + settings.warmup;
        Self {
            from,
            until: from + settings.measured,
        }
    }
}

/// What one worker saw; merged into [`Figures`].
struct Tally {
    done: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            done: 0,
            errors: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        }
    }

    /// Records one call that started at `sent`, if it ended inside the window.
    fn record(&mut self, window: Window, sent: Instant, ok: bool) {
        let now = Instant::now();
        if now < window.from || now > window.until {
            return;
        }
        if ok {
            self.done += 1;
            let micros = (now - sent).as_micros() as u64;
            self.latency.saturating_record(micros.max(1));
        } else {
            self.errors += 1;
        }
    }
}

fn merge(
    tallies: Vec<Tally>,
    window: Window,
    (cpu, parts): (Option<CpuTime>, Option<PartsTime>),
) -> Figures {
    let mut figures = Figures {
        done: 0,
        errors: 0,
        latency: Tally::new().latency,
        window: window.until - window.from,
        cpu,
        parts,
    };
    for tally in tallies {
        figures.done += tally.done;
        figures.errors += tally.errors;
        figures.latency.add(&tally.latency).expect("same bounds");
    }
    figures
}

/// A keep-alive HTTP/1.1 connection that sends pre-built requests and reads the status and
/// `Location` of each answer (bodies are read and dropped).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn call(&mut self, request: &[u8]) -> std::io::Result<(u16, Option<String>)> {
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(std::io::Error::other)?;
        let status = head
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let (mut length, mut location) = (None, None);
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("location") {
                    location = Some(value.trim().to_owned());
                }
            }
        }
        let length = length.ok_or_else(|| std::io::Error::other("no content-length"))?;
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        self.buf.drain(..head_end + length);
        Ok((status, location))
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0_u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        self.buf.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

fn post(path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One connection's caller: its own user, its own sessions.
struct Caller {
    conn: Conn,
    user: Uuid,
    token: String,
    sessions: Vec<Uuid>,
}

/// Closed loop over `requests` (cycled) on one connection until the window ends.
async fn drive(mut caller: Caller, requests: Vec<Vec<u8>>, window: Window) -> (Caller, Tally) {
    let mut tally = Tally::new();
    let mut next = 0;
    while Instant::now() < window.until {
        let sent = Instant::now();
        let ok = matches!(caller.conn.call(&requests[next]).await, Ok((201, _)));
        tally.record(window, sent, ok);
        next = (next + 1) % requests.len();
    }
    (caller, tally)
}

/// Open loop on one connection: the `k`-th request is due at `first + k * every`, and its
/// latency is counted from then, not from when it could be sent. A request due while the
/// connection still waits for an earlier answer goes as soon as that answer is in, and its
/// wait counts (no coordinated omission: a stall costs every request that fell due in it).
async fn drive_paced(
    mut caller: Caller,
    requests: Vec<Vec<u8>>,
    window: Window,
    (first, every): (Instant, Duration),
) -> (Caller, Tally) {
    let mut tally = Tally::new();
    let (mut due, mut next) = (first, 0);
    while due < window.until {
        tokio::time::sleep_until(due.into()).await;
        let ok = matches!(caller.conn.call(&requests[next]).await, Ok((201, _)));
        tally.record(window, due, ok);
        next = (next + 1) % requests.len();
        due += every;
    }
    (caller, tally)
}

/// How a scenario's callers send: each as soon as its last answer is in, or at a fixed rate
/// shared by all of them.
#[derive(Clone, Copy)]
enum Load {
    Closed,
    Paced { per_second: u64 },
}

async fn run_api(
    load: &tokio::runtime::Handle,
    callers: Vec<Caller>,
    settings: &Settings,
    shape: Load,
    requests: impl Fn(&Caller) -> Vec<Vec<u8>>,
) -> (Vec<Caller>, Figures) {
    let window = Window::after(settings);
    let cpu = sample_cpu(window);
    let start = Instant::now();
    let count = callers.len() as u32;
    let workers: Vec<_> = callers
        .into_iter()
        .enumerate()
        .map(|(index, caller)| {
            let requests = requests(&caller);
            match shape {
                Load::Closed => load.spawn(drive(caller, requests, window)),
                Load::Paced { per_second } => {
                    // The callers take turns: caller i sends at i/R, i/R + n/R, ... so that the
                    // requests are spread evenly over time.
                    let gap = Duration::from_secs(1) / per_second.max(1) as u32;
                    let pace = (start + gap * index as u32, gap * count);
                    load.spawn(drive_paced(caller, requests, window, pace))
                }
            }
        })
        .collect();
    let mut callers = Vec::new();
    let mut tallies = Vec::new();
    for worker in workers {
        let (caller, tally) = worker.await.expect("worker");
        callers.push(caller);
        tallies.push(tally);
    }
    let cpu = cpu.await.unwrap_or((None, None));
    (callers, merge(tallies, window, cpu))
}

/// `count` keep-alive connections, each a user of its own with an access token.
async fn open_callers(
    load: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    keys: &TokenKeys,
    count: usize,
) -> Vec<Caller> {
    let mut callers = Vec::with_capacity(count);
    for _ in 0..count {
        let user = Uuid::now_v7();
        callers.push(Caller {
            conn: load
                .spawn(Conn::open(addr))
                .await
                .expect("load generator")
                .expect("connect"),
            user,
            token: keys.mint(user, ActorRole::User, 3_600).expect("token"),
            sessions: Vec::new(),
        });
    }
    callers
}

/// Runs one command closed loop over `callers`, then paced over `paced` (none when there are
/// no paced callers: `BENCH_RATE=0`), and prints each run's figures and the API's metrics
/// over it.
async fn closed_then_paced(
    load: &tokio::runtime::Handle,
    (metrics, settings): (&ApiMetrics, &Settings),
    (callers, paced): (Vec<Caller>, Vec<Caller>),
    name: &str,
    requests: impl Fn(&Caller) -> Vec<Vec<u8>>,
) -> ((Vec<Caller>, Vec<Caller>), Figures, Option<Figures>) {
    let before = metrics.snapshot();
    let (callers, closed) = run_api(load, callers, settings, Load::Closed, &requests).await;
    closed.print(&format!("API {name}"), "API process");
    metrics.print_since(&before, &closed);
    if paced.is_empty() {
        return ((callers, paced), closed, None);
    }
    let shape = Load::Paced {
        per_second: settings.rate,
    };
    let before = metrics.snapshot();
    let (paced, figures) = run_api(load, paced, settings, shape, &requests).await;
    figures.print(&format!("paced {name}"), "API process");
    metrics.print_since(&before, &figures);
    ((callers, paced), closed, Some(figures))
}

/// Creates each caller's sessions through the API (not measured).
async fn create_sessions(
    load: &tokio::runtime::Handle,
    callers: Vec<Caller>,
    per_caller: usize,
) -> Vec<Caller> {
    let workers: Vec<_> = callers
        .into_iter()
        .map(|mut caller| {
            load.spawn(async move {
                let request = post("/v1/sessions", &caller.token, SESSION_BODY);
                while caller.sessions.len() < per_caller {
                    let (status, location) = caller.conn.call(&request).await.expect("create");
                    assert_eq!(status, 201, "creating a session");
                    let id = location.and_then(|l| l.rsplit('/').next().map(str::to_owned));
                    caller
                        .sessions
                        .push(Uuid::parse_str(&id.expect("location")).expect("session id"));
                }
                caller
            })
        })
        .collect();
    let mut callers = Vec::new();
    for worker in workers {
        callers.push(worker.await.expect("creator"));
    }
    callers
}

/// The raw baseline: `concurrency` appends awaited at once, each the event the API would
/// have appended for the same command (same envelope, key and headers).
async fn run_raw(
    appender: &Appender,
    topic: &str,
    timeout: Duration,
    callers: &[Caller],
    settings: &Settings,
    attempts: bool,
) -> Figures {
    let window = Window::after(settings);
    let cpu = sample_cpu(window);
    let workers: Vec<_> = callers
        .iter()
        .map(|caller| {
            let (appender, topic) = (appender.clone(), topic.to_owned());
            let (user, sessions) = (caller.user, caller.sessions.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                let mut version = 1;
                while Instant::now() < window.until {
                    let sent = Instant::now();
                    let (event_type, meta, value) = if attempts {
                        version += 1;
                        let session = sessions[version as usize % sessions.len()];
                        attempt_event(user, session, version)
                    } else {
                        session_event(user)
                    };
                    let ok = append(&appender, &topic, timeout, event_type, &meta, &value).await;
                    tally.record(window, sent, ok);
                }
                tally
            })
        })
        .collect();
    let mut tallies = Vec::new();
    for worker in workers {
        tallies.push(worker.await.expect("worker"));
    }
    merge(tallies, window, cpu.await.unwrap_or((None, None)))
}

fn meta(user: Uuid, aggregate_id: Uuid, version: i64) -> EventMeta {
    EventMeta::new(aggregate_id, version, Actor::user(user))
        .with_command(Uuid::now_v7())
        .with_traceparent(Some(TraceParent::new_root().header()))
}

fn session_event(user: Uuid) -> (&'static str, EventMeta, Vec<u8>) {
    let session_id = Uuid::now_v7();
    let event = events::session_started(session_id, user);
    let meta = meta(user, session_id, 1);
    let value = cruxlog_schemas::encode(&meta, &event).expect("encodes");
    (SessionStarted::NAME, meta, value)
}

fn attempt_event(user: Uuid, session_id: Uuid, version: i64) -> (&'static str, EventMeta, Vec<u8>) {
    let event = events::attempt_logged(session_id, user);
    let meta = meta(user, session_id, version);
    let value = cruxlog_schemas::encode(&meta, &event).expect("encodes");
    (AttemptLogged::NAME, meta, value)
}

/// How a raw baseline appends.
#[derive(Clone)]
enum Appender {
    /// The API's producer settings: idempotent, no transactions.
    Plain(FutureProducer),
    /// Transactional producers, as ADR 0014's partition owners would append; a record goes to
    /// the one its key hashes to (each owning one partition when there are several).
    Txn(Vec<txn::TxnAppender>),
}

/// What `EventLog::send` does, minus the head: same key, headers and bound.
async fn append(
    appender: &Appender,
    topic: &str,
    timeout: Duration,
    event_type: &str,
    meta: &EventMeta,
    value: &[u8],
) -> bool {
    let key = meta.aggregate_id.to_string();
    let event_id = meta.event_id.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "event_type",
            value: Some(event_type),
        })
        .insert(Header {
            key: "event_id",
            value: Some(&event_id),
        })
        .insert(Header {
            key: "traceparent",
            value: meta.traceparent.as_deref(),
        });
    let producer = match appender {
        Appender::Plain(producer) => producer,
        Appender::Txn(owners) => {
            let owner = &owners[owner_of(&key, owners.len())];
            return owner.append(key, value.to_vec(), headers).await;
        }
    };
    let record = FutureRecord::to(topic)
        .key(&key)
        .payload(value)
        .headers(headers);
    let delivery = producer.send(record, timeout);
    matches!(
        tokio::time::timeout(timeout + Duration::from_millis(250), delivery).await,
        Ok(Ok(_))
    )
}

/// Which of `owners` appends the aggregate keyed `key`.
fn owner_of(key: &str, owners: usize) -> usize {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % owners.max(1) as u64) as usize
}

fn main() {
    // The API's runtime, as the service builds it (`#[tokio::main]`) with
    // `TOKIO_WORKER_THREADS` set to `BENCH_API_WORKERS`: on this 2-core box shared with
    // PostgreSQL and Kafka, one worker spent about 15 % less CPU per command than two (no
    // wake-ups and work stealing between workers), and the local stack runs it so
    // (`infra/local/services.sh`).
    let workers = env_or("BENCH_API_WORKERS", 1).max(1) as usize;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("API runtime")
        .block_on(run(workers));
}

async fn run(api_workers: usize) {
    let settings = Settings {
        concurrency: env_or("BENCH_CONCURRENCY", 128) as usize,
        warmup: Duration::from_secs(env_or("BENCH_WARMUP", 3)),
        measured: Duration::from_secs(env_or("BENCH_SECONDS", 15)),
        sessions_per_connection: env_or("BENCH_SESSIONS", 64) as usize,
        rate: env_or("BENCH_RATE", GOAL_RATE),
        paced_connections: env_or("BENCH_PACED_CONNECTIONS", 256).max(1) as usize,
    };
    let env = TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let db = sqlx::PgPool::connect(&env.database_url)
        .await
        .expect("database");
    cruxlog_projectors::service::ensure_live(&db)
        .await
        .expect("read models");
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.admin.addr = "127.0.0.1:0".into();
    config.kafka = env.kafka.clone();
    config.database.url = Secret::new(env.database_url.replacen(
        "://postgres@",
        "://cruxlog_api@",
        1,
    ));
    config.auth.allow_dev_secret = true;
    config.database.max_connections = env_or(
        "BENCH_DB_CONNECTIONS",
        config.database.max_connections.into(),
    ) as u32;
    config.blobs.url = std::env::temp_dir()
        .join(format!("cruxlog-blobs-{}", env.name))
        .to_string_lossy()
        .into_owned();
    config.database.head_lanes =
        env_or("BENCH_HEAD_LANES", config.database.head_lanes as u64) as usize;
    config.http.append_linger_ms = env_or("BENCH_LINGER_MS", config.http.append_linger_ms);
    let db_connections = config.database.max_connections;
    let (head_lanes, linger_ms) = (config.database.head_lanes, config.http.append_linger_ms);
    let keys = TokenKeys::new(&config.auth);
    let timeout = Duration::from_millis(config.http.append_timeout_ms);
    let mut producer_config = config.kafka.producer();
    producer_config
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .set("linger.ms", config.http.append_linger_ms.to_string());
    let producer = Appender::Plain(producer_config.create().expect("raw producer"));
    let topic = env
        .kafka
        .topics()
        .for_aggregate(aggregate::CLIMBING_SESSION);

    let app = Application::build(config).await.expect("api");
    let addr = app.http_addr().expect("bound");
    let metrics = ApiMetrics {
        head_rows: app.state().metrics.head_batch_rows.clone(),
        write_steps: app.state().metrics.write_step_seconds.clone(),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));

    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(LOAD_THREAD)
        .enable_all()
        .build()
        .expect("load generator runtime");
    let callers = open_callers(&load, addr, &keys, settings.concurrency).await;
    let paced = if settings.rate > 0 {
        open_callers(&load, addr, &keys, settings.paced_connections).await
    } else {
        Vec::new()
    };
    println!(
        "command load: closed loop of {} at once, then {} commands/s offered over {} connections; API on {} worker thread(s), {} database connections, {} head lanes, linger {} ms; {} s warm-up then {} s measured per scenario; {} sessions per closed-loop connection for attempts",
        settings.concurrency,
        settings.rate,
        paced.len(),
        api_workers,
        db_connections,
        head_lanes,
        linger_ms,
        settings.warmup.as_secs(),
        settings.measured.as_secs(),
        settings.sessions_per_connection
    );

    let start_session = |caller: &Caller| vec![post("/v1/sessions", &caller.token, SESSION_BODY)];
    let log_attempt = |caller: &Caller| {
        caller
            .sessions
            .iter()
            .map(|id| {
                post(
                    &format!("/v1/sessions/{id}/attempts"),
                    &caller.token,
                    ATTEMPT_BODY,
                )
            })
            .collect()
    };
    let ((callers, paced), api_sessions, paced_sessions) = closed_then_paced(
        load.handle(),
        (&metrics, &settings),
        (callers, paced),
        "POST /v1/sessions",
        start_session,
    )
    .await;
    let callers = create_sessions(load.handle(), callers, settings.sessions_per_connection).await;
    // The paced callers share as many sessions in all as the closed-loop ones, so that a
    // session collects about as many attempts either way.
    let paced_sessions_each = (settings.concurrency * settings.sessions_per_connection)
        .div_ceil(settings.paced_connections)
        .max(1);
    let paced = create_sessions(load.handle(), paced, paced_sessions_each).await;
    let raw_sessions = run_raw(&producer, &topic, timeout, &callers, &settings, false).await;
    raw_sessions.print("raw SessionStarted", "producer process");
    let ((callers, paced), api_attempts, paced_attempts) = closed_then_paced(
        load.handle(),
        (&metrics, &settings),
        (callers, paced),
        "POST .../attempts",
        log_attempt,
    )
    .await;
    let raw_attempts = run_raw(&producer, &topic, timeout, &callers, &settings, true).await;
    raw_attempts.print("raw AttemptLogged", "producer process");
    shutdown.cancel();
    if env_or("BENCH_TXN", 1) == 1 {
        price_transactions(&env, &topic, timeout, &callers, &settings, &raw_attempts).await;
    }

    for (name, api, raw) in [
        ("sessions", &api_sessions, &raw_sessions),
        ("attempts", &api_attempts, &raw_attempts),
    ] {
        println!(
            "  {name}: API/raw throughput {:.2}x, p99 {:.2} ms vs {:.2} ms",
            api.rate() / raw.rate(),
            api.ms(0.99),
            raw.ms(0.99)
        );
    }
    // The closed loop must reach the goal's rate; a paced phase does what it is offered, so
    // it meets the goal when it was offered at least the goal's rate and kept up (within 1 %:
    // the measured window cuts requests in flight at both ends).
    let meets = |figures: &Figures, rate: f64| {
        figures.errors == 0 && figures.rate() >= rate && figures.ms(0.99) <= GOAL_P99_MS
    };
    let closed = [&api_sessions, &api_attempts]
        .into_iter()
        .all(|figures| meets(figures, GOAL_RATE as f64));
    println!(
        "goal (>= {GOAL_RATE} commands/s at p99 <= {GOAL_P99_MS} ms, both scenarios), closed loop: {}",
        if closed { "met" } else { "NOT met" }
    );
    match (paced_sessions, paced_attempts) {
        (Some(sessions), Some(attempts)) => {
            let kept_up = 0.99 * settings.rate as f64;
            let met = settings.rate >= GOAL_RATE
                && meets(&sessions, kept_up)
                && meets(&attempts, kept_up);
            println!(
                "goal, paced at {} commands/s: {}",
                settings.rate,
                if met { "met" } else { "NOT met" }
            );
        }
        _ => println!("goal, paced: not measured (BENCH_RATE=0)"),
    }
    drop(paced);
    drop(callers);
    load.shutdown_background();
}

/// ADR 0014's owners would append in Kafka transactions: the raw `AttemptLogged` baseline
/// again, through one transactional producer for the whole topic, then through one per
/// partition (the fencing unit the ADR names), each committing group by group. Printed
/// against the plain producer measured in the same run.
async fn price_transactions(
    env: &TestEnv,
    topic: &str,
    timeout: Duration,
    callers: &[Caller],
    settings: &Settings,
    plain: &Figures,
) {
    let partitions = env.kafka.partitions;
    let config = || {
        let mut config = env.kafka.producer();
        config.set("message.timeout.ms", timeout.as_millis().to_string());
        config
    };
    let one = Appender::Txn(vec![
        txn::TxnAppender::start(
            config(),
            format!("bench-{}-all", env.name),
            topic.to_owned(),
            None,
            timeout,
        )
        .await,
    ]);
    let one_figures = run_raw(&one, topic, timeout, callers, settings, true).await;
    one_figures.print("txn, 1 producer", "producer process");
    let mut owners = Vec::new();
    for partition in 0..partitions {
        owners.push(
            txn::TxnAppender::start(
                config(),
                format!("bench-{}-p{partition}", env.name),
                topic.to_owned(),
                Some(partition),
                timeout,
            )
            .await,
        );
    }
    let per_partition = run_raw(
        &Appender::Txn(owners),
        topic,
        timeout,
        callers,
        settings,
        true,
    )
    .await;
    per_partition.print(&format!("txn, {partitions} producers"), "producer process");
    let cpu_per = |figures: &Figures| {
        figures
            .cpu
            .map(|cpu| cpu.busy_seconds() * 1e6 / figures.done.max(1) as f64)
    };
    for (name, figures) in [
        ("1 transactional producer", &one_figures),
        ("1 per partition", &per_partition),
    ] {
        println!(
            "  {name}: {:.2}x the plain producer's appends/s, p99 {:.2} ms vs {:.2} ms, CPU per append {} vs {} us",
            figures.rate() / plain.rate(),
            figures.ms(0.99),
            plain.ms(0.99),
            cpu_per(figures).map_or("?".into(), |us| format!("{us:.0}")),
            cpu_per(plain).map_or("?".into(), |us| format!("{us:.0}")),
        );
    }
}
