//! Outgoing email over SMTP.
