//! One real `cairn serve` process: its own temporary directory, port, database and log.

use std::{
    collections::HashSet,
    fs::{File, OpenOptions},
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// How long `start()` and `restart()` wait for `/.well-known/nodeinfo` to answer 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one `cairn admin` command may run.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The PostgreSQL server the harness creates databases on, unless `CAIRN_TEST_POSTGRES_URL`
/// names another (as `scripts/test-all` does).
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn postgres_admin_url() -> String {
    std::env::var("CAIRN_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
        .unwrap_or_else(|| POSTGRES_ADMIN_URL.to_string())
}

/// The admin URL with its database replaced by `name`.
fn postgres_database_url(name: &str) -> String {
    let mut url = url::Url::parse(&postgres_admin_url()).expect("the PostgreSQL URL parses");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
const LOG_TAIL_LINES: usize = 80;

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("federation-tests lives inside the workspace")
        .to_path_buf()
}

/// The `cairn` binary under test: `$CAIRN_BIN`, else `$CARGO_TARGET_DIR/debug/cairn`, else
/// `<workspace>/target/debug/cairn`.
pub fn cairn_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CAIRN_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                workspace_dir().join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| workspace_dir().join("target"));
    target.join("debug").join("cairn")
}

/// Which database an instance runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// How to start an instance.
#[derive(Clone, Debug)]
pub struct InstanceOptions {
    /// A name for messages and `CAIRN_NAME` ("stirling").
    pub label: String,
    pub database: Database,
    /// Extra environment variables, applied after the defaults (so they can override them).
    pub env: Vec<(String, String)>,
}

impl InstanceOptions {
    pub fn sqlite(label: &str) -> Self {
        InstanceOptions {
            label: label.into(),
            database: Database::Sqlite,
            env: Vec::new(),
        }
    }

    pub fn postgres(label: &str) -> Self {
        InstanceOptions {
            database: Database::Postgres,
            ..Self::sqlite(label)
        }
    }

    /// PostgreSQL when [`postgres_available`], else SQLite.
    pub fn postgres_if_available(label: &str) -> Self {
        if postgres_available() {
            Self::postgres(label)
        } else {
            Self::sqlite(label)
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// True when `psql -h 127.0.0.1 -U postgres -c 'select 1'` (or the same on
/// `CAIRN_TEST_POSTGRES_URL`) works; checked once per process.
pub fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| psql("select 1").is_ok())
}

fn psql(sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .arg(postgres_admin_url())
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("could not run psql: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A port nobody in this process has been given yet, free at the time of asking.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
        let port = listener
            .local_addr()
            .expect("local address of a bound socket")
            .port();
        drop(listener);
        if given.lock().expect("port registry lock").insert(port) {
            return port;
        }
    }
}

/// A running (or killed) `cairn serve` process.
pub struct Instance {
    label: String,
    port: u16,
    dir: TempDir,
    database: Database,
    database_url: String,
    pg_database: Option<String>,
    extra_env: Vec<(String, String)>,
    child: Option<Child>,
    log_path: PathBuf,
    /// Set when a panic message already carries the log tail (Drop then skips it).
    tail_shown: bool,
    http: reqwest::Client,
}

impl Instance {
    /// Starts an instance on SQLite.
    pub async fn start(label: &str) -> Instance {
        Self::start_with(InstanceOptions::sqlite(label)).await
    }

    /// Starts an instance and waits until it answers `/.well-known/nodeinfo`.
    pub async fn start_with(options: InstanceOptions) -> Instance {
        let binary = cairn_binary();
        assert!(
            binary.exists(),
            "the cairn binary {} does not exist: build it first with `cargo build --bin cairn` \
             (or point CAIRN_BIN at one)",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-ft-{}-", options.label))
            .tempdir()
            .expect("create a temporary directory for the instance");
        let port = free_port();
        let (database_url, pg_database) = match options.database {
            Database::Sqlite => (
                format!("sqlite://{}/cairn.db?mode=rwc", dir.path().display()),
                None,
            ),
            Database::Postgres => {
                let name = format!("cairn_ft_{}", uuid::Uuid::new_v4().simple());
                psql(&format!("CREATE DATABASE {name}"))
                    .unwrap_or_else(|err| panic!("could not create database {name}: {err}"));
                (postgres_database_url(&name), Some(name))
            }
        };
        let log_path = dir.path().join("cairn.log");
        let mut instance = Instance {
            label: options.label,
            port,
            dir,
            database: options.database,
            database_url,
            pg_database,
            extra_env: options.env,
            child: None,
            log_path,
            tail_shown: false,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("build an HTTP client"),
        };
        instance.spawn();
        instance.wait_ready().await;
        instance
    }

    /// `http://localhost:PORT`
    pub fn base_url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// `localhost:PORT`
    pub fn domain(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn database(&self) -> Database {
        self.database
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A URL on this instance: `url("/c/hwb")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// The environment every `cairn` command of this instance runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("CAIRN_DOMAIN", self.domain()),
            ("CAIRN_BIND", format!("127.0.0.1:{}", self.port)),
            ("CAIRN_DATABASE_URL", self.database_url.clone()),
            ("CAIRN_NAME", self.label.clone()),
            ("CAIRN_DEV_MODE", "1".into()),
            ("CAIRN_DELIVERY_RETRY_BASE_SECS", "1".into()),
            ("RUST_LOG", "info,cairn=debug".into()),
            ("NO_COLOR", "1".into()),
            ("RUST_BACKTRACE", "1".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        env.extend(self.extra_env.iter().cloned());
        env
    }

    fn command(&self) -> Command {
        let mut command = Command::new(cairn_binary());
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        for var in [
            "CAIRN_CONFIG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command.envs(self.env());
        command
    }

    fn spawn(&mut self) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the instance log");
        writeln!(
            log,
            "==== federation-tests: starting {} ({}) at {} ====",
            self.label,
            self.base_url(),
            chrono::Utc::now().to_rfc3339()
        )
        .expect("write the instance log");
        let stderr = log.try_clone().expect("clone the log handle");
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|err| {
                panic!("could not start {} serve: {err}", cairn_binary().display())
            });
        self.child = Some(child);
    }

    async fn wait_ready(&mut self) {
        let start = Instant::now();
        let url = self.url("/.well-known/nodeinfo");
        let mut last = String::from("no answer yet");
        while start.elapsed() < START_TIMEOUT {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    self.tail_shown = true;
                    panic!(
                        "{} exited during start-up with {status}\n{}",
                        self.label,
                        self.log_tail(LOG_TAIL_LINES)
                    );
                }
            }
            match self.http.get(&url).send().await {
                Ok(response) if response.status() == 200 => return,
                Ok(response) => last = format!("status {}", response.status()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.tail_shown = true;
        panic!(
            "{} did not answer GET {url} with 200 within {START_TIMEOUT:?} (last: {last})\n{}",
            self.label,
            self.log_tail(LOG_TAIL_LINES)
        );
    }

    /// Runs `cairn admin ARGS…` with this instance's configuration and returns its stdout,
    /// trimmed. Panics with stderr when it fails.
    pub fn admin(&self, args: &[&str]) -> String {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let out_path = self.dir.path().join(format!("admin-{run_id}.out"));
        let err_path = self.dir.path().join(format!("admin-{run_id}.err"));
        let mut child = self
            .command()
            .arg("admin")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(File::create(&out_path).expect("create admin stdout file"))
            .stderr(File::create(&err_path).expect("create admin stderr file"))
            .spawn()
            .unwrap_or_else(|err| panic!("could not run cairn admin {args:?}: {err}"));
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() > ADMIN_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`cairn admin {}` on {} did not finish within {ADMIN_TIMEOUT:?}\nstderr:\n{}",
                        args.join(" "),
                        self.label,
                        std::fs::read_to_string(&err_path).unwrap_or_default()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(err) => panic!("waiting for cairn admin failed: {err}"),
            }
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        if !status.success() {
            panic!(
                "`cairn admin {}` on {} failed with {status}\nstderr:\n{stderr}\nstdout:\n{stdout}",
                args.join(" "),
                self.label
            );
        }
        stdout.trim().to_string()
    }

    /// `cairn admin create-member NAME`: returns the API token it prints.
    pub fn create_member(&self, name: &str) -> String {
        let out = self.admin(&["create-member", name]);
        let token = out
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "`cairn admin create-member {name}` on {} printed no token",
                    self.label
                )
            });
        assert!(
            !token.contains(char::is_whitespace),
            "`cairn admin create-member {name}` should print the token alone, printed: {out:?}"
        );
        token.to_string()
    }

    /// `cairn admin create-community TAG`
    pub fn create_community(&self, tag: &str) -> String {
        self.admin(&["create-community", tag])
    }

    /// `cairn admin link OTHER_BASE_URL`: our communities follow the same-tag ones there.
    pub fn link(&self, other: &Instance) -> String {
        self.admin(&["link", &other.base_url()])
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL the process (no clean shutdown) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log_path) {
                let _ = writeln!(
                    log,
                    "==== federation-tests: SIGKILLed {} at {} ====",
                    self.label,
                    chrono::Utc::now().to_rfc3339()
                );
            }
        }
    }

    /// Kills the process if it runs, then starts it again on the same port and database.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    /// The last `lines` lines of the instance log, with a header naming the instance.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path)
            .unwrap_or_else(|err| format!("(could not read {}: {err})", self.log_path.display()));
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "----- last {} lines of {} log ({}) -----\n{}\n----- end of {} log -----",
            all.len() - from,
            self.label,
            self.log_path.display(),
            all[from..].join("\n"),
            self.label
        )
    }

    /// Lines of the log containing `needle` (for test diagnostics).
    pub fn log_grep(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() && !self.tail_shown {
            let lines = std::env::var("CAIRN_FT_LOG_LINES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(LOG_TAIL_LINES);
            eprintln!("\n{}\n", self.log_tail(lines));
        }
        if std::env::var_os("CAIRN_FT_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept {} data in {}", self.label, self.dir.path().display());
        } else if let Some(name) = self.pg_database.take() {
            if let Err(err) = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
                eprintln!("could not drop test database {name}: {err}");
            }
        }
    }
}
