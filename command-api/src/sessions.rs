//! Climbing sessions: `POST /v1/sessions` starts one (appends `SessionStarted`),
//! `GET /v1/sessions/{id}` reads it, with its warm-up plans, from the read model.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use cruxlog_schemas::{
    envelope::truncate_to_micros,
    events::{Discipline, SessionStarted, aggregate},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::Caller,
    command::{self, Command},
    domain,
    error::{ApiError, FieldError, Result},
    json::{ValidJson, ValidQuery},
    read_models::{self, SessionView},
    writer,
};

/// The projection that serves these queries (see `projectors/`).
pub const PROJECTION: &str = "sessions";
pub const POSITION_HEADER: &str = "x-cruxlog-position";
pub const STALE_HEADER: &str = "x-cruxlog-stale";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(start).get(list))
        .route("/v1/sessions/{session_id}", get(show))
}

/// Body of `POST /v1/sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    /// boulder, sport, trad, top_rope or board.
    pub discipline: String,
    pub indoor: bool,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub planned_minutes: Option<i32>,
    /// Defaults to now; at most 5 minutes in the future.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionCreated {
    pub session_id: Uuid,
    pub position: String,
}

impl StartSession {
    /// Checks every rule and reports every broken one.
    fn validate(
        self,
        session_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<SessionStarted> {
        let mut errors = Vec::new();
        let discipline = Discipline::parse(&self.discipline);
        if discipline.is_none() {
            errors.push(FieldError {
                field: "discipline".into(),
                message: "must be one of boulder, sport, trad, top_rope, board".into(),
            });
        }
        if let Some(name) = &self.location_name
            && (name.trim().is_empty()
                || name.chars().count() > 200
                || name.chars().any(char::is_control))
        {
            errors.push(FieldError {
                field: "location_name".into(),
                message: "must be 1 to 200 printable characters".into(),
            });
        }
        if let Some(minutes) = self.planned_minutes
            && !(1..=720).contains(&minutes)
        {
            errors.push(FieldError {
                field: "planned_minutes".into(),
                message: "must be between 1 and 720".into(),
            });
        }
        let started_at = self.started_at.unwrap_or(now);
        if started_at > now + chrono::Duration::minutes(5) {
            errors.push(FieldError {
                field: "started_at".into(),
                message: "must not be in the future".into(),
            });
        }
        match discipline {
            Some(discipline) if errors.is_empty() => Ok(SessionStarted {
                session_id,
                user_id,
                started_at: truncate_to_micros(started_at),
                discipline,
                indoor: self.indoor,
                location_name: self.location_name.map(|name| name.trim().to_owned()),
                planned_minutes: self.planned_minutes,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    summary = "Start a climbing session",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = StartSession,
    responses((status = 201, body = SessionCreated), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(body): ValidJson<StartSession>,
) -> Result<Response> {
    let command = Command::new(caller.actor.clone(), &headers);
    let session_id = command.new_id("session");
    let event = body.validate(session_id, caller.user_id, Utc::now())?;
    let written = writer::execute(
        &state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        None,
        |s| domain::start(s, &event),
    )
    .await?;
    let position = written
        .position
        .clone()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a started session has a position")))?;
    let mut response = (
        StatusCode::CREATED,
        Json(SessionCreated {
            session_id,
            position: position.to_string(),
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(axum::http::header::ETAG, command::etag(written.version));
    let location = format!("/v1/sessions/{session_id}");
    Ok(command::with_position(response, &position, Some(&location)))
}

/// Query of `GET /v1/sessions`: newest first, `limit` per page (1..=100, default 20), the
/// next page from the `next` cursor of the previous one.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    limit: Option<i64>,
    /// Only sessions started at or after this instant.
    from: Option<DateTime<Utc>>,
    /// Only sessions started before this instant.
    to: Option<DateTime<Utc>>,
    discipline: Option<String>,
    /// Only sessions with an attempt at this grade, as written in any system (`7a+`, `V5`, `6C`).
    grade: Option<String>,
    /// Only sessions with an attempt with this result: flash, onsight, redpoint, repeat, fail.
    result: Option<String>,
    /// Opaque cursor: the `next` value of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<read_models::SessionSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "sessions",
    summary = "My sessions, newest first",
    params(ListParams),
    responses((status = 200, body = SessionPage), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(params): ValidQuery<ListParams>,
) -> Result<Json<SessionPage>> {
    let limit = crate::json::page_limit(params.limit, 20, 100)?;
    if let Some(discipline) = &params.discipline
        && Discipline::parse(discipline).is_none()
    {
        return Err(ApiError::invalid(
            "discipline",
            "must be one of boulder, sport, trad, top_rope, board",
        ));
    }
    let cursor = match &params.cursor {
        Some(cursor) => Some(
            read_models::Cursor::parse(cursor)
                .ok_or_else(|| ApiError::invalid("cursor", "not a cursor from a previous page"))?,
        ),
        None => None,
    };
    let grade = params.grade.as_deref().map(canonical_grade).transpose()?;
    if let Some(result) = &params.result
        && !["flash", "onsight", "redpoint", "repeat", "fail"].contains(&result.as_str())
    {
        return Err(ApiError::invalid(
            "result",
            "must be flash, onsight, redpoint, repeat or fail",
        ));
    }
    let filter = read_models::SessionFilter {
        grade,
        result: params.result,
        owner: caller.user_id,
        from: params.from,
        to: params.to,
        discipline: params.discipline,
        after: cursor,
        limit,
    };
    let sessions = read_models::sessions(&state.db, &filter).await?;
    let next = (sessions.len() as i64 == limit)
        .then(|| {
            sessions.last().map(|s| {
                read_models::Cursor {
                    started_at: s.started_at,
                    session_id: s.session_id,
                }
                .to_string()
            })
        })
        .flatten();
    Ok(Json(SessionPage { sessions, next }))
}

/// A grade label as the filter compares it: checked against the three systems, lower-cased
/// (French `6b+` and Fontainebleau `6B+` are the same spelling to a climber).
fn canonical_grade(label: &str) -> Result<String> {
    use cruxlog_schemas::grades::{Grade, GradeSystem};
    [
        GradeSystem::French,
        GradeSystem::Fontainebleau,
        GradeSystem::VScale,
    ]
    .into_iter()
    .find_map(|system| Grade::parse(system, label).ok())
    .map(|grade| grade.label.to_lowercase())
    .ok_or_else(|| ApiError::invalid("grade", "not a French, Fontainebleau or V-scale grade"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ShowParams {
    /// A position token from a command's response (R3).
    after: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/sessions/{session_id}",
    tag = "sessions",
    summary = "One of my sessions with attempts and analyses",
    params(("session_id" = Uuid, Path, description = "A session id"), ShowParams),
    responses((status = 200, body = SessionView), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    ValidQuery(params): ValidQuery<ShowParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let session_id = crate::json::path_id(&session_id)?;
    let caught_up = read_models::caught_up(&state, PROJECTION, params.after, &headers).await?;
    let session: SessionView = read_models::session(&state.db, session_id, caller.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let version = writer::version_of(&state, session_id).await?;
    let mut response = Json(session).into_response();
    response
        .headers_mut()
        .insert(axum::http::header::ETAG, command::etag(version));
    if !caught_up {
        response
            .headers_mut()
            .insert(STALE_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> StartSession {
        crate::json::parse(json.as_bytes()).expect("parses")
    }

    fn fields(result: Result<SessionStarted>) -> Vec<String> {
        match result {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_body_becomes_a_session_started_event() {
        let user = Uuid::now_v7();
        let event = body(r#"{"discipline":"top_rope","indoor":false,"location_name":" Céüse ","planned_minutes":240}"#)
            .validate(Uuid::now_v7(), user, Utc::now())
            .expect("valid");
        assert_eq!(event.user_id, user);
        assert_eq!(event.discipline, Discipline::TopRope);
        assert_eq!(event.location_name.as_deref(), Some("Céüse"));
    }

    #[test]
    fn every_broken_rule_is_reported_by_field() {
        let now = Utc::now();
        let future = (now + chrono::Duration::hours(1)).to_rfc3339();
        let json = format!(
            r#"{{"discipline":"ice","indoor":true,"location_name":"","planned_minutes":0,"started_at":"{future}"}}"#
        );
        assert_eq!(
            fields(body(&json).validate(Uuid::now_v7(), Uuid::now_v7(), now)),
            [
                "discipline",
                "location_name",
                "planned_minutes",
                "started_at"
            ]
        );
    }
}
