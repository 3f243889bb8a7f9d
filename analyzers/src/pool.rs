//! A pool of Python worker processes (A3, A4). Each job leases one worker for one call, so
//! jobs run concurrently up to the pool size and a crash or hang touches only its own job:
//! a worker that timed out or died is killed and replaced, never handed to the next job.
//! [`Pool::maintain`] keeps the pool full and pings idle workers; while no worker can be
//! started, calls fail fast with [`WorkerError::Unavailable`] and the caller waits (degraded).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use prometheus::{IntCounter, IntGauge};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::worker::{Worker, WorkerCommand, WorkerError};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Worker processes at most (one per core is the default of the configuration).
    pub size: usize,
    /// How often idle workers are pinged and missing ones started.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

/// The pool's own gauges and counters, registered by the service.
#[derive(Clone)]
pub struct PoolMetrics {
    pub workers_alive: IntGauge,
    pub restarts: IntCounter,
    pub spawn_failures: IntCounter,
}

#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    command: WorkerCommand,
    settings: PoolSettings,
    /// One permit per worker process: a lease holds one.
    slots: Semaphore,
    /// Idle workers: jobs take the most recently used (back), health checks the oldest (front).
    idle: Mutex<VecDeque<Worker>>,
    /// Lease number to worker pid, for operators and failure-injection tests.
    busy: Mutex<BTreeMap<u64, u32>>,
    next_lease: AtomicU64,
    alive: AtomicUsize,
    last_spawn_error: Mutex<Option<String>>,
    metrics: PoolMetrics,
}

impl Pool {
    pub fn new(command: WorkerCommand, settings: PoolSettings, metrics: PoolMetrics) -> Self {
        let size = settings.size.max(1);
        Self {
            inner: Arc::new(Inner {
                command,
                slots: Semaphore::new(size),
                settings: PoolSettings { size, ..settings },
                idle: Mutex::new(VecDeque::new()),
                busy: Mutex::new(BTreeMap::new()),
                next_lease: AtomicU64::new(0),
                alive: AtomicUsize::new(0),
                last_spawn_error: Mutex::new(None),
                metrics,
            }),
        }
    }

    pub fn size(&self) -> usize {
        self.inner.settings.size
    }

    /// Worker processes running now, idle or busy.
    pub fn alive(&self) -> usize {
        self.inner.alive.load(Ordering::Relaxed)
    }

    /// Why the last start failed, while none is alive.
    pub fn last_spawn_error(&self) -> Option<String> {
        lock(&self.inner.last_spawn_error).clone()
    }

    /// Pids of the workers busy with a job now.
    pub fn busy_pids(&self) -> Vec<u32> {
        lock(&self.inner.busy).values().copied().collect()
    }

    /// Pids of the idle workers.
    pub fn idle_pids(&self) -> Vec<u32> {
        lock(&self.inner.idle).iter().map(|w| w.hello.pid).collect()
    }

    /// Calls a method on an idle worker (started if none is idle); waits for a free slot.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, WorkerError> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| WorkerError::Unavailable("pool closed".into()))?;
        let mut worker = match self.take_idle(false) {
            Some(worker) => worker,
            None => self.spawn().await?,
        };
        let mut lease = Lease::new(self, worker.hello.pid);
        let result = worker.call(method, params, timeout).await;
        lease.returned = true;
        drop(lease);
        let broken = matches!(
            result,
            Err(WorkerError::Timeout(_) | WorkerError::Crashed(_))
        );
        self.give_back(worker, broken).await;
        result
    }

    /// Keeps the pool full and its idle workers answering, until shutdown; then stops them.
    pub async fn maintain(self, shutdown: CancellationToken) {
        let interval = self.inner.settings.ping_interval;
        let mut pause = interval;
        loop {
            self.ping_idle().await;
            let started = self.fill().await;
            // A worker that cannot start is retried with back-off, not in a tight loop.
            pause = if started {
                interval
            } else {
                (pause * 2).min(Duration::from_secs(30))
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        let idle = std::mem::take(&mut *lock(&self.inner.idle));
        for mut worker in idle {
            worker.kill().await;
            self.inner.alive.fetch_sub(1, Ordering::Relaxed);
        }
        self.publish_alive();
    }

    /// Starts workers until the pool is full; false if a start failed.
    async fn fill(&self) -> bool {
        while self.alive() < self.size() {
            let Ok(_slot) = self.inner.slots.try_acquire() else {
                return true;
            };
            match self.spawn().await {
                Ok(worker) => self.give_back(worker, false).await,
                Err(_) => return false,
            }
        }
        true
    }

    async fn ping_idle(&self) {
        let count = lock(&self.inner.idle).len();
        for _ in 0..count {
            let Ok(_slot) = self.inner.slots.try_acquire() else {
                return;
            };
            let Some(mut worker) = self.take_idle(true) else {
                return;
            };
            let answer = worker
                .call("ping", json!({}), self.inner.settings.ping_timeout)
                .await;
            if let Err(error) = &answer {
                tracing::warn!(pid = worker.hello.pid, %error, "idle worker failed its ping");
            }
            self.give_back(worker, answer.is_err()).await;
        }
    }

    /// An idle worker that is still running: the oldest one or the most recently used one.
    fn take_idle(&self, oldest: bool) -> Option<Worker> {
        let mut idle = lock(&self.inner.idle);
        while let Some(mut worker) = if oldest {
            idle.pop_front()
        } else {
            idle.pop_back()
        } {
            if worker.is_alive() {
                return Some(worker);
            }
            // Died while idle (killed from outside, OOM): replaced like a crash.
            self.inner.alive.fetch_sub(1, Ordering::Relaxed);
            self.inner.metrics.restarts.inc();
        }
        self.publish_alive();
        None
    }

    async fn spawn(&self) -> Result<Worker, WorkerError> {
        match Worker::spawn(&self.inner.command).await {
            Ok(worker) => {
                self.inner.alive.fetch_add(1, Ordering::Relaxed);
                *lock(&self.inner.last_spawn_error) = None;
                self.publish_alive();
                Ok(worker)
            }
            Err(error) => {
                self.inner.metrics.spawn_failures.inc();
                tracing::warn!(%error, "worker failed to start");
                *lock(&self.inner.last_spawn_error) = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// Returns a worker to the idle list, or kills it if it is broken.
    async fn give_back(&self, mut worker: Worker, broken: bool) {
        if broken || !worker.is_alive() {
            worker.kill().await;
            self.inner.alive.fetch_sub(1, Ordering::Relaxed);
            self.inner.metrics.restarts.inc();
            tracing::info!(
                pid = worker.hello.pid,
                "worker removed; a fresh one replaces it"
            );
        } else {
            lock(&self.inner.idle).push_back(worker);
        }
        self.publish_alive();
    }

    fn publish_alive(&self) {
        let alive = i64::try_from(self.alive()).unwrap_or(i64::MAX);
        self.inner.metrics.workers_alive.set(alive);
    }
}

/// A worker out on a job. If the job is dropped mid-call (shutdown), so is the worker, which
/// kills its process: the pool stops counting it.
struct Lease<'a> {
    pool: &'a Pool,
    id: u64,
    returned: bool,
}

impl<'a> Lease<'a> {
    fn new(pool: &'a Pool, pid: u32) -> Self {
        let id = pool.inner.next_lease.fetch_add(1, Ordering::Relaxed);
        lock(&pool.inner.busy).insert(id, pid);
        Self {
            pool,
            id,
            returned: false,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        lock(&self.pool.inner.busy).remove(&self.id);
        if !self.returned {
            self.pool.inner.alive.fetch_sub(1, Ordering::Relaxed);
            self.pool.publish_alive();
        }
    }
}

/// A poisoned lock only means another task panicked while holding it; the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
