//! The `analyses` projection: one row per analysis (an input through one analyzer version),
//! requested, completed or failed, and a view of the latest version per input (A2).

use cruxlog_schemas::DomainEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::{json, symbol};
use crate::projection::{Applied, Projection};

pub struct Analyses;

const DDL: &str = "
create table analyses (
    analysis_id      uuid primary key,
    user_id          uuid not null,
    kind             text not null,
    input_event_id   uuid not null,
    status           text not null check (status in ('requested', 'completed', 'failed')),
    analyzer_name    text,
    analyzer_version integer,
    model_id         text,
    metrics          jsonb,
    summary          jsonb,
    findings         jsonb,
    media            jsonb,
    failure_reason   text,
    requested_at     timestamptz,
    finished_at      timestamptz
);
create index analyses_user on analyses (user_id, requested_at desc);
create index analyses_input on analyses (input_event_id);

create view latest_analyses as
    select distinct on (input_event_id, kind) *
    from analyses where status = 'completed'
    order by input_event_id, kind, analyzer_version desc, finished_at desc;
";

impl Projection for Analyses {
    fn name(&self) -> &'static str {
        "analyses"
    }

    fn version(&self) -> i32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["analysis"]
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["analyses", "latest_analyses"]
    }

    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            for applied in batch {
                let at = applied.event.envelope.occurred_at;
                match &applied.event.event {
                    DomainEvent::AnalysisRequested(e) => {
                        sqlx::query(
                            "insert into analyses (analysis_id, user_id, kind, input_event_id, status, requested_at)
                             values ($1, $2, $3, $4, 'requested', $5) on conflict (analysis_id) do nothing",
                        )
                        .bind(e.analysis_id)
                        .bind(e.user_id)
                        .bind(symbol(&e.kind))
                        .bind(e.input_event_id)
                        .bind(at)
                        .execute(&mut *connection)
                        .await?;
                    }
                    DomainEvent::AnalysisCompleted(e) => {
                        let media = serde_json::json!({
                            "annotated_video": json(&e.annotated_video)?,
                            "summary_image": json(&e.summary_image)?,
                            "pose_track": json(&e.pose_track)?,
                        });
                        sqlx::query(
                            "insert into analyses (analysis_id, user_id, kind, input_event_id, status, analyzer_name,
                                analyzer_version, model_id, metrics, summary, findings, media, requested_at, finished_at)
                             values ($1, $2, $3, $4, 'completed', $5, $6, $7, $8, $9, $10, $11, $12, $12)
                             on conflict (analysis_id) do update set status = 'completed',
                                analyzer_name = excluded.analyzer_name, analyzer_version = excluded.analyzer_version,
                                model_id = excluded.model_id, metrics = excluded.metrics, summary = excluded.summary,
                                findings = excluded.findings, media = excluded.media, finished_at = excluded.finished_at",
                        )
                        .bind(e.analysis_id)
                        .bind(e.user_id)
                        .bind(symbol(&e.kind))
                        .bind(e.input_event_id)
                        .bind(&e.analyzer.name)
                        .bind(e.analyzer.version)
                        .bind(&e.analyzer.model_id)
                        .bind(json(&e.metrics)?)
                        .bind(json(&e.summary)?)
                        .bind(json(&e.findings)?)
                        .bind(media)
                        .bind(at)
                        .execute(&mut *connection)
                        .await?;
                    }
                    DomainEvent::AnalysisFailed(e) => {
                        sqlx::query(
                            "insert into analyses (analysis_id, user_id, kind, input_event_id, status, analyzer_name,
                                analyzer_version, model_id, failure_reason, requested_at, finished_at)
                             values ($1, $2, $3, $4, 'failed', $5, $6, $7, $8, $9, $9)
                             on conflict (analysis_id) do update set status = 'failed',
                                failure_reason = excluded.failure_reason, finished_at = excluded.finished_at",
                        )
                        .bind(e.analysis_id)
                        .bind(e.user_id)
                        // A failure names its analyzer, whose name is the analysis kind.
                        .bind(&e.analyzer.name)
                        .bind(e.input_event_id)
                        .bind(&e.analyzer.name)
                        .bind(e.analyzer.version)
                        .bind(&e.analyzer.model_id)
                        .bind(&e.reason)
                        .bind(at)
                        .execute(&mut *connection)
                        .await?;
                    }
                    DomainEvent::WarmupPlanned(e) => {
                        let summary = serde_json::json!({"steps": json(&e.steps)?, "total_minutes": e.total_minutes});
                        sqlx::query(
                            "insert into analyses (analysis_id, user_id, kind, input_event_id, status, analyzer_name,
                                analyzer_version, model_id, summary, requested_at, finished_at)
                             values ($1, $2, 'warmup', $3, 'completed', $4, $5, $6, $7, $8, $8)
                             on conflict (analysis_id) do nothing",
                        )
                        .bind(e.analysis_id)
                        .bind(e.user_id)
                        .bind(e.input_event_id)
                        .bind(&e.analyzer.name)
                        .bind(e.analyzer.version)
                        .bind(&e.analyzer.model_id)
                        .bind(summary)
                        .bind(at)
                        .execute(&mut *connection)
                        .await?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }
}
