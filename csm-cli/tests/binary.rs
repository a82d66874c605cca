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

    let out = csm_cli(&["--database-url", "postgres://db/x", "init-db"], path);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .starts_with("error: CSM_DATABASE_URL: \"postgres://db/x\" is not a database URL")
    );

    let out = csm_cli(
        &[
            "--database-url",
            "mysql://root:topsecret@127.0.0.1:1/csm",
            "init-db",
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

    let out = csm_cli(&["--database-url", "mysql://", "init-db"], path);
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

    let out = csm_cli(&["--concurrency", "0", "refresh", "--all"], path);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CSM_CONCURRENCY: must be greater than 0"));

    let out = csm_cli(&["stations", "list", "--json"], path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}
