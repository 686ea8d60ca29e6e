//! This node's etcd member: its ports, the other members' peer ports (learnt from
//! their adapters), and the etcd process, started in a mount namespace of its own
//! whose `/etc/hosts` sends its peer connections to our tunnel entrances.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The variable naming the etcd program (default `etcd`, Debian's `etcd-server`).
pub const ETCD_BIN_VAR: &str = "ETCD_BIN";

pub struct Member {
    name: String,
    data_dir: PathBuf,
    pub peer_port: u16,
    pub client_port: u16,
    /// Every member's peer port, ours included.
    ports: BTreeMap<String, u16>,
    child: Option<Child>,
}

/// A loopback port free now (etcd binds it a moment later).
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// The host name every member uses for the member of `node`.
fn host(node: &str) -> String {
    format!("etcd-{node}")
}

impl Member {
    pub fn new(name: &str, data_dir: &Path) -> Result<Member, String> {
        let peer_port = free_port()?;
        let client_port = free_port()?;
        Ok(Member {
            name: name.to_string(),
            data_dir: data_dir.to_path_buf(),
            peer_port,
            client_port,
            ports: BTreeMap::from([(name.to_string(), peer_port)]),
            child: None,
        })
    }

    pub fn learn(&mut self, node: &str, peer_port: u16) {
        self.ports.insert(node.to_string(), peer_port);
    }

    pub fn knows_all(&self, peers: &[String]) -> bool {
        peers.iter().all(|p| self.ports.contains_key(p))
    }

    /// The other members' peer ports.
    pub fn peer_ports(&self) -> BTreeMap<String, u16> {
        let mut ports = self.ports.clone();
        ports.remove(&self.name);
        ports
    }

    pub fn started(&self) -> bool {
        self.child.is_some()
    }

    /// Starts etcd; `entrances` is where each other member's host name points for
    /// it (a loopback address where our tunnel to that member listens on the
    /// member's port).
    pub fn start(&mut self, entrances: &BTreeMap<String, Ipv4Addr>) -> Result<(), String> {
        let bin = std::env::var(ETCD_BIN_VAR).unwrap_or_else(|_| "etcd".into());
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.data_dir.display()))?;
        let mut hosts = format!("127.0.0.1 localhost {}\n", host(&self.name));
        for (node, ip) in entrances {
            hosts.push_str(&format!("{ip} {}\n", host(node)));
        }
        let hosts_file = self.data_dir.join("hosts");
        std::fs::write(&hosts_file, hosts)
            .map_err(|e| format!("cannot write {}: {e}", hosts_file.display()))?;
        let url = |node: &str, port: u16| format!("http://{}:{port}", host(node));
        let cluster: Vec<String> = (self.ports.iter())
            .map(|(node, port)| format!("{node}={}", url(node, *port)))
            .collect();
        // The same for every member (and different for every cluster: the ports).
        let token: Vec<String> = self.ports.values().map(u16::to_string).collect();
        let log_path = self.data_dir.join("etcd.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let mut command = Command::new(&bin);
        command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.data_dir.join("etcd"))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", self.peer_port))
            .arg("--initial-advertise-peer-urls")
            .arg(url(&self.name, self.peer_port))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--initial-cluster")
            .arg(cluster.join(","))
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(format!("dsconf-{}", token.join("-")))
            .arg("--logger")
            .arg("zap")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let hosts_c = CString::new(hosts_file.as_os_str().as_encoded_bytes())
            .map_err(|_| "a data dir path with a NUL byte".to_string())?;
        // SAFETY: only system calls between fork and exec, on memory prepared before.
        unsafe {
            command.pre_exec(move || private_hosts(&hosts_c));
        }
        let child = command.spawn().map_err(|e| {
            format!(
                "cannot start etcd ({bin}): {e}. Install Debian's etcd-server \
                 (apt-get install etcd-server) or set {ETCD_BIN_VAR}; the adapter must run as \
                 root, since each member gets its own /etc/hosts in a mount namespace"
            )
        })?;
        eprintln!(
            "{}: etcd started (pid {}), peers {:?}, client port {}, log {}",
            self.name,
            child.id(),
            self.ports,
            self.client_port,
            log_path.display()
        );
        self.child = Some(child);
        Ok(())
    }
}

/// In the child: dies with the adapter, and sees `hosts` as its `/etc/hosts`.
fn private_hosts(hosts: &CString) -> std::io::Result<()> {
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls on NUL-terminated strings that outlive them.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            hosts.as_ptr(),
            c"/etc/hosts".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ))?;
    }
    Ok(())
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
