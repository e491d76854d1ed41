//! CPD events: times, place, capacity, organisers, pre-event tasks.
