//! Identity: register, log in, refresh, log out (`/v1/auth/*`), and the operator's
//! `create-admin`. Passwords are Argon2id; access tokens are short-lived JWTs; refresh tokens
//! rotate on every use and a reused one revokes its whole family (ADR 0008).

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use cruxlog_schemas::{
    Actor, ActorRole,
    events::{
        Role, RoleGranted, Sealed, UserRegistered, aggregate,
        sealed::{ContactDetails, Credential},
    },
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState, accounts,
    accounts::Rotation,
    command::{self, Command},
    error::{ApiError, FieldError, Result},
    json::ValidJson,
    passwords, rate_limit, user_domain, writer,
};

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout));
    rate_limit::limit(routes, &state.config.auth)
}

/// Body of `POST /v1/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub email: String,
    /// 10 to 128 characters.
    pub password: String,
    pub display_name: String,
    /// BCP 47 tag, e.g. `fr-FR`.
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshToken {
    pub refresh_token: String,
}

/// The tokens of a signed-in session.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tokens {
    pub user_id: Uuid,
    pub role: String,
    pub access_token: String,
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds.
    pub refresh_expires_in: i64,
    /// Read-your-writes token of the registration (R3); absent for log-ins.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub position: Option<String>,
}

impl Register {
    fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if !plausible_email(&self.email) {
            errors.push(field("email", "must be an email address"));
        }
        let length = self.password.chars().count();
        if !(10..=128).contains(&length) {
            errors.push(field("password", "must be 10 to 128 characters"));
        }
        let name = self.display_name.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            errors.push(field(
                "display_name",
                "must be 1 to 80 printable characters",
            ));
        }
        if let Some(locale) = &self.locale
            && !plausible_locale(locale)
        {
            errors.push(field("locale", "must be a BCP 47 tag such as fr-FR"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.into(),
        message: message.into(),
    }
}

/// Deliberately loose (the only real check is a mail reaching it): one `@`, a dotted domain,
/// no spaces, at most 254 characters.
fn plausible_email(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn plausible_locale(locale: &str) -> bool {
    (2..=35).contains(&locale.len())
        && locale
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "identity",
    summary = "Register an account",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = Register,
    responses((status = 201, body = Tokens), (status = 409, description = "Email taken", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Too many attempts", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<Register>,
) -> Result<Response> {
    body.validate()?;
    let mut command = Command::new(
        Actor {
            user_id: None,
            role: ActorRole::User,
        },
        &headers,
    );
    let user_id = command.new_id("user");
    command.actor = Actor {
        user_id: Some(user_id),
        role: ActorRole::User,
    };
    let position = register_user(&state, &command, user_id, body).await?;
    let mut tokens = issue(&state, user_id, false).await?;
    tokens.position = Some(position.to_string());
    let response = (StatusCode::CREATED, Json(tokens)).into_response();
    Ok(command::with_position(response, &position, Some("/v1/me")))
}

/// Claims the email, appends `UserRegistered`, then activates the account. A failed append
/// gives the email back.
async fn register_user(
    state: &AppState,
    command: &Command,
    user_id: Uuid,
    body: Register,
) -> Result<crate::position::Position> {
    let email = passwords::normalize_email(&body.email);
    let email_key = passwords::email_key(
        state.config.auth.email_index_key.expose().as_bytes(),
        &email,
    );
    let phc = passwords::hash(body.password).await?;
    if !accounts::claim(&state.db, &email_key, user_id, &phc).await? {
        return Err(ApiError::Conflict(
            "this email is already registered".into(),
        ));
    }
    let key_id = format!("user:{user_id}");
    let event = UserRegistered {
        user_id,
        contact: Sealed::dev(
            key_id.clone(),
            &ContactDetails {
                email,
                display_name: body.display_name.trim().to_owned(),
            },
        ),
        credential: Sealed::dev(key_id, &Credential { password_phc: phc }),
        locale: body.locale,
    };
    let appended = writer::execute(state, command, aggregate::USER, user_id, None, |s| {
        user_domain::register(s, &event)
    })
    .await
    .and_then(|written| {
        written
            .position
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a registration has a position")))
    });
    match appended {
        Ok(position) => {
            accounts::activate(&state.db, user_id).await?;
            Ok(position)
        }
        Err(error) => {
            accounts::release(&state.db, user_id).await.ok();
            Err(error)
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "identity",
    summary = "Log in",
    request_body = Login,
    responses((status = 200, body = Tokens), (status = 401, description = "Invalid email or password", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 429, body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<Login>,
) -> Result<Json<Tokens>> {
    let email_key = passwords::email_key(
        state.config.auth.email_index_key.expose().as_bytes(),
        &body.email,
    );
    let account = accounts::find(&state.db, &email_key).await?;
    let phc = account.as_ref().map_or_else(
        || passwords::DECOY_PHC.to_owned(),
        |account| account.password_phc.clone(),
    );
    let matches = passwords::verify(body.password, phc).await?;
    match account {
        Some(account) if matches && account.active => {
            let admin = accounts::is_admin(&state.db, account.user_id).await?;
            state.metrics.logins.with_label_values(&["ok"]).inc();
            Ok(Json(issue(&state, account.user_id, admin).await?))
        }
        _ => {
            state.metrics.logins.with_label_values(&["refused"]).inc();
            Err(ApiError::Unauthorized("invalid email or password"))
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "identity",
    summary = "Rotate a refresh token",
    request_body = RefreshToken,
    responses((status = 200, body = Tokens), (status = 401, description = "Invalid, expired or reused (the family is revoked)", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 429, body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<RefreshToken>,
) -> Result<Json<Tokens>> {
    let hash = accounts::token_hash(&body.refresh_token);
    let (next, next_hash) = accounts::new_refresh_token();
    let ttl = state.config.auth.refresh_ttl_seconds;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(ttl);
    match accounts::rotate(&state.db, &hash, &next_hash, expires_at).await? {
        Rotation::Rotated { user_id } => {
            let admin = accounts::is_admin(&state.db, user_id).await?;
            let (access_token, expires_in) = access_token(&state, user_id, admin)?;
            Ok(Json(Tokens {
                user_id,
                role: role_name(admin).into(),
                access_token,
                token_type: "Bearer".into(),
                expires_in,
                refresh_token: next,
                refresh_expires_in: ttl,
                position: None,
            }))
        }
        Rotation::Reused => {
            tracing::warn!("refresh token reused; family revoked");
            state.metrics.logins.with_label_values(&["reuse"]).inc();
            Err(ApiError::Unauthorized(
                "refresh token already used; every session of it is revoked",
            ))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized("invalid or expired refresh token")),
    }
}

#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "identity",
    summary = "Log out (revokes the refresh token family)",
    request_body = RefreshToken,
    responses((status = 204, description = "Logged out"), (status = 400, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 429, body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<RefreshToken>,
) -> Result<StatusCode> {
    accounts::revoke(&state.db, &accounts::token_hash(&body.refresh_token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn role_name(admin: bool) -> &'static str {
    if admin { "admin" } else { "user" }
}

fn access_token(state: &AppState, user_id: Uuid, admin: bool) -> Result<(String, i64)> {
    let ttl = state.config.auth.access_ttl_seconds;
    let role = if admin {
        ActorRole::Admin
    } else {
        ActorRole::User
    };
    let token = state.keys.mint(user_id, role, ttl)?;
    Ok((token, ttl))
}

/// A new family: an access token and its first refresh token.
async fn issue(state: &AppState, user_id: Uuid, admin: bool) -> Result<Tokens> {
    let (access_token, expires_in) = access_token(state, user_id, admin)?;
    let (refresh_token, hash) = accounts::new_refresh_token();
    let ttl = state.config.auth.refresh_ttl_seconds;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(ttl);
    accounts::store_refresh(&state.db, &hash, Uuid::now_v7(), user_id, expires_at).await?;
    Ok(Tokens {
        user_id,
        role: role_name(admin).into(),
        access_token,
        token_type: "Bearer".into(),
        expires_in,
        refresh_token,
        refresh_expires_in: ttl,
        position: None,
    })
}

/// `create-admin`: the only way to the first admin (never an open endpoint). Registers a
/// new account with the `admin` role, acting as the system.
pub async fn create_admin(
    state: &AppState,
    email: String,
    password: String,
    display_name: String,
) -> Result<Uuid> {
    let body = Register {
        email,
        password,
        display_name,
        locale: None,
    };
    body.validate()?;
    let user_id = Uuid::now_v7();
    let command = Command::new(Actor::system(), &HeaderMap::new());
    register_user(state, &command, user_id, body).await?;
    let grant = RoleGranted {
        user_id,
        role: Role::Admin,
    };
    // The account exists now; granting is retried for a while (a broker outage between the
    // two appends), since running the command again would find the email taken.
    let mut tries = 0;
    loop {
        let granted = writer::execute(state, &command, aggregate::USER, user_id, None, |s| {
            user_domain::grant(s, &grant)
        })
        .await;
        match granted {
            Ok(_) => break,
            Err(error) if tries < 10 => {
                tries += 1;
                tracing::warn!(%user_id, %error, tries, "granting admin failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            }
            Err(error) => {
                tracing::error!(%user_id, %error, "the account exists but the admin role was not granted");
                return Err(error);
            }
        }
    }
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_loosely() {
        for ok in ["a@b.co", " Alex.Honnold+crux@Example.org ", "é@exämple.fr"] {
            assert!(plausible_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "@b.co", "a@b", "a@.co", "a@b.co.", "a b@c.de", "a@@b.co", "a@b@c.de",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn every_broken_registration_rule_is_reported() {
        let body = Register {
            email: "nope".into(),
            password: "short".into(),
            display_name: " ".into(),
            locale: Some("fr_FR!".into()),
        };
        match body.validate() {
            Err(ApiError::Validation(errors)) => assert_eq!(
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                ["email", "password", "display_name", "locale"]
            ),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }
}
