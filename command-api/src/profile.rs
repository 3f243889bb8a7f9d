//! The caller's own account: `GET /v1/me` (contact, profile, body measurements, roles) and
//! `PUT /v1/me/profile` (a `ProfileChanged` snapshot through the user's head, `If-Match`).
//! Personal details and body measurements travel sealed with the user's key.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::{get, put},
};
use chrono::{DateTime, Datelike as _, Utc};
use cruxlog_schemas::events::{
    Equipment, ExperienceLevel, ProfileChanged, Sealed, TrainingFocus, aggregate,
    sealed::{BodyMeasurements, ContactDetails, PersonalDetails},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    accounts::db_error,
    auth::Caller,
    command::{self, Command, etag, expected_version},
    error::{ApiError, FieldError, Result},
    json::{ValidJson, symbol},
    queries::open_projected,
    user_domain::{self, UserState},
    writer,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/me/profile", put(update))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub roles: Vec<String>,
    pub registered_at: DateTime<Utc>,
    pub profile: Option<ProfileBody>,
}

/// The profile as the app edits it: the whole of it each time (a snapshot, not a patch).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    pub display_name: String,
    #[serde(default)]
    pub birth_year: Option<i32>,
    #[serde(default)]
    pub height_cm: Option<f64>,
    #[serde(default)]
    pub arm_span_cm: Option<f64>,
    #[serde(default)]
    pub weight_kg: Option<f64>,
    #[serde(default)]
    pub climbing_since_year: Option<i32>,
    /// beginner, intermediate, advanced or elite.
    #[serde(default)]
    pub experience: Option<String>,
    /// e.g. strength, power, endurance, technique.
    #[serde(default)]
    pub focus: Vec<String>,
    /// e.g. hangboard, campus_board, home_wall.
    #[serde(default)]
    pub equipment: Vec<String>,
}

fn within(errors: &mut Vec<FieldError>, field: &str, value: Option<f64>, range: (f64, f64)) {
    if let Some(value) = value
        && !(value.is_finite() && value >= range.0 && value <= range.1)
    {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be between {} and {}", range.0, range.1),
        });
    }
}

impl ProfileBody {
    fn event(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<ProfileChanged> {
        let mut errors = Vec::new();
        let mut invalid = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        };
        let name = self.display_name.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            invalid("display_name", "must be 1 to 80 printable characters");
        }
        let year = now.year();
        if self
            .birth_year
            .is_some_and(|y| !(year - 110..=year - 5).contains(&y))
        {
            invalid("birth_year", "must be a plausible year of birth");
        }
        if self
            .climbing_since_year
            .is_some_and(|y| !(1900..=year).contains(&y))
        {
            invalid("climbing_since_year", "must be between 1900 and this year");
        }
        let experience = match self.experience.as_deref() {
            None => Some(ExperienceLevel::Unknown),
            Some(text) => symbol(text).filter(|e| *e != ExperienceLevel::Unknown),
        };
        if experience.is_none() {
            invalid(
                "experience",
                "must be beginner, intermediate, advanced or elite",
            );
        }
        let focus: Vec<Option<TrainingFocus>> = self.focus.iter().map(|f| symbol(f)).collect();
        if focus.iter().any(Option::is_none) {
            invalid("focus", "unknown training focus");
        }
        let equipment: Vec<Option<Equipment>> = self.equipment.iter().map(|e| symbol(e)).collect();
        if equipment.iter().any(Option::is_none) {
            invalid("equipment", "unknown equipment");
        }
        within(&mut errors, "height_cm", self.height_cm, (80.0, 250.0));
        within(&mut errors, "arm_span_cm", self.arm_span_cm, (80.0, 270.0));
        within(&mut errors, "weight_kg", self.weight_kg, (25.0, 250.0));
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let key = format!("user:{user_id}");
        let body = BodyMeasurements {
            height_cm: self.height_cm,
            arm_span_cm: self.arm_span_cm,
            weight_kg: self.weight_kg,
        };
        let has_body =
            body.height_cm.is_some() || body.arm_span_cm.is_some() || body.weight_kg.is_some();
        Ok(ProfileChanged {
            user_id,
            personal: Some(Sealed::dev(
                key.clone(),
                &PersonalDetails {
                    display_name: name.to_owned(),
                    birth_year: self.birth_year,
                },
            )),
            body: has_body.then(|| Sealed::dev(key, &body)),
            climbing_since_year: self.climbing_since_year,
            experience: experience.unwrap_or(ExperienceLevel::Unknown),
            best_grades: Vec::new(),
            focus: focus.into_iter().flatten().collect(),
            availability: None,
            equipment: equipment.into_iter().flatten().collect(),
        })
    }
}

#[utoipa::path(
    put,
    path = "/v1/me/profile",
    tag = "profile",
    summary = "Replace my profile",
    params(("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on")),
    request_body = ProfileBody,
    responses((status = 200, body = ProfileBody), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(body): ValidJson<ProfileBody>,
) -> Result<Response> {
    let expected = expected_version(&headers)?;
    let event = body.event(caller.user_id, Utc::now())?;
    let command = Command::new(caller.actor.clone(), &headers);
    let written = writer::execute(
        &state,
        &command,
        aggregate::USER,
        caller.user_id,
        expected,
        |s: Option<UserState>| user_domain::change_profile(s, &event),
    )
    .await?;
    Ok(command::written_response(
        StatusCode::OK,
        body,
        &written,
        None,
    ))
}

#[derive(sqlx::FromRow)]
struct MeRow {
    contact: Option<serde_json::Value>,
    personal: Option<serde_json::Value>,
    body: Option<serde_json::Value>,
    locale: Option<String>,
    experience: Option<String>,
    climbing_since_year: Option<i32>,
    profile: Option<serde_json::Value>,
    registered_at: DateTime<Utc>,
    roles: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "profile",
    summary = "My account and profile",
    responses((status = 200, body = Me), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    let row: MeRow = sqlx::query_as(
        "select u.contact, u.personal, u.body, u.locale, u.experience, u.climbing_since_year,
                u.profile, u.registered_at,
                coalesce((select array_agg(role order by role) from read.user_roles r
                           where r.user_id = u.user_id), '{}') as roles
           from read.users u where u.user_id = $1 and u.erased_at is null",
    )
    .bind(caller.user_id)
    .fetch_optional(&state.db)
    .await
    .map_err(db_error)?
    .ok_or(ApiError::NotFound)?;
    let contact: Option<ContactDetails> = row.contact.as_ref().and_then(open_projected);
    let personal: Option<PersonalDetails> = row.personal.as_ref().and_then(open_projected);
    let body: Option<BodyMeasurements> = row.body.as_ref().and_then(open_projected);
    let profile = personal.map(|personal| {
        let list = |key: &str| -> Vec<String> {
            row.profile
                .as_ref()
                .and_then(|p| p[key].as_array())
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_lowercase))
                        .collect()
                })
                .unwrap_or_default()
        };
        ProfileBody {
            display_name: personal.display_name,
            birth_year: personal.birth_year,
            height_cm: body.as_ref().and_then(|b| b.height_cm),
            arm_span_cm: body.as_ref().and_then(|b| b.arm_span_cm),
            weight_kg: body.as_ref().and_then(|b| b.weight_kg),
            climbing_since_year: row.climbing_since_year,
            experience: row.experience.clone().filter(|e| e != "unknown"),
            focus: list("focus"),
            equipment: list("equipment"),
        }
    });
    let version = writer::version_of(&state, caller.user_id).await?;
    let mut response = Json(Me {
        user_id: caller.user_id,
        email: contact.as_ref().map(|c| c.email.clone()),
        display_name: contact.map(|c| c.display_name),
        locale: row.locale,
        roles: row.roles,
        registered_at: row.registered_at,
        profile,
    })
    .into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}
