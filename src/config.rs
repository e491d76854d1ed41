//! Configuration: `cairn.toml` (or the file named by `CAIRN_CONFIG`), then `CAIRN_*` variables.

use serde::Deserialize;
use std::{net::SocketAddr, path::Path};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("{name}={value:?} is not valid: {reason}")]
    Variable {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RemotePosting {
    /// Any remote author may post into a community by addressing it.
    #[default]
    Anyone,
    /// Only remote actors that follow the community.
    Followers,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommunitiesConfig {
    pub auto_create: bool,
    pub remote_posting: RemotePosting,
}

impl Default for CommunitiesConfig {
    fn default() -> Self {
        Self {
            auto_create: true,
            remote_posting: RemotePosting::Anyone,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub concurrency: usize,
    pub retry_base_secs: u64,
    pub max_attempts: i32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            retry_base_secs: 60,
            max_attempts: 14,
        }
    }
}

/// Which servers federate with this one (see `federation::policy`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// When non-empty, only these servers federate (an allowlist).
    pub allow: Vec<String>,
    /// These servers never federate.
    pub block: Vec<String>,
    /// Serve our ActivityPub documents only to signed requests from allowed servers.
    pub authorized_fetch: bool,
}

/// Uploaded files (see `media_store`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Folder of the local-disk media store (relative to the working directory).
    pub dir: String,
    /// Largest upload accepted, in bytes.
    pub max_upload_bytes: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            dir: "media".into(),
            max_upload_bytes: 10 * 1024 * 1024,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same machine, or a test sink).
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Outgoing email (reminders).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host; empty turns email off (reminders wait in the database).
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// The `From:` address.
    pub from: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_host: String::new(),
            smtp_port: 25,
            smtp_security: SmtpSecurity::None,
            smtp_username: None,
            smtp_password: None,
            from: "Cairn <cairn@localhost>".into(),
        }
    }
}

/// "I intend" reminder emails.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemindersConfig {
    /// Days before the target date the first reminder is sent (0: only on the day).
    pub days_before: u32,
    /// How often the scheduler looks for due reminders, in seconds.
    pub check_every_secs: u64,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        Self {
            days_before: 3,
            check_every_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub domain: String,
    pub bind: SocketAddr,
    pub database_url: String,
    pub name: Option<String>,
    /// `None`: decided from the domain (on for loopback names).
    pub dev_mode: Option<bool>,
    pub communities: CommunitiesConfig,
    pub delivery: DeliveryConfig,
    pub federation: FederationConfig,
    pub media: MediaConfig,
    pub email: EmailConfig,
    pub reminders: RemindersConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            domain: "localhost:8080".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://cairn.db?mode=rwc".into(),
            name: None,
            dev_mode: None,
            communities: CommunitiesConfig::default(),
            delivery: DeliveryConfig::default(),
            federation: FederationConfig::default(),
            media: MediaConfig::default(),
            email: EmailConfig::default(),
            reminders: RemindersConfig::default(),
        }
    }
}

impl Config {
    /// Reads the config file if there is one, then applies the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var("CAIRN_CONFIG").ok();
        let path = explicit.clone().unwrap_or_else(|| "cairn.toml".into());
        let mut config = if explicit.is_some() || Path::new(&path).exists() {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
        } else {
            Config::default()
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    pub fn apply_env(
        &mut self,
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = get("CAIRN_DOMAIN") {
            self.domain = v;
        }
        if let Some(v) = get("CAIRN_BIND") {
            self.bind = parse_var("CAIRN_BIND", v)?;
        }
        if let Some(v) = get("CAIRN_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("CAIRN_NAME") {
            self.name = Some(v);
        }
        if let Some(v) = get("CAIRN_DEV_MODE") {
            self.dev_mode = Some(parse_bool("CAIRN_DEV_MODE", v)?);
        }
        if let Some(v) = get("CAIRN_AUTO_CREATE_COMMUNITIES") {
            self.communities.auto_create = parse_bool("CAIRN_AUTO_CREATE_COMMUNITIES", v)?;
        }
        if let Some(v) = get("CAIRN_REMOTE_POSTING") {
            self.communities.remote_posting = match v.as_str() {
                "anyone" => RemotePosting::Anyone,
                "followers" => RemotePosting::Followers,
                _ => {
                    return Err(ConfigError::Variable {
                        name: "CAIRN_REMOTE_POSTING",
                        value: v,
                        reason: "expected `anyone` or `followers`".into(),
                    })
                }
            };
        }
        if let Some(v) = get("CAIRN_DELIVERY_CONCURRENCY") {
            self.delivery.concurrency = parse_var("CAIRN_DELIVERY_CONCURRENCY", v)?;
        }
        if let Some(v) = get("CAIRN_DELIVERY_RETRY_BASE_SECS") {
            self.delivery.retry_base_secs = parse_var("CAIRN_DELIVERY_RETRY_BASE_SECS", v)?;
        }
        if let Some(v) = get("CAIRN_FEDERATION_ALLOW") {
            self.federation.allow = split_list(&v);
        }
        if let Some(v) = get("CAIRN_FEDERATION_BLOCK") {
            self.federation.block = split_list(&v);
        }
        if let Some(v) = get("CAIRN_AUTHORIZED_FETCH") {
            self.federation.authorized_fetch = parse_bool("CAIRN_AUTHORIZED_FETCH", v)?;
        }
        if let Some(v) = get("CAIRN_DELIVERY_MAX_ATTEMPTS") {
            self.delivery.max_attempts = parse_var("CAIRN_DELIVERY_MAX_ATTEMPTS", v)?;
        }
        if let Some(v) = get("CAIRN_MEDIA_DIR") {
            self.media.dir = v;
        }
        if let Some(v) = get("CAIRN_MEDIA_MAX_UPLOAD_BYTES") {
            self.media.max_upload_bytes = parse_var("CAIRN_MEDIA_MAX_UPLOAD_BYTES", v)?;
        }
        if let Some(v) = get("CAIRN_SMTP_HOST") {
            self.email.smtp_host = v;
        }
        if let Some(v) = get("CAIRN_SMTP_PORT") {
            self.email.smtp_port = parse_var("CAIRN_SMTP_PORT", v)?;
        }
        if let Some(v) = get("CAIRN_SMTP_SECURITY") {
            self.email.smtp_security = match v.as_str() {
                "none" => SmtpSecurity::None,
                "starttls" => SmtpSecurity::Starttls,
                "tls" => SmtpSecurity::Tls,
                _ => {
                    return Err(ConfigError::Variable {
                        name: "CAIRN_SMTP_SECURITY",
                        value: v,
                        reason: "expected `none`, `starttls` or `tls`".into(),
                    })
                }
            };
        }
        if let Some(v) = get("CAIRN_SMTP_USERNAME") {
            self.email.smtp_username = Some(v);
        }
        if let Some(v) = get("CAIRN_SMTP_PASSWORD") {
            self.email.smtp_password = Some(v);
        }
        if let Some(v) = get("CAIRN_EMAIL_FROM") {
            self.email.from = v;
        }
        if let Some(v) = get("CAIRN_REMINDER_DAYS_BEFORE") {
            self.reminders.days_before = parse_var("CAIRN_REMINDER_DAYS_BEFORE", v)?;
        }
        if let Some(v) = get("CAIRN_REMINDER_CHECK_EVERY_SECS") {
            self.reminders.check_every_secs = parse_var("CAIRN_REMINDER_CHECK_EVERY_SECS", v)?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let base = Url::parse(&format!("http://{}/", self.domain)).map_err(|e| {
            ConfigError::Invalid(format!("domain {:?} is not a host name: {e}", self.domain))
        })?;
        if base.domain().is_none() {
            return Err(ConfigError::Invalid(format!(
                "domain {:?} must be a host name, not an IP address (HTTP signatures need one)",
                self.domain
            )));
        }
        if base.path() != "/" || self.domain.contains('/') {
            return Err(ConfigError::Invalid(format!(
                "domain {:?} must be a bare host[:port]",
                self.domain
            )));
        }
        if self.delivery.concurrency == 0 || self.delivery.max_attempts < 1 {
            return Err(ConfigError::Invalid(
                "delivery.concurrency and delivery.max_attempts must be at least 1".into(),
            ));
        }
        if self.media.max_upload_bytes == 0 || self.reminders.check_every_secs == 0 {
            return Err(ConfigError::Invalid(
                "media.max_upload_bytes and reminders.check_every_secs must be at least 1".into(),
            ));
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(ConfigError::Invalid(format!(
                "database_url must start with sqlite: or postgres://, got {:?}",
                self.database_url
            )));
        }
        Ok(())
    }

    /// Plain HTTP, explicit ports and loopback peers are allowed only in development mode, which
    /// is the default only for loopback host names.
    pub fn dev_mode(&self) -> bool {
        self.dev_mode.unwrap_or_else(|| {
            let host = self.domain.split(':').next().unwrap_or_default();
            host == "localhost" || host.ends_with(".localhost")
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.dev_mode() {
            "http"
        } else {
            "https"
        }
    }

    /// `scheme://domain`, no trailing slash.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme(), self.domain)
    }

    pub fn policy(&self) -> crate::federation::policy::Policy {
        crate::federation::policy::Policy {
            allow: self.federation.allow.clone(),
            block: self.federation.block.clone(),
        }
    }

    pub fn instance_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.domain.clone())
    }
}

fn parse_var<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Variable {
        name,
        reason: e.to_string(),
        value,
    })
}

/// `a.example, b.example` → two entries.
fn split_list(value: &str) -> Vec<String> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(name: &'static str, value: String) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Variable {
            name,
            value,
            reason: "expected true or false".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let mut config = Config::default();
        config.apply_env(|name| map.get(name).cloned())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults_run_on_a_fresh_machine() {
        let config = with_env(&[]).expect("defaults are valid");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite://cairn.db"));
        assert!(config.dev_mode());
        assert_eq!(config.origin(), "http://localhost:8080");
    }

    #[test]
    fn public_domain_means_https() {
        let config = with_env(&[("CAIRN_DOMAIN", "stirling.example")]).expect("valid");
        assert!(!config.dev_mode());
        assert_eq!(config.origin(), "https://stirling.example");
    }

    #[test]
    fn the_example_config_file_is_valid() {
        let text = include_str!("../deploy/cairn.example.toml");
        let config: Config = toml::from_str(text).expect("deploy/cairn.example.toml parses");
        config.validate().expect("and is valid");
        assert_eq!(
            config.delivery.max_attempts,
            Config::default().delivery.max_attempts
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = with_env(&[("CAIRN_BIND", "nowhere")]).expect_err("invalid bind");
        assert!(err.to_string().contains("CAIRN_BIND"), "{err}");
        let err = with_env(&[("CAIRN_DOMAIN", "127.0.0.1:8080")]).expect_err("ip literal");
        assert!(err.to_string().contains("host name"), "{err}");
        let err = with_env(&[("CAIRN_DATABASE_URL", "mysql://x")]).expect_err("mysql");
        assert!(err.to_string().contains("database_url"), "{err}");
    }
}
