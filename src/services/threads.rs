//! Discussion threads: replies to any post, in order.
