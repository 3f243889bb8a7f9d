//! Admin reads: the user list (ids, dates and roles only, no personal data), one user's
//! personal data and sessions (each read audited first, see [`crate::admin::audit_read`]),
//! pipeline health (projection builds, lag per partition, dead letters) and the audit log.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use chrono::{DateTime, Utc};
use cruxlog_schemas::events::{PersonalResource, sealed::ContactDetails};
use rdkafka::producer::Producer as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    accounts::db_error,
    admin::{Access, Admin, audit_read},
    error::{ApiError, Result},
    json::ValidQuery,
    read_models::{self, SessionSummary},
};

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UserLine {
    pub user_id: Uuid,
    pub registered_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1..=200, default 50.
    pub limit: Option<i64>,
    /// Users registered before this instant (the last line's `registered_at`).
    pub before: Option<DateTime<Utc>>,
}

/// `GET /v1/admin/users`: newest first; ids and roles only, so not audited.
#[utoipa::path(
    get,
    path = "/v1/admin/users",
    tag = "admin",
    summary = "Users, newest first (ids and roles only)",
    params(Page),
    responses((status = 200, body = Vec<UserLine>), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn users(
    State(state): State<AppState>,
    _admin: Admin,
    ValidQuery(page): ValidQuery<Page>,
) -> Result<Json<Vec<UserLine>>> {
    let limit = crate::json::page_limit(page.limit, 50, 200)?;
    let users = sqlx::query_as(
        "select u.user_id, u.registered_at, u.erased_at,
                coalesce(array_agg(r.role order by r.role) filter (where r.role is not null), '{}') as roles
           from read.users u left join read.user_roles r using (user_id)
          where $1::timestamptz is null or u.registered_at < $1
          group by u.user_id, u.registered_at, u.erased_at
          order by u.registered_at desc limit $2",
    )
    .bind(page.before)
    .bind(limit)
    .fetch_all(&state.db)
    .await
    .map_err(db_error)?;
    Ok(Json(users))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserDetail {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
    pub roles: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    contact: Option<serde_json::Value>,
    locale: Option<String>,
    registered_at: DateTime<Utc>,
    erased_at: Option<DateTime<Utc>>,
    roles: Vec<String>,
}

/// `GET /v1/admin/users/{id}?reason=...`: contact details, audited.
#[utoipa::path(
    get,
    path = "/v1/admin/users/{user_id}",
    tag = "admin",
    summary = "A user's contact details (audited)",
    params(("user_id" = Uuid, Path, description = "A user id"), Access),
    responses((status = 200, body = UserDetail), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    ValidQuery(access): ValidQuery<Access>,
    headers: HeaderMap,
) -> Result<Json<UserDetail>> {
    let user_id = crate::json::path_id(&user_id)?;
    let row: UserRow = sqlx::query_as(
        "select u.contact, u.locale, u.registered_at, u.erased_at,
                coalesce((select array_agg(role order by role) from read.user_roles r
                           where r.user_id = u.user_id), '{}') as roles
           from read.users u where u.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&state.db)
    .await
    .map_err(db_error)?
    .ok_or(ApiError::NotFound)?;
    audit_read(
        &state,
        &admin,
        &headers,
        user_id,
        PersonalResource::Contact,
        &access,
    )
    .await?;
    let contact: Option<ContactDetails> = row
        .contact
        .as_ref()
        .and_then(crate::queries::open_projected);
    Ok(Json(UserDetail {
        user_id,
        email: contact.as_ref().map(|c| c.email.clone()),
        display_name: contact.map(|c| c.display_name),
        locale: row.locale,
        registered_at: row.registered_at,
        erased_at: row.erased_at,
        roles: row.roles,
    }))
}

/// `GET /v1/admin/users/{id}/sessions?reason=...`: the user's latest sessions, audited.
#[utoipa::path(
    get,
    path = "/v1/admin/users/{user_id}/sessions",
    tag = "admin",
    summary = "A user's sessions (audited)",
    params(("user_id" = Uuid, Path, description = "A user id"), Access),
    responses((status = 200, body = Vec<SessionSummary>), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    ValidQuery(access): ValidQuery<Access>,
    headers: HeaderMap,
) -> Result<Json<Vec<SessionSummary>>> {
    let user_id = crate::json::path_id(&user_id)?;
    audit_read(
        &state,
        &admin,
        &headers,
        user_id,
        PersonalResource::Sessions,
        &access,
    )
    .await?;
    let filter = read_models::SessionFilter {
        owner: user_id,
        from: None,
        to: None,
        discipline: None,
        after: None,
        limit: 100,
        grade: None,
        result: None,
    };
    Ok(Json(read_models::sessions(&state.db, &filter).await?))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pipeline {
    /// Live and building projection builds with events applied and dead letters.
    pub projections: Vec<serde_json::Value>,
    /// Per live projection and partition: records in the log not yet applied.
    pub lag: Vec<PartitionLag>,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PartitionLag {
    pub projection: String,
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    #[sqlx(skip)]
    pub log_end: Option<i64>,
    #[sqlx(skip)]
    pub lag: Option<i64>,
}

/// `GET /v1/admin/pipeline`.
#[utoipa::path(
    get,
    path = "/v1/admin/pipeline",
    tag = "admin",
    summary = "Projection builds, lag per partition, dead letters",
    responses((status = 200, body = Pipeline), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn pipeline(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Pipeline>> {
    let projections: Vec<serde_json::Value> = sqlx::query_scalar(
        "select to_jsonb(h) from read.projection_health h order by h.projection, h.build_id",
    )
    .fetch_all(&state.db)
    .await
    .map_err(db_error)?;
    let mut lag: Vec<PartitionLag> = sqlx::query_as(
        "select projection, topic, partition, next_offset from read.projection_offsets
          order by projection, topic, partition",
    )
    .fetch_all(&state.db)
    .await
    .map_err(db_error)?;
    let producer = state.log.producer().clone();
    let wanted: Vec<(String, i32)> = lag.iter().map(|l| (l.topic.clone(), l.partition)).collect();
    let ends = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .map(|(topic, partition)| {
                producer
                    .client()
                    .fetch_watermarks(&topic, partition, Duration::from_secs(1))
                    .ok()
                    .map(|(_, high)| high)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|error| ApiError::Internal(error.into()))?;
    for (line, end) in lag.iter_mut().zip(ends) {
        line.log_end = end;
        line.lag = end.map(|end| (end - line.next_offset).max(0));
    }
    Ok(Json(Pipeline { projections, lag }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub subject: Option<Uuid>,
    pub limit: Option<i64>,
}

/// `GET /v1/admin/audit`: newest first, optionally about one subject. Holds ids only.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    summary = "The audit log, newest first",
    params(AuditQuery),
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    ValidQuery(query): ValidQuery<AuditQuery>,
) -> Result<Json<Vec<serde_json::Value>>> {
    let limit = crate::json::page_limit(query.limit, 100, 500)?;
    let lines = sqlx::query_scalar(
        "select to_jsonb(a) from read.audit_log a
          where $1::uuid is null or a.subject_user_id = $1
          order by a.occurred_at desc limit $2",
    )
    .bind(query.subject)
    .bind(limit)
    .fetch_all(&state.db)
    .await
    .map_err(db_error)?;
    Ok(Json(lines))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalysesQuery {
    /// requested, completed or failed.
    pub status: Option<String>,
    /// movement, holds, morphology, warmup.
    pub kind: Option<String>,
    /// 1..=500, default 100.
    pub limit: Option<i64>,
}

/// One analysis as operations see it: ids, status, analyzer and failure reason; no metrics,
/// findings or media (those are the climber's personal data).
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AnalysisLine {
    pub analysis_id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub status: String,
    pub analyzer_name: Option<String>,
    pub analyzer_version: Option<i32>,
    pub failure_reason: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get,
    path = "/v1/admin/analyses",
    tag = "admin",
    summary = "Analyses across users, newest first: status, analyzer, failure reason (no results)",
    params(AnalysesQuery),
    responses((status = 200, body = Vec<AnalysisLine>), (status = 401, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn analyses(
    State(state): State<AppState>,
    _admin: Admin,
    ValidQuery(query): ValidQuery<AnalysesQuery>,
) -> Result<Json<Vec<AnalysisLine>>> {
    let limit = crate::json::page_limit(query.limit, 100, 500)?;
    if let Some(status) = &query.status
        && !["requested", "completed", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "must be requested, completed or failed",
        ));
    }
    let lines = sqlx::query_as(
        "select analysis_id, user_id, kind, status, analyzer_name, analyzer_version,
                failure_reason, requested_at, finished_at
           from read.analyses
          where ($1::text is null or status = $1) and ($2::text is null or kind = $2)
          order by requested_at desc nulls last limit $3",
    )
    .bind(&query.status)
    .bind(&query.kind)
    .bind(limit)
    .fetch_all(&state.db)
    .await
    .map_err(db_error)?;
    Ok(Json(lines))
}

#[utoipa::path(
    get,
    path = "/v1/admin/users/{user_id}/analyses",
    tag = "admin",
    summary = "A user's analyses with their results (audited)",
    params(("user_id" = Uuid, Path, description = "A user id"), Access),
    responses((status = 200, body = Vec<crate::queries::AnalysisView>), (status = 401, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 403, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn user_analyses(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    ValidQuery(access): ValidQuery<Access>,
    headers: HeaderMap,
) -> Result<Json<Vec<crate::queries::AnalysisView>>> {
    let user_id = crate::json::path_id(&user_id)?;
    audit_read(
        &state,
        &admin,
        &headers,
        user_id,
        PersonalResource::Analyses,
        &access,
    )
    .await?;
    Ok(Json(
        crate::queries::analyses_by_user(&state.db, user_id, 100).await?,
    ))
}
