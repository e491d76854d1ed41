//! iCalendar: one event as .ics, and a community's events as a feed.
