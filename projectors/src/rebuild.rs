//! `projectors rebuild <projection>`: builds new tables from offset 0 beside the live ones,
//! which keep serving (and, with the service running, keep updating), then swaps them in
//! atomically once at the head of the log. A progress bar shows rate and ETA.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{builds, projections, runner::Stop, service::Context};

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub build_id: i64,
    pub events: u64,
    pub elapsed: Duration,
}

pub async fn rebuild(
    context: &Context,
    name: &str,
    shutdown: &CancellationToken,
    show_progress: bool,
) -> anyhow::Result<Option<Rebuilt>> {
    let projection =
        projections::by_name(name).with_context(|| format!("no projection named {name}"))?;
    let build = builds::create(&context.db, projection.as_ref()).await?;
    tracing::info!(projection = name, build = build.build_id, schema = %build.schema_name, "rebuild started");
    let mut runner = context.runner(projection.clone(), build.clone()).await?;
    let total: i64 = runner.lag().await?.iter().map(|(_, lag)| lag).sum();
    let bar = ProgressBar::with_draw_target(
        Some(total.max(0) as u64),
        if show_progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("rebuilding {name}"));
    let started = Instant::now();
    let mut events = 0u64;
    let progress = context.metrics.rebuild_progress.with_label_values(&[name]);
    let mut on_batch = |_: &crate::runner::Runner, outcome: crate::runner::BatchOutcome| {
        let done = (outcome.applied + outcome.dead) as u64;
        events += done;
        bar.inc(done);
        if total > 0 {
            progress.set(events as f64 / total as f64);
        }
    };
    // Caught up, but the live build may have moved on meanwhile: the swap refuses to go back in
    // time, and the build catches up again.
    let stop = loop {
        match runner
            .run(&context.config.kafka, shutdown, true, &mut on_batch)
            .await?
        {
            Stop::CaughtUp if !builds::swap(&context.db, projection.as_ref(), &build).await? => {
                continue;
            }
            stop => break stop,
        }
    };
    match stop {
        Stop::CaughtUp => {
            progress.set(1.0);
            bar.finish_with_message(format!(
                "rebuilt {name}: swapped in build {}",
                build.build_id
            ));
            Ok(Some(Rebuilt {
                build_id: build.build_id,
                events,
                elapsed: started.elapsed(),
            }))
        }
        Stop::Shutdown | Stop::Retired => {
            bar.abandon_with_message(format!(
                "rebuild of {name} stopped; build {} left building",
                build.build_id
            ));
            Ok(None)
        }
    }
}
