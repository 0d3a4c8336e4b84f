//! Secrets (access tokens, assertions, key material) wrapped so that `Debug` and `Display`
//! can never print them, and so that their bytes are wiped when they are dropped. Reading the
//! value is an explicit `expose()` at the one place that needs it (the HTTP body, the auth
//! file); every copy taken from it is the caller's to keep short.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A value that must never reach a log, a report or a terminal, and is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
#[repr(transparent)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Call only where it leaves the process on purpose.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("00Dxx!token".to_string());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "00Dxx!token");
    }

    #[test]
    fn a_secret_is_wiped_when_dropped() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Secret<String>>();
        wiped_on_drop::<Secret<Vec<u8>>>();
        // Drop a secret in place and look at the bytes it occupied: the storage outlives the
        // value inside `ManuallyDrop`, and a byte array has no invalid bit pattern.
        let mut slot = std::mem::ManuallyDrop::new(Secret::new([0xa5_u8; 32]));
        let place: *mut Secret<[u8; 32]> = &mut *slot;
        // SAFETY: `place` points to a live, initialized value that is dropped once, here;
        // `ManuallyDrop` never drops it again.
        unsafe { std::ptr::drop_in_place(place) };
        // SAFETY: the storage is still allocated (it is `slot`), and any bytes are a valid
        // `[u8; 32]`.
        let left = unsafe { std::ptr::read(place.cast::<[u8; 32]>()) };
        assert_eq!(left, [0_u8; 32]);
    }
}
