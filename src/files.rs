//! Small files read so that no path can hang or exhaust the run: only a regular file is read
//! (a FIFO would block until a writer came, a device like `/dev/zero` never ends), and only up
//! to a cap. The files a user names (the key, the certificate, CA bundles) are reached through
//! symbolic links, as mounted secrets often are; files found in a directory fleetauth writes
//! (auth files, sf's alias.json, a report) are not.

use std::io::Read as _;
use std::path::Path;

/// The most a key or a certificate file may hold (a 4096-bit PEM key is about 3 KB).
pub const KEY_CAP: u64 = 1024 * 1024;
/// The most a CA bundle may hold (the web PKI's whole bundle is about 250 KB).
pub const BUNDLE_CAP: u64 = 16 * 1024 * 1024;

/// How a path may be reached.
#[derive(Clone, Copy)]
enum Links {
    /// A file the user named: a link to it is followed.
    Follow,
    /// A file found in a directory fleetauth writes (the out dir, sf's state): a link there is
    /// not followed.
    Refuse,
}

/// The bytes of the regular file `path`, at most `cap`; an error in the OS's words otherwise,
/// or saying what the path names instead.
pub fn read_small(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    read_regular(path, cap, Links::Follow)
}

/// The bytes of the regular file `path` found in a directory (at most `cap`), or `None` when
/// it is missing or not one: a symbolic link is not followed, a FIFO or a device never read.
pub fn read_found(path: &Path, cap: u64) -> Option<Vec<u8>> {
    read_regular(path, cap, Links::Refuse).ok()
}

fn read_regular(path: &Path, cap: u64, links: Links) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::OpenOptionsExt as _;
    let not_regular = |meta: &std::fs::Metadata| {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        Error::new(
            ErrorKind::InvalidInput,
            format!("it is {what}; name the file itself"),
        )
    };
    // A device is never opened (opening some has effects); then, non-blocking, a FIFO put in
    // its place meanwhile does not wait for a writer, and the open file is checked again.
    let meta = match links {
        Links::Follow => std::fs::metadata(path)?,
        Links::Refuse => std::fs::symlink_metadata(path)?,
    };
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if let Links::Refuse = links {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if meta.len() > cap {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "it holds {} bytes, more than the {} KiB such a file can need",
                meta.len(),
                cap / 1024
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it grew past {} KiB while being read", cap / 1024),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.pem");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read_small(&file, 10).unwrap(), b"abc");
        let big = read_small(&file, 2).unwrap_err().to_string();
        assert!(big.contains("more than"), "{big}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_small(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        let e = read_small(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("device"), "{e}");
        let e = read_small(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
    }
}
