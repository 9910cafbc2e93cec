//! Checks the rule of issue 13: a shop that depends on `oms-client` does not compile the server.
//! Runs `cargo tree -p oms-client -e normal` (with and without the `tls` feature) and fails if any
//! of the server's crates appears in the normal-dependency tree.

use std::process::Command;

const FORBIDDEN: [&str; 7] = ["axum", "prometheus-client", "oms-wal", "io-uring", "clap", "mimalloc", "oms-gateway"];

fn tree(features: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(cargo);
    command.current_dir(&workspace).args(["tree", "-p", "oms-client", "-e", "normal", "--prefix", "none", "--offline"]);
    for feature in features {
        command.args(["--features", feature]);
    }
    let output = command.output().expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn the_client_pulls_in_none_of_the_servers_crates() {
    for features in [&[][..], &["tls"][..]] {
        let tree = tree(features);
        let crates: Vec<&str> = tree.lines().filter_map(|line| line.split_whitespace().next()).collect();
        assert!(crates.contains(&"oms-proto"), "oms-proto missing from:\n{tree}");
        assert!(crates.contains(&"tokio"), "tokio missing from:\n{tree}");
        for forbidden in FORBIDDEN {
            assert!(!crates.contains(&forbidden), "{forbidden} is in the client's tree ({features:?}):\n{tree}");
        }
        if features.is_empty() {
            assert!(!crates.contains(&"rustls"), "rustls without the tls feature:\n{tree}");
        } else {
            assert!(crates.contains(&"rustls"), "rustls missing with the tls feature:\n{tree}");
        }
    }
}
