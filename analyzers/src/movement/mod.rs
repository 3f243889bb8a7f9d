//! The movement analyzer: an `AnalysisRequested` of kind `MOVEMENT` (a climbing video) goes
//! through the worker method `movement.analyze`; its artifacts go to the object store (A5) and
//! the result comes back as `AnalysisCompleted` (or `AnalysisFailed` plus a dead letter), in
//! one Kafka transaction with the request's offset (A1).
//!
//! Layout:
//! - this file: the worker contract (params, result) and the mapping to events.
//! - [`job`]: one request: fetch the video, call a pooled worker with retries, upload.
//! - [`partition`]: one pipeline per partition of the analysis topic, with the dedupe set.
//! - `scan`: the start-up scan that learns which analysis ids already have a result.

pub mod job;
pub mod partition;
mod scan;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use cruxlog_schemas::events::{
    AnalysisCompleted, AnalysisFailed, AnalysisKind, AnalysisRequested, AnalyzerInfo, Finding,
    FindingKind, MovementSummary, Sealed,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub const NAME: &str = "movement";
/// The version this code serves by default (`CRUXLOG_MOVEMENT__VERSION` overrides it when a
/// deployment pairs it with a newer worker).
pub const VERSION: i32 = 1;
pub const METHOD: &str = "movement.analyze";
/// Object-store prefix of analysis artifacts.
pub const ARTIFACT_PREFIX: &str = "analyses";

/// The movement analyzer of one deployment: one pipeline per partition of the analysis topic.
pub struct Movement {
    pipelines: Vec<partition::Pipeline>,
}

impl Movement {
    pub async fn build(shared: partition::Shared) -> anyhow::Result<Self> {
        let shared = Arc::new(shared);
        let partitions = partition_count(&shared.kafka.brokers, &shared.topic).await?;
        let mut pipelines = Vec::new();
        for partition in 0..partitions {
            pipelines.push(partition::Pipeline::start(shared.clone(), partition).await?);
        }
        Ok(Self { pipelines })
    }

    /// Runs every partition until shutdown; the first pipeline that fails ends the others.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let mut tasks = JoinSet::new();
        for pipeline in self.pipelines {
            tasks.spawn(pipeline.run(stop.clone()));
        }
        let mut outcome = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(error) = result {
                tracing::error!(error = format!("{error:#}"), "movement pipeline failed");
                stop.cancel();
                outcome = Err(error);
            }
        }
        outcome
    }
}

async fn partition_count(brokers: &str, topic: &str) -> anyhow::Result<i32> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let topic = topic.to_owned();
    let metadata = tokio::task::spawn_blocking(move || {
        consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))
    })
    .await?
    .context("reading the analysis topic's metadata")?;
    let count = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    anyhow::ensure!(count > 0, "the analysis topic has no partitions");
    Ok(i32::try_from(count)?)
}

/// Whether this deployment (serving `version`) takes a request: a movement request for that
/// version or for the latest one.
pub fn takes(request: &AnalysisRequested, version: i32) -> bool {
    request.kind == AnalysisKind::Movement
        && request
            .requested_analyzer_version
            .is_none_or(|v| v == version)
}

/// The `movement.analyze` params (`docs/worker-protocol.md`).
pub fn params(
    request: &AnalysisRequested,
    video: &std::path::Path,
    out_dir: &std::path::Path,
) -> Value {
    json!({
        "video_path": video,
        "out_dir": out_dir,
        "analysis_id": request.analysis_id.to_string(),
        "rotation_degrees": null,
        // Earlier analyses of the same user on the same route: not tracked yet.
        "history": [],
        "options": {},
    })
}

/// The worker's answer.
#[derive(Debug, Deserialize)]
pub struct WorkerResult {
    pub analyzer: AnalyzerInfo,
    pub metrics: BTreeMap<String, f64>,
    pub summary: MovementSummary,
    pub findings: Vec<WorkerFinding>,
    pub artifacts: Artifacts,
    #[serde(default)]
    pub video: Value,
}

#[derive(Debug, Deserialize)]
pub struct WorkerFinding {
    pub code: String,
    pub kind: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub severity: f64,
    pub explanation: String,
}

#[derive(Debug, Deserialize)]
pub struct Artifacts {
    pub annotated_video: PathBuf,
    pub summary_image: PathBuf,
    pub analysis_json: PathBuf,
}

impl WorkerResult {
    pub fn parse(result: Value) -> Result<Self, String> {
        serde_json::from_value(result)
            .map_err(|error| format!("malformed movement result: {error}"))
    }
}

/// Sealed references of the uploaded artifacts.
pub struct StoredArtifacts {
    pub annotated_video: Sealed,
    pub summary_image: Sealed,
    pub pose_track: Sealed,
}

pub fn completed(
    request: &AnalysisRequested,
    result: WorkerResult,
    artifacts: StoredArtifacts,
) -> AnalysisCompleted {
    AnalysisCompleted {
        analysis_id: request.analysis_id,
        user_id: request.user_id,
        kind: AnalysisKind::Movement,
        input_event_id: request.input_event_id,
        inputs: request.inputs.clone(),
        analyzer: result.analyzer,
        metrics: result.metrics,
        summary: Some(result.summary),
        findings: result
            .findings
            .into_iter()
            .map(|f| Finding {
                kind: match f.kind.as_str() {
                    "ERROR" => FindingKind::Error,
                    "STRENGTH" => FindingKind::Strength,
                    _ => FindingKind::Unknown,
                },
                code: f.code,
                start_ms: f.start_ms,
                end_ms: f.end_ms,
                severity: f.severity,
                explanation: f.explanation,
            })
            .collect(),
        morphology: None,
        annotated_video: Some(artifacts.annotated_video),
        summary_image: Some(artifacts.summary_image),
        pose_track: Some(artifacts.pose_track),
    }
}

pub fn failed(request: &AnalysisRequested, version: i32, reason: String) -> AnalysisFailed {
    AnalysisFailed {
        analysis_id: request.analysis_id,
        user_id: request.user_id,
        input_event_id: request.input_event_id,
        analyzer: AnalyzerInfo {
            name: NAME.into(),
            version,
            model_id: "n/a".into(),
        },
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_result_parses_and_maps_to_the_event() {
        let result = json!({
            "analyzer": {"name": "movement", "version": 1, "model_id": "blazepose-full-0.10.14"},
            "metrics": {"hip_wall_distance_mean_m": 0.31},
            "summary": {"climb_duration_ms": 4000, "move_count": 6, "rest_count": 1,
                        "rest_ms": 800, "smoothness": 0.7, "reached_top": null},
            "findings": [{"code": "HIPS_AWAY_FROM_WALL", "kind": "ERROR", "start_ms": 100,
                          "end_ms": 900, "severity": 0.5, "explanation": "hips out"},
                         {"code": "NEW", "kind": "SOMETHING", "start_ms": 0, "end_ms": 1,
                          "severity": 0.1, "explanation": "x"}],
            "artifacts": {"annotated_video": "/o/a.mp4", "summary_image": "/o/s.png",
                          "analysis_json": "/o/analysis.json"},
            "video": {"frames": 120, "analysed_frames": 120, "fps": 30.0, "width": 640,
                      "height": 480, "duration_ms": 4000, "rotation_degrees": 0},
        });
        let parsed = WorkerResult::parse(result).expect("parses");
        assert_eq!(parsed.summary.move_count, Some(6));
        assert!(WorkerResult::parse(json!({"analyzer": {}})).is_err());
        let sample = cruxlog_schemas::events::samples::all();
        let Some(cruxlog_schemas::DomainEvent::AnalysisRequested(request)) = sample
            .iter()
            .find(|e| matches!(e, cruxlog_schemas::DomainEvent::AnalysisRequested(_)))
            .cloned()
        else {
            panic!("a sample request exists");
        };
        let media = Sealed::dev(
            "k",
            &cruxlog_schemas::events::sealed::Note { text: "x".into() },
        );
        let event = completed(
            &request,
            parsed,
            StoredArtifacts {
                annotated_video: media.clone(),
                summary_image: media.clone(),
                pose_track: media,
            },
        );
        assert_eq!(event.findings[0].kind, FindingKind::Error);
        assert_eq!(event.findings[1].kind, FindingKind::Unknown);
        assert_eq!(event.analysis_id, request.analysis_id);
    }
}
