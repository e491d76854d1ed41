//! Reminder emails for intentions, scheduled in the database.
