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
// Parsed once at start: the size of `Serve`'s flags costs nothing.
#[allow(clippy::large_enum_variant)]
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
        /// The store, when not `<data-dir>/natter.db`: `postgres://...` or `sqlite://<file>`.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
        database: Option<String>,
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
        /// The store, when not `<data-dir>/natter.db`: `postgres://...` or `sqlite://<file>`.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
    },
    /// Put a backup back in place (stop the server first); the current
    /// database is kept as natter.db.before-restore-<time>.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Data directory of the server.
        #[arg(long, env = "NATTER_DATA_DIR", default_value = "./natter-data")]
        data_dir: PathBuf,
        /// The store, when not `<data-dir>/natter.db`: `postgres://...` or `sqlite://<file>`.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
    },
    /// Copy a whole SQLite store into an empty PostgreSQL database (stop the
    /// server first); uploaded files stay in the data dir. See README.md,
    /// "When you outgrow one machine".
    MigrateStore {
        /// The SQLite store to copy: sqlite://<data-dir>/natter.db.
        #[arg(long)]
        from: String,
        /// The empty PostgreSQL database to copy into: postgres://user@host/db.
        #[arg(long)]
        to: String,
    },
}

/// `natter user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password, reads one line from stdin, or
    /// generates and prints one.
    Add {
        /// Email address to sign in with (unique, case-insensitive).
        #[arg(long)]
        email: String,
        /// Display name (1–100 characters).
        #[arg(long)]
        name: String,
        /// The password (else read from stdin, or generated and printed).
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
        /// Email address of the account.
        #[arg(long)]
        email: String,
        /// The new password (else read from stdin, or generated and printed).
        #[arg(long, env = "NATTER_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Stop an account from logging in and close its connections.
    Disable {
        /// Email address of the account.
        #[arg(long)]
        email: String,
    },
    /// Allow a disabled account again.
    Enable {
        /// Email address of the account.
        #[arg(long)]
        email: String,
    },
    /// Make a user a server administrator.
    Promote {
        /// Email address of the account.
        #[arg(long)]
        email: String,
    },
    /// Remove the server administrator role.
    Demote {
        /// Email address of the account.
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

    /// Address to bind: 127.0.0.1 (or `localhost`) for this machine only,
    /// 0.0.0.0 for the LAN.
    #[arg(long, env = "NATTER_BIND", default_value = "127.0.0.1", value_parser = parse_bind)]
    pub bind: IpAddr,

    /// Directory for the database, uploads and the generated JWT secret.
    #[arg(long, env = "NATTER_DATA_DIR", default_value = "./natter-data")]
    pub data_dir: PathBuf,

    /// The store: `sqlite://<path>` (default: `<data-dir>/natter.db`) or
    /// `postgres://user[:password]@host[:port]/database` for PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,

    /// Where events go between nodes: `local` (one node, the default) or a
    /// NATS server, `nats://127.0.0.1:4222`, shared by every node of a
    /// cluster (see "Running several nodes" in the README).
    #[arg(long, env = "NATTER_BUS", default_value = "local")]
    pub bus: String,

    /// Where uploaded files live: `local` (`<data-dir>/uploads`, the
    /// default) or an S3-compatible bucket shared by every node,
    /// `s3://bucket[/prefix]?endpoint=http://127.0.0.1:9000&region=us-east-1`
    /// (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "NATTER_UPLOADS", default_value = "local")]
    pub uploads: String,

    /// Contact the push services may use about this server's Web Push
    /// traffic (RFC 8292 `sub`): `mailto:you@example.com` or an https URL.
    #[arg(
        long,
        env = "NATTER_VAPID_SUBJECT",
        default_value = "mailto:natter@localhost"
    )]
    pub vapid_subject: String,

    /// How much of a message a Web Push carries: `full` (sender, chat and
    /// text), `sender` (sender and chat only) or `none` ("New message").
    #[arg(long, env = "NATTER_PUSH_PREVIEW", value_enum, default_value = "full")]
    pub push_preview: crate::push::Preview,

    /// FOR TESTS ONLY: accept Web Push endpoints on http:// and on
    /// loopback/private addresses (a stub push service on 127.0.0.1). Never
    /// on a real server: the server POSTs to these URLs.
    #[arg(long, env = "NATTER_PUSH_ALLOW_PRIVATE")]
    pub push_allow_private: bool,

    /// Secret that signs login tokens (HS256). Default: generated on first
    /// start and kept in <data-dir>/jwt-secret (mode 0600), or, on
    /// PostgreSQL, in the database, shared by every node.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Browser origin allowed for CORS and WebSocket upgrades besides the
    /// server's own (e.g. https://chat.example.com).
    #[arg(long, env = "FRONTEND_URL")]
    pub frontend_url: Option<String>,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "UPLOAD_MAX_SIZE", default_value_t = 52_428_800,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_max_size: u64,

    /// Bytes a user may hold in uploads not (yet) sent in a message; more
    /// uploads get 413 `quota_exceeded` until some are sent or swept (an
    /// hour after upload). 0 = no limit.
    #[arg(long, env = "NATTER_UPLOAD_QUOTA", default_value_t = 500_000_000)]
    pub upload_quota: u64,

    /// Free bytes the disk of the data dir keeps: below this, uploads are
    /// refused with 507 (messages still work). 0 = no floor.
    #[arg(long, env = "NATTER_MIN_FREE_DISK", default_value_t = 1_073_741_824)]
    pub min_free_disk: u64,

    /// Default page size of message history (1–200).
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

    /// Reverse proxies whose X-Forwarded-For / X-Forwarded-Host are believed:
    /// comma-separated addresses or CIDRs (`10.0.0.0/8,::1`); the flag alone
    /// means `loopback` (127.0.0.0/8 and ::1). Absent: no header is believed.
    #[arg(long, env = "NATTER_TRUST_PROXY", num_args = 0..=1,
          default_missing_value = "loopback", value_name = "CIDRS",
          value_parser = TrustedProxies::parse)]
    pub trust_proxy: Option<TrustedProxies>,

    /// Open TCP connections in total (WebSockets included). At the cap the
    /// oldest connection without a request in flight is closed to let a new
    /// one in. Default: 80% of the open-file limit minus 128.
    #[arg(long, env = "NATTER_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Open TCP connections per client IP (loopback peers exempt); 0 = no limit.
    #[arg(long, env = "NATTER_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: u32,

    /// Seconds a connection may stay open without a request in flight: to
    /// send its first byte, or between requests on keep-alive.
    #[arg(long, env = "NATTER_IDLE_CONNECTION_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_connection_timeout: u64,

    /// Real-time connections (WebSocket and Socket.IO) per user; a new one
    /// beyond it closes that user's oldest. 0 = no limit.
    #[arg(long, env = "NATTER_MAX_SOCKETS_PER_USER", default_value_t = 32)]
    pub max_sockets_per_user: u32,

    /// Enables GET /metrics (Prometheus) for requests bearing this token.
    #[arg(long, env = "NATTER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Seconds between retention sweeps (old messages, unsent and orphaned files).
    #[arg(long, env = "NATTER_SWEEP_INTERVAL", default_value_t = 600,
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

    /// Link previews: `on` fetches the page behind the first http(s) link
    /// of each message (public addresses, ports 80/443 only) and attaches
    /// its title, description and a thumbnail; `off` never fetches.
    #[arg(long, env = "NATTER_LINK_PREVIEWS", value_enum, default_value = "on")]
    pub link_previews: crate::previews::Setting,

    /// FOR TESTS ONLY: link previews may also fetch from loopback addresses
    /// (127.0.0.0/8, ::1) on any port (a test's page server). Private,
    /// link-local and unspecified addresses stay refused. Never on a real
    /// server: it lets users make the server fetch from itself.
    #[arg(long, env = "NATTER_LINK_PREVIEW_ALLOW_PRIVATE")]
    pub link_preview_allow_private: bool,
}

impl ServeArgs {
    /// Defaults for a data directory, as if no flag and no variable were set.
    /// The environment is not read: admin commands and tests get the same
    /// settings whatever `serve`'s variables say in their shell.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = ServeCli::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["natter-serve"])
            .expect("serve's defaults parse");
        let mut args = ServeCli::from_arg_matches(&matches)
            .expect("serve's defaults parse")
            .args;
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
    /// Unsent upload bytes per user (0 = no limit).
    pub upload_quota: u64,
    /// Free disk bytes kept (0 = no floor).
    pub min_free_disk: u64,
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
    /// Which store, and where.
    pub database: DatabaseUrl,
    /// Where events go between nodes.
    pub bus: BusUrl,
    /// Where uploaded files live.
    pub uploads: crate::objects::UploadsUrl,
    /// RFC 8292 `sub` of this server's pushes.
    pub vapid_subject: String,
    /// The VAPID key pair (`None` only until a PostgreSQL store is open).
    pub vapid: Option<crate::push::VapidKey>,
    /// Tests only: push endpoints on http:// and private addresses.
    pub push_allow_private: bool,
    /// What a push says.
    pub push_preview: crate::push::Preview,
    /// Web app from disk instead of the embedded copy.
    pub assets_dir: Option<PathBuf>,
    /// Time between retention sweeps.
    pub sweep_interval: std::time::Duration,
    /// Token that unlocks `/metrics`; `None` keeps it off.
    pub metrics_token: Option<String>,
    /// Rate limits.
    pub rates: crate::limits::Rates,
    /// Peers whose forwarding headers are believed (empty: none).
    pub trust_proxy: TrustedProxies,
    /// Delete for everyone only this long after sending; `None` = no limit.
    pub delete_window_secs: Option<u64>,
    /// Bounds on open connections.
    pub connections: crate::connections::ConnLimits,
    /// Real-time connections per user (0 = no limit).
    pub max_sockets_per_user: usize,
    /// Whether link previews are fetched.
    pub link_previews: bool,
    /// Tests only: link previews may fetch from loopback too.
    pub link_preview_allow_private: bool,
}

/// Makes the data dir 0700 (also one an older natter created 0755), so no
/// other local user can read the database, uploads or secrets inside.
/// A folder we do not own (say, made by root for us) is left as it is, with
/// a warning.
pub fn restrict_dir(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot make the data dir private (chmod 0700)");
        }
    }
}

impl Config {
    /// Validates flags, creates the data dir and loads or creates the JWT secret.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
        restrict_dir(&args.data_dir);
        let database = DatabaseUrl::parse(args.database.as_deref(), &args.data_dir)?;
        let bus = BusUrl::parse(&args.bus)?;
        let uploads = crate::objects::UploadsUrl::parse(&args.uploads)?;
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
            // On PostgreSQL every node must sign with the same key: it is
            // read from (or put into) the database when the store opens.
            _ if database.is_postgres() => Vec::new(),
            _ => load_or_create_secret(&args.data_dir.join("jwt-secret"))?,
        };
        let vapid_subject = args.vapid_subject.trim().to_string();
        anyhow::ensure!(
            (vapid_subject.starts_with("mailto:") && vapid_subject.len() > "mailto:".len())
                || vapid_subject.starts_with("https://"),
            "--vapid-subject {vapid_subject:?}: use mailto:you@example.com or an https:// URL"
        );
        // The VAPID key pair: a file in the data dir; on PostgreSQL the
        // database holds it (read when the store opens), like the JWT secret.
        let vapid = if database.is_postgres() {
            None
        } else {
            Some(crate::push::VapidKey::load_or_create(
                &args.data_dir.join("vapid-key"),
            )?)
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
            upload_quota: args.upload_quota,
            min_free_disk: args.min_free_disk,
            message_limit: args.message_limit,
            history_days: args.history_days,
            registration_open: args.registration == Registration::Open,
            token_ttl_secs: u64::from(args.token_ttl_days) * 86_400,
            durability: args.durability,
            database,
            bus,
            uploads,
            vapid_subject,
            vapid,
            push_allow_private: args.push_allow_private,
            push_preview: args.push_preview,
            assets_dir: args.assets_dir.clone(),
            sweep_interval: std::time::Duration::from_secs(args.sweep_interval),
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            rates: crate::limits::Rates {
                login_per_minute: args.login_rate,
                register_per_hour: args.register_rate,
                send_per_second: args.send_rate,
                upload_per_minute: args.upload_rate,
            },
            trust_proxy: args.trust_proxy.clone().unwrap_or_default(),
            delete_window_secs: (args.delete_window > 0).then_some(args.delete_window),
            connections: crate::connections::ConnLimits {
                max_total: args
                    .max_connections
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                max_per_ip: args.max_connections_per_ip as usize,
                idle_timeout: std::time::Duration::from_secs(args.idle_connection_timeout),
            },
            max_sockets_per_user: args.max_sockets_per_user as usize,
            link_previews: args.link_previews == crate::previews::Setting::On,
            link_preview_allow_private: args.link_preview_allow_private,
        })
    }

    /// Root of stored uploads.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

/// Parses the command line; a bad value that came from an environment
/// variable is reported with the variable's name (clap names only the flag).
pub fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let given: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let error = match command.try_get_matches_from_mut(&given) {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => return cli,
            Err(e) => e,
        },
        Err(e) => e,
    };
    if let Some(var) = env_source_of(&command, &error, &given) {
        let value = std::env::var_os(&var).unwrap_or_default();
        let _ = error.print();
        eprintln!(
            "note: the value came from the environment variable {var}={} (unset it or fix it)",
            value.to_string_lossy()
        );
        std::process::exit(2);
    }
    error.exit()
}

/// The environment variable behind a clap value error, if that flag was not
/// on the command line but its variable is set.
fn env_source_of(
    command: &clap::Command,
    error: &clap::Error,
    given: &[std::ffi::OsString],
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.trim_start_matches("--");
    let on_command_line = given.iter().any(|g| {
        let g = g.to_string_lossy();
        g == format!("--{long}") || g.starts_with(&format!("--{long}="))
    });
    if on_command_line {
        return None;
    }
    std::iter::once(command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter(|a| a.get_long() == Some(long))
        .find_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().to_string())
        .filter(|e| std::env::var_os(e).is_some())
}

/// `--bind`: an IP address, or `localhost` (127.0.0.1).
fn parse_bind(raw: &str) -> Result<IpAddr, String> {
    if raw.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    raw.parse().map_err(|_| {
        format!(
            "'{raw}' is not an IP address: use 127.0.0.1 (this machine only) or 0.0.0.0 (the LAN)"
        )
    })
}

/// The reverse proxies of `--trust-proxy`: the only peers whose
/// `X-Forwarded-For` and `X-Forwarded-Host` headers natter believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses `loopback`, `none`, or a comma-separated list of addresses and
    /// CIDRs (`true`/`1`/`yes` mean `loopback` and `false`/`0`/`no` mean
    /// `none`, for the old boolean `NATTER_TRUST_PROXY`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "loopback" | "true" | "1" | "yes" | "on" => {
                    nets.push("127.0.0.0/8".parse().expect("valid CIDR"));
                    nets.push("::1/128".parse().expect("valid CIDR"));
                }
                "none" | "false" | "0" | "no" | "off" => {}
                _ => {
                    let net = part
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| part.parse::<IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            format!(
                                "'{part}' is not an IP address or CIDR \
                                 (e.g. 10.0.0.0/8, ::1, loopback)"
                            )
                        })?;
                    nets.push(net.trunc());
                }
            }
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether a direct peer is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
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

/// 32 random bytes as 64 hex digits.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret an earlier natter kept in `path`, if any (a PostgreSQL
/// deployment from before secrets moved into the database keeps its tokens).
pub fn existing_secret(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (s.len() >= 32).then(|| s.to_string())
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
    let secret = random_secret();
    write_private(path, secret.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// Writes a file readable by its owner only (0600 on Unix).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Where the store lives: `--database` / `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => write!(f, "{}", redact_password(url)),
        }
    }
}

/// `--bus` / `NATTER_BUS`.
#[derive(Clone, PartialEq, Eq)]
pub enum BusUrl {
    /// One node: events stay in the process.
    Local,
    /// A NATS server (`nats://host:port`).
    Nats(String),
}

impl std::fmt::Debug for BusUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusUrl::Local => write!(f, "local"),
            BusUrl::Nats(url) => write!(f, "{}", redact_password(url)),
        }
    }
}

impl BusUrl {
    /// Parses `--bus`: `local` (or empty), or `nats://host[:port]`.
    pub fn parse(url: &str) -> anyhow::Result<BusUrl> {
        let url = url.trim();
        if url.is_empty() || url == "local" {
            return Ok(BusUrl::Local);
        }
        if url.starts_with("nats://") && url.len() > "nats://".len() {
            return Ok(BusUrl::Nats(url.to_string()));
        }
        anyhow::bail!(
            "--bus {:?}: use local, or a NATS server such as nats://127.0.0.1:4222",
            redact_password(url)
        )
    }
}

impl DatabaseUrl {
    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }

    /// Parses `--database`; `None` or empty is `<data-dir>/natter.db`.
    pub fn parse(url: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<DatabaseUrl> {
        let url = url.map(str::trim).unwrap_or_default();
        if url.is_empty() {
            return Ok(DatabaseUrl::Sqlite(data_dir.join("natter.db")));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            anyhow::ensure!(
                !path.is_empty(),
                "--database {url:?}: sqlite:// needs a file path, e.g. sqlite://natter-data/natter.db"
            );
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        anyhow::bail!(
            "--database {:?}: unsupported scheme; use sqlite://<file> or postgres://user@host/db",
            redact_password(url)
        )
    }

    /// A name for logs and errors, without any password.
    pub fn display(&self) -> String {
        format!("{self:?}")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}
