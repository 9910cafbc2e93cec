//! End-to-end harness: runs the REAL `omsd` and `oms` binaries.
//!
//! Finding the binaries: an integration test of this package cannot use `CARGO_BIN_EXE_*` of
//! another package, so on first use (once per test process) the harness runs
//! `cargo build -p oms-gateway -p oms-cli --bins` with the test binary's profile into the SAME target
//! directory as the test binary (`current_exe()` is `<target>/<profile>/deps/<test>`), and takes
//! `<target>/<profile>/{omsd,oms}`. This was checked not to deadlock: `cargo test` releases the
//! build-directory lock before it runs test binaries (cargo 1.95), and the nested build reuses the
//! already compiled dependencies (a few seconds). `OMS_E2E_TARGET_DIR` builds into another
//! directory instead (should a cargo ever hold the lock), and `OMSD_BIN` + `OMS_BIN` override the
//! paths (and skip the build).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oms_client::{Client, ClientOptions};

/// How long a server gets to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Binaries {
    omsd: PathBuf,
    oms: PathBuf,
}

static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();

fn binaries() -> &'static Binaries {
    match BINARIES.get_or_init(locate_or_build) {
        Ok(b) => b,
        Err(e) => panic!("cannot find or build the omsd/oms binaries: {e}"),
    }
}

/// Path of the `omsd` binary under test.
pub fn omsd_bin() -> PathBuf {
    binaries().omsd.clone()
}

/// Path of the `oms` binary under test.
pub fn oms_bin() -> PathBuf {
    binaries().oms.clone()
}

fn locate_or_build() -> Result<Binaries, String> {
    let omsd_env = std::env::var_os("OMSD_BIN").map(PathBuf::from);
    let oms_env = std::env::var_os("OMS_BIN").map(PathBuf::from);
    if let (Some(omsd), Some(oms)) = (&omsd_env, &oms_env) {
        return Ok(Binaries { omsd: omsd.clone(), oms: oms.clone() });
    }
    // current_exe is <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir =
        exe.parent().and_then(Path::parent).ok_or_else(|| format!("unexpected test path {}", exe.display()))?;
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).ok_or("no profile directory")?.to_owned();
    let target = profile_dir.parent().ok_or("no target directory")?;
    let build_target = std::env::var_os("OMS_E2E_TARGET_DIR").map_or_else(|| target.to_path_buf(), PathBuf::from);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args(["build", "-p", "oms-gateway", "-p", "oms-cli", "--bins"]);
    command.arg("--target-dir").arg(&build_target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    // The outer cargo's environment describes the test crate's build; keep it out of this one.
    for var in
        ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PRIMARY_PACKAGE"]
    {
        command.env_remove(var);
    }
    eprintln!("oms-tests: building omsd and oms ({profile}) into {}", build_target.display());
    let started = Instant::now();
    let output = command.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build -p oms-gateway -p oms-cli --bins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!("oms-tests: built in {:.1}s", started.elapsed().as_secs_f64());
    let dir = build_target.join(&profile);
    let omsd = omsd_env.unwrap_or_else(|| dir.join("omsd"));
    let oms = oms_env.unwrap_or_else(|| dir.join("oms"));
    for bin in [&omsd, &oms] {
        if !bin.is_file() {
            return Err(format!("{} was not built", bin.display()));
        }
    }
    Ok(Binaries { omsd, oms })
}

/// A free loopback port (bound, then released).
pub fn free_addr() -> SocketAddr {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr,
        Err(e) => panic!("cannot bind a loopback port: {e}"),
    }
}

/// A running omsd.
pub struct Omsd {
    child: Option<Child>,
    addr: SocketAddr,
    admin: SocketAddr,
    /// The HTTP/JSON API.
    http: SocketAddr,
    /// The web console.
    console: SocketAddr,
    data_dir: PathBuf,
    /// Owned temporary data dir (for `Omsd::start`); `None` when the caller owns it.
    _owned_dir: Option<tempfile::TempDir>,
    logs: tempfile::TempDir,
    log_file: PathBuf,
    starts: u32,
    extra_args: Vec<String>,
}

impl Omsd {
    /// Start omsd on fresh ports with a new temporary data directory.
    pub fn start(extra_args: &[&str]) -> Omsd {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("cannot create a data dir: {e}"),
        };
        let path = dir.path().to_path_buf();
        let mut omsd = Omsd::new(path, Some(dir), extra_args);
        omsd.spawn();
        omsd
    }

    /// Start omsd on fresh ports in an existing data directory (the caller keeps it alive).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Omsd {
        let mut omsd = Omsd::new(data_dir.to_path_buf(), None, extra_args);
        omsd.spawn();
        omsd
    }

    fn new(data_dir: PathBuf, owned: Option<tempfile::TempDir>, extra_args: &[&str]) -> Omsd {
        let logs = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("cannot create a log dir: {e}"),
        };
        let (addr, admin, http, console) = loop {
            let ports = [free_addr(), free_addr(), free_addr(), free_addr()];
            let distinct = (0..ports.len()).all(|i| (i + 1..ports.len()).all(|j| ports[i] != ports[j]));
            if distinct {
                break (ports[0], ports[1], ports[2], ports[3]);
            }
        };
        let log_file = logs.path().join("omsd-0.log");
        Omsd {
            child: None,
            addr,
            admin,
            http,
            console,
            data_dir,
            _owned_dir: owned,
            logs,
            log_file,
            starts: 0,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn spawn(&mut self) {
        self.log_file = self.logs.path().join(format!("omsd-{}.log", self.starts));
        self.starts += 1;
        let log = match std::fs::File::create(&self.log_file) {
            Ok(f) => f,
            Err(e) => panic!("cannot create {}: {e}", self.log_file.display()),
        };
        let mut command = Command::new(omsd_bin());
        command
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--admin-listen")
            .arg(self.admin.to_string())
            .arg("--http-listen")
            .arg(self.http.to_string())
            .arg("--console-listen")
            .arg(self.console.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = match command.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot start {}: {e}", omsd_bin().display()),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    /// The server's stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("omsd exited before becoming ready ({status}); stderr:\n{}", self.stderr());
                }
            }
            if http_get_status(self.admin, "/ready") == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                let stderr = self.stderr();
                self.kill();
                panic!("omsd not ready after {READY_TIMEOUT:?} (GET http://{}/ready); stderr:\n{stderr}", self.admin);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client (binary protocol) address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The HTTP/JSON API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The web console address.
    pub fn console_addr(&self) -> SocketAddr {
        self.console
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Client options used by [`Omsd::client`]: short timeouts, reconnect on.
    pub fn client_options() -> ClientOptions {
        ClientOptions {
            client_name: "oms-tests".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            reconnect: true,
            ..ClientOptions::default()
        }
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        match Client::connect(self.addr.to_string(), Omsd::client_options()).await {
            Ok(c) => c,
            Err(e) => panic!("cannot connect to omsd at {}: {e}; stderr:\n{}", self.addr, self.stderr()),
        }
    }

    /// Run the real `oms` binary against this server (`--server` is set; OMS_* env is cleared).
    pub fn oms(&self, args: &[&str]) -> Output {
        let mut command = Command::new(oms_bin());
        command.arg("--server").arg(self.addr.to_string()).args(args);
        command.env_remove("OMS_SERVER").env_remove("OMS_API_KEY").stdin(Stdio::null());
        match command.output() {
            Ok(o) => o,
            Err(e) => panic!("cannot run {}: {e}", oms_bin().display()),
        }
    }

    /// Run `oms` and require exit code 0; returns stdout.
    pub fn oms_ok(&self, args: &[&str]) -> String {
        let out = self.oms(args);
        if !out.status.success() {
            panic!(
                "oms {args:?} failed ({}):\nstdout: {}\nstderr: {}",
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        text(&out.stdout)
    }

    /// Run `oms --json ...`, require exit code 0, and parse stdout as one JSON document.
    pub fn oms_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let stdout = self.oms_ok(&full);
        match serde_json::from_str(&stdout) {
            Ok(v) => v,
            Err(e) => panic!("oms {full:?} printed invalid JSON ({e}): {stdout}"),
        }
    }

    /// SIGKILL the server and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM the server and wait for it; asserts a clean exit (status 0) within 30 s.
    pub fn terminate(&mut self) {
        let status = self.terminate_status();
        assert!(status.success(), "omsd exited with {status} after SIGTERM; stderr:\n{}", self.stderr());
    }

    /// SIGTERM the server and return its exit status (killed after 30 s).
    pub fn terminate_status(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else { panic!("omsd is not running") };
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("omsd did not exit within 30 s of SIGTERM; stderr:\n{}", self.stderr());
                }
            }
        }
    }

    /// Start again (after `kill` or `terminate`) on the same ports and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs the server stopped first");
        self.spawn();
    }
}

impl Drop for Omsd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lossy UTF-8 of process output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Status code of a plain HTTP/1.1 GET, or `None` if the server did not answer.
pub fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let (status, _) = http_get(addr, path)?;
    Some(status)
}

/// Status code and body of a plain HTTP/1.1 GET (Connection: close).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// The HTTP/1.1 request at the start of `buf` as (path, body) once its head and its
/// `Content-Length` body have arrived; `None` while more bytes are needed. For the webhook
/// receivers the tests run (plain and TLS).
pub fn complete_http_request(buf: &[u8]) -> Option<(String, Vec<u8>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if buf.len() < end + 4 + length {
        return None;
    }
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    Some((path, buf[end + 4..end + 4 + length].to_vec()))
}
