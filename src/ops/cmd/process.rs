//! Running a user's program: in its own process group, its output line by line to the
//! node's log file and to the run's log, stopped when the cancel flag is set (SIGTERM to
//! the group, SIGKILL after a grace period). When the program ends, whatever it left
//! running in its group is killed, so no step outlives its node.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a stopped command has between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// How many of the last stderr lines a failure quotes.
pub const STDERR_TAIL: usize = 20;

/// How often the wait looks at the process and the cancel flag.
const POLL: Duration = Duration::from_millis(10);

/// How long, once the program ended, its output pipes may stay open.
const DRAIN: Duration = Duration::from_secs(2);

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    /// Killed by a signal it was not sent by us.
    Signalled(i32),
    /// Stopped because the cancel flag was set; `killed`: SIGTERM was not enough.
    Stopped {
        killed: bool,
    },
}

pub struct Finished {
    pub end: End,
    pub stderr_tail: Vec<String>,
    pub elapsed: Duration,
}

/// What to run.
pub struct Program<'a> {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub dir: &'a Path,
    pub env: Vec<(OsString, OsString)>,
    pub log: &'a Path,
}

enum Line {
    Out(String),
    Err(String),
    Closed,
}

/// Run to its end, or until `cancel` is set.
pub fn run(p: &Program<'_>, cancel: &AtomicBool) -> std::io::Result<Finished> {
    let mut log = std::fs::File::create(p.log)?;
    let mut cmd = Command::new(&p.program);
    cmd.args(&p.args)
        .current_dir(p.dir)
        .env_clear()
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        forward(out, tx.clone(), Line::Out);
    }
    if let Some(err) = child.stderr.take() {
        forward(err, tx.clone(), Line::Err);
    }
    drop(tx);
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut open_pipes = 2;
    let mut on_line = |line: Line, open: &mut usize| match line {
        Line::Out(l) => {
            let _ = writeln!(log, "{l}");
            tracing::info!("{l}");
        }
        Line::Err(l) => {
            let _ = writeln!(log, "{l}");
            tracing::info!("{l}");
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(l);
        }
        Line::Closed => *open -= 1,
    };
    let mut stop: Option<(Instant, bool)> = None; // (when SIGTERM went, SIGKILL sent)
    loop {
        match rx.recv_timeout(POLL) {
            Ok(line) => on_line(line, &mut open_pipes),
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if exited(&mut child)? {
            break;
        }
        match stop {
            None if cancel.load(Ordering::Relaxed) => {
                signal_group(&mut child, Signal::Term);
                stop = Some((Instant::now(), false));
            }
            Some((at, false)) if at.elapsed() >= TERM_GRACE => {
                signal_group(&mut child, Signal::Kill);
                stop = Some((at, true));
            }
            _ => {}
        }
    }
    // The program ended (not yet reaped, so its group id cannot be reused): nothing it
    // left behind in its group keeps running.
    signal_group(&mut child, Signal::Kill);
    let status = child.wait()?;
    let elapsed = t0.elapsed();
    let until = Instant::now() + DRAIN;
    while open_pipes > 0 {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => on_line(line, &mut open_pipes),
            Err(_) => {
                tracing::warn!(
                    "the command ended but its output stayed open (a process outside its process group \
                     holds it); {} may be incomplete",
                    p.log.display()
                );
                break;
            }
        }
    }
    let end = match stop {
        Some((_, killed)) => End::Stopped { killed },
        None => end_of(status),
    };
    Ok(Finished {
        end,
        stderr_tail: tail.into(),
        elapsed,
    })
}

/// Lines of `pipe` to `tx` (not UTF-8: replaced), then `Closed`.
fn forward<R: Read + Send + 'static>(pipe: R, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    if tx.send(wrap(String::from_utf8_lossy(&buf).into_owned())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Line::Closed);
    });
}

fn end_of(status: ExitStatus) -> End {
    if let Some(code) = status.code() {
        return End::Exited(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return End::Signalled(sig);
        }
    }
    End::Exited(-1)
}

enum Signal {
    Term,
    Kill,
}

/// Whether the program has ended, without reaping it (its process group stays ours to
/// signal until then).
#[cfg(target_os = "linux")]
fn exited(child: &mut Child) -> std::io::Result<bool> {
    // SAFETY: `info` is a plain C struct waitid fills; the pid is our child's.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            child.id() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: after a successful waitid, si_pid is set (0 while the child runs).
    Ok(unsafe { info.si_pid() } != 0)
}

/// Elsewhere the program is reaped here; its group id could then be reused before the
/// group is signalled, a window of microseconds.
#[cfg(not(target_os = "linux"))]
fn exited(child: &mut Child) -> std::io::Result<bool> {
    Ok(child.try_wait()?.is_some())
}

#[cfg(unix)]
fn signal_group(child: &mut Child, signal: Signal) {
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // The child leads its own group (`process_group(0)`): its pid is the group's id.
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), sig);
    }
}

#[cfg(not(unix))]
fn signal_group(child: &mut Child, _signal: Signal) {
    let _ = child.kill();
}
