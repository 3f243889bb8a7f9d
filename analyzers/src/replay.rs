//! `cruxlog-analyzers replay`: re-runs history through an analyzer version (A2). It reads
//! every `VideoAttached` of the session topic from the beginning (filtered by date and user)
//! and appends an `AnalysisRequested` with reason `REPLAY`, pinned to the version, whose id is
//! `analysis_id(video attached event id, "movement", Some(version))`. Results of other
//! versions are other analyses and stay.
//!
//! Idempotent: it first reads the analysis topic and skips videos whose request (same id) is
//! already there or that already have a result of that version, so running it twice appends
//! nothing the second time; the analyzer's dedupe (A1) covers a request appended twice anyway.

use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use cruxlog_runtime::kafka::KafkaConfig;
use cruxlog_schemas::{
    Actor, DecodedEvent, DomainEvent, EventMeta,
    events::{
        AnalysisInput, AnalysisKind, AnalysisReason, AnalysisRequested, InputKind, aggregate,
        analysis_id,
    },
};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{Consumer as _, StreamConsumer},
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
};
use uuid::Uuid;

use crate::movement;

#[derive(Debug, Clone)]
pub struct ReplayArgs {
    pub analyzer: String,
    pub version: i32,
    /// Only videos attached at or after this instant.
    pub since: Option<DateTime<Utc>>,
    pub user: Option<Uuid>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// `VideoAttached` events that passed the filters.
    pub videos: u64,
    pub requested: u64,
    /// Skipped: requested before, or already analysed by that version.
    pub skipped: u64,
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 instant.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| format!("not a date (YYYY-MM-DD) or RFC 3339 instant: {error}"))
}

pub async fn replay(kafka: &KafkaConfig, args: &ReplayArgs) -> anyhow::Result<ReplayReport> {
    anyhow::ensure!(
        args.analyzer == movement::NAME,
        "only the {} analyzer can be replayed, not {:?}",
        movement::NAME,
        args.analyzer
    );
    kafka
        .ensure_event_topics()
        .await
        .context("creating event topics")?;
    let topics = kafka.topics();
    let analysis_topic = topics.for_aggregate(aggregate::ANALYSIS);
    let (mut requested, mut analysed) = (HashSet::new(), HashSet::new());
    read_to_end(kafka, &analysis_topic, None, |decoded| {
        match decoded.event {
            DomainEvent::AnalysisRequested(request) => {
                requested.insert(request.analysis_id);
            }
            DomainEvent::AnalysisCompleted(done)
                if done.analyzer.name == args.analyzer && done.analyzer.version == args.version =>
            {
                analysed.insert(done.input_event_id);
            }
            _ => {}
        }
    })
    .await?;
    let producer: FutureProducer = kafka.producer().create().context("creating the producer")?;
    let bar = progress_bar(args.progress);
    let mut report = ReplayReport::default();
    let mut requests = Vec::new();
    read_to_end(
        kafka,
        &topics.for_aggregate(aggregate::CLIMBING_SESSION),
        Some(&bar),
        |decoded| {
            let DomainEvent::VideoAttached(video) = decoded.event else {
                return;
            };
            let envelope = decoded.envelope;
            if args.since.is_some_and(|since| envelope.occurred_at < since)
                || args.user.is_some_and(|user| user != video.user_id)
            {
                return;
            }
            report.videos += 1;
            let id = analysis_id(envelope.event_id, &args.analyzer, Some(args.version));
            if requested.contains(&id) || analysed.contains(&envelope.event_id) {
                report.skipped += 1;
                return;
            }
            let request = AnalysisRequested {
                analysis_id: id,
                user_id: video.user_id,
                kind: AnalysisKind::Movement,
                input_event_id: envelope.event_id,
                inputs: vec![AnalysisInput {
                    kind: InputKind::Video,
                    id: video.video_id,
                    media: Some(video.media),
                }],
                requested_analyzer_version: Some(args.version),
                reason: AnalysisReason::Replay,
            };
            requested.insert(id);
            requests.push((
                EventMeta::new(id, 1, Actor::system()).caused_by(&envelope),
                request,
            ));
        },
    )
    .await?;
    for (meta, request) in requests {
        let bytes = cruxlog_schemas::encode(&meta, &request)?;
        let key = meta.aggregate_id.to_string();
        let record = FutureRecord::to(&analysis_topic).key(&key).payload(&bytes);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(error, _)| error)
            .context("appending a replay request")?;
        report.requested += 1;
        bar.set_message(format!("{} requested", report.requested));
    }
    bar.finish_with_message(format!(
        "{} requested, {} skipped",
        report.requested, report.skipped
    ));
    Ok(report)
}

fn progress_bar(visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} session events, ETA {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Reads every committed record of a topic, from the beginning to the end it has now, and
/// hands each decodable event to `visit` (undecodable records are not this command's job).
async fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    bar: Option<&ProgressBar>,
    mut visit: impl FnMut(DecodedEvent),
) -> anyhow::Result<()> {
    let consumer: StreamConsumer = kafka
        .consumer(&format!("{}cruxlog-replay-reader", kafka.topic_prefix))
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0;
    for &partition in &partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        total += high - low;
    }
    if let Some(bar) = bar {
        bar.inc_length(u64::try_from(total).unwrap_or_default());
    }
    consumer.assign(&assignment)?;
    let mut at_end = HashSet::new();
    while at_end.len() < partitions.len() {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Err(_) => anyhow::bail!("no progress reading {topic} for 30 s"),
            Ok(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Ok(Err(error)) => return Err(error).context("reading"),
            Ok(Ok(message)) => {
                if let Some(bar) = bar {
                    bar.inc(1);
                }
                if let Ok(decoded) = cruxlog_schemas::decode(message.payload().unwrap_or_default())
                {
                    visit(decoded);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_an_instant() {
        assert_eq!(
            parse_since("2026-11-01").map(|at| at.to_rfc3339()),
            Ok("2026-11-01T00:00:00+00:00".to_owned())
        );
        assert!(parse_since("2026-11-01T10:00:00+01:00").is_ok());
        assert!(parse_since("yesterday").is_err());
    }
}
