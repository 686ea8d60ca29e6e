//! `libmfs.so`: the seed's `mfs.h` as a C ABI over [`Client`]. The header a C program
//! includes is `include/mfs.h`.
//!
//! `MFS_Init`'s signature has no room for options, so the timeout comes from
//! `MFS_TIMEOUT_MS` (default 5000) and the known-bad no-retry variant from
//! `DFS_BUG=client-no-retry`. Every function returns -1 when called before `MFS_Init`, on a
//! NULL pointer, or when the network fails.

#![allow(non_snake_case, non_camel_case_types)]

use std::ffi::{c_char, c_int, CStr};
use std::sync::Mutex;

use specs::mfs::wire::zero_block;
use specs::mfs::BLOCK_SIZE;

use crate::client::{Client, Options};

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);

#[repr(C)]
pub struct MFS_Stat_t {
    pub r#type: c_int,
    pub size: c_int,
}

fn with_client(f: impl FnOnce(&mut Client) -> std::io::Result<c_int>) -> c_int {
    let mut guard = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_mut() {
        Some(client) => f(client).unwrap_or(-1),
        None => -1,
    }
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn name<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        Some(CStr::from_ptr(ptr).to_bytes())
    }
}

/// # Safety
/// `hostname` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn MFS_Init(hostname: *const c_char, port: c_int) -> c_int {
    let Some(host) = name(hostname).and_then(|h| std::str::from_utf8(h).ok()) else {
        return -1;
    };
    let Ok(port) = u16::try_from(port) else {
        return -1;
    };
    match Client::connect(host, port, Options::from_env()) {
        Ok(client) => {
            *CLIENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
            0
        }
        Err(_) => -1,
    }
}

/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn MFS_Lookup(pinum: c_int, name_: *const c_char) -> c_int {
    match name(name_) {
        Some(n) => with_client(|c| c.lookup(pinum, n)),
        None => -1,
    }
}

/// # Safety
/// `m` is NULL or points to a writable `MFS_Stat_t`.
#[no_mangle]
pub unsafe extern "C" fn MFS_Stat(inum: c_int, m: *mut MFS_Stat_t) -> c_int {
    if m.is_null() {
        return -1;
    }
    with_client(|c| {
        Ok(match c.stat(inum)? {
            Some((kind, size)) => {
                (*m).r#type = kind;
                (*m).size = size;
                0
            }
            None => -1,
        })
    })
}

/// # Safety
/// `buffer` is NULL or points to 4096 readable bytes.
#[no_mangle]
pub unsafe extern "C" fn MFS_Write(inum: c_int, buffer: *const c_char, block: c_int) -> c_int {
    if buffer.is_null() {
        return -1;
    }
    let mut data = zero_block();
    std::ptr::copy_nonoverlapping(buffer as *const u8, data.as_mut_ptr(), BLOCK_SIZE);
    with_client(|c| c.write(inum, block, data))
}

/// # Safety
/// `buffer` is NULL or points to 4096 writable bytes.
#[no_mangle]
pub unsafe extern "C" fn MFS_Read(inum: c_int, buffer: *mut c_char, block: c_int) -> c_int {
    if buffer.is_null() {
        return -1;
    }
    with_client(|c| {
        Ok(match c.read(inum, block)? {
            Some(data) => {
                std::ptr::copy_nonoverlapping(data.as_ptr(), buffer as *mut u8, BLOCK_SIZE);
                0
            }
            None => -1,
        })
    })
}

/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn MFS_Creat(pinum: c_int, r#type: c_int, name_: *const c_char) -> c_int {
    match name(name_) {
        Some(n) => with_client(|c| c.creat(pinum, r#type, n)),
        None => -1,
    }
}

/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn MFS_Unlink(pinum: c_int, name_: *const c_char) -> c_int {
    match name(name_) {
        Some(n) => with_client(|c| c.unlink(pinum, n)),
        None => -1,
    }
}

#[no_mangle]
pub extern "C" fn MFS_Shutdown() -> c_int {
    with_client(|c| c.shutdown())
}
