//! Real files through `std::fs` (and real programs) on a real mount.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::LazyFs;
use crate::process::Process;
use crate::testdir::TestDir;

/// A LazyFs on `mnt` inside a test dir; the mount goes before the dir.
struct Mounted {
    fs: LazyFs,
    _dir: TestDir,
}

impl Mounted {
    fn new(label: &str) -> Mounted {
        let dir = TestDir::new(label);
        let mnt = dir.join("mnt");
        fs::create_dir(&mnt).unwrap();
        let fs = LazyFs::mount(&mnt).unwrap_or_else(|e| panic!("{e}"));
        Mounted { fs, _dir: dir }
    }

    fn join(&self, name: &str) -> PathBuf {
        self.fs.path().join(name)
    }
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

/// Writes `path`, fsyncs it and fsyncs its directory: durable by the book.
fn write_durably(path: &Path, bytes: &[u8]) {
    let mut file = File::create(path).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
    sync_dir(path.parent().unwrap());
}

fn read(path: &Path) -> Option<String> {
    match fs::read(path) {
        Ok(bytes) => Some(String::from_utf8(bytes).unwrap()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let path = path.to_str().unwrap();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(path))
}

#[test]
fn synced_data_survives_power_loss() {
    let m = Mounted::new("lazyfs-synced");
    write_durably(&m.join("f"), b"durable");
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")).as_deref(), Some("durable"));
}

#[test]
fn unsynced_writes_are_lost_at_power_loss() {
    let m = Mounted::new("lazyfs-unsynced");
    let f = m.join("f");
    write_durably(&f, b"old");
    let mut file = OpenOptions::new().append(true).open(&f).unwrap();
    file.write_all(b" and new").unwrap();
    drop(file);
    // Read it once, so the kernel has the new contents cached.
    assert_eq!(read(&f).as_deref(), Some("old and new"));
    m.fs.power_fail();
    assert_eq!(read(&f).as_deref(), Some("old"));
    assert_eq!(fs::metadata(&f).unwrap().len(), 3);
}

#[test]
fn a_synced_file_in_an_unsynced_directory_vanishes() {
    let m = Mounted::new("lazyfs-nodirsync");
    let mut file = File::create(m.join("f")).unwrap();
    file.write_all(b"synced").unwrap();
    file.sync_all().unwrap();
    drop(file);
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")), None);
    assert_eq!(fs::read_dir(m.fs.path()).unwrap().count(), 0);
}

#[test]
fn a_synced_file_in_a_synced_directory_stays() {
    let m = Mounted::new("lazyfs-dirsync");
    write_durably(&m.join("f"), b"synced");
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")).as_deref(), Some("synced"));
}

#[test]
fn a_durable_name_without_synced_data_comes_back_empty() {
    let m = Mounted::new("lazyfs-emptyname");
    fs::write(m.join("f"), b"never synced").unwrap();
    sync_dir(m.fs.path());
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")).as_deref(), Some(""));
}

/// The classic atomic replace, up to the rename: a new version in a temporary file,
/// fsynced, renamed over the old one.
fn replace_without_dir_sync(m: &Mounted) {
    write_durably(&m.join("f"), b"old");
    let mut tmp = File::create(m.join("f.tmp")).unwrap();
    tmp.write_all(b"new").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(m.join("f.tmp"), m.join("f")).unwrap();
    assert_eq!(read(&m.join("f")).as_deref(), Some("new"));
}

#[test]
fn rename_over_an_old_file_is_undone_without_a_directory_fsync() {
    let m = Mounted::new("lazyfs-rename-undone");
    replace_without_dir_sync(&m);
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")).as_deref(), Some("old"));
    assert_eq!(
        read(&m.join("f.tmp")),
        None,
        "the temporary was never durable"
    );
}

#[test]
fn rename_over_an_old_file_is_kept_with_a_directory_fsync() {
    let m = Mounted::new("lazyfs-rename-kept");
    replace_without_dir_sync(&m);
    sync_dir(m.fs.path());
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")).as_deref(), Some("new"));
    assert_eq!(read(&m.join("f.tmp")), None);
}

#[test]
fn unlink_without_a_directory_fsync_comes_back() {
    let m = Mounted::new("lazyfs-unlink");
    write_durably(&m.join("kept"), b"back");
    write_durably(&m.join("gone"), b"gone");
    fs::remove_file(m.join("kept")).unwrap();
    m.fs.power_fail();
    assert_eq!(read(&m.join("kept")).as_deref(), Some("back"));
    fs::remove_file(m.join("gone")).unwrap();
    sync_dir(m.fs.path());
    m.fs.power_fail();
    assert_eq!(read(&m.join("gone")), None, "a synced unlink stays");
}

#[test]
fn truncate_is_data() {
    let m = Mounted::new("lazyfs-truncate");
    let f = m.join("f");
    write_durably(&f, b"hello world");
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(5)
        .unwrap();
    m.fs.power_fail();
    assert_eq!(
        read(&f).as_deref(),
        Some("hello world"),
        "unsynced truncate"
    );
    let file = OpenOptions::new().write(true).open(&f).unwrap();
    file.set_len(5).unwrap();
    file.sync_all().unwrap();
    drop(file);
    m.fs.power_fail();
    assert_eq!(read(&f).as_deref(), Some("hello"), "synced truncate");
}

#[test]
fn fdatasync_makes_data_durable() {
    let m = Mounted::new("lazyfs-fdatasync");
    let f = m.join("f");
    write_durably(&f, b"one");
    let mut file = OpenOptions::new().write(true).open(&f).unwrap();
    file.write_all(b"two").unwrap();
    file.sync_data().unwrap();
    drop(file);
    m.fs.power_fail();
    assert_eq!(read(&f).as_deref(), Some("two"));
}

#[test]
fn a_new_directory_needs_its_parent_synced() {
    let m = Mounted::new("lazyfs-mkdir");
    fs::create_dir(m.join("d")).unwrap();
    write_durably(&m.join("d/f"), b"inside");
    m.fs.power_fail();
    assert!(!m.join("d").exists(), "mkdir without a parent fsync");
    fs::create_dir(m.join("d")).unwrap();
    write_durably(&m.join("d/f"), b"inside");
    sync_dir(m.fs.path());
    m.fs.power_fail();
    assert_eq!(read(&m.join("d/f")).as_deref(), Some("inside"));
}

#[test]
fn a_rename_into_another_directory_is_durable_once_the_destination_is_synced() {
    let m = Mounted::new("lazyfs-crossdir");
    fs::create_dir(m.join("a")).unwrap();
    fs::create_dir(m.join("b")).unwrap();
    sync_dir(m.fs.path());
    write_durably(&m.join("a/f"), b"moved");
    fs::rename(m.join("a/f"), m.join("b/f")).unwrap();
    sync_dir(&m.join("a"));
    m.fs.power_fail();
    assert_eq!(
        read(&m.join("a/f")).as_deref(),
        Some("moved"),
        "syncing only the source leaves the rename undone"
    );
    assert_eq!(read(&m.join("b/f")), None);
    fs::rename(m.join("a/f"), m.join("b/f")).unwrap();
    sync_dir(&m.join("b"));
    m.fs.power_fail();
    assert_eq!(read(&m.join("b/f")).as_deref(), Some("moved"));
    assert_eq!(read(&m.join("a/f")), None, "one durable name, not two");
}

#[test]
fn a_crash_without_power_loss_keeps_unsynced_data() {
    let m = Mounted::new("lazyfs-sigkill");
    let mut writer = Process::spawn(
        "writer",
        Command::new("sh")
            .args(["-c", "printf unsynced > f; exec sleep 30"])
            .current_dir(m.fs.path()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(&m.join("f")).as_deref() != Some("unsynced") {
        assert!(Instant::now() < deadline, "the writer never wrote");
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.kill().unwrap();
    let cat = Command::new("cat")
        .arg("f")
        .current_dir(m.fs.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "unsynced");
    assert_eq!(m.fs.stats().fsyncs, 0);
}

#[test]
fn counters_count_syncs_and_what_a_power_loss_lost() {
    let m = Mounted::new("lazyfs-counters");
    write_durably(&m.join("f"), b"0123456789");
    let mut file = OpenOptions::new().write(true).open(m.join("f")).unwrap();
    file.write_all(b"abc").unwrap();
    drop(file);
    fs::write(m.join("new"), b"12345").unwrap();
    let stats = m.fs.stats();
    assert_eq!((stats.fsyncs, stats.fsyncdirs), (1, 1));
    let lost = m.fs.power_fail();
    assert_eq!(
        lost.bytes,
        3 + 5,
        "three overwritten bytes and a whole new file"
    );
    assert_eq!(lost.files, 1);
    let stats = m.fs.stats();
    assert_eq!((stats.power_failures, stats.last_loss), (1, lost));
}

#[test]
fn programs_use_it_like_a_disk() {
    let m = Mounted::new("lazyfs-programs");
    let script = "set -e
        mkdir -p a/b/c
        echo one > a/b/f
        echo two >> a/b/f
        mv a/b/f a/g
        cp a/g a/b/c/h
        chmod 600 a/g
        truncate -s 2 a/b/c/h
        rmdir a/b/c 2>/dev/null && exit 9
        rm a/b/c/h
        rmdir a/b/c
        stat -c %a a/g
        cat a/g
        ls a
        find . | sort
        df . | tail -1 | awk '{print $1}'";
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(m.fs.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "600\none\ntwo\nb\ng\n.\n./a\n./a/b\n./a/g\nlazyfs\n"
    );
    let names: Vec<_> = fs::read_dir(m.join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["b", "g"]);
}

#[test]
fn dropping_it_unmounts_even_with_a_file_open() {
    let dir = TestDir::new("lazyfs-drop");
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let fs = LazyFs::mount(&mnt).unwrap();
    assert!(is_mounted(&mnt));
    let open = File::create(mnt.join("f")).unwrap();
    drop(fs);
    assert!(!is_mounted(&mnt));
    drop(open);
    fs::remove_dir(&mnt).unwrap();
}

#[test]
fn a_failing_test_keeps_the_files_it_had() {
    let dir = TestDir::new("lazyfs-kept");
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let inside = mnt.clone();
    let result = std::thread::spawn(move || {
        let _fs = LazyFs::mount(&inside).unwrap();
        fs::create_dir(inside.join("d")).unwrap();
        fs::write(inside.join("d/f"), b"evidence").unwrap();
        panic!("deliberate");
    })
    .join();
    assert!(result.is_err());
    assert!(!is_mounted(&mnt));
    assert_eq!(read(&mnt.join("d/f")).as_deref(), Some("evidence"));
}

#[test]
fn mounting_on_a_missing_directory_names_it() {
    let dir = TestDir::new("lazyfs-missing");
    let missing = dir.join("nowhere");
    let error = LazyFs::mount(&missing).unwrap_err().to_string();
    assert!(error.contains(missing.to_str().unwrap()), "{error}");
    assert!(error.contains("No such file"), "{error}");
}

#[test]
fn wipe_leaves_an_empty_disk() {
    let m = Mounted::new("lazyfs-wipe");
    write_durably(&m.join("f"), b"x");
    m.fs.wipe();
    assert_eq!(fs::read_dir(m.fs.path()).unwrap().count(), 0);
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")), None);
}

#[test]
fn node_storage_survives_a_power_loss_after_every_write() {
    let m = Mounted::new("lazyfs-storage");
    let dir = m.fs.path();
    let mut storage = node::Storage::open(Some(dir)).unwrap();
    for round in 0..5 {
        let state = format!("state {round}");
        storage.write("state", state.clone().into_bytes()).unwrap();
        storage
            .write(&format!("log{round}"), vec![b'a' + round as u8; 100])
            .unwrap();
        m.fs.power_fail();
        storage = node::Storage::open(Some(dir)).unwrap();
        assert_eq!(
            storage.get("state"),
            Some(state.as_bytes()),
            "round {round}"
        );
        for earlier in 0..=round {
            assert_eq!(
                storage.get(&format!("log{earlier}")),
                Some(&[b'a' + earlier as u8; 100][..]),
                "round {round}"
            );
        }
    }
}

/// `node::Storage::append` writes into zeros written ahead of the file's content, so
/// the sectors of an append cut by the power land in any order: whatever is read back
/// is the synced appends and a prefix of the one under way, and nothing of it lies
/// past that, where a later append could make it content.
#[test]
fn node_storage_appends_survive_torn_power_losses() {
    let m = Mounted::new("lazyfs-storage-appends");
    let dir = m.fs.path().to_path_buf();
    let mut storage = node::Storage::open(Some(&dir)).unwrap();
    let mut synced = Vec::new();
    let mut torn = 0;
    for round in 0..40u64 {
        for k in 0..round % 4 {
            let line = format!("{round}.{k} {}\n", "s".repeat((round * 37 % 700) as usize));
            storage.append("log", line.as_bytes()).unwrap();
            synced.extend_from_slice(line.as_bytes());
        }
        // Long enough to cross sectors and, in some rounds, the zeros' end.
        let under_way = format!(
            "{round} cut {}\n",
            "u".repeat((round * 131 % 1500) as usize)
        );
        m.fs.cut_power_at_sync(1);
        let writer = std::thread::spawn(move || {
            let result = storage.append("log", under_way.as_bytes());
            (result, under_way)
        });
        wait_until("the power cut strikes", || m.fs.power_is_cut());
        m.fs.release_held_syncs();
        let (result, under_way) = writer.join().unwrap();
        assert!(
            result.is_err(),
            "round {round}: a held sync, once released, fails"
        );
        m.fs.power_fail_torn(round);
        storage = node::Storage::open(Some(&dir)).unwrap();
        let got = storage.get("log").unwrap_or_default().to_vec();
        assert!(
            got.starts_with(&synced) && under_way.as_bytes().starts_with(&got[synced.len()..]),
            "round {round}: read back {} bytes, not the {} synced and a prefix of the append",
            got.len(),
            synced.len()
        );
        // Created by the cut append itself, the file's name was never synced.
        let on_disk = fs::read(dir.join("log")).unwrap_or_default();
        assert!(
            on_disk
                .get(got.len()..)
                .unwrap_or_default()
                .iter()
                .all(|&b| b == 0),
            "round {round}: bytes other than zeros past the content"
        );
        if got.len() > synced.len() && !got.ends_with(b"\n") {
            // What a log does with a torn last line: drop it, rewriting the file.
            torn += 1;
            storage.write("log", synced.clone()).unwrap();
        } else {
            synced = got;
        }
    }
    assert!(torn > 0, "no round tore its append");
}

/// `node::Storage::write`'s steps, with its two fsyncs as switches.
fn storage_write(dir: &Path, bytes: &[u8], sync_file: bool, sync_dir_too: bool) {
    let tmp = dir.join("state.tmp");
    let mut file = File::create(&tmp).unwrap();
    file.write_all(bytes).unwrap();
    if sync_file {
        file.sync_all().unwrap();
    }
    drop(file);
    fs::rename(&tmp, dir.join("state")).unwrap();
    if sync_dir_too {
        sync_dir(dir);
    }
}

#[test]
fn each_fsync_of_the_storage_write_is_needed() {
    let m = Mounted::new("lazyfs-storage-careless");
    let dir = m.fs.path();
    let state = |m: &Mounted| {
        m.fs.power_fail();
        node::Storage::open(Some(dir))
            .unwrap()
            .get("state")
            .map(<[u8]>::to_vec)
    };
    storage_write(dir, b"v1", false, false);
    assert_eq!(state(&m), None, "no fsync at all");
    storage_write(dir, b"v1", true, false);
    assert_eq!(state(&m), None, "no directory fsync: the name is lost");
    storage_write(dir, b"v1", false, true);
    assert_eq!(
        state(&m),
        Some(Vec::new()),
        "no file fsync: the data is lost"
    );
    storage_write(dir, b"v1", true, true);
    assert_eq!(state(&m), Some(b"v1".to_vec()), "both: durable");
}

#[test]
fn syncfs_makes_nothing_durable() {
    let m = Mounted::new("lazyfs-syncfs");
    fs::write(m.join("f"), b"x").unwrap();
    let sync = Command::new("sync").arg("-f").arg(m.fs.path()).status();
    assert!(sync.unwrap().success());
    m.fs.power_fail();
    assert_eq!(read(&m.join("f")), None);
}

#[test]
fn o_sync_writes_are_durable() {
    use std::os::unix::fs::OpenOptionsExt;
    let m = Mounted::new("lazyfs-osync");
    let f = m.join("f");
    write_durably(&f, b"old");
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_SYNC)
        .open(&f)
        .unwrap();
    file.write_all(b"new").unwrap();
    drop(file);
    m.fs.power_fail();
    assert_eq!(read(&f).as_deref(), Some("new"));
}

/// Inodes in use, as `statfs` reports them.
fn inodes_in_use(path: &Path) -> u64 {
    let path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: statvfs writes only into `stat`, which lives across the call; `path` is
    // NUL-terminated.
    let stat = unsafe {
        let mut stat = std::mem::zeroed::<libc::statvfs>();
        assert_eq!(libc::statvfs(path.as_ptr(), &mut stat), 0);
        stat
    };
    (stat.f_files - stat.f_ffree) as u64
}

#[test]
fn replaced_files_are_forgotten_once_nothing_can_bring_them_back() {
    let m = Mounted::new("lazyfs-forget");
    let mut storage = node::Storage::open(Some(m.fs.path())).unwrap();
    for round in 0..100u32 {
        storage
            .write("state", round.to_string().into_bytes())
            .unwrap();
    }
    // The root and the current "state": every older version was replaced by a
    // durable rename, so no power failure can resurrect it.
    assert_eq!(inodes_in_use(m.fs.path()), 2);
    let replaced = File::open(m.join("state")).unwrap();
    storage.write("state", b"last".to_vec()).unwrap();
    assert_eq!(inodes_in_use(m.fs.path()), 3, "an open file is kept");
    drop(replaced);
    // The kernel sends the release after close returns.
    let deadline = Instant::now() + Duration::from_secs(5);
    while inodes_in_use(m.fs.path()) != 2 {
        assert!(Instant::now() < deadline, "the closed file is still kept");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `done` until it holds, for at most 10 s.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_power_cut_holds_its_sync_and_keeps_what_the_earlier_syncs_made_durable() {
    let m = Mounted::new("lazyfs-cut");
    let path = m.join("f");
    m.fs.cut_power_at_sync(3);
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut file = File::create(&path).unwrap();
            file.write_all(b"one").unwrap();
            file.sync_all().unwrap(); // sync 1
            sync_dir(path.parent().unwrap()); // sync 2
            file.write_all(b"two").unwrap();
            file.sync_all() // sync 3: the power goes in the middle of it
        })
    };
    wait_until("the power cut strikes", || m.fs.power_is_cut());
    assert!(
        !m.fs.power_cut_armed(),
        "a cut that struck is no longer waiting"
    );
    // The sync does not return while the power is cut: its caller could otherwise
    // tell someone the data was safe.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !writer.is_finished(),
        "the sync the power cut struck returned"
    );
    m.fs.release_held_syncs();
    let held = writer.join().unwrap();
    assert_eq!(
        held.map_err(|e| e.raw_os_error()),
        Err(Some(libc::EIO)),
        "a held sync, once released, fails"
    );
    let lost = m.fs.power_fail();
    assert_eq!(read(&path).as_deref(), Some("one"));
    assert_eq!(
        lost.bytes, 3,
        "the unsynced \"two\" is what the power cut lost"
    );
}

#[test]
fn a_power_cut_counts_every_kind_of_sync_and_can_be_disarmed() {
    let m = Mounted::new("lazyfs-cut-count");
    m.fs.cut_power_at_sync(4);
    write_durably(&m.join("a"), b"a"); // syncs 1 and 2
    let file = File::create(m.join("b")).unwrap();
    file.sync_data().unwrap(); // sync 3
    assert!(m.fs.power_cut_armed() && !m.fs.power_is_cut());
    m.fs.release_held_syncs();
    assert!(!m.fs.power_cut_armed(), "released, the cut is disarmed");
    file.sync_all().unwrap(); // would have been the 4th: goes ahead
    sync_dir(m.fs.path());
    m.fs.power_fail();
    assert_eq!(read(&m.join("b")).as_deref(), Some(""));
}

#[test]
fn a_torn_power_failure_keeps_a_prefix_of_each_append_and_nothing_else() {
    let m = Mounted::new("lazyfs-torn");
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..16 {
        write_durably(&m.join("log"), b"one\n");
        write_durably(&m.join("page"), b"abcd");
        let mut log = OpenOptions::new().append(true).open(m.join("log")).unwrap();
        log.write_all(b"two\nthree\n").unwrap();
        fs::write(m.join("page"), b"ABCDEF").unwrap();
        fs::write(m.join("new"), b"never named durably").unwrap();
        drop(log);
        m.fs.power_fail_torn(seed);
        let log = read(&m.join("log")).unwrap();
        assert!(
            "one\ntwo\nthree\n".starts_with(&log) && log.starts_with("one\n"),
            "seed {seed}: the log is its synced part and a prefix of the append: {log:?}"
        );
        lengths.insert(log.len());
        assert_eq!(
            read(&m.join("page")).as_deref(),
            Some("abcd"),
            "a file rewritten after a truncate keeps none of the rewrite"
        );
        assert_eq!(read(&m.join("new")), None);
    }
    assert!(
        lengths.iter().any(|&l| l > 4 && l < 14),
        "some seed keeps part of the append: {lengths:?}"
    );
}

/// Zeros written ahead of an unsynced append do not shield it: the prefix kept is
/// drawn over the data before them, as if they had not been written.
#[test]
fn a_torn_power_failure_draws_the_prefix_kept_before_zeros_written_ahead() {
    let m = Mounted::new("lazyfs-torn-ahead");
    let mut kept_whole = 0;
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..32 {
        write_durably(&m.join("log"), b"one\n");
        let log = OpenOptions::new().write(true).open(m.join("log")).unwrap();
        let mut append = b"two\nthree\n".to_vec();
        append.resize(append.len() + 100_000, 0);
        log.write_all_at(&append, 4).unwrap();
        drop(log);
        m.fs.power_fail_torn(seed);
        let got = fs::read(m.join("log")).unwrap();
        let text = got.split(|&b| b == 0).next().unwrap();
        assert!(
            b"one\ntwo\nthree\n".starts_with(text) && text.starts_with(b"one\n"),
            "seed {seed}: {text:?}"
        );
        if text.len() == 14 {
            kept_whole += 1;
            assert_eq!(
                got.len(),
                100_014,
                "seed {seed}: the zeros go with the data"
            );
        } else {
            assert_eq!(
                got.len(),
                text.len(),
                "seed {seed}: no zeros without the data"
            );
        }
        lengths.insert(text.len());
    }
    assert!(
        kept_whole < 16,
        "{kept_whole} of 32 seeds kept the whole append"
    );
    assert!(lengths.len() > 3, "prefixes kept: {lengths:?}");
}

#[test]
fn a_torn_power_failure_tears_an_overwrite_sector_by_sector() {
    let m = Mounted::new("lazyfs-torn-overwrite");
    let path = m.join("image");
    let (mut whole_old, mut whole_new, mut inside) = (0, 0, 0);
    for seed in 0..32 {
        // Four sectors of `a`, then `b` over bytes 100..1900 and `c` appended.
        write_durably(&path, &[b'a'; 2048]);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[b'b'; 1800], 100).unwrap();
        file.write_all_at(b"ccc", 2048).unwrap();
        drop(file);
        m.fs.power_fail_torn(seed);
        let got = fs::read(&path).unwrap();
        assert!(
            (2048..=2051).contains(&got.len()),
            "seed {seed}: the durable length and a prefix of the append: {}",
            got.len()
        );
        assert!(got[2048..].iter().all(|&c| c == b'c'));
        for (k, sector) in got[..2048].chunks(512).enumerate() {
            let (from, to) = (100usize.saturating_sub(k * 512), (1900 - k * 512).min(512));
            let (before, written, after) = (&sector[..from], &sector[from..to], &sector[to..]);
            assert!(
                before.iter().chain(after).all(|&c| c == b'a'),
                "seed {seed}, sector {k}: bytes nobody wrote changed"
            );
            // Old, new, or new up to a byte and old after it.
            let new = written.iter().take_while(|&&c| c == b'b').count();
            assert!(
                written[new..].iter().all(|&c| c == b'a'),
                "seed {seed}, sector {k}: not a prefix of the new bytes: {:?}",
                String::from_utf8_lossy(written)
            );
            match new {
                0 => whole_old += 1,
                n if n == written.len() => whole_new += 1,
                _ => inside += 1,
            }
        }
    }
    assert!(
        whole_old > 0 && whole_new > 0 && inside > 0,
        "some sectors keep their old bytes ({whole_old}), some the new ({whole_new}), some \
         are torn inside ({inside})"
    );
}

#[test]
fn a_power_cut_at_an_overwrite_strikes_at_its_sync_and_not_before() {
    let m = Mounted::new("lazyfs-cut-overwrite");
    let path = m.join("image");
    write_durably(&path, b"checkpoint 1 and a log");
    m.fs.cut_power_at_overwrite_sync();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    // Appends and new files are not overwrites: their syncs go ahead.
    file.write_all_at(b" and more", 22).unwrap();
    file.sync_data().unwrap();
    write_durably(&m.join("other"), b"x");
    // The same bytes again change nothing.
    file.write_all_at(b"checkpoint 1", 0).unwrap();
    file.sync_data().unwrap();
    // Writing over durable zeros is a log appending into space written ahead.
    file.write_all_at(&[0; 16], 31).unwrap();
    file.sync_data().unwrap();
    file.write_all_at(b" and all", 31).unwrap();
    file.sync_data().unwrap();
    assert!(m.fs.power_cut_armed() && !m.fs.power_is_cut());
    let writer = std::thread::spawn(move || {
        file.write_all_at(b"checkpoint 2", 0).unwrap();
        file.sync_data()
    });
    wait_until("the power cut strikes", || m.fs.power_is_cut());
    assert!(!writer.is_finished(), "the overwrite's sync returned");
    m.fs.release_held_syncs();
    assert!(
        writer.join().unwrap().is_err(),
        "a held sync, once released, fails"
    );
    m.fs.power_fail();
    assert_eq!(
        read(&path).as_deref(),
        Some("checkpoint 1 and a log and more and all\0\0\0\0\0\0\0\0")
    );
}
