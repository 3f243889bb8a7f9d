//! `Idempotency-Key` (W2): the first response to a caller's key is stored in PostgreSQL
//! (`api.idempotency_keys`) and replayed to every retry, also after the API restarts; a retry
//! appends nothing. The same key with a different request is refused (422); a retry while the
//! first request still runs is told to wait (409 with `Retry-After`).
//!
//! A process that dies between Kafka's acknowledgement and storing the response leaves its
//! key locked for [`LOCK`]; a retry after that runs the command again. It then creates the
//! same ids (see [`crate::command::Command`], ids derive from the key), so the projections'
//! upserts absorb the second copy of the events.

use std::time::Duration;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use crate::{AppState, accounts::db_error, error::ApiError};

pub const HEADER: &str = "idempotency-key";
/// Set on a response replayed from a stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a running first request holds its key.
const LOCK: Duration = Duration::from_secs(30);
/// Response headers worth replaying; the rest are per-response.
const KEPT_HEADERS: [&str; 4] = [
    "content-type",
    "location",
    crate::sessions::POSITION_HEADER,
    "etag",
];
/// Responses bigger than this are not stored (commands answer small JSON).
const MAX_STORED_BODY: usize = 256 * 1024;

/// The middleware; a no-op for reads and for requests without the header.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let key = match key.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) => key.to_owned(),
        _ => {
            return ApiError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    match guarded(&state, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn guarded(
    state: &AppState,
    key: String,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let caller = caller_of(state, request.headers());
    let (request, request_hash) = fingerprint(request, state.config.http.max_body_bytes).await?;
    let claimed = claim(state, &caller, &key, &request_hash)
        .await
        .map_err(|e| e.into_response())?;
    if !claimed {
        state
            .metrics
            .idempotent_replays
            .with_label_values(&["replayed"])
            .inc();
        return Err(stored(state, &caller, &key, &request_hash).await);
    }
    let response = next.run(request).await;
    Ok(finish(state, &caller, &key, response).await)
}

/// Whose key it is: the token's subject, or `anonymous` (registration, log-in).
fn caller_of(state: &AppState, headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| state.keys.verify(token.trim()).ok())
        .and_then(|actor| actor.user_id)
        .map_or_else(|| "anonymous".to_owned(), |user| user.to_string())
}

/// SHA-256 of method, path and body (JSON bodies are buffered, they are small; streamed
/// uploads are fingerprinted by their declared type and length, never read here).
async fn fingerprint(request: Request, limit: usize) -> Result<(Request, Vec<u8>), Response> {
    let (parts, body) = request.into_parts();
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path());
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    let body = if json {
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge.into_response())?;
        hasher.update(b"\n");
        hasher.update(&bytes);
        Body::from(bytes)
    } else {
        for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
            hasher.update(b"\n");
            hasher.update(
                parts
                    .headers
                    .get(&name)
                    .map_or(&b""[..], HeaderValue::as_bytes),
            );
        }
        body
    };
    Ok((Request::from_parts(parts, body), hasher.finalize().to_vec()))
}

/// Takes the key for this request: a new key, or one whose first request died holding it.
async fn claim(state: &AppState, caller: &str, key: &str, hash: &[u8]) -> Result<bool, ApiError> {
    let claimed = sqlx::query(
        "insert into api.idempotency_keys (caller, key, request_hash, locked_until)
         values ($1, $2, $3, now() + make_interval(secs => $4))
         on conflict (caller, key) do update
            set locked_until = excluded.locked_until
          where idempotency_keys.status is null
            and idempotency_keys.locked_until < now()
            and idempotency_keys.request_hash = excluded.request_hash
         returning 1",
    )
    .bind(caller)
    .bind(key)
    .bind(hash)
    .bind(LOCK.as_secs_f64())
    .fetch_optional(&state.db)
    .await
    .map_err(db_error)?;
    Ok(claimed.is_some())
}

/// The answer for a key someone else holds: its stored response, or why not.
async fn stored(state: &AppState, caller: &str, key: &str, hash: &[u8]) -> Response {
    let row = sqlx::query(
        "select request_hash, status, headers, body from api.idempotency_keys
          where caller = $1 and key = $2",
    )
    .bind(caller)
    .bind(key)
    .fetch_optional(&state.db)
    .await;
    let row = match row {
        Ok(Some(row)) => row,
        // Deleted meanwhile (its first request failed): the client may simply retry.
        Ok(None) => return in_progress(),
        Err(error) => return db_error(error).into_response(),
    };
    let stored_hash: Vec<u8> = row.try_get("request_hash").unwrap_or_default();
    if stored_hash != hash {
        return ApiError::IdempotencyKeyReused.into_response();
    }
    let Ok(Some(status)) = row.try_get::<Option<i16>, _>("status") else {
        return in_progress();
    };
    let headers: serde_json::Value = row.try_get("headers").unwrap_or_default();
    let body: Vec<u8> = row.try_get("body").unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    if let Some(headers) = headers.as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn in_progress() -> Response {
    let mut response = ApiError::Conflict(
        "a request with this Idempotency-Key is still running; retry shortly".into(),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Stores the first response, or frees the key when there is nothing final to replay (5xx,
/// 429: the client should retry for real).
async fn finish(state: &AppState, caller: &str, key: &str, response: Response) -> Response {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        let _ = sqlx::query("delete from api.idempotency_keys where caller = $1 and key = $2")
            .bind(caller)
            .bind(key)
            .execute(&state.db)
            .await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_STORED_BODY).await else {
        return ApiError::Internal(anyhow::anyhow!("response too large to store for replay"))
            .into_response();
    };
    let headers: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.into()))
        })
        .collect();
    let saved = sqlx::query(
        "update api.idempotency_keys set status = $3, headers = $4, body = $5, locked_until = null
          where caller = $1 and key = $2",
    )
    .bind(caller)
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(serde_json::Value::Object(headers))
    .bind(bytes.as_ref())
    .execute(&state.db)
    .await;
    if let Err(error) = saved {
        // The command took effect; a retry will find the key locked until it expires.
        tracing::warn!(%error, "storing an idempotent response failed");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Deletes keys older than a day; run periodically.
pub async fn expire(state: &AppState) -> Result<u64, ApiError> {
    let done = sqlx::query(
        "delete from api.idempotency_keys where created_at < now() - interval '24 hours'",
    )
    .execute(&state.db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}
