//! Commands on an existing session: log, correct and delete attempts, end the session. Each
//! goes through the session's head (W3): `If-Match: "<version>"` is checked when given, and
//! every response carries the new `ETag` and a position token (R3).

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{post, put},
};
use chrono::{DateTime, Utc};
use cruxlog_schemas::{
    envelope::truncate_to_micros,
    events::{
        AttemptCorrected, AttemptDeleted, AttemptDeletionReason, AttemptDetails, AttemptLogged,
        AttemptResult, ClimbStyle, Sealed, SessionEndReason, SessionEnded, aggregate, sealed::Note,
    },
    grades::{Grade, GradeSystem},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::Caller,
    command::{self, Command, expected_version},
    domain,
    error::{ApiError, FieldError, Result},
    json::{ValidJson, ValidQuery, path_id as id, symbol},
    writer::{self, Written},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/attempts", post(log))
        .route(
            "/v1/sessions/{session_id}/attempts/{attempt_id}",
            put(correct).delete(delete),
        )
        .route("/v1/sessions/{session_id}/end", post(end))
}

/// An attempt as the app sends it (to log or to correct).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptBody {
    /// Defaults to now.
    #[serde(default)]
    pub attempted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub route_id: Option<Uuid>,
    /// When there is no `route_id`: describes the route, never the person.
    #[serde(default)]
    pub route_description: Option<String>,
    /// `french` (4a–9c+), `v_scale` (VB–V17) or `fontainebleau` (3–9A); with `grade`.
    #[serde(default)]
    pub grade_system: Option<String>,
    #[serde(default)]
    pub grade: Option<String>,
    /// boulder, lead, top_rope, auto_belay, trad, board or other.
    pub style: String,
    /// flash, onsight, redpoint, repeat or fail.
    pub result: String,
    #[serde(default)]
    pub falls: i32,
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Perceived effort, 1 to 10.
    #[serde(default)]
    pub rpe: Option<i32>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// What a command on a session answers.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Changed {
    pub session_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attempt_id: Option<Uuid>,
    /// The session's version now; send it back as `If-Match: "<version>"`.
    pub version: i64,
    pub position: Option<String>,
}

impl AttemptBody {
    /// Checks every rule and reports every broken one.
    fn details(self, user_id: Uuid, now: DateTime<Utc>) -> Result<(DateTime<Utc>, AttemptDetails)> {
        let mut errors = Vec::new();
        let mut invalid = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        };
        let style: Option<ClimbStyle> = symbol(&self.style);
        if style.is_none() {
            invalid(
                "style",
                "must be boulder, lead, top_rope, auto_belay, trad, board or other",
            );
        }
        let result: Option<AttemptResult> =
            symbol(&self.result).filter(|r| *r != AttemptResult::Unknown);
        if result.is_none() {
            invalid("result", "must be flash, onsight, redpoint, repeat or fail");
        }
        let grade = match (&self.grade_system, &self.grade) {
            (None, None) => None,
            (Some(system), Some(label)) => match symbol::<GradeSystem>(system) {
                Some(system) => match Grade::parse(system, label) {
                    Ok(grade) => Some(grade),
                    Err(error) => {
                        invalid("grade", &error.to_string());
                        None
                    }
                },
                None => {
                    invalid("grade_system", "must be french, v_scale or fontainebleau");
                    None
                }
            },
            _ => {
                invalid("grade", "grade and grade_system come together");
                None
            }
        };
        if self.route_id.is_some() && self.route_description.is_some() {
            invalid(
                "route_description",
                "give a route_id or a description, not both",
            );
        }
        if let Some(description) = &self.route_description
            && (description.trim().is_empty()
                || description.chars().count() > 200
                || description.chars().any(char::is_control))
        {
            invalid("route_description", "must be 1 to 200 printable characters");
        }
        if !(0..=1000).contains(&self.falls) {
            invalid("falls", "must be between 0 and 1000");
        }
        if let Some(ms) = self.duration_ms
            && !(0..=24 * 3600 * 1000).contains(&ms)
        {
            invalid("duration_ms", "must be between 0 and a day");
        }
        if let Some(rpe) = self.rpe
            && !(1..=10).contains(&rpe)
        {
            invalid("rpe", "must be between 1 and 10");
        }
        if let Some(notes) = &self.notes
            && notes.chars().count() > 2000
        {
            invalid("notes", "must be at most 2000 characters");
        }
        let attempted_at = self.attempted_at.unwrap_or(now);
        if attempted_at > now + chrono::Duration::minutes(5) {
            invalid("attempted_at", "must not be in the future");
        }
        let (Some(style), Some(result), true) = (style, result, errors.is_empty()) else {
            return Err(ApiError::Validation(errors));
        };
        let notes = self
            .notes
            .map(|text| Sealed::dev(format!("user:{user_id}"), &Note { text }));
        Ok((
            truncate_to_micros(attempted_at),
            AttemptDetails {
                route_id: self.route_id,
                route_description: self.route_description.map(|d| d.trim().to_owned()),
                grade,
                style,
                result,
                falls: self.falls,
                duration_ms: self.duration_ms,
                rpe: self.rpe,
                beta: Vec::new(),
                high_point_hold_id: None,
                notes,
            },
        ))
    }
}

/// The response of a session command: status, body, `ETag` and position token.
pub fn changed(
    status: StatusCode,
    session_id: Uuid,
    attempt_id: Option<Uuid>,
    written: &Written,
) -> Response {
    let body = Changed {
        session_id,
        attempt_id,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    command::written_response(status, body, written, None)
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{session_id}/attempts",
    tag = "sessions",
    summary = "Log an attempt",
    params(("session_id" = Uuid, Path, description = "A session id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on"), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = AttemptBody,
    responses((status = 201, body = Changed), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "Version conflict or session ended", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn log(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<AttemptBody>,
) -> Result<Response> {
    let session_id = id(&session_id)?;
    let expected = expected_version(&headers)?;
    let (attempted_at, details) = body.details(caller.user_id, Utc::now())?;
    let command = Command::new(caller.actor.clone(), &headers);
    let event = AttemptLogged {
        session_id,
        attempt_id: command.new_id("attempt"),
        user_id: caller.user_id,
        attempted_at,
        details,
    };
    let written = writer::execute(
        &state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        expected,
        |s| domain::log_attempt(s, &event),
    )
    .await?;
    Ok(changed(
        StatusCode::CREATED,
        session_id,
        Some(event.attempt_id),
        &written,
    ))
}

#[utoipa::path(
    put,
    path = "/v1/sessions/{session_id}/attempts/{attempt_id}",
    tag = "sessions",
    summary = "Correct an attempt",
    params(("session_id" = Uuid, Path, description = "A session id"), ("attempt_id" = Uuid, Path, description = "An attempt id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on")),
    request_body = AttemptBody,
    responses((status = 200, body = Changed), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn correct(
    State(state): State<AppState>,
    caller: Caller,
    Path((session_id, attempt_id)): Path<(String, String)>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<AttemptBody>,
) -> Result<Response> {
    let (session_id, attempt_id) = (id(&session_id)?, id(&attempt_id)?);
    let expected = expected_version(&headers)?;
    let (attempted_at, details) = body.details(caller.user_id, Utc::now())?;
    let command = Command::new(caller.actor.clone(), &headers);
    let event = AttemptCorrected {
        session_id,
        attempt_id,
        user_id: caller.user_id,
        attempted_at,
        details,
    };
    let written = writer::execute(
        &state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        expected,
        |s| domain::correct_attempt(s, &event),
    )
    .await?;
    Ok(changed(
        StatusCode::OK,
        session_id,
        Some(attempt_id),
        &written,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteParams {
    /// mistake (default), duplicate or other.
    reason: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/v1/sessions/{session_id}/attempts/{attempt_id}",
    tag = "sessions",
    summary = "Delete an attempt",
    params(("session_id" = Uuid, Path, description = "A session id"), ("attempt_id" = Uuid, Path, description = "An attempt id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on"), DeleteParams),
    responses((status = 200, body = Changed), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((session_id, attempt_id)): Path<(String, String)>,
    ValidQuery(params): ValidQuery<DeleteParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let (session_id, attempt_id) = (id(&session_id)?, id(&attempt_id)?);
    let expected = expected_version(&headers)?;
    let reason = match params.reason.as_deref() {
        None => AttemptDeletionReason::Mistake,
        Some(reason) => symbol(reason)
            .ok_or_else(|| ApiError::invalid("reason", "must be mistake, duplicate or other"))?,
    };
    let command = Command::new(caller.actor.clone(), &headers);
    let event = AttemptDeleted {
        session_id,
        attempt_id,
        user_id: caller.user_id,
        reason,
    };
    let written = writer::execute(
        &state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        expected,
        |s| domain::delete_attempt(s, &event),
    )
    .await?;
    Ok(changed(
        StatusCode::OK,
        session_id,
        Some(attempt_id),
        &written,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndBody {
    /// Perceived effort of the whole session, 1 to 10.
    #[serde(default)]
    pub rpe: Option<i32>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{session_id}/end",
    tag = "sessions",
    summary = "End a session",
    params(("session_id" = Uuid, Path, description = "A session id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on")),
    request_body = EndBody,
    responses((status = 200, body = Changed), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn end(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<EndBody>,
) -> Result<Response> {
    let session_id = id(&session_id)?;
    let expected = expected_version(&headers)?;
    if let Some(rpe) = body.rpe
        && !(1..=10).contains(&rpe)
    {
        return Err(ApiError::invalid("rpe", "must be between 1 and 10"));
    }
    if body
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > 2000)
    {
        return Err(ApiError::invalid(
            "notes",
            "must be at most 2000 characters",
        ));
    }
    let command = Command::new(caller.actor.clone(), &headers);
    let event = SessionEnded {
        session_id,
        user_id: caller.user_id,
        ended_at: truncate_to_micros(Utc::now()),
        rpe: body.rpe,
        notes: body
            .notes
            .map(|text| Sealed::dev(format!("user:{}", caller.user_id), &Note { text })),
        reason: SessionEndReason::Climber,
    };
    let written = writer::execute(
        &state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        expected,
        |s| domain::end(s, &event),
    )
    .await?;
    Ok(changed(StatusCode::OK, session_id, None, &written))
}
