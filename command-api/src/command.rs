//! One command's appends: envelope metadata (actor, command id, trace) shared by the events a
//! command produces, the append itself (W1, W5) and its metrics.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use cruxlog_runtime::telemetry::TraceParent;
use cruxlog_schemas::{Actor, Event, EventMeta};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    AppState, error::ApiError, position::Position, sessions::POSITION_HEADER, writer::Written,
};

/// Namespace of command ids derived from idempotency keys.
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x3f1e_6a0c_2d7b_4c59_8e41_c7a9_05d2_b6e3);

/// Who asked for what, once per request.
#[derive(Debug, Clone)]
pub struct Command {
    pub id: Uuid,
    pub actor: Actor,
    pub trace: TraceParent,
    /// Whether `id` derives from an `Idempotency-Key`, which makes [`Command::new_id`]
    /// deterministic.
    keyed: bool,
}

impl Command {
    /// With an `Idempotency-Key`, the command id derives from (caller, key): a command run
    /// twice after a crash (see [`crate::idempotency`]) creates the same ids both times.
    pub fn new(actor: Actor, headers: &HeaderMap) -> Self {
        let key = headers
            .get(crate::idempotency::HEADER)
            .and_then(|v| v.to_str().ok());
        let caller = actor
            .user_id
            .map_or_else(|| "anonymous".to_owned(), |user| user.to_string());
        let (id, keyed) = match key {
            Some(key) => (
                Uuid::new_v5(&COMMAND_NAMESPACE, format!("{caller}/{key}").as_bytes()),
                true,
            ),
            None => (Uuid::now_v7(), false),
        };
        Self {
            id,
            actor,
            trace: crate::traceparent_of(headers),
            keyed,
        }
    }

    /// An id for something this command creates (`purpose` tells them apart): fresh UUIDv7,
    /// or derived from the command id when the command is keyed.
    pub fn new_id(&self, purpose: &str) -> Uuid {
        if self.keyed {
            Uuid::new_v5(&self.id, purpose.as_bytes())
        } else {
            Uuid::now_v7()
        }
    }

    /// Metadata of one event of this command.
    pub fn meta(&self, aggregate_id: Uuid, version: i64) -> EventMeta {
        EventMeta::new(aggregate_id, version, self.actor.clone())
            .with_command(self.id)
            .with_traceparent(Some(self.trace.header()))
    }
}

/// Appends `event` as version `version` of `aggregate_id`; `Ok` only once Kafka has
/// acknowledged it (W1); 503 within the append bound otherwise (W5).
pub async fn append<E: Event>(
    state: &AppState,
    command: &Command,
    aggregate_id: Uuid,
    version: i64,
    event: &E,
) -> Result<Position, ApiError> {
    let meta = command.meta(aggregate_id, version);
    match state.log.append(&meta, event).await {
        Ok(position) => {
            state.metrics.appended.with_label_values(&[E::NAME]).inc();
            tracing::info!(
                event_type = E::NAME,
                aggregate_id = %aggregate_id,
                trace_id = %command.trace.trace_id,
                partition = position.partition,
                offset = position.offset,
                "event appended"
            );
            Ok(position)
        }
        Err(error) => {
            tracing::warn!(%error, event_type = E::NAME, "append failed");
            state
                .metrics
                .append_failures
                .with_label_values(&[E::NAME])
                .inc();
            Err(ApiError::LogUnavailable)
        }
    }
}

/// Adds the read-your-writes token (R3) and, when given, the new resource's location.
pub fn with_position(
    mut response: Response,
    position: &Position,
    location: Option<&str>,
) -> Response {
    let headers = response.headers_mut();
    if let Ok(token) = HeaderValue::from_str(&position.to_string()) {
        headers.insert(POSITION_HEADER, token);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// `If-Match: "3"` (or `W/"3"`) -> 3; `*` or no header -> no check (W3).
pub fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::invalid("If-Match", "must be an ETag of this resource, e.g. \"3\""))
}

/// The `ETag` of an aggregate's version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// What a command on a versioned aggregate answers: `body`, the `ETag` of the new version,
/// the position token (R3) of its last event when there is one, and the new resource's
/// location when given.
pub fn written_response(
    status: StatusCode,
    body: impl Serialize,
    written: &Written,
    location: Option<&str>,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(written.version));
    match &written.position {
        Some(position) => with_position(response, position, location),
        None => response,
    }
}
