//! Join: taking part in an event or an intention.
