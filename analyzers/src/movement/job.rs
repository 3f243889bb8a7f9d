//! One movement job: open the request's sealed video reference, fetch the bytes into a
//! scratch directory, call a pooled worker (retrying transient failures with back-off, waiting
//! without limit while no worker or store answers), upload the artifacts, build the event.

use std::{path::Path, sync::Arc, time::Duration};

use cruxlog_runtime::blobs::{BlobError, BlobStore};
use cruxlog_schemas::events::{
    AnalysisCompleted, AnalysisFailed, AnalysisRequested, InputKind, Sealed, sealed::MediaRef,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{ARTIFACT_PREFIX, METHOD, NAME, StoredArtifacts, WorkerResult};
use crate::{metrics::Metrics, pool::Pool, worker::WorkerError};

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// The version this deployment serves; results must carry it.
    pub version: i32,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Timeout of one call: `timeout_base + timeout_per_mib × video MiB`, as the video's
    /// duration is not in the request and its size bounds it.
    pub timeout_base: Duration,
    pub timeout_per_mib: Duration,
    /// Where per-job scratch directories go (the system temp dir by default).
    pub scratch_dir: std::path::PathBuf,
}

pub struct JobContext {
    pub pool: Pool,
    pub blobs: BlobStore,
    pub metrics: Metrics,
    pub settings: JobSettings,
}

/// What a job ends in.
pub enum Outcome {
    Completed(Box<AnalysisCompleted>),
    /// Given up: the failure event, and the request goes to the dead letters.
    Failed(AnalysisFailed),
}

/// Why one step did not work.
enum StepError {
    /// The input can never succeed.
    Permanent(String),
    /// May succeed on another try (counts against `max_attempts`).
    Transient(String),
    /// A dependency is down (no worker, no store): wait, do not count (A3).
    Waiting(String),
}

impl JobContext {
    /// Runs the job to an outcome; `None` only on shutdown.
    pub async fn run(
        self: &Arc<Self>,
        request: &AnalysisRequested,
        shutdown: &CancellationToken,
    ) -> Option<Outcome> {
        let timer = self.metrics.job_timer(NAME).start_timer();
        let settings = &self.settings;
        let (mut attempts, mut pause) = (0, settings.retry_base);
        let outcome = loop {
            // Shutdown does not wait for a long video: the worker is killed with the dropped
            // call, and the request is redone after a restart (its offset is not committed).
            let attempt = tokio::select! {
                () = shutdown.cancelled() => {
                    timer.stop_and_discard();
                    return None;
                }
                attempt = self.attempt(request) => attempt,
            };
            let reason = match attempt {
                Ok(completed) => break Outcome::Completed(Box::new(completed)),
                Err(StepError::Permanent(reason)) => {
                    break Outcome::Failed(super::failed(request, settings.version, reason));
                }
                Err(StepError::Waiting(reason)) => {
                    tracing::warn!(%reason, retry_in_ms = pause.as_millis() as u64, "dependency down; waiting (degraded)");
                    reason
                }
                Err(StepError::Transient(reason)) => {
                    attempts += 1;
                    if attempts >= settings.max_attempts {
                        break Outcome::Failed(super::failed(
                            request,
                            settings.version,
                            format!("gave up after {attempts} attempts: {reason}"),
                        ));
                    }
                    tracing::warn!(%reason, attempts, "attempt failed; retrying");
                    reason
                }
            };
            tracing::debug!(%reason, "back-off");
            tokio::select! {
                () = shutdown.cancelled() => {
                    timer.stop_and_discard();
                    return None;
                }
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(settings.retry_max);
        };
        timer.observe_duration();
        Some(outcome)
    }

    async fn attempt(&self, request: &AnalysisRequested) -> Result<AnalysisCompleted, StepError> {
        let (media, key_id) = video_ref(request)?;
        let scratch = tempfile::Builder::new()
            .prefix("cruxlog-movement-")
            .tempdir_in(&self.settings.scratch_dir)
            .map_err(|e| StepError::Waiting(format!("scratch directory: {e}")))?;
        let video = scratch.path().join("input.mp4");
        let out_dir = scratch.path().join("out");
        std::fs::create_dir(&out_dir).map_err(|e| StepError::Waiting(format!("scratch: {e}")))?;
        let fetched = self
            .blobs
            .get_to_file(&media.object_key, &video)
            .await
            .map_err(store_error)?;
        if fetched.sha256 != media.sha256 {
            return Err(StepError::Permanent(format!(
                "video {} does not match the sha256 in its reference",
                media.object_key
            )));
        }
        let mib = u32::try_from(fetched.size.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        let timeout = self.settings.timeout_base + self.settings.timeout_per_mib * mib;
        let params = super::params(request, &video, &out_dir);
        let answer = self.call(params, timeout).await?;
        let result = WorkerResult::parse(answer).map_err(StepError::Permanent)?;
        if result.analyzer.name != NAME || result.analyzer.version != self.settings.version {
            return Err(StepError::Permanent(format!(
                "the worker serves {} v{}, this deployment {NAME} v{}",
                result.analyzer.name, result.analyzer.version, self.settings.version
            )));
        }
        let artifacts = StoredArtifacts {
            annotated_video: self
                .upload(&result.artifacts.annotated_video, &out_dir, &key_id)
                .await?,
            summary_image: self
                .upload(&result.artifacts.summary_image, &out_dir, &key_id)
                .await?,
            pose_track: self
                .upload(&result.artifacts.analysis_json, &out_dir, &key_id)
                .await?,
        };
        Ok(super::completed(request, result, artifacts))
    }

    async fn call(&self, params: Value, timeout: Duration) -> Result<Value, StepError> {
        let error = match self.pool.call(METHOD, params, timeout).await {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        self.metrics
            .worker_failure(NAME, crate::runner::failure_kind(&error));
        Err(match error {
            WorkerError::Unavailable(_) => StepError::Waiting(error.to_string()),
            error if error.is_permanent() => StepError::Permanent(error.to_string()),
            error => StepError::Transient(error.to_string()),
        })
    }

    /// Uploads one artifact, which must lie in the job's output directory.
    async fn upload(&self, path: &Path, out_dir: &Path, key_id: &str) -> Result<Sealed, StepError> {
        let inside = std::fs::canonicalize(path)
            .ok()
            .zip(std::fs::canonicalize(out_dir).ok())
            .is_some_and(|(path, dir)| path.starts_with(dir));
        if !inside {
            return Err(StepError::Permanent(format!(
                "artifact {} is missing or outside the output directory",
                path.display()
            )));
        }
        let stored = self
            .blobs
            .put_file(ARTIFACT_PREFIX, path)
            .await
            .map_err(store_error)?;
        Ok(Sealed::dev(
            key_id,
            &MediaRef {
                object_key: stored.key,
                sha256: stored.sha256,
            },
        ))
    }
}

/// The request's video reference, opened, and the key id its artifacts are sealed with.
fn video_ref(request: &AnalysisRequested) -> Result<(MediaRef, String), StepError> {
    let sealed = request
        .inputs
        .iter()
        .find(|input| input.kind == InputKind::Video)
        .and_then(|input| input.media.as_ref())
        .ok_or_else(|| StepError::Permanent("inputs: no video with a media reference".into()))?;
    // Key management lands later: only development seals open today.
    let media: MediaRef = sealed
        .open_dev()
        .map_err(|e| StepError::Permanent(format!("inputs: {e}")))?;
    Ok((media, sealed.key_id.clone()))
}

fn store_error(error: BlobError) -> StepError {
    match error {
        BlobError::NotFound(_) | BlobError::InvalidKey(_) | BlobError::Corrupt { .. } => {
            StepError::Permanent(error.to_string())
        }
        error => StepError::Waiting(error.to_string()),
    }
}
