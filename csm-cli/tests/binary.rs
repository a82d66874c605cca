//! The `csm-cli` binary as users run it: bad input gives one clear paragraph on stderr and
//! the right exit code (2 usage, 1 failure at run time), never a panic or a backtrace.

use std::process::{Command, Output};

fn csm_cli(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csm-cli"))
        .args(args)
        .current_dir(dir)
        .env_remove("CSM_DATABASE_URL")
        .env_remove("CSM_REDIS_URL")
        .env("CSM_VENDORS_DIR", dir.join("no-vendors"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("csm-cli runs")
}

fn stderr(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !text.contains("panicked") && !text.contains("stack backtrace"),
        "{text}"
    );
    text
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();

    let out = csm_cli(&["init-db", "--database-url", "postgres://db/x"], path);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .starts_with("error: CSM_DATABASE_URL: \"postgres://db/x\" is not a database URL")
    );

    let out = csm_cli(
        &[
            "init-db",
            "--database-url",
            "mysql://root:topsecret@127.0.0.1:1/csm",
        ],
        path,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("cannot reach the mysql database at 127.0.0.1:1/csm"),
        "{text}"
    );
    assert!(!text.contains("topsecret"), "{text}");

    let out = csm_cli(&["init-db", "--database-url", "mysql://"], path);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("write mysql://user:password@host:3306/database"));

    std::fs::write(path.join("bad.csv"), "id,name\n,x\n").unwrap();
    let out = csm_cli(&["stations", "import", "bad.csv"], path);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2: station id is empty"));

    let out = csm_cli(&["stations", "import", "list.txt"], path);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pass --format csv|json"));

    let out = csm_cli(&["frobnicate"], path);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unrecognized subcommand"));

    let out = csm_cli(&["refresh", "--all", "--concurrency", "0"], path);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CSM_CONCURRENCY: must be greater than 0"));

    let out = csm_cli(&["stations", "list", "--json"], path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["stations"], serde_json::json!([]));
    assert_eq!(listed["total"], 0);
}

/// The long options `--help` lists for a command line.
fn options_of(args: &[&str], dir: &std::path::Path) -> Vec<String> {
    let out = csm_cli(&[args, &["--help"]].concat(), dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let option = line.split([' ', ',', '=']).find(|w| w.starts_with("--"))?;
            (line.starts_with("--") || line.starts_with('-')).then(|| option.to_owned())
        })
        .collect()
}

#[test]
fn each_command_lists_only_the_settings_it_uses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let server_only = [
        "--bind",
        "--admin-token",
        "--cors-origins",
        "--manual-refresh-cooldown-secs",
        "--manual-refresh-per-minute",
        "--max-sse-clients",
        "--bench-ceiling-bytes",
        "--demo",
    ];
    let commands: [&[&str]; 12] = [
        &[],
        &["init-db"],
        &["test-connection"],
        &["refresh"],
        &["stations"],
        &["stations", "list"],
        &["stations", "add"],
        &["stations", "remove"],
        &["stations", "import"],
        &["stations", "sync"],
        &["ports"],
        &["events"],
    ];
    for command in commands {
        let options = options_of(command, path);
        for option in server_only {
            assert!(
                !options.iter().any(|o| o == option),
                "csm-cli {command:?} --help lists the server's {option}: {options:?}"
            );
        }
    }
    let top = options_of(&[], path);
    assert!(
        !top.iter().any(|o| o == "--database-url"),
        "the top level lists no command's settings: {top:?}"
    );
    assert!(
        options_of(&["init-db"], path)
            .iter()
            .any(|o| o == "--database-url")
    );
    let init = options_of(&["init-db"], path);
    for unused in [
        "--redis-url",
        "--concurrency",
        "--vendors-dir",
        "--simulator-speed",
    ] {
        assert!(
            !init.iter().any(|o| o == unused),
            "init-db lists {unused}: {init:?}"
        );
    }
    let events = options_of(&["events"], path);
    assert!(!events.iter().any(|o| o == "--redis-url"), "{events:?}");
    let refresh = options_of(&["refresh"], path);
    for used in [
        "--database-url",
        "--redis-url",
        "--concurrency",
        "--vendors-dir",
        "--simulator-speed",
    ] {
        assert!(
            refresh.iter().any(|o| o == used),
            "refresh lacks {used}: {refresh:?}"
        );
    }
    let simulate = options_of(&["simulate"], path);
    assert!(
        !simulate.iter().any(|o| o == "--database-url"),
        "{simulate:?}"
    );
}

/// Runs `csm-cli <args> | head -1` through the shell; what the shell saw of csm-cli.
fn into_head(args: &str, dir: &std::path::Path) -> Output {
    let binary = env!("CARGO_BIN_EXE_csm-cli");
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{binary} {args} 2>err.txt | head -c 1 >/dev/null; echo \"${{PIPESTATUS[0]}}\" >status.txt"
        ))
        .current_dir(dir)
        .env_remove("CSM_DATABASE_URL")
        .env_remove("CSM_REDIS_URL")
        .env("CSM_VENDORS_DIR", dir.join("no-vendors"))
        .output()
        .expect("sh runs")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    // Enough stations that the listing is longer than a pipe's buffer.
    let rows: String = (0..3_000).map(|i| format!("P{i:05},站点 {i}\n")).collect();
    std::fs::write(path.join("many.csv"), format!("id,name\n{rows}")).unwrap();
    let out = csm_cli(&["stations", "import", "many.csv"], path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for args in [
        "--help",
        "stations list",
        "stations list --json",
        "refresh --help",
    ] {
        into_head(args, path);
        let errors = std::fs::read_to_string(path.join("err.txt")).unwrap();
        assert_eq!(errors, "", "csm-cli {args} | head: stderr");
        let status = std::fs::read_to_string(path.join("status.txt")).unwrap();
        assert_eq!(status.trim(), "0", "csm-cli {args} | head: exit status");
    }
}
