//! Which servers this instance federates with. A schools network can run an allowlist (only the
//! named servers are heard, fetched or delivered to) or a blocklist; with authorized fetch, our
//! objects are served only to signed requests from allowed servers.

use url::Url;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// When non-empty, only these servers federate.
    pub allow: Vec<String>,
    /// These servers never federate.
    pub block: Vec<String>,
}

impl Policy {
    /// Whether `url`'s server may federate with us. Entries are host names, optionally with a
    /// port (`national.example`, `localhost:8080`); a host entry also covers its subdomains.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let port = url.port_or_known_default();
        let matches = |entry: &String| {
            let entry = entry.trim().to_ascii_lowercase();
            let (entry_host, entry_port) = match entry.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                    (h.to_owned(), p.parse().ok())
                }
                _ => (entry.clone(), None),
            };
            let host_matches = host == entry_host || host.ends_with(&format!(".{entry_host}"));
            host_matches && entry_port.is_none_or(|p: u16| Some(p) == port)
        };
        if self.block.iter().any(matches) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(matches)
    }

    pub fn refusal(url: &Url) -> String {
        format!(
            "this instance does not federate with {}",
            url.host_str().unwrap_or("that server")
        )
    }
}

/// The federation crate asks this before every fetch.
#[derive(Clone)]
pub struct PolicyVerifier(pub Policy);

#[async_trait::async_trait]
impl activitypub_federation::config::UrlVerifier for PolicyVerifier {
    async fn verify(&self, url: &Url) -> Result<(), activitypub_federation::error::Error> {
        if self.0.allows(url) {
            Ok(())
        } else {
            Err(activitypub_federation::error::Error::UrlVerificationError(
                "this instance does not federate with that server",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().expect("url")
    }

    #[test]
    fn open_by_default_and_blocklist_wins() {
        let open = Policy::default();
        assert!(open.allows(&url("https://anywhere.example/u/a")));
        let blocking = Policy {
            block: vec!["spam.example".into()],
            ..Policy::default()
        };
        assert!(!blocking.allows(&url("https://spam.example/u/a")));
        assert!(!blocking.allows(&url("https://eu.spam.example/u/a")));
        assert!(blocking.allows(&url("https://notspam.example/u/a")));
    }

    #[test]
    fn allowlist_names_hosts_and_optionally_ports() {
        let schools = Policy {
            allow: vec!["national.example".into(), "localhost:8081".into()],
            block: vec![],
        };
        assert!(schools.allows(&url("https://national.example/c/hwb")));
        assert!(schools.allows(&url("http://localhost:8081/u/a")));
        assert!(!schools.allows(&url("http://localhost:8082/u/a")));
        assert!(!schools.allows(&url("https://mastodon.example/u/a")));
        assert!(!schools.allows(&url("https://national.example.evil.example/u/a")));
    }
}
