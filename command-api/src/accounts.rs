//! The API's write-side state in the `api` schema (ADR 0008): the email index with the
//! credential to check at log-in, and the rotating refresh tokens.

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::error::ApiError;

/// An account as the log-in needs it.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: Uuid,
    pub password_phc: String,
    pub active: bool,
}

/// Claims `email_key` for a new user, as `pending` until its event is acknowledged.
/// Returns false when the email already belongs to someone. The same user claiming again (a
/// keyed retry, see [`crate::command::Command::new_id`]) succeeds; a claim left `pending` by
/// a crash is taken over only when it is old and its user never reached the read model.
pub async fn claim(
    db: &PgPool,
    email_key: &[u8],
    user_id: Uuid,
    password_phc: &str,
) -> Result<bool, ApiError> {
    let row = sqlx::query(
        "insert into api.accounts (email_key, user_id, password_phc, state)
         values ($1, $2, $3, 'pending')
         on conflict (email_key) do update
            set user_id = excluded.user_id, password_phc = excluded.password_phc,
                created_at = now(), updated_at = now()
          where accounts.user_id = excluded.user_id
             or (accounts.state = 'pending'
                 and accounts.created_at < now() - interval '1 minute'
                 and not exists (select from read.users u where u.user_id = accounts.user_id))
         returning user_id",
    )
    .bind(email_key)
    .bind(user_id)
    .bind(password_phc)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    Ok(row.is_some())
}

/// The claim's event was acknowledged: the account can log in.
pub async fn activate(db: &PgPool, user_id: Uuid) -> Result<(), ApiError> {
    sqlx::query("update api.accounts set state = 'active', updated_at = now() where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The append failed: give the email back.
pub async fn release(db: &PgPool, user_id: Uuid) -> Result<(), ApiError> {
    sqlx::query("delete from api.accounts where user_id = $1 and state = 'pending'")
        .bind(user_id)
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn find(db: &PgPool, email_key: &[u8]) -> Result<Option<Account>, ApiError> {
    let row = sqlx::query(
        "select a.user_id, a.password_phc,
                a.state = 'active' or exists (select from read.users u where u.user_id = a.user_id) as active
           from api.accounts a where a.email_key = $1",
    )
    .bind(email_key)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    row.map(|row| {
        Ok(Account {
            user_id: row.try_get("user_id")?,
            password_phc: row.try_get("password_phc")?,
            active: row.try_get("active")?,
        })
    })
    .transpose()
    .map_err(db_error)
}

/// The roles the identity read model knows for a user (`user` is implicit).
pub async fn is_admin(db: &PgPool, user_id: Uuid) -> Result<bool, ApiError> {
    sqlx::query_scalar(
        "select exists (select from read.user_roles where user_id = $1 and role = 'admin')",
    )
    .bind(user_id)
    .fetch_one(db)
    .await
    .map_err(db_error)
}

/// A refresh token as given to the client: 32 random bytes, URL-safe base64.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// Only hashes are stored: a copy of the table does not log anybody in.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub async fn store_refresh(
    db: &PgPool,
    hash: &[u8],
    family_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into api.refresh_tokens (token_hash, family_id, user_id, expires_at)
         values ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(family_id)
    .bind(user_id)
    .bind(expires_at)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Valid and now used: the next token of the family was stored.
    Rotated { user_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
    /// Already used once: someone replayed it, so the whole family is now revoked.
    Reused,
}

/// Uses `hash` once and stores `next_hash` in its family, in one transaction with the row
/// locked, so two concurrent uses of one token cannot both succeed.
pub async fn rotate(
    db: &PgPool,
    hash: &[u8],
    next_hash: &[u8],
    next_expires_at: DateTime<Utc>,
) -> Result<Rotation, ApiError> {
    let mut tx = db.begin().await.map_err(db_error)?;
    let row = sqlx::query(
        "select family_id, user_id, used_at is not null as used,
                revoked_at is not null or expires_at <= now() as dead
           from api.refresh_tokens where token_hash = $1 for update",
    )
    .bind(hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    let family_id: Uuid = row.try_get("family_id").map_err(db_error)?;
    let user_id: Uuid = row.try_get("user_id").map_err(db_error)?;
    let used: bool = row.try_get("used").map_err(db_error)?;
    let dead: bool = row.try_get("dead").map_err(db_error)?;
    if used {
        revoke_family_in(&mut tx, family_id).await?;
        tx.commit().await.map_err(db_error)?;
        return Ok(Rotation::Reused);
    }
    if dead {
        return Ok(Rotation::Invalid);
    }
    sqlx::query("update api.refresh_tokens set used_at = now() where token_hash = $1")
        .bind(hash)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    sqlx::query(
        "insert into api.refresh_tokens (token_hash, family_id, user_id, expires_at)
         values ($1, $2, $3, $4)",
    )
    .bind(next_hash)
    .bind(family_id)
    .bind(user_id)
    .bind(next_expires_at)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(Rotation::Rotated { user_id })
}

/// Log-out: revokes the family of `hash` (nothing happens for an unknown token).
pub async fn revoke(db: &PgPool, hash: &[u8]) -> Result<(), ApiError> {
    sqlx::query(
        "update api.refresh_tokens set revoked_at = now()
          where revoked_at is null
            and family_id = (select family_id from api.refresh_tokens where token_hash = $1)",
    )
    .bind(hash)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn revoke_family_in(tx: &mut sqlx::PgConnection, family_id: Uuid) -> Result<(), ApiError> {
    sqlx::query(
        "update api.refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null",
    )
    .bind(family_id)
    .execute(tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Database trouble is the read side being unavailable, not a bug of the caller's.
pub fn db_error(error: sqlx::Error) -> ApiError {
    tracing::warn!(%error, "database error");
    ApiError::ReadModelUnavailable
}
