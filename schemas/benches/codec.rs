//! Encode and decode rates per core and message sizes of typical events, Avro (Cruxlog's
//! wire format) next to serde_json on the same structs, measured in the same run.
//!
//! `cargo bench -p cruxlog-schemas --bench codec` (or `make bench-codec`). One thread: the
//! rates are per core. Goal (issue #3): >= 300k events/s per core each way, no slower than
//! JSON, at most half its size.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use cruxlog_schemas::{
    Actor, DomainEvent, EventMeta, decode, encode,
    events::{self, Event},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// The same information as the Avro envelope, as JSON would carry it.
#[derive(Serialize, Deserialize)]
struct JsonEvent<E> {
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    aggregate_type: String,
    aggregate_id: Uuid,
    aggregate_version: i64,
    occurred_at: DateTime<Utc>,
    command_id: Option<Uuid>,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    actor: Actor,
    traceparent: Option<String>,
    payload: E,
}

fn json_event<E: Event + Clone>(meta: &EventMeta, payload: &E) -> JsonEvent<E> {
    JsonEvent {
        event_id: meta.event_id,
        event_type: E::NAME.into(),
        schema_version: 1,
        aggregate_type: E::AGGREGATE_TYPE.into(),
        aggregate_id: meta.aggregate_id,
        aggregate_version: meta.aggregate_version,
        occurred_at: meta.occurred_at,
        command_id: meta.command_id,
        correlation_id: meta.correlation_id,
        causation_id: meta.causation_id,
        actor: meta.actor.clone(),
        traceparent: meta.traceparent.clone(),
        payload: payload.clone(),
    }
}

/// Runs `f` repeatedly for about `budget`, returns operations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1_000 {
        f();
    }
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < budget {
        for _ in 0..1_000 {
            f();
        }
        done += 1_000;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

struct Row {
    name: &'static str,
    avro_bytes: usize,
    json_bytes: usize,
    avro_encode: f64,
    json_encode: f64,
    avro_decode: f64,
    json_decode: f64,
}

fn measure<E>(payload: &E, budget: Duration) -> Row
where
    E: Event + Clone + Serialize + DeserializeOwned,
{
    let meta = EventMeta::new(Uuid::now_v7(), 3, Actor::user(Uuid::now_v7()))
        .with_command(Uuid::now_v7())
        .with_traceparent(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ));
    let avro = encode(&meta, payload).expect("encodes");
    let json_value = json_event(&meta, payload);
    let json = serde_json::to_vec(&json_value).expect("json");
    decode(&avro).expect("decodes");
    Row {
        name: E::NAME,
        avro_bytes: avro.len(),
        json_bytes: json.len(),
        avro_encode: rate(budget, || {
            black_box(encode(black_box(&meta), black_box(payload)).ok());
        }),
        json_encode: rate(budget, || {
            black_box(serde_json::to_vec(black_box(&json_event(&meta, payload))).ok());
        }),
        avro_decode: rate(budget, || {
            black_box(decode(black_box(&avro)).ok());
        }),
        json_decode: rate(budget, || {
            black_box(serde_json::from_slice::<JsonEvent<E>>(black_box(&json)).ok());
        }),
    }
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MILLIS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000),
    );
    let mut rows = Vec::new();
    for event in events::samples::all() {
        let row = match event {
            DomainEvent::SessionStarted(e) => measure(&e, budget),
            DomainEvent::AttemptLogged(e) => measure(&e, budget),
            DomainEvent::AnalysisCompleted(e) => measure(&e, budget),
            DomainEvent::WarmupPlanned(e) => measure(&e, budget),
            _ => continue,
        };
        rows.push(row);
    }
    println!(
        "codec benchmark, one core, {budget:?} per figure (events/s; bytes per message incl. envelope)"
    );
    println!(
        "{:<36} {:>6} {:>6} {:>6} | {:>10} {:>10} {:>6} | {:>10} {:>10} {:>6}",
        "event",
        "avro B",
        "json B",
        "size",
        "avro enc",
        "json enc",
        "ratio",
        "avro dec",
        "json dec",
        "ratio"
    );
    let mut ok = true;
    for row in &rows {
        let size = row.avro_bytes as f64 / row.json_bytes as f64;
        let enc = row.avro_encode / row.json_encode;
        let dec = row.avro_decode / row.json_decode;
        println!(
            "{:<36} {:>6} {:>6} {:>5.2}x | {:>10.0} {:>10.0} {:>5.2}x | {:>10.0} {:>10.0} {:>5.2}x",
            row.name,
            row.avro_bytes,
            row.json_bytes,
            size,
            row.avro_encode,
            row.json_encode,
            enc,
            row.avro_decode,
            row.json_decode,
            dec
        );
        ok &= row.avro_encode >= 300_000.0
            && row.avro_decode >= 300_000.0
            && enc >= 1.0
            && dec >= 1.0
            && size <= 0.5;
    }
    println!(
        "goal (>= 300k/s each way, >= 1.0x JSON speed, <= 0.5x JSON size): {}",
        if ok { "met" } else { "NOT met" }
    );
}
