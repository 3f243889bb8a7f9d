//! The `identity` projection: users (their sealed contact and credential, profile), roles
//! and consents. Erasure empties a user's personal columns; the log keeps only ciphertext
//! whose key is gone.

use cruxlog_schemas::DomainEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::{json, symbol};
use crate::projection::{Applied, Projection};

pub struct Identity;

const DDL: &str = "
create table users (
    user_id             uuid primary key,
    contact             jsonb,
    credential          jsonb,
    locale              text,
    personal            jsonb,
    body                jsonb,
    morphology          jsonb,
    experience          text,
    climbing_since_year integer,
    profile             jsonb,
    registered_at       timestamptz not null,
    updated_at          timestamptz not null,
    erased_at           timestamptz
);

create table user_roles (
    user_id    uuid not null,
    role       text not null,
    granted_at timestamptz not null,
    primary key (user_id, role)
);

create table consents (
    user_id        uuid not null,
    purpose        text not null,
    policy_version text,
    given_at       timestamptz,
    withdrawn_at   timestamptz,
    primary key (user_id, purpose)
);
";

impl Projection for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }

    fn version(&self) -> i32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["user"]
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["users", "user_roles", "consents"]
    }

    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            for applied in batch {
                apply_one(connection, applied).await?;
            }
            Ok(())
        })
    }
}

async fn apply_one(connection: &mut PgConnection, applied: &Applied) -> sqlx::Result<()> {
    let at = applied.event.envelope.occurred_at;
    // Events about a user that was never registered break an invariant (`fetch_one`).
    let update = |sql: &'static str| sqlx::query_scalar::<_, i32>(sql);
    match &applied.event.event {
        DomainEvent::UserRegistered(e) => {
            sqlx::query(
                "insert into users (user_id, contact, credential, locale, registered_at, updated_at)
                 values ($1, $2, $3, $4, $5, $5) on conflict do nothing",
            )
            .bind(e.user_id)
            .bind(json(&e.contact)?)
            .bind(json(&e.credential)?)
            .bind(&e.locale)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::EmailChanged(e) => {
            update("update users set contact = jsonb_set(coalesce(contact, '{}'), '{email}', $2), updated_at = $3 where user_id = $1 returning 1")
                .bind(e.user_id)
                .bind(json(&e.email)?)
                .bind(at)
                .fetch_one(connection)
                .await?;
        }
        DomainEvent::PasswordChanged(e) => {
            update(
                "update users set credential = $2, updated_at = $3 where user_id = $1 returning 1",
            )
            .bind(e.user_id)
            .bind(json(&e.credential)?)
            .bind(at)
            .fetch_one(connection)
            .await?;
        }
        DomainEvent::ProfileChanged(e) => {
            let profile = serde_json::json!({
                "best_grades": json(&e.best_grades)?,
                "focus": json(&e.focus)?,
                "availability": json(&e.availability)?,
                "equipment": json(&e.equipment)?,
            });
            update(
                "update users set personal = coalesce($2, personal), body = coalesce($3, body), experience = $4,
                    climbing_since_year = $5, profile = $6, updated_at = $7
                 where user_id = $1 returning 1",
            )
            .bind(e.user_id)
            .bind(e.personal.as_ref().map(json).transpose()?)
            .bind(e.body.as_ref().map(json).transpose()?)
            .bind(symbol(&e.experience))
            .bind(e.climbing_since_year)
            .bind(profile)
            .bind(at)
            .fetch_one(connection)
            .await?;
        }
        DomainEvent::MorphologyEstimated(e) => {
            update(
                "update users set morphology = $2, updated_at = $3 where user_id = $1 returning 1",
            )
            .bind(e.user_id)
            .bind(json(&e.morphology)?)
            .bind(at)
            .fetch_one(connection)
            .await?;
        }
        DomainEvent::RoleGranted(e) => {
            sqlx::query("insert into user_roles (user_id, role, granted_at) values ($1, $2, $3) on conflict do nothing")
                .bind(e.user_id)
                .bind(symbol(&e.role))
                .bind(at)
                .execute(connection)
                .await?;
        }
        DomainEvent::RoleRevoked(e) => {
            sqlx::query("delete from user_roles where user_id = $1 and role = $2")
                .bind(e.user_id)
                .bind(symbol(&e.role))
                .execute(connection)
                .await?;
        }
        DomainEvent::ConsentGiven(e) => {
            sqlx::query(
                "insert into consents (user_id, purpose, policy_version, given_at) values ($1, $2, $3, $4)
                 on conflict (user_id, purpose) do update set policy_version = excluded.policy_version,
                    given_at = excluded.given_at, withdrawn_at = null",
            )
            .bind(e.user_id)
            .bind(symbol(&e.purpose))
            .bind(&e.policy_version)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::ConsentWithdrawn(e) => {
            sqlx::query(
                "update consents set withdrawn_at = $3 where user_id = $1 and purpose = $2",
            )
            .bind(e.user_id)
            .bind(symbol(&e.purpose))
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::UserErased(e) => {
            sqlx::query(
                "update users set contact = null, credential = null, personal = null, body = null,
                    morphology = null, profile = null, locale = null, erased_at = $2, updated_at = $2
                 where user_id = $1",
            )
            .bind(e.user_id)
            .bind(at)
            .execute(&mut *connection)
            .await?;
            sqlx::query("delete from user_roles where user_id = $1")
                .bind(e.user_id)
                .execute(connection)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
