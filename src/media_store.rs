//! Where uploaded files live: local disk by default, behind a trait an object store can implement.
