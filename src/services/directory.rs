//! Who is here: a community's members and an event's participants, searchable.
