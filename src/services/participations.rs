//! Taking part: joining and leaving events and intentions, locally and across instances.
