//! Where the file system core reads blocks from: the image file, or memory in tests.
//!
//! The core never writes: it hands the runtime the bytes to append and the checkpoint
//! to store, so the order of writes and fsyncs (the whole of crash safety) is decided in
//! one place, the server loop.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Random-access reads of the image.
pub trait Disk {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
}

impl Disk for File {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_exact_at(buf, addr)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl Disk for [u8] {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(addr).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .filter(|&e| e <= self.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl Disk for Vec<u8> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_at(addr, buf)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.as_slice().len() as u64)
    }
}
