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
