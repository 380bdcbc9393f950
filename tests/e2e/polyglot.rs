//! Plugins written in other languages, through the real binary: the Python (componentize-py)
//! and JavaScript (jco / componentize-js) authenticators of `examples/plugins/` are built by
//! their own `build.sh` and loaded by the broker, which links them a deny-by-default WASI.
//! Each checks the users table of its config: the right password connects, a wrong password or
//! an unknown user is refused with 0x86 (3.1.1: return code 4), and, as `[auth]` refuses
//! anonymous clients, one without a user name with 0x87 (3.1.1: return code 5).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::{bytes, repo_root, Broker, Raw, V5, WAIT};

/// Compiling a language runtime (a ~15 MB component) on a loaded machine takes a while; the
/// broker must not start before its required auth plugin is loaded.
const STARTUP: Duration = Duration::from_secs(180);

/// The example's component, built by its `build.sh` unless it is newer than its sources
/// (`scripts/test.sh` builds them beforehand).
fn build_example(folder: &str, source: &str, wasm: &str) -> PathBuf {
    let dir = repo_root().join("examples/plugins").join(folder);
    let output = dir.join(wasm);
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    // The contract too: a component built for another version of it does not load.
    let contract = repo_root().join("wit/plugin.wit");
    let newest_source = [dir.join(source), dir.join("build.sh"), contract]
        .iter()
        .filter_map(|p| modified(p))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let fresh = modified(&output).is_some_and(|built| built >= newest_source);
    if !fresh {
        let status = Command::new("bash")
            .arg(dir.join("build.sh"))
            .status()
            .expect("run build.sh");
        assert!(
            status.success(),
            "{folder}/build.sh failed ({status}); scripts/test.sh installs its toolchain"
        );
    }
    assert!(output.is_file(), "{} missing", output.display());
    output
}

fn start_broker(name: &str, wasm: &Path) -> Broker {
    let config = format!(
        "sys_interval = 0\n{}\n[auth]\nallow_anonymous = false\n\n[[plugins]]\nname = \"{name}\"\npath = \"{}\"\nrequired = true\n\
         on_error = \"deny\"\ntimeout_ms = 1000\nmemory_mb = 128\n\
         [plugins.config]\nusers = {{ alice = \"secret\", bob = \"hunter2\" }}\n",
        crate::support::TCP_ONLY,
        wasm.display().to_string().replace('\\', "/"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    Broker::in_dir_waiting(dir, &config, &[], STARTUP)
}

/// CONNECT for 3.1.1 with a user name and password.
fn connect_v311_with(client_id: &str, username: &str, password: &str) -> Vec<u8> {
    let mut body = bytes::string("MQTT");
    // Flags: user name (0x80), password (0x40), clean session (0x02).
    body.extend([4, 0xC2, 0, 60]);
    body.extend(bytes::string(client_id));
    body.extend(bytes::string(username));
    body.extend(bytes::string(password));
    bytes::packet(0x10, &body)
}

/// The CONNACK return code the broker answers a 3.1.1 CONNECT with.
async fn v311_return_code(broker: &Broker, connect: &[u8]) -> u8 {
    let mut raw = Raw::connect(broker.addr()).await;
    raw.send(connect).await;
    let connack = raw.recv_type(2, WAIT).await.expect("CONNACK");
    assert_eq!(connack.len(), 4, "3.1.1 CONNACK is 4 bytes: {connack:?}");
    connack[3]
}

async fn v5_result(broker: &Broker, client_id: &str, login: Option<(&str, &str)>) -> String {
    match V5::try_connect_with(broker.addr(), client_id, |o| {
        if let Some((user, password)) = login {
            o.set_credentials(user, password);
        }
    })
    .await
    {
        Ok(client) => {
            client.disconnect().await;
            "Success".to_owned()
        }
        Err(refusal) => refusal,
    }
}

/// What every language's authenticator must answer, on MQTT 5 and 3.1.1.
async fn checks_the_users_table(broker: &Broker) {
    // MQTT 5: CONNACK reason codes [MQTT-3.2.2-8]: 0x86 Bad User Name or Password,
    // 0x87 Not authorized.
    assert_eq!(
        v5_result(broker, "alice-5", Some(("alice", "secret"))).await,
        "Success"
    );
    assert_eq!(
        v5_result(broker, "alice-wrong-5", Some(("alice", "wrong"))).await,
        "BadUserNamePassword"
    );
    assert_eq!(
        v5_result(broker, "mallory-5", Some(("mallory", "secret"))).await,
        "BadUserNamePassword"
    );
    assert_eq!(v5_result(broker, "anon-5", None).await, "NotAuthorized");

    // MQTT 3.1.1: CONNACK return codes 0 accepted, 4 bad user name or password, 5 not
    // authorized (3.1.1 section 3.2.2.3).
    assert_eq!(
        v311_return_code(broker, &connect_v311_with("bob-311", "bob", "hunter2")).await,
        0
    );
    assert_eq!(
        v311_return_code(broker, &connect_v311_with("bob-wrong-311", "bob", "secret")).await,
        4
    );
    assert_eq!(
        v311_return_code(broker, &connect_v311_with("eve-311", "eve", "hunter2")).await,
        4
    );
    assert_eq!(
        v311_return_code(broker, &bytes::connect_v311("anon-311")).await,
        5
    );
}

#[tokio::test]
async fn python_authenticator_admits_only_the_users_in_its_table() {
    let wasm =
        tokio::task::spawn_blocking(|| build_example("python-auth", "app.py", "python_auth.wasm"))
            .await
            .expect("build");
    let broker = start_broker("python-auth", &wasm);
    checks_the_users_table(&broker).await;
    assert!(
        broker.log.count("python-auth: 2 users") >= 1,
        "the plugin's log line is missing:\n{}",
        broker.dump_log()
    );
}

#[tokio::test]
async fn javascript_authenticator_admits_only_the_users_in_its_table() {
    let wasm = tokio::task::spawn_blocking(|| build_example("js-auth", "app.js", "js_auth.wasm"))
        .await
        .expect("build");
    let broker = start_broker("js-auth", &wasm);
    checks_the_users_table(&broker).await;
    assert!(
        broker.log.count("js-auth: 2 users") >= 1,
        "the plugin's log line is missing:\n{}",
        broker.dump_log()
    );
}
