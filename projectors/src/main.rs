//! `cruxlog-projectors`: run the projections, or operator commands.

use clap::{Parser, Subcommand};
use cruxlog_projectors::{Projector, config::Config};
use cruxlog_runtime::{config, shutdown, telemetry};

#[derive(Parser)]
#[command(version, about = "Cruxlog projectors: Kafka to PostgreSQL read models")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the projections (the default).
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
            telemetry::init("projectors");
            let config: Config = config::load_or_exit();
            let token = shutdown::on_signal();
            let projector = Projector::build(config).await?;
            tracing::info!(admin = %projector.admin_addr()?, "projector started");
            projector.run(token).await
        }
    }
}
