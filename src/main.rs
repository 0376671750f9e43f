//! The `natter` binary: parse flags, set up logging, dispatch.

use natter::admin;
use natter::config::{Command, Config, LogFormat, UserCommand};
use tracing_subscriber::EnvFilter;

fn main() {
    // A failure is one line (`error: ...` with its causes), never a
    // backtrace, whatever RUST_BACKTRACE says.
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    release_large_allocations();
    natter::private_files();
    let cli = natter::config::parse_cli();
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format, &args.log_level);
            let config = Config::from_args(&args)?;
            let shutdown = shutdown_signal()?;
            let listener = tokio::net::TcpListener::bind(config.addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.addr))?;
            natter::serve(config, listener, shutdown).await
        }
        Command::User {
            data_dir,
            database,
            action,
        } => {
            init_tracing(LogFormat::Text, "warn");
            let d = &admin::Store::new(data_dir, database);
            match action {
                UserCommand::Add {
                    email,
                    name,
                    password,
                    admin,
                } => admin::user_add(d, &email, &name, password, admin).await,
                UserCommand::List => admin::user_list(d).await,
                UserCommand::ResetPassword { email, password } => {
                    admin::user_reset_password(d, &email, password).await
                }
                UserCommand::Disable { email } => admin::user_set_disabled(d, &email, true).await,
                UserCommand::Enable { email } => admin::user_set_disabled(d, &email, false).await,
                UserCommand::Promote { email } => admin::user_set_admin(d, &email, true).await,
                UserCommand::Demote { email } => admin::user_set_admin(d, &email, false).await,
            }
        }
        // SQLite file work: off the async threads, like everything else.
        Command::Backup {
            file,
            data_dir,
            database,
        } => {
            admin::refuse_postgres(database.as_deref(), "backup")?;
            tokio::task::spawn_blocking(move || admin::backup(&data_dir, &file)).await?
        }
        Command::Restore {
            file,
            data_dir,
            database,
        } => {
            admin::refuse_postgres(database.as_deref(), "restore")?;
            tokio::task::spawn_blocking(move || admin::restore(&data_dir, &file)).await?
        }
        Command::MigrateStore { from, to } => {
            init_tracing(LogFormat::Text, "warn");
            admin::migrate_store(&from, &to).await
        }
        Command::Bench(args) => natter::bench::run(args).await,
    }
}

fn init_tracing(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level))
        // The PostgreSQL driver logs every statement's parameters (message
        // text, password hashes) at debug level: never, whatever RUST_LOG says.
        .add_directive(
            natter::db::QUIET_DRIVER_LOGS
                .parse()
                .expect("static directive"),
        );
    // Colours only on a terminal (and not under NO_COLOR): journald, files
    // and pipes get plain text.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now, before the port is
/// bound, and returns a future that resolves on either. Registering lazily
/// (on first poll) left a window after start in which SIGTERM still had its
/// default action and killed the process without a graceful stop.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// glibc raises its mmap threshold after the first large free, after which
/// argon2's 19 MiB buffers stay in per-thread arenas for good (hundreds of MB
/// after a burst of sign-ups). A fixed 1 MiB threshold hands them back.
fn release_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; glibc serialises it.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
