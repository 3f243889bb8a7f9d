//! `cruxlog-projectors`: run the projections, or operator commands.

use clap::{Parser, Subcommand};
use cruxlog_projectors::{Projectors, builds, config::Config, dlq, rebuild, service::Context};
use cruxlog_runtime::{config, shutdown, telemetry};

#[derive(Parser)]
#[command(version, about = "Cruxlog projectors: Kafka to PostgreSQL read models")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every projection (the default).
    Run,
    /// Rebuild a projection from offset 0 beside the live tables, then swap atomically.
    Rebuild { projection: String },
    /// Dead letters of a projection.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// List builds; `--prune` drops the tables of retired builds and of abandoned ones.
    Builds {
        #[arg(long)]
        prune: bool,
    },
    /// Print the environment variables this service reads.
    ConfigKeys,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Show every dead letter with its origin and reason.
    List { projection: String },
    /// Re-apply dead letters through the current code, in order.
    Redrive { projection: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command.unwrap_or(Command::Run);
    if let Command::ConfigKeys = command {
        config::env_keys::<Config>()
            .iter()
            .for_each(|key| println!("{key}"));
        return Ok(());
    }
    telemetry::init("projectors");
    let config: Config = config::load_or_exit();
    let token = shutdown::on_signal();
    match command {
        Command::Run => {
            let projectors = Projectors::build(config).await?;
            tracing::info!(admin = %projectors.admin_addr()?, "projectors started");
            projectors.run(token).await
        }
        Command::Rebuild { projection } => {
            let context = Context::connect(config).await?;
            match rebuild::rebuild(&context, &projection, &token, true).await? {
                Some(done) => println!(
                    "rebuilt {projection}: {} events in {:.1} s ({:.0} events/s), build {} is live",
                    done.events,
                    done.elapsed.as_secs_f64(),
                    done.events as f64 / done.elapsed.as_secs_f64().max(1e-9),
                    done.build_id
                ),
                None => println!("rebuild of {projection} interrupted"),
            }
            Ok(())
        }
        Command::Dlq {
            command: DlqCommand::List { projection },
        } => {
            let context = Context::connect(config).await?;
            for letter in dlq::list(&context, &projection).await? {
                let origin = letter.origin.map_or_else(
                    || "origin unknown".to_owned(),
                    |o| {
                        format!(
                            "{}[{}]@{} {}{}",
                            o.topic,
                            o.partition,
                            o.offset,
                            if o.blocked { "(blocked) " } else { "" },
                            o.reason
                        )
                    },
                );
                println!(
                    "{:>6} {} {} {} {}",
                    letter.offset,
                    if letter.redriven {
                        "redriven"
                    } else {
                        "pending "
                    },
                    letter.event_type.as_deref().unwrap_or("?"),
                    letter.aggregate_id.as_deref().unwrap_or("?"),
                    origin
                );
            }
            Ok(())
        }
        Command::Dlq {
            command: DlqCommand::Redrive { projection },
        } => {
            let context = Context::connect(config).await?;
            let done = dlq::redrive(&context, &projection).await?;
            println!(
                "redrive of {projection}: {} applied, {} still failing, {} aggregates released",
                done.applied, done.still_failing, done.released
            );
            Ok(())
        }
        Command::Builds { prune } => {
            let context = Context::connect(config).await?;
            for build in builds::all(&context.db).await? {
                println!(
                    "{:<12} v{:<3} build {:<6} {:<9} {}",
                    build.projection, build.version, build.build_id, build.state, build.schema_name
                );
            }
            if prune {
                for schema in builds::prune(&context.db).await? {
                    println!("dropped {schema}");
                }
            }
            Ok(())
        }
        Command::ConfigKeys => Ok(()),
    }
}
