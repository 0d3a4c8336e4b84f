//! One module per subcommand; each turns its flags into a run and an exit code.

pub mod bench;
pub mod check;
pub mod demo;
pub mod emulate;
pub mod grant;
pub mod keygen;
pub mod login;
pub mod open;
/// Not a command: what `token` and `open` share (one org's token, reused or granted).
pub(crate) mod session;
/// Not a command: what the commands that grant share before anything is sent.
pub(crate) mod setup;
pub mod token;
