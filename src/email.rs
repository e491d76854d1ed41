//! Outgoing email over SMTP.
//!
//! One transport per process, built from `config.email`; every message has a plain-text and an
//! HTML part (`multipart/alternative`) so that any mail client shows it. Failures come back as
//! [`EmailError`] for the caller to record: nothing here panics or retries.

use crate::config::{EmailConfig, SmtpSecurity};
use lettre::{
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("email is off: set email.smtp_host (CAIRN_SMTP_HOST) to send")]
    Off,
    #[error("{what} {value:?} is not an email address: {reason}")]
    Address {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
}

/// A message to one person.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    /// Already-escaped HTML for the body (see [`escape`]).
    pub html: String,
}

/// Sends mail with the configured SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `Ok(None)` when email is off (no `smtp_host`).
    pub fn from_config(config: &EmailConfig) -> Result<Option<Mailer>, EmailError> {
        let host = config.smtp_host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = config.from.parse().map_err(|e| EmailError::Address {
            what: "email.from",
            value: config.from.clone(),
            reason: format!("{e}"),
        })?;
        let builder = match config.smtp_security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| EmailError::Smtp(e.to_string()))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| EmailError::Smtp(e.to_string()))?,
        };
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(30)));
        if let Some(user) = config.smtp_username.clone().filter(|u| !u.is_empty()) {
            let password = config.smtp_password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    pub async fn send(&self, email: &Email) -> Result<(), EmailError> {
        let message = build_message(&self.from, email)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Smtp(e.to_string()))
    }
}

fn build_message(from: &Mailbox, email: &Email) -> Result<Message, EmailError> {
    let address = email.to.parse().map_err(|e| EmailError::Address {
        what: "recipient",
        value: email.to.clone(),
        reason: format!("{e}"),
    })?;
    let to = Mailbox::new(email.to_name.clone(), address);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| EmailError::Build(e.to_string()))
}

/// Escapes text for an HTML body or attribute.
pub fn escape(s: &str) -> String {
    crate::federation::sanitize::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_has_both_parts_and_escaped_html() {
        let from: Mailbox = "Cairn <cairn@stirling.example>".parse().unwrap();
        let email = Email {
            to: "alice@school.example".into(),
            to_name: Some("Alice".into()),
            subject: "Reminder".into(),
            text: "I intend to <try> things".into(),
            html: format!("<p>{}</p>", escape("I intend to <try> things")),
        };
        let raw = String::from_utf8(build_message(&from, &email).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        assert!(raw.contains("&lt;try&gt;"), "{raw}");
    }

    #[test]
    fn a_bad_recipient_is_an_error_not_a_panic() {
        let from: Mailbox = "cairn@localhost".parse().unwrap();
        let email = Email {
            to: "not an address".into(),
            to_name: None,
            subject: "x".into(),
            text: "x".into(),
            html: "x".into(),
        };
        assert!(matches!(
            build_message(&from, &email),
            Err(EmailError::Address { .. })
        ));
    }

    #[test]
    fn no_host_means_email_is_off() {
        assert!(Mailer::from_config(&EmailConfig::default())
            .unwrap()
            .is_none());
    }
}
