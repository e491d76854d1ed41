//! "I intend": an intention with a target date that colleagues can share.
