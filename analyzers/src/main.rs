//! `cruxlog-analyzers`: run the analyzers, or operator commands.

use clap::{Parser, Subcommand};
use cruxlog_analyzers::{Analyzer, config::Config};
use cruxlog_runtime::{config, shutdown, telemetry};

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
    }
}
