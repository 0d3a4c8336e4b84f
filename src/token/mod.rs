//! The token endpoint: POST one assertion, and turn whatever comes back (a grant, an OAuth
//! error, an HTML page, a dropped connection) into a [`Grant`] or a classified [`GrantError`].
//! [`classify`] is pure and pinned by a table test of `reference/token-endpoint.md` §4.
//!
//! One file per thing, in the order an answer meets them:
//! - `client.rs`: the HTTP client; POST, read a capped answer, classify a failed request;
//! - `answer.rs`: [`classify`] a complete answer (redirect, 407, JSON error, HTML page, success);
//! - `catalogue.rs`: the OAuth errors of §4, one named row each (kind, hint, fallback, fleet-wide);
//! - `success.rs`: the checks a success answer (or a stored auth file) passes;
//! - `grant.rs`: the types it all ends in, [`Grant`], [`GrantError`] and [`ErrorKind`].

mod answer;
mod catalogue;
mod client;
mod grant;
mod success;
#[cfg(test)]
mod testing;

pub use answer::{classify, Answer};
pub use client::{classify_transport, TokenClient};
pub use grant::{ErrorKind, Grant, GrantError, PROXY_REFUSED};
pub use success::{check_stored, Expect};
