//! Live updates over Server-Sent Events: `GET /v1/events` follows the caller's own new results
//! (an analysis, a ghost or a routine finished or failed), resumable with `Last-Event-ID`.
//!
//! The source is the read models, polled: a result is announced once it can also be read,
//! so a client that reacts to an event by fetching the resource finds it. Event ids are
//! `<finished-at micros>_<resource id>`, ordered, so a reconnect resumes exactly after the
//! last event the client saw. Without `Last-Event-ID` the stream starts at the present.
//! Streams are capped per instance and per user (`http.max_event_streams`,
//! `http.max_event_streams_per_user`): each polls the read models, so beyond the caps a new
//! one gets 429 with `Retry-After`.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _, stream};
use serde::Serialize;
use uuid::Uuid;

use crate::{AppState, accounts::db_error, auth::Caller, config::HttpConfig, error::ApiError};

const POLL: Duration = Duration::from_millis(500);
/// `Retry-After` when no stream can be opened: streams end when phones go to sleep.
const RETRY_STREAM_S: u64 = 10;
const BATCH: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", get(events))
}

/// Where a stream stands: the last event sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('_')?;
        Some(Self {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }

    pub fn id(&self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id)
    }
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Update {
    /// analysis, ghost or routine.
    resource: String,
    id: Uuid,
    /// The analysis kind (movement, holds, warmup, ...), for analyses.
    kind: Option<String>,
    /// completed, generated or failed.
    status: String,
    finished_at: DateTime<Utc>,
}

#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "live",
    summary = "My new results as Server-Sent Events (resumable with Last-Event-ID)",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Too many event streams open (this user's or this instance's); Retry-After says when to try again", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let start = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(Cursor::parse)
            .ok_or_else(|| ApiError::invalid("Last-Event-ID", "not an id from this stream"))?,
        None => Cursor {
            at: Utc::now(),
            id: Uuid::max(),
        },
    };
    let slot = state.streams.open(caller.user_id, &state.config.http)?;
    // Fail now, with a status code, if the read models cannot be queried at all.
    updates(&state, caller.user_id, start).await?;
    let closing = state.closing.clone();
    // The slot lives in the stream's state: dropped (freed) when the stream ends.
    let stream = stream::unfold(
        (state, start, true, slot),
        move |(state, cursor, first, slot)| {
            let user = caller.user_id;
            async move {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                let (events, cursor) = match updates(&state, user, cursor).await {
                    Ok(found) => {
                        let next = found.last().map_or(cursor, |u| Cursor {
                            at: u.finished_at,
                            id: u.id,
                        });
                        (found.iter().filter_map(to_event).collect(), next)
                    }
                    // A database hiccup: keep the stream, try again at the next poll.
                    Err(_) => (Vec::new(), cursor),
                };
                Some((stream::iter(events), (state, cursor, false, slot)))
            }
        },
    )
    .flatten()
    .map(Ok)
    .take_until(closing.cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The event streams open on this instance, in all and per user.
#[derive(Default)]
pub struct Streams {
    /// Open streams per user (no entry: none).
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open stream's place; freed when dropped.
pub struct Slot {
    streams: Arc<Streams>,
    user: Uuid,
}

impl Streams {
    /// Takes a place for one more stream of `user`, or 429 when the instance or the user has
    /// as many as allowed.
    pub fn open(self: &Arc<Self>, user: Uuid, limits: &HttpConfig) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&user).copied().unwrap_or(0);
        if total >= limits.max_event_streams || mine >= limits.max_event_streams_per_user {
            return Err(ApiError::TooManyRequests(RETRY_STREAM_S));
        }
        *open.entry(user).or_default() += 1;
        Ok(Slot {
            streams: self.clone(),
            user,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = open.get_mut(&self.user) {
            *mine -= 1;
            if *mine == 0 {
                open.remove(&self.user);
            }
        }
    }
}

fn to_event(update: &Update) -> Option<Event> {
    let name = format!("{}.{}", update.resource, update.status);
    let cursor = Cursor {
        at: update.finished_at,
        id: update.id,
    };
    Event::default()
        .event(name)
        .id(cursor.id())
        .json_data(update)
        .ok()
}

async fn updates(state: &AppState, user: Uuid, after: Cursor) -> Result<Vec<Update>, ApiError> {
    sqlx::query_as(
        "select resource, id, kind, status, finished_at from (
            select 'analysis' as resource, analysis_id as id, kind, status, finished_at
              from read.analyses where user_id = $1 and status <> 'requested'
            union all
            select 'ghost', ghost_id, null, status, finished_at
              from read.ghosts where user_id = $1 and status <> 'requested'
            union all
            select 'routine', routine_id, null, status, finished_at
              from read.routines where user_id = $1 and status <> 'requested'
         ) results
         where finished_at is not null and (finished_at, id) > ($2, $3)
         order by finished_at, id limit $4",
    )
    .bind(user)
    .bind(after.at)
    .bind(after.id)
    .bind(BATCH)
    .fetch_all(&state.db)
    .await
    .map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("time"),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::parse(&cursor.id()), Some(cursor));
        for bad in ["", "12", "x_y", "12_not-a-uuid", "../../etc"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
