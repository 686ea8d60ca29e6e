//! The document root and what a request target maps to in it.
//!
//! Files are opened with `openat2(RESOLVE_BENEATH)` relative to the root directory,
//! so the kernel refuses any resolution that leaves the root, whether through `..`,
//! an absolute path or a symlink, and without a race between a check and the open.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::status::Status;
use crate::target::{self, Target};

/// What the response to one request will be.
#[derive(Debug)]
pub enum Plan {
    Error(Status),
    /// A directory named without its trailing `/`: send the client to the `/` form
    /// so relative links in its index resolve. Holds an absolute path on this
    /// host, percent-encoded.
    Redirect(String),
    Static {
        file: File,
        len: u64,
        content_type: &'static str,
    },
    Cgi {
        program: PathBuf,
        query: String,
    },
}

impl Plan {
    /// The size SFF orders by: the file's size, a CGI program's own size (its
    /// output is unknown in advance), 0 for errors.
    pub fn size(&self) -> u64 {
        match self {
            Plan::Static { len, .. } => *len,
            Plan::Cgi { program, .. } => std::fs::metadata(program).map_or(0, |m| m.len()),
            Plan::Error(_) | Plan::Redirect(_) => 0,
        }
    }
}

pub struct Site {
    root: File,
    root_path: PathBuf,
    /// Known-bad variant: join paths naively and follow `..`.
    follow_dotdot: bool,
}

impl Site {
    pub fn open(root_path: &Path, follow_dotdot: bool) -> io::Result<Site> {
        let root_path = std::fs::canonicalize(root_path)?;
        if !root_path.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root_path.display()),
            ));
        }
        let root = File::open(&root_path)?;
        Ok(Site {
            root,
            root_path,
            follow_dotdot,
        })
    }

    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Decides the response to a GET of `raw_target`.
    pub fn plan(&self, raw_target: &str) -> Plan {
        let target = match target::resolve(raw_target, self.follow_dotdot) {
            Ok(t) => t,
            Err(status) => return Plan::Error(status),
        };
        let file = match self.open_beneath(&target.path) {
            Ok(f) => f,
            Err(e) => return Plan::Error(status_for(&e)),
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(_) => return Plan::Error(Status::INTERNAL),
        };
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            // Built from the decoded path, which has no leading `/` (resolve strips
            // them all), and re-encoded: the result starts with exactly one `/`, so
            // a browser cannot read it as `//other-host/...`, and carries no byte
            // that could end a header or an HTML attribute.
            return Plan::Redirect(format!("/{}/", target::percent_encode_path(&target.path)));
        }
        if !meta.is_file() {
            return Plan::Error(Status::FORBIDDEN);
        }
        if target.cgi {
            if mode & 0o100 == 0 {
                return Plan::Error(Status::FORBIDDEN);
            }
            let Target { path, query, .. } = target;
            return Plan::Cgi {
                program: self.root_path.join(OsStr::from_bytes(&path)),
                query,
            };
        }
        // The seed's rule: the owner-read bit decides, even for a server run as root.
        if mode & 0o400 == 0 {
            return Plan::Error(Status::FORBIDDEN);
        }
        Plan::Static {
            file,
            len: meta.len(),
            content_type: content_type(&target.path),
        }
    }

    fn open_beneath(&self, rel: &[u8]) -> io::Result<File> {
        if self.follow_dotdot {
            return File::open(self.root_path.join(OsStr::from_bytes(rel)));
        }
        let c_path = CString::new(rel).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: open_how is plain data; zeroed is a valid value to fill in.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        // O_NONBLOCK so that opening a FIFO planted in the root cannot hang a thread.
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: the path is NUL-terminated and `how` outlives the call; the size
        // passed is the size of the struct passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.root.as_raw_fd(),
                c_path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }
}

fn status_for(e: &io::Error) -> Status {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => Status::NOT_FOUND,
        // EXDEV: the path resolves outside the root.
        Some(libc::EXDEV | libc::ELOOP | libc::EACCES | libc::EPERM) => Status::FORBIDDEN,
        _ if e.kind() == io::ErrorKind::NotFound => Status::NOT_FOUND,
        _ if e.kind() == io::ErrorKind::PermissionDenied => Status::FORBIDDEN,
        _ => Status::INTERNAL,
    }
}

/// The seed's content types plus the ones a browser needs for a styled page.
pub fn content_type(path: &[u8]) -> &'static str {
    let ext = match path.iter().rposition(|&b| b == b'.') {
        Some(i) => path[i + 1..].to_ascii_lowercase(),
        None => Vec::new(),
    };
    match ext.as_slice() {
        b"html" | b"htm" => "text/html",
        b"gif" => "image/gif",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"png" => "image/png",
        b"svg" => "image/svg+xml",
        b"ico" => "image/x-icon",
        b"css" => "text/css",
        b"js" => "text/javascript",
        b"json" => "application/json",
        _ => "text/plain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"a/index.HTML"), "text/html");
        assert_eq!(content_type(b"x.gif"), "image/gif");
        assert_eq!(content_type(b"x.svg"), "image/svg+xml");
        assert_eq!(content_type(b"README"), "text/plain");
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused_by_the_kernel() {
        let dir = std::env::temp_dir().join(format!("wserver-site-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.join("secret"), "s").unwrap();
        std::fs::write(root.join("ok.txt"), "ok").unwrap();
        let _ = std::os::unix::fs::symlink("../secret", root.join("rel"));
        let _ = std::os::unix::fs::symlink(dir.join("secret"), root.join("abs"));
        let _ = std::os::unix::fs::symlink("ok.txt", root.join("inside"));
        let site = Site::open(&root, false).unwrap();
        assert!(matches!(site.plan("/ok.txt"), Plan::Static { len: 2, .. }));
        assert!(matches!(site.plan("/inside"), Plan::Static { len: 2, .. }));
        assert!(matches!(site.plan("/rel"), Plan::Error(Status::FORBIDDEN)));
        assert!(matches!(site.plan("/abs"), Plan::Error(Status::FORBIDDEN)));
        assert!(matches!(site.plan("/nope"), Plan::Error(Status::NOT_FOUND)));
        let bad = Site::open(&root, true).unwrap();
        std::fs::create_dir_all(root.join("d\"><b>x<b>")).unwrap();
        for (raw, want) in [
            ("//d%22%3E%3Cb%3Ex%3Cb%3E", "/d%22%3E%3Cb%3Ex%3Cb%3E/"),
            ("/d\"><b>x<b>?q", "/d%22%3E%3Cb%3Ex%3Cb%3E/"),
        ] {
            match site.plan(raw) {
                Plan::Redirect(location) => assert_eq!(location, want, "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
        assert!(matches!(bad.plan("/../secret"), Plan::Static { .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
