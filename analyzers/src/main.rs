//! `cruxlog-analyzers`: run the analyzers, or operator commands.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cruxlog_analyzers::{
    Analyzer,
    config::Config,
    replay::{self, ReplayArgs},
};
use cruxlog_runtime::{config, shutdown, telemetry};
use std::io::IsTerminal as _;

#[derive(Parser)]
#[command(
    version,
    about = "Cruxlog analyzers: Kafka inputs through Python workers to result events"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the analyzers (the default).
    Run,
    /// Print the environment variables this service reads.
    ConfigKeys,
    /// Re-run history through an analyzer version: appends a REPLAY request per attached
    /// video; running it again appends nothing new.
    Replay {
        /// The analyzer (only `movement` today).
        #[arg(long)]
        analyzer: String,
        /// The analyzer version to run the videos through.
        #[arg(long)]
        version: i32,
        /// Only videos attached since this date (YYYY-MM-DD, UTC) or RFC 3339 instant.
        #[arg(long, value_parser = replay::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only this user's videos.
        #[arg(long)]
        user: Option<uuid::Uuid>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Run) {
        Command::ConfigKeys => {
            config::env_keys::<Config>()
                .iter()
                .for_each(|key| println!("{key}"));
            Ok(())
        }
        Command::Run => {
            telemetry::init("analyzers");
            let config: Config = config::load_or_exit();
            let token = shutdown::on_signal();
            let analyzer = Analyzer::build(config).await?;
            tracing::info!(admin = %analyzer.admin_addr()?, "analyzer started");
            analyzer.run(token).await
        }
        Command::Replay {
            analyzer,
            version,
            since,
            user,
        } => {
            telemetry::init("analyzers");
            let config: Config = config::load_or_exit();
            let args = ReplayArgs {
                analyzer,
                version,
                since,
                user,
                progress: std::io::stderr().is_terminal(),
            };
            let report = replay::replay(&config.kafka, &args)
                .await
                .context("replay")?;
            println!(
                "{} videos matched: {} requests appended, {} already requested or analysed",
                report.videos, report.requested, report.skipped
            );
            Ok(())
        }
    }
}
