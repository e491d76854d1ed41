//! A community's facilitators.
