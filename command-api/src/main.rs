//! `cruxlog-command-api`: serve the REST API, or operator commands.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cruxlog_command_api::{
    AppState, Application, auth::TokenKeys, config::Config, identity, settle,
};
use cruxlog_runtime::{config, shutdown, telemetry};
use cruxlog_schemas::ActorRole;
use uuid::Uuid;

/// mimalloc rather than glibc's malloc: under load glibc's allocator (`_int_malloc`,
/// `malloc_consolidate`, `free`) took about a quarter of the API's own CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Cruxlog command API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the environment variables this service reads.
    ConfigKeys,
    /// Mint an access token for a user (operators and local demos; needs the signing secret).
    MintToken {
        #[arg(long)]
        user: Option<Uuid>,
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: i64,
    },
    /// Create an admin account: the only way to the first admin. The password is read from
    /// `--password-file` or `CRUXLOG_ADMIN_PASSWORD`, never from the command line.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Admin")]
        display_name: String,
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
    },
    /// Bring the aggregate heads up to the log after PostgreSQL was restored from a backup
    /// older than it (runbook "Restore"). Run it with the API stopped.
    SettleHeads {
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::ConfigKeys => {
            config::env_keys::<Config>()
                .iter()
                .for_each(|key| println!("{key}"));
            Ok(())
        }
        Command::MintToken {
            user,
            admin,
            ttl_seconds,
        } => {
            let config: Config = config::load_or_exit();
            let role = if admin {
                ActorRole::Admin
            } else {
                ActorRole::User
            };
            let token = TokenKeys::new(&config.auth).mint(
                user.unwrap_or_else(Uuid::now_v7),
                role,
                ttl_seconds,
            )?;
            println!("{token}");
            Ok(())
        }
        Command::CreateAdmin {
            email,
            display_name,
            password_file,
        } => {
            telemetry::init("command-api");
            let password = match password_file {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                None => std::env::var("CRUXLOG_ADMIN_PASSWORD")
                    .context("set --password-file or CRUXLOG_ADMIN_PASSWORD")?,
            };
            let config: Config = config::load_or_exit();
            let state = AppState::connect(config).await?;
            let user_id = identity::create_admin(&state, email, password, display_name)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("{user_id}");
            Ok(())
        }
        Command::SettleHeads { dry_run } => {
            telemetry::init("command-api");
            let config: Config = config::load_or_exit();
            let state = AppState::connect(config).await?;
            settle_heads(&state, dry_run).await
        }
        Command::Serve => {
            telemetry::init("command-api");
            let config: Config = config::load_or_exit();
            let token = shutdown::on_signal();
            let app = Application::build(config).await?;
            tracing::info!(http = %app.http_addr()?, admin = %app.admin_addr()?, "command api listening");
            app.run(token).await
        }
    }
}

/// `settle-heads`: reads the headed topics with a progress bar, then settles and reports.
async fn settle_heads(state: &AppState, dry_run: bool) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "reading the log [{bar:40}] {human_pos}/{human_len} records  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let folded = settle::read_log(&state.config.kafka, state.log.topics(), bar).await?;
    for anomaly in &folded.anomalies {
        tracing::warn!(%anomaly, "the log is not as the writers keep it");
    }
    let report = settle::settle(&state.db, &folded, !dry_run).await?;
    for (aggregate_id, head, log) in &report.ahead {
        tracing::warn!(%aggregate_id, head, log, "head ahead of the log; left as it is");
    }
    for (aggregate_id, log) in &report.tainted {
        tracing::warn!(%aggregate_id, log, "an event of this aggregate does not fold; head left as it is");
    }
    let verb = if dry_run { "would be" } else { "were" };
    println!(
        "{} records, {} aggregates: {} unchanged; {} created, {} moved up to the log, {} restated \
         {verb}; {} raced with a writer; {} ahead of the log; {} with events that do not fold; \
         {} anomalies in the log",
        folded.records,
        report.checked,
        report.unchanged,
        report.created,
        report.moved,
        report.restated,
        report.raced,
        report.ahead.len(),
        report.tainted.len(),
        folded.anomalies.len(),
    );
    Ok(())
}
