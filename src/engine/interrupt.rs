//! SIGINT (Ctrl-C), SIGTERM (batch systems, `docker stop`, `timeout`) and SIGHUP (a
//! closed terminal): the first stops starting nodes, lets running ones finish (or cancel
//! cooperatively), and lets the run write its report; a second one quits at once. The
//! exit code says which signal: 130, 143 or 129.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn message(sig: i32) -> &'static [u8] {
    match sig {
        SIGTERM => b"\nterminated (SIGTERM): finishing running nodes, starting no new ones (signal again to quit now)\n",
        SIGHUP => b"\nhung up (SIGHUP): finishing running nodes, starting no new ones (signal again to quit now)\n",
        _ => b"\ninterrupted: finishing running nodes, starting no new ones (Ctrl-C again to quit now)\n",
    }
}

/// Install the handlers (once per process) and return the flag they set.
pub fn install() -> Arc<AtomicBool> {
    Arc::clone(FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            let f = Arc::clone(&flag);
            // SAFETY: the handler only touches atomics and calls write(2) and _exit(2),
            // which are async-signal-safe.
            let registered = unsafe {
                signal_hook::low_level::register(sig, move || {
                    if f.swap(true, Ordering::SeqCst) {
                        signal_hook::low_level::exit(128 + sig);
                    }
                    SIGNAL.store(sig, Ordering::SeqCst);
                    let m = message(sig);
                    libc::write(2, m.as_ptr().cast(), m.len());
                })
            };
            if let Err(e) = registered {
                tracing::warn!("cannot handle signal {sig}: {e}");
            }
        }
        flag
    }))
}

/// The exit code of a run stopped by a signal: 128 + its number (130 for Ctrl-C).
pub fn exit_code() -> u8 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 130,
        s => (128 + s).clamp(0, 255) as u8,
    }
}

/// The signal that stopped the run, in words.
pub fn describe() -> &'static str {
    match SIGNAL.load(Ordering::SeqCst) {
        SIGTERM => "terminated (SIGTERM)",
        SIGHUP => "hung up (SIGHUP)",
        _ => "interrupted",
    }
}
