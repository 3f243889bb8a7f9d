//! The start-up scan of a movement pipeline: which analysis ids of its partition already have
//! a result (A1, ADR 0010).

use std::{collections::HashSet, time::Duration};

use cruxlog_schemas::events::{AnalysisCompleted, AnalysisFailed, Event as _};
use rdkafka::{
    Message as _, Offset,
    consumer::{Consumer as _, StreamConsumer},
    error::KafkaError,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long the scan waits for another writer's open transaction to close.
const SCAN_PATIENCE: Duration = Duration::from_secs(90);

/// Reads the partition from its start to the high watermark it has now and records the
/// ids of results; returns how many records it read, or `None` on shutdown. Reading to the
/// high watermark, not just to the first end of partition, also covers results behind
/// another writer's open transaction (the end then moves when it closes); after
/// `SCAN_PATIENCE` the scan goes on with what it has.
pub(super) async fn learn_done(
    consumer: &StreamConsumer,
    (topic, partition): (&str, i32),
    done: &mut HashSet<Uuid>,
    shutdown: &CancellationToken,
) -> Option<u64> {
    let target = loop {
        let fetched = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10));
        match fetched {
            Ok((_, high)) => break high,
            Err(error) => {
                tracing::warn!(%error, partition = partition, "no high watermark yet")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let started = tokio::time::Instant::now();
    let mut scanned = 0;
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return None,
            received = tokio::time::timeout(Duration::from_millis(500), consumer.recv()) => received,
        };
        match received {
            Ok(Ok(message)) => {
                scanned += 1;
                if let Some(id) = result_id(message.payload().unwrap_or_default()) {
                    done.insert(id);
                }
                continue;
            }
            Ok(Err(KafkaError::PartitionEOF(_))) | Err(_) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "kafka receive error while scanning");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The position passes transaction markers too, so it reaches the high watermark.
        if position(consumer, topic, partition) >= target {
            return Some(scanned);
        }
        if started.elapsed() > SCAN_PATIENCE {
            tracing::warn!(
                partition = partition,
                target,
                position = position(consumer, topic, partition),
                "scan stopped short of the high watermark"
            );
            return Some(scanned);
        }
    }
}

fn position(consumer: &StreamConsumer, topic: &str, partition: i32) -> i64 {
    let Ok(positions) = consumer.position() else {
        return 0;
    };
    match positions
        .find_partition(topic, partition)
        .map(|p| p.offset())
    {
        Some(Offset::Offset(offset)) => offset,
        _ => 0,
    }
}

/// The analysis id of a result record (the aggregate id of `AnalysisCompleted` or
/// `AnalysisFailed`), read from the envelope alone.
fn result_id(payload: &[u8]) -> Option<Uuid> {
    let envelope = cruxlog_schemas::codec::decode_envelope(payload).ok()?;
    let is_result = envelope.event_type == AnalysisCompleted::NAME
        || envelope.event_type == AnalysisFailed::NAME;
    is_result.then_some(envelope.aggregate_id)
}
