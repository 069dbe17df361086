//! Panics of user code that the cache catches and goes on from: a listener's, a key's or
//! value's `Drop` while reclamation frees it, and the clock's on the background reaper's
//! thread (which skips that round). (Panics the caller should see, from `Hash`, `Eq`, the
//! weigher, the clock, a loader or a `compute` closure, propagate instead.)
//!
//! Such a panic cannot be handed to anyone: the listener runs for a departure the caller
//! did not ask about, and a `Drop` runs on whichever thread frees the node. So it is
//! discarded, and with the `logging` feature reported first through the `log` facade at
//! `error` level, with its message.

use std::any::Any;

/// Reports (with `logging`) and drops the payload of a panic caught in `site`.
pub(crate) fn discarded(site: &str, payload: Box<dyn Any + Send>) {
    #[cfg(feature = "logging")]
    log::error!(
        target: "wheelcache",
        "{site} panicked; the cache caught the panic and went on: {}",
        message(&*payload)
    );
    #[cfg(not(feature = "logging"))]
    let _ = site;
    drop(payload);
}

/// The message of a `panic!` payload (a `&str` or a `String`), if it has one.
#[cfg(feature = "logging")]
fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a payload that is not a string)"
    }
}
