//! What has been shared: a community's items and a member's feed, filtered by theme.
