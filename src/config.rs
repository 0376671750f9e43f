//! Command line and configuration.
//!
//! Every setting of `natter serve` is a clap flag with an environment fallback
//! (the seed's names where it had one, `NATTER_<FLAG>` otherwise). [`Config`]
//! is the validated result the server runs with; it owns the data directory
//! layout and the JWT secret, which is generated on first start and kept in the
//! data dir with mode 0600 so tokens survive restarts. It never opens the
//! database.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// natter: a self-hosted, WhatsApp-like chat server in one executable.
#[derive(Debug, Parser)]
#[command(name = "natter", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of the one binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the chat server (REST + WebSocket API and the web app).
    Serve(ServeArgs),
    /// Load-test a natter (started here, or a loopback --url) and check
    /// every message arrives exactly once; see BENCHMARKS.md.
    Bench(crate::bench::BenchArgs),
    /// Manage accounts (works while the server runs).
    User {
        /// Data directory of the server.
        #[arg(
            long,
            env = "NATTER_DATA_DIR",
            default_value = "./natter-data",
            global = true
        )]
        data_dir: PathBuf,
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Write a consistent snapshot of the database to FILE (works while the
    /// server runs); the copy is verified before success is reported.
    Backup {
        /// Where to write the backup (must not exist).
        file: PathBuf,
        /// Data directory of the server.
        #[arg(long, env = "NATTER_DATA_DIR", default_value = "./natter-data")]
        data_dir: PathBuf,
    },
    /// Put a backup back in place (stop the server first); the current
    /// database is kept as natter.db.before-restore-<time>.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Data directory of the server.
        #[arg(long, env = "NATTER_DATA_DIR", default_value = "./natter-data")]
        data_dir: PathBuf,
    },
}

/// `natter user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password, reads one line from stdin, or
    /// generates and prints one.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, env = "NATTER_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Make the user a server administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List accounts.
    List,
    /// Set a new password and sign the user out everywhere.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, env = "NATTER_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Stop an account from logging in and close its connections.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Allow a disabled account again.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Make a user a server administrator.
    Promote {
        #[arg(long)]
        email: String,
    },
    /// Remove the server administrator role.
    Demote {
        #[arg(long)]
        email: String,
    },
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// Anyone who can reach the server may sign up.
    Open,
    /// `POST /auth/register` answers 403; accounts come from `natter user add`.
    Closed,
}

/// How hard SQLite works to keep a commit across power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: an acknowledged message survives a
    /// crash or `kill -9` of natter; the last commits may be lost on power loss.
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it is acknowledged,
    /// so it also survives power loss (slower; group commit keeps it usable).
    Full,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Flags of `natter serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TCP port to listen on (0 picks a free port; the start-up line shows it).
    #[arg(long, env = "PORT", default_value_t = 4000)]
    pub port: u16,

    /// Address to bind: 127.0.0.1 for this machine only, 0.0.0.0 for the LAN.
    #[arg(long, env = "NATTER_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Directory for the database, uploads and the generated JWT secret.
    #[arg(long, env = "NATTER_DATA_DIR", default_value = "./natter-data")]
    pub data_dir: PathBuf,

    /// Secret that signs login tokens (HS256). Default: generated on first
    /// start and kept in <data-dir>/jwt-secret (mode 0600).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Browser origin allowed for CORS and WebSocket upgrades besides the
    /// server's own (e.g. https://chat.example.com).
    #[arg(long, env = "FRONTEND_URL")]
    pub frontend_url: Option<String>,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "UPLOAD_MAX_SIZE", default_value_t = 52_428_800)]
    pub upload_max_size: u64,

    /// Default page size of message history.
    #[arg(long, env = "CHAT_MESSAGE_LIMIT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=200))]
    pub message_limit: u32,

    /// Keep messages this many days (0 = forever).
    #[arg(long, env = "CHAT_HISTORY_DAYS", default_value_t = 0)]
    pub history_days: u32,

    /// Whether anyone may sign up.
    #[arg(long, env = "NATTER_REGISTRATION", value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,

    /// How long a login token is valid, in days.
    #[arg(long, env = "NATTER_TOKEN_TTL_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub token_ttl_days: u32,

    /// SQLite durability: normal survives crashes, full also power loss.
    #[arg(long, env = "NATTER_DURABILITY", value_enum, default_value_t = Durability::Normal)]
    pub durability: Durability,

    /// Serve the web app from this directory instead of the copy built into
    /// the binary (for developing or customising it).
    #[arg(long, env = "NATTER_ASSETS_DIR")]
    pub assets_dir: Option<PathBuf>,

    /// Login attempts per account per minute (per client IP: 12×); 0 = no limit.
    #[arg(long, env = "NATTER_LOGIN_RATE", default_value_t = 10)]
    pub login_rate: u32,

    /// Registrations per client IP per hour (bursts of up to 100); 0 = no limit.
    #[arg(long, env = "NATTER_REGISTER_RATE", default_value_t = 3600)]
    pub register_rate: u32,

    /// Messages per user per second (bursts of 10 s worth); 0 = no limit.
    #[arg(long, env = "NATTER_SEND_RATE", default_value_t = 100)]
    pub send_rate: u32,

    /// Uploads per user per minute; 0 = no limit.
    #[arg(long, env = "NATTER_UPLOAD_RATE", default_value_t = 60)]
    pub upload_rate: u32,

    /// Take the client IP (for rate limits) from the last X-Forwarded-For
    /// entry: set this behind a reverse proxy, never when exposed directly.
    #[arg(long, env = "NATTER_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Enables GET /metrics (Prometheus) for requests bearing this token.
    #[arg(long, env = "NATTER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Seconds between retention sweeps (old messages, unsent and orphaned files).
    #[arg(long, env = "NATTER_SWEEP_INTERVAL", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval: u64,

    /// Delete for everyone only within this many seconds of sending (as
    /// WhatsApp's time limit); 0 = no limit. Delete for me is never limited.
    #[arg(long, env = "NATTER_DELETE_WINDOW", default_value_t = 0)]
    pub delete_window: u64,

    /// Log format.
    #[arg(long, env = "NATTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level filter (tracing syntax, e.g. `info` or `natter=debug`);
    /// RUST_LOG wins when set.
    #[arg(long, env = "NATTER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl ServeArgs {
    /// Defaults for a data directory, as if no flag and no variable were set.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut args = ServeCli::parse_from(["natter-serve"]).args;
        args.data_dir = data_dir.into();
        args
    }
}

/// Parses `ServeArgs` alone (for [`ServeArgs::with_data_dir`]).
#[derive(Parser)]
struct ServeCli {
    #[command(flatten)]
    args: ServeArgs,
}

/// The validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Root of everything natter keeps on disk.
    pub data_dir: PathBuf,
    /// HS256 key.
    pub jwt_secret: Vec<u8>,
    /// Extra allowed browser origin, normalised (`scheme://host[:port]`).
    pub frontend_origin: Option<String>,
    /// Largest upload in bytes.
    pub upload_max_size: u64,
    /// Default history page size.
    pub message_limit: u32,
    /// Retention in days; 0 keeps everything.
    pub history_days: u32,
    /// Whether sign-up is open.
    pub registration_open: bool,
    /// Token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// SQLite durability.
    pub durability: Durability,
    /// Web app from disk instead of the embedded copy.
    pub assets_dir: Option<PathBuf>,
    /// Time between retention sweeps.
    pub sweep_interval: std::time::Duration,
    /// Token that unlocks `/metrics`; `None` keeps it off.
    pub metrics_token: Option<String>,
    /// Rate limits.
    pub rates: crate::limits::Rates,
    /// Whether X-Forwarded-For names the client.
    pub trust_proxy: bool,
    /// Delete for everyone only this long after sending; `None` = no limit.
    pub delete_window_secs: Option<u64>,
}

impl Config {
    /// Validates flags, creates the data dir and loads or creates the JWT secret.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
        let jwt_secret = match &args.jwt_secret {
            Some(s) if !s.is_empty() => {
                // Refusing to start over a short secret would break the
                // seed's deployments (`JWT_SECRET=secret` is common); say so.
                if s.len() < 32 {
                    tracing::warn!(
                        "--jwt-secret / JWT_SECRET is {} bytes; use 32 or more random bytes \
                         (or leave it unset to have one generated)",
                        s.len()
                    );
                }
                s.as_bytes().to_vec()
            }
            _ => load_or_create_secret(&args.data_dir.join("jwt-secret"))?,
        };
        let frontend_origin = match args.frontend_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => Some(normalize_origin(url).with_context(|| {
                format!(
                    "--frontend-url {url:?} is not an http(s) origin like https://chat.example.com"
                )
            })?),
        };
        Ok(Config {
            addr: SocketAddr::new(args.bind, args.port),
            data_dir: args.data_dir.clone(),
            jwt_secret,
            frontend_origin,
            upload_max_size: args.upload_max_size,
            message_limit: args.message_limit,
            history_days: args.history_days,
            registration_open: args.registration == Registration::Open,
            token_ttl_secs: u64::from(args.token_ttl_days) * 86_400,
            durability: args.durability,
            assets_dir: args.assets_dir.clone(),
            sweep_interval: std::time::Duration::from_secs(args.sweep_interval),
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            rates: crate::limits::Rates {
                login_per_minute: args.login_rate,
                register_per_hour: args.register_rate,
                send_per_second: args.send_rate,
                upload_per_minute: args.upload_rate,
            },
            trust_proxy: args.trust_proxy,
            delete_window_secs: (args.delete_window > 0).then_some(args.delete_window),
        })
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("natter.db")
    }

    /// Root of stored uploads.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

/// `scheme://host[:port]` of a URL, lower-cased, without path or trailing slash.
pub fn normalize_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if host.is_empty() || host.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let trimmed = existing.trim();
        anyhow::ensure!(
            trimmed.len() >= 32,
            "{} is too short; delete it to generate a new one",
            path.display()
        );
        return Ok(trimmed.as_bytes().to_vec());
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, secret.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// Writes a file readable by its owner only (0600 on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normalize_origin("https://Chat.Example.com/app/").as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            normalize_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(normalize_origin("ftp://x"), None);
        assert_eq!(normalize_origin("localhost:3000"), None);
    }

    #[test]
    fn secret_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let args = ServeArgs::with_data_dir(dir.path());
        let first = Config::from_args(&args).unwrap();
        let second = Config::from_args(&args).unwrap();
        assert_eq!(first.jwt_secret, second.jwt_secret);
        assert!(first.jwt_secret.len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
