//! Admin endpoints (`/v1/admin/*`, role `admin` only, 403 otherwise): users and roles,
//! pipeline health, the audit log. Every read of one user's personal data first appends a
//! `PersonalDataViewed` event naming the admin, the reason and the resource; if that append
//! fails, the data is not shown (DESIGN.md Security).

use axum::{
    Router,
    extract::{FromRequestParts, Path, State},
    http::{HeaderMap, request::Parts},
    response::Response,
    routing::{delete, get, post},
};
use cruxlog_schemas::{
    ActorRole,
    events::{
        AccessReason, PersonalDataViewed, PersonalResource, Role, RoleGranted, RoleRevoked,
        aggregate,
    },
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::Caller,
    command::{self, Command},
    error::{ApiError, Result},
    json::{ValidJson, path_id as id, symbol},
    user_domain, writer,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users", get(crate::admin_reads::users))
        .route("/v1/admin/users/{user_id}", get(crate::admin_reads::user))
        .route(
            "/v1/admin/users/{user_id}/sessions",
            get(crate::admin_reads::sessions),
        )
        .route("/v1/admin/users/{user_id}/roles", post(grant))
        .route("/v1/admin/users/{user_id}/roles/{role}", delete(revoke))
        .route("/v1/admin/pipeline", get(crate::admin_reads::pipeline))
        .route("/v1/admin/analyses", get(crate::admin_reads::analyses))
        .route(
            "/v1/admin/users/{user_id}/analyses",
            get(crate::admin_reads::user_analyses),
        )
        .route("/v1/admin/audit", get(crate::admin_reads::audit))
}

/// A caller holding the admin role.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.actor.role != ActorRole::Admin {
            return Err(ApiError::Forbidden("admins only"));
        }
        Ok(Self(caller))
    }
}

fn role(name: &str) -> Result<Role> {
    match name {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        _ => Err(ApiError::invalid("role", "must be admin or user")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    /// `admin` (`user` is implicit).
    pub role: String,
}

#[utoipa::path(
    post,
    path = "/v1/admin/users/{user_id}/roles",
    tag = "admin",
    summary = "Grant a role (admins only)",
    params(("user_id" = Uuid, Path, description = "A user id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on")),
    request_body = GrantRole,
    responses((status = 200, body = UserChanged), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn grant(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<GrantRole>,
) -> Result<Response> {
    let user_id = id(&user_id)?;
    let event = RoleGranted {
        user_id,
        role: role(&body.role)?,
    };
    let command = Command::new(admin.actor.clone(), &headers);
    let expected = command::expected_version(&headers)?;
    let written = writer::execute(&state, &command, aggregate::USER, user_id, expected, |s| {
        user_domain::grant(s, &event)
    })
    .await?;
    Ok(changed_user(user_id, &written))
}

#[utoipa::path(
    delete,
    path = "/v1/admin/users/{user_id}/roles/{role}",
    tag = "admin",
    summary = "Revoke a role (admins only)",
    params(("user_id" = Uuid, Path, description = "A user id"), ("role" = String, Path, description = "admin"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on")),
    responses((status = 200, body = UserChanged), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((user_id, role_name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let user_id = id(&user_id)?;
    if user_id == admin.user_id && role_name == "admin" {
        return Err(ApiError::Conflict(
            "an admin cannot revoke their own admin role; ask another admin".into(),
        ));
    }
    let event = RoleRevoked {
        user_id,
        role: role(&role_name)?,
    };
    let command = Command::new(admin.actor.clone(), &headers);
    let expected = command::expected_version(&headers)?;
    let written = writer::execute(&state, &command, aggregate::USER, user_id, expected, |s| {
        user_domain::revoke(s, &event)
    })
    .await?;
    Ok(changed_user(user_id, &written))
}

/// Why an admin looks at someone's personal data: required on every such read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Access {
    /// support_request, abuse_report, legal_obligation, data_subject_request,
    /// security_incident or other.
    pub reason: Option<String>,
    /// A ticket or case reference; never personal data.
    pub reference: Option<String>,
}

impl Access {
    fn reason(&self) -> Result<AccessReason> {
        let reason = self
            .reason
            .as_deref()
            .ok_or_else(|| ApiError::invalid("reason", "say why you read personal data"))?;
        symbol(reason).ok_or_else(|| {
            ApiError::invalid(
                "reason",
                "must be support_request, abuse_report, legal_obligation, data_subject_request, security_incident or other",
            )
        })
    }
}

/// Appends the audit event for one admin read; the read may proceed only when it is in the
/// log (W1), so no personal data is ever shown unrecorded.
pub async fn audit_read(
    state: &AppState,
    admin: &Caller,
    headers: &HeaderMap,
    subject: Uuid,
    resource: PersonalResource,
    access: &Access,
) -> Result<()> {
    let reason = access.reason()?;
    if access
        .reference
        .as_ref()
        .is_some_and(|r| r.chars().count() > 100)
    {
        return Err(ApiError::invalid(
            "reference",
            "must be at most 100 characters",
        ));
    }
    let event = PersonalDataViewed {
        admin_id: admin.user_id,
        subject_user_id: subject,
        resource,
        resource_id: None,
        reason,
        reference: access.reference.clone(),
    };
    let command = Command::new(admin.actor.clone(), headers);
    // The audit aggregate of a subject only grows; its versions are not checked (0).
    command::append(state, &command, subject, 0, &event).await?;
    Ok(())
}

/// A user after a role change: its version (`ETag`) and position token.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserChanged {
    pub user_id: Uuid,
    pub version: i64,
    pub position: Option<String>,
}

fn changed_user(user_id: Uuid, written: &writer::Written) -> Response {
    let body = UserChanged {
        user_id,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    command::written_response(axum::http::StatusCode::OK, body, written, None)
}
