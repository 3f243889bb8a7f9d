//! The one HTTP error type. Each variant documents its status; every response is RFC 9457
//! `application/problem+json`. Internal causes are logged once and never sent to clients.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// One invalid field, named by its JSON path (e.g. `planned_minutes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON at all.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// 422: JSON, but fields are missing, of the wrong type, or break a rule.
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    /// 401: no valid access token.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: signed in, but this needs the admin role.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404: nothing there, or not the caller's to see (the two are not told apart).
    #[error("not found")]
    NotFound,
    /// 409: the command conflicts with the current state (taken email, stale version, a
    /// retry of a request still running).
    #[error("{0}")]
    Conflict(String),
    /// 409: `If-Match` named another version than the aggregate's current one (W3).
    #[error("the resource is at version {current}, not {expected}; reload it and retry")]
    VersionConflict { expected: i64, current: i64 },
    /// 428: a change to this resource needs `If-Match`.
    #[error("If-Match with the resource's ETag is required")]
    PreconditionRequired,
    /// 422 (`Idempotency-Key` reused with another request): the key is bound to the first.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// 429 with `Retry-After`: too many attempts from this client.
    #[error("too many requests; retry after {0} seconds")]
    TooManyRequests(u64),
    /// 413: the body is over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: not the content type the endpoint takes.
    #[error("unsupported media type, expected {0}")]
    UnsupportedMediaType(&'static str),
    /// 503 with `Retry-After`: Kafka did not acknowledge in time, nothing was accepted.
    #[error("event log unavailable")]
    LogUnavailable,
    /// 503 with `Retry-After`: the read models cannot be queried now.
    #[error("read models unavailable")]
    ReadModelUnavailable,
    /// 500: a bug; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    fn status_and_title(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON"),
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid fields",
            ),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::VersionConflict { .. } => {
                (StatusCode::CONFLICT, "version-conflict", "Version conflict")
            }
            Self::PreconditionRequired => (
                StatusCode::PRECONDITION_REQUIRED,
                "precondition-required",
                "Precondition required",
            ),
            Self::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
            ),
            Self::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::LogUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "log-unavailable",
                "Event log unavailable",
            ),
            Self::ReadModelUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "read-model-unavailable",
                "Read models unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.status_and_title();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "an unexpected error occurred; it has been logged".to_owned()
            }
            Self::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        let errors = match &self {
            Self::Validation(errors) => errors.as_slice(),
            _ => &[],
        };
        let kind = format!("https://cruxlog.dev/problems/{slug}");
        let problem = Problem {
            kind: &kind,
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::TooManyRequests(seconds) = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        response
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;
