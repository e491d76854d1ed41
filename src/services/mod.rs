//! The processing layer: one module per domain. HTTP handlers and federation handlers parse
//! their input and call these; authorisation and the rules live here.

pub mod calendar;
pub mod communities;
pub mod directory;
pub mod events;
pub mod feed;
pub mod filing;
pub mod follows;
pub mod intentions;
pub mod keys;
pub mod links;
pub mod media;
pub mod members;
pub mod moderators;
pub mod participations;
pub mod pins;
pub mod posts;
pub mod profiles;
pub mod reminders;
pub mod removals;
pub mod threads;
pub mod views;
pub mod visibility;

/// Names members and communities may not take: they would shadow routes or confuse people.
pub const RESERVED_NAMES: &[&str] = &[
    "about",
    "activities",
    "actor",
    "admin",
    "administrator",
    "api",
    "c",
    "cairn",
    "featured",
    "followers",
    "following",
    "help",
    "inbox",
    "instance",
    "login",
    "logout",
    "media",
    "nodeinfo",
    "outbox",
    "p",
    "postmaster",
    "public",
    "root",
    "settings",
    "static",
    "support",
    "system",
    "tags",
    "u",
    "webfinger",
    "well-known",
    "www",
];
