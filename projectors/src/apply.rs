//! How each event changes the `sessions` projection. Every statement is idempotent by
//! primary key, so a replay is harmless; exactly-once *effect* comes from storing offsets in
//! the same transaction (see [`crate::store`]).

use cruxlog_schemas::{DecodedEvent, DomainEvent};
use sqlx::{Postgres, Transaction};

/// Applies one decoded event inside the batch's transaction.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, decoded: &DecodedEvent) -> sqlx::Result<()> {
    let created_at = decoded.envelope.occurred_at;
    match &decoded.event {
        DomainEvent::SessionStarted(event) => {
            let inserted = sqlx::query(
                "insert into sessions (session_id, user_id, started_at, discipline, indoor, location_name,
                    planned_minutes, event_id, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 on conflict (session_id) do nothing",
            )
            .bind(event.session_id)
            .bind(event.user_id)
            .bind(event.started_at)
            .bind(event.discipline.as_str())
            .bind(event.indoor)
            .bind(&event.location_name)
            .bind(event.planned_minutes)
            .bind(decoded.envelope.event_id)
            .bind(created_at)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                sqlx::query(
                    "insert into user_stats (user_id, sessions_started) values ($1, 1)
                     on conflict (user_id) do update set sessions_started = user_stats.sessions_started + 1",
                )
                .bind(event.user_id)
                .execute(&mut **tx)
                .await?;
            }
        }
        DomainEvent::WarmupPlanned(event) => {
            let steps =
                serde_json::to_value(&event.steps).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            sqlx::query(
                "insert into warmup_plans (analysis_id, session_id, user_id, input_event_id, analyzer_name,
                    analyzer_version, model_id, steps, total_minutes, planned_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict do nothing",
            )
            .bind(event.analysis_id)
            .bind(event.session_id)
            .bind(event.user_id)
            .bind(event.input_event_id)
            .bind(&event.analyzer.name)
            .bind(event.analyzer.version)
            .bind(&event.analyzer.model_id)
            .bind(steps)
            .bind(event.total_minutes)
            .bind(created_at)
            .execute(&mut **tx)
            .await?;
        }
        DomainEvent::AnalysisFailed(event) => {
            sqlx::query(
                "insert into analysis_failures (analysis_id, user_id, input_event_id, analyzer_name,
                    analyzer_version, reason, failed_at)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict do nothing",
            )
            .bind(event.analysis_id)
            .bind(event.user_id)
            .bind(event.input_event_id)
            .bind(&event.analyzer.name)
            .bind(event.analyzer.version)
            .bind(&event.reason)
            .bind(created_at)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
