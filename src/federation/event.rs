//! Events as ActivityPub `Event` objects (Mobilizon, FEP-8a8e).
