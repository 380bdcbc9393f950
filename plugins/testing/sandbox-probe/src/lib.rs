//! Test-only: tries, with plain Rust `std` (wasm32-wasip2), to reach what a plugin must never
//! reach, and reports what it saw. The broker links WASI deny-by-default, so every attempt
//! should fail.
//!
//! Config: `env` (a variable name), `files` (paths to read), `dirs` (folders to list),
//! `write` (a path to create), `connect` ("ip:port" to open a TCP connection to).
//!
//! `init` runs every probe and logs one line each: `sandbox-probe: <probe>: blocked (<error>)`
//! or `sandbox-probe: <probe>: ESCAPED (<what it got>)`, then a summary line. After that a
//! PUBLISH to `probe/<kind>` (`env`, `file`, `dir`, `write`, `connect`) runs that kind of
//! probe again inside the hook: 0x87 Not authorized when every attempt was blocked, `allow`
//! when one got through. Only `probe/#` is declared in `authorize-publish-filters`, so other
//! PUBLISHes never reach the plugin.

use std::io::Read;

use waspmq_plugin_sdk::*;

struct SandboxProbe {
    env: Option<String>,
    files: Vec<String>,
    dirs: Vec<String>,
    write: Option<String>,
    connect: Option<String>,
}

/// One attempt: `Ok` describes what got through, `Err` why it was blocked.
type Outcome = Result<String, String>;

impl SandboxProbe {
    /// Every attempt of one kind, labelled.
    fn probes(&self, kind: &str) -> Vec<(String, Outcome)> {
        match kind {
            "env" => {
                let mut out = vec![("env vars".to_owned(), any_env_var())];
                if let Some(name) = &self.env {
                    out.push((format!("env {name}"), read_env(name)));
                }
                out
            }
            "file" => self
                .files
                .iter()
                .map(|p| (format!("read {p}"), read_file(p)))
                .collect(),
            "dir" => self
                .dirs
                .iter()
                .map(|p| (format!("list {p}"), list_dir(p)))
                .collect(),
            "write" => self
                .write
                .iter()
                .map(|p| (format!("create {p}"), create_file(p)))
                .collect(),
            "connect" => self
                .connect
                .iter()
                .map(|a| (format!("connect {a}"), connect(a)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

const KINDS: [&str; 5] = ["env", "file", "dir", "write", "connect"];

fn any_env_var() -> Outcome {
    match std::env::vars_os().next() {
        Some((name, _)) => Ok(format!("saw variable {}", name.to_string_lossy())),
        None => Err("no variables visible".to_owned()),
    }
}

fn read_env(name: &str) -> Outcome {
    std::env::var(name)
        .map(|v| format!("{} bytes", v.len()))
        .map_err(|e| e.to_string())
}

fn read_file(path: &str) -> Outcome {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    Ok(format!("read {} bytes", buf.len()))
}

fn list_dir(path: &str) -> Outcome {
    let entries = std::fs::read_dir(path).map_err(|e| e.to_string())?;
    Ok(format!("{} entries", entries.count()))
}

fn create_file(path: &str) -> Outcome {
    std::fs::write(path, b"escaped")
        .map(|()| "created".to_owned())
        .map_err(|e| e.to_string())
}

fn connect(addr: &str) -> Outcome {
    let stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    Ok(format!("connected from {:?}", stream.local_addr().ok()))
}

fn report(label: &str, outcome: &Outcome) -> String {
    match outcome {
        Ok(got) => format!("sandbox-probe: {label}: ESCAPED ({got})"),
        Err(why) => format!("sandbox-probe: {label}: blocked ({why})"),
    }
}

impl Plugin for SandboxProbe {
    fn init(config: Config) -> Result<Self, String> {
        let probe = SandboxProbe {
            env: config.string("env")?,
            files: config.strings("files")?,
            dirs: config.strings("dirs")?,
            write: config.string("write")?,
            connect: config.string("connect")?,
        };
        let (mut tried, mut escaped) = (0, 0);
        for kind in KINDS {
            for (label, outcome) in probe.probes(kind) {
                tried += 1;
                if outcome.is_ok() {
                    escaped += 1;
                    log::warn(&report(&label, &outcome));
                } else {
                    log::info(&report(&label, &outcome));
                }
            }
        }
        log::info(&format!(
            "sandbox-probe: init tried {tried} escapes, {escaped} got through"
        ));
        Ok(probe)
    }

    fn authorize_publish_filters(&self) -> Vec<String> {
        vec!["probe/#".to_owned()]
    }

    fn authorize_publish(
        &self,
        _client: &ClientInfo,
        topic: &str,
        _qos: Qos,
        _retain: bool,
    ) -> Decision {
        let kind = topic.strip_prefix("probe/").unwrap_or(topic);
        let probes = self.probes(kind);
        for (label, outcome) in &probes {
            log::info(&report(label, outcome));
        }
        match probes.iter().any(|(_, outcome)| outcome.is_ok()) {
            true => Decision::Allow,
            // Nothing to probe under this name is not a proof of anything: refuse differently.
            false if probes.is_empty() => Decision::Deny(reason::TOPIC_NAME_INVALID),
            false => Decision::Deny(reason::NOT_AUTHORIZED),
        }
    }
}

export_plugin!(SandboxProbe, hooks = [AUTHORIZE_PUBLISH]);
