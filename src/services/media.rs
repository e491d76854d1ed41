//! Uploaded files: checked by content, stored in the media store, attached to posts.
