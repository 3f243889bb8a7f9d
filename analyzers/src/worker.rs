//! One Python worker process, spoken to over the protocol in `docs/worker-protocol.md`:
//! JSON lines on stdin/stdout, logs on stderr, a `hello` frame first, one request at a time.

use std::{path::PathBuf, process::Stdio, time::Duration};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

/// How a call can fail, classified for the caller's retry decision (A4).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The input can never succeed: emit a failure event, do not retry.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The worker raised; may succeed on retry.
    #[error("worker error ({kind}): {message}")]
    Internal { kind: String, message: String },
    /// No answer in time; the worker was killed.
    #[error("worker timed out after {0:?}")]
    Timeout(Duration),
    /// The worker died or broke the protocol.
    #[error("worker crashed: {0}")]
    Crashed(String),
    /// No worker could be started (Python missing, import error): degraded mode (A3).
    #[error("worker unavailable: {0}")]
    Unavailable(String),
}

impl WorkerError {
    /// Whether the failure is the input's fault, so retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::InvalidInput(_))
    }
}

/// How to start a worker.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub python: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub start_timeout: Duration,
}

impl WorkerCommand {
    pub fn python(python: impl Into<PathBuf>) -> Self {
        Self {
            python: python.into(),
            args: vec!["-m".into(), "cruxlog_vision.worker".into()],
            env: Vec::new(),
            start_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub version: String,
    pub pid: u32,
    pub methods: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Response {
    id: Option<String>,
    ok: bool,
    #[serde(default)]
    result: Value,
    error: Option<ErrorBody>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    kind: String,
    message: String,
}

/// A running worker.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    pub hello: Hello,
}

impl Worker {
    /// Starts a worker and waits for its `hello`.
    pub async fn spawn(command: &WorkerCommand) -> Result<Self, WorkerError> {
        let mut child = Command::new(&command.python)
            .args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                WorkerError::Unavailable(format!("{}: {error}", command.python.display()))
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(WorkerError::Unavailable("worker pipes missing".into()));
        };
        tokio::spawn(forward_logs(stderr, child.id().unwrap_or_default()));
        let mut stdout = BufReader::new(stdout).lines();
        let hello = match tokio::time::timeout(command.start_timeout, stdout.next_line()).await {
            Ok(Ok(Some(line))) => serde_json::from_str::<Hello>(&line)
                .map_err(|error| WorkerError::Unavailable(format!("bad hello frame: {error}")))?,
            Ok(Ok(None)) | Ok(Err(_)) => {
                return Err(WorkerError::Unavailable(
                    "worker exited before hello".into(),
                ));
            }
            Err(_) => return Err(WorkerError::Unavailable("no hello in time".into())),
        };
        if hello.protocol != 1 {
            return Err(WorkerError::Unavailable(format!(
                "worker speaks protocol {}, expected 1",
                hello.protocol
            )));
        }
        tracing::info!(pid = hello.pid, version = %hello.version, "worker started");
        Ok(Self {
            child,
            stdin,
            stdout,
            next_id: 0,
            hello,
        })
    }

    /// Calls a method; on timeout or protocol breakage the worker is killed and must be
    /// replaced.
    pub async fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, WorkerError> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let mut line = json!({ "id": id, "method": method, "params": params }).to_string();
        line.push('\n');
        let exchange = async {
            self.stdin
                .write_all(line.as_bytes())
                .await
                .map_err(|e| WorkerError::Crashed(e.to_string()))?;
            self.stdin
                .flush()
                .await
                .map_err(|e| WorkerError::Crashed(e.to_string()))?;
            loop {
                let Some(frame) = self
                    .stdout
                    .next_line()
                    .await
                    .map_err(|e| WorkerError::Crashed(e.to_string()))?
                else {
                    return Err(WorkerError::Crashed("worker closed its output".into()));
                };
                let response: Response = serde_json::from_str(&frame)
                    .map_err(|error| WorkerError::Crashed(format!("unreadable frame: {error}")))?;
                if response.id.as_deref() == Some(id.as_str()) {
                    return Ok(response);
                }
                tracing::warn!(expected = %id, got = ?response.id, "stray worker frame ignored");
            }
        };
        let response = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                self.kill().await;
                return Err(WorkerError::Timeout(timeout));
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.kill().await;
                return Err(error);
            }
        };
        if response.ok {
            return Ok(response.result);
        }
        let error = response.error.unwrap_or(ErrorBody {
            kind: "internal".into(),
            message: "no error body".into(),
        });
        Err(match error.kind.as_str() {
            // The worker will answer the same way every time: retrying cannot help.
            "invalid_input" | "unknown_method" | "invalid_request" => {
                WorkerError::InvalidInput(format!("{}: {}", error.kind, error.message))
            }
            kind => WorkerError::Internal {
                kind: kind.to_owned(),
                message: error.message,
            },
        })
    }

    pub async fn kill(&mut self) {
        self.child.kill().await.ok();
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

async fn forward_logs(stderr: tokio::process::ChildStderr, pid: u32) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Value>(&line) {
            Ok(record) => {
                let message = record
                    .get("msg")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let level = record
                    .get("level")
                    .and_then(Value::as_str)
                    .unwrap_or("info");
                match level {
                    "error" => tracing::error!(worker_pid = pid, %record, "worker: {message}"),
                    "warn" | "warning" => {
                        tracing::warn!(worker_pid = pid, %record, "worker: {message}")
                    }
                    _ => tracing::debug!(worker_pid = pid, %record, "worker: {message}"),
                }
            }
            Err(_) => tracing::debug!(worker_pid = pid, line, "worker output"),
        }
    }
}
