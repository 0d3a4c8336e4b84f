//! Writing to the terminal without ever panicking: `println!` and `eprintln!` panic when the
//! other end is gone (`fleetauth grant … 2>&1 | head`), which would lose the report. These
//! write what they can and move on; a run's outcome never depends on its terminal.

use std::io::Write;

/// One line on stderr.
pub fn err(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(line.as_bytes());
    let _ = e.write_all(b"\n");
}

/// Text on stderr, as is.
pub fn err_raw(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Text on stdout, as is; `false` when stdout is gone.
pub fn out_raw(text: &str) -> bool {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .is_ok()
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! say_err {
    ($($arg:tt)*) => { $crate::say::err(&format!($($arg)*)) };
}

/// `println!` that never panics.
#[macro_export]
macro_rules! say_out {
    () => {{ let _ = $crate::say::out_raw("\n"); }};
    ($($arg:tt)*) => {{ let _ = $crate::say::out_raw(&format!("{}\n", format!($($arg)*))); }};
}

/// Whether this process was started with stdout closed (`fleetauth token ci1 >&-`). The Rust
/// runtime reopens a closed stdout as `/dev/null` (read-write) before `main`, so writes to it
/// "succeed" and deliver nothing; a shell's `>/dev/null` opens it write-only. A command whose
/// output is the point fails instead.
pub fn stdout_was_closed() -> bool {
    // SAFETY: fstat, stat and fcntl only fill the structs passed or read a descriptor's flags.
    unsafe {
        let mut out: libc::stat = std::mem::zeroed();
        let mut null: libc::stat = std::mem::zeroed();
        if libc::fstat(libc::STDOUT_FILENO, &mut out) != 0 {
            return true;
        }
        if libc::stat(c"/dev/null".as_ptr(), &mut null) != 0 {
            return false;
        }
        let flags = libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFL);
        (out.st_mode & libc::S_IFMT) == libc::S_IFCHR
            && out.st_rdev == null.st_rdev
            && flags >= 0
            && (flags & libc::O_ACCMODE) == libc::O_RDWR
    }
}
