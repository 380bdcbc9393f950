//! Outside clients for the end-to-end tests: child processes (mosquitto clients, Python, Node,
//! Node-RED, Chromium through Playwright) whose output is collected line by line and which are
//! killed with their whole process group when dropped; throw-away certificates written as PEM
//! files; and where the installed Python and JavaScript clients live. Nothing here is a mock:
//! every helper runs or configures a real program.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::support::repo_root;

/// How long an outside client may take for one step (start, connect, a round trip). Generous:
/// the CI machine has two cores shared by a compiling workspace, a browser and Node-RED.
pub const TOOL_WAIT: Duration = Duration::from_secs(60);

/// Output lines of a child process (stdout and stderr interleaved as they arrive).
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn push(&self, line: String) {
        let (lines, changed) = &*self.0;
        lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        changed.notify_all();
    }

    fn snapshot(&self) -> Vec<String> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, changed) = &*self.0;
        let mut guard = lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = guard.iter().find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A running outside program, killed together with its children when dropped.
pub struct Tool {
    name: String,
    child: Child,
    lines: Lines,
    exited: Option<ExitStatus>,
}

impl Tool {
    /// Starts `command` in its own process group with stdin closed and its output collected.
    pub fn spawn(name: &str, command: &mut Command) -> Tool {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let lines = Lines::default();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(line) => lines.push(line),
                        Err(_) => break,
                    }
                }
            });
        }
        Tool {
            name: name.to_owned(),
            child,
            lines,
            exited: None,
        }
    }

    /// The first output line containing `needle`, waiting up to `timeout` for it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.lines.wait_for(needle, timeout)
    }

    /// Like [`Tool::wait_for`], but a missing line fails the test with the program's output.
    pub fn expect_line(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for(needle, timeout).unwrap_or_else(|| {
            panic!(
                "{} printed no line containing {needle:?} within {timeout:?}; output:\n{}",
                self.name,
                self.output()
            )
        })
    }

    /// Everything the program printed so far.
    pub fn output(&self) -> String {
        self.lines.snapshot().join("\n")
    }

    /// Waits for the program to exit by itself; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited {
                return Some(status);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                // Let the reader threads take the last lines out of the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for the program to exit with status 0 and returns its output; anything else fails
    /// the test and shows the output.
    pub fn expect_success(&mut self, timeout: Duration) -> String {
        match self.wait_exit(timeout) {
            Some(status) if status.success() => self.output(),
            Some(status) => panic!(
                "{} failed ({status}); output:\n{}",
                self.name,
                self.output()
            ),
            None => panic!(
                "{} still running after {timeout:?}; output:\n{}",
                self.name,
                self.output()
            ),
        }
    }

    /// Runs `command` to its end and returns its output, failing the test unless it exits 0.
    pub fn run(name: &str, command: &mut Command, timeout: Duration) -> String {
        Tool::spawn(name, command).expect_success(timeout)
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        if self.exited.is_none() {
            // The whole process group: Node-RED and Playwright start children of their own.
            // TERM first, because Playwright starts Chromium in a group of its own and only
            // closes it from its signal handlers; KILL whatever is left after a grace period.
            let group = format!("-{}", self.child.id());
            let signal = |name: &str| {
                let _ = Command::new("kill")
                    .args([name, "--", &group])
                    .stderr(Stdio::null())
                    .status();
            };
            signal("-TERM");
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                signal("-KILL");
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{} output:\n{}", self.name, self.output());
        }
    }
}

/// `tests/js`, after checking `npm ci --prefix tests/js` has been run (scripts/test.sh does).
pub fn js_dir() -> PathBuf {
    let dir = repo_root().join("tests/js");
    for package in ["mqtt", "playwright-core", "node-red"] {
        assert!(
            dir.join("node_modules").join(package).join("package.json").is_file(),
            "tests/js/node_modules/{package} is missing: run `npm ci --prefix tests/js` (scripts/test.sh does)"
        );
    }
    dir
}

/// `node tests/js/<script>`, run inside tests/js.
pub fn node_script(script: &str) -> Command {
    let dir = js_dir();
    let mut command = Command::new("node");
    command.arg(dir.join(script)).current_dir(&dir);
    command
}

/// `python3 <path>` for a script under the repository root, output unbuffered.
pub fn python_script(relative: &str) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(repo_root().join(relative))
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("PYTHONPATH");
    command
}

/// The seed's Python sensor publisher (paho-mqtt 2.x) publishing every `interval` seconds to
/// the broker at `addr` until stopped.
pub fn python_publisher(addr: std::net::SocketAddr, interval: &str) -> Tool {
    Tool::spawn(
        "examples/python/publisher.py",
        python_script("examples/python/publisher.py")
            .env("MQTT_HOST", addr.ip().to_string())
            .env("MQTT_PORT", addr.port().to_string())
            .env("MQTT_TRANSPORT", "tcp")
            .env("PUBLISH_INTERVAL", interval)
            .env("PUBLISH_COUNT", "0"),
    )
}

/// A throw-away certificate authority and the folder its PEM files are written to: `ca.pem`,
/// a server certificate for `localhost` / `127.0.0.1`, and client certificates by CN.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "WaspMQ e2e test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        Pki { dir, ca }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Writes `server.crt` / `server.key` (SAN `localhost` and `127.0.0.1`).
    pub fn server(&self) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue("server", params)
    }

    /// Writes `<cn>.crt` / `<cn>.key`, a client certificate whose subject CN is `cn`.
    pub fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(cn, params)
    }

    fn issue(&self, file: &str, params: CertificateParams) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.ca).expect("certificate");
        let cert_path = self.dir.path().join(format!("{file}.crt"));
        let key_path = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_path, certificate.pem()).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

/// A path as a TOML basic string (quotes and backslashes escaped).
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}
