//! Leave: no longer taking part.
