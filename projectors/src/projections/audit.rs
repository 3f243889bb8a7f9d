//! The `audit` projection: who did what to whose data — admin reads of personal data and role
//! changes (DESIGN.md Security).

use cruxlog_schemas::DomainEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::symbol;
use crate::projection::{Applied, Projection};

pub struct Audit;

const DDL: &str = "
create table audit_log (
    event_id        uuid primary key,
    occurred_at     timestamptz not null,
    actor_user_id   uuid,
    actor_role      text not null,
    action          text not null,
    subject_user_id uuid not null,
    resource        text,
    resource_id     uuid,
    reason          text,
    reference       text
);
create index audit_log_subject on audit_log (subject_user_id, occurred_at desc);
create index audit_log_time on audit_log (occurred_at desc);
";

impl Projection for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn version(&self) -> i32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["audit", "user"]
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["audit_log"]
    }

    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            for applied in batch {
                let envelope = &applied.event.envelope;
                let (action, subject, resource, resource_id, reason, reference) =
                    match &applied.event.event {
                        DomainEvent::PersonalDataViewed(e) => (
                            "personal_data_viewed",
                            e.subject_user_id,
                            Some(symbol(&e.resource)),
                            e.resource_id,
                            Some(symbol(&e.reason)),
                            e.reference.clone(),
                        ),
                        DomainEvent::RoleGranted(e) => (
                            "role_granted",
                            e.user_id,
                            Some(symbol(&e.role)),
                            None,
                            None,
                            None,
                        ),
                        DomainEvent::RoleRevoked(e) => (
                            "role_revoked",
                            e.user_id,
                            Some(symbol(&e.role)),
                            None,
                            None,
                            None,
                        ),
                        DomainEvent::UserErased(e) => (
                            "user_erased",
                            e.user_id,
                            None,
                            None,
                            Some(symbol(&e.reason)),
                            None,
                        ),
                        _ => continue,
                    };
                sqlx::query(
                    "insert into audit_log (event_id, occurred_at, actor_user_id, actor_role, action, subject_user_id,
                        resource, resource_id, reason, reference)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing",
                )
                .bind(envelope.event_id)
                .bind(envelope.occurred_at)
                .bind(envelope.actor.user_id)
                .bind(symbol(&envelope.actor.role))
                .bind(action)
                .bind(subject)
                .bind(resource)
                .bind(resource_id)
                .bind(reason)
                .bind(reference)
                .execute(&mut *connection)
                .await?;
            }
            Ok(())
        })
    }
}
