//! The command line and the config file, as a user meets them.

use std::process::Command;

use crate::support::binary;

#[test]
fn help_describes_the_config_option() {
    let output = Command::new(binary())
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("--config"), "{text}");
}

#[test]
fn bad_config_is_refused_naming_the_key_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, "sys_interval = 10\n[auth]\nallow_anonymos = true\n").expect("write");
    let output = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("line 3") && text.contains("allow_anonymos"),
        "{text}"
    );
}

#[test]
fn missing_config_file_is_refused_naming_the_file() {
    let output = Command::new(binary())
        .args(["--config", "/nonexistent/broker.toml"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/broker.toml"));
}

#[test]
fn the_shipped_broker_toml_is_valid() {
    let path = crate::support::repo_root().join("broker.toml");
    let config = waspmq::config::load(Some(&path)).expect("broker.toml loads");
    assert_eq!(config.listeners["default"].bind.port(), 1883);
    assert_eq!(config.listeners["ws"].max_connections, Some(100));
    let names: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["auth-anonymous", "topic-taboo"]);
}
