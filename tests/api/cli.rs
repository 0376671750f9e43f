//! The command line as a newcomer meets it: admin commands on a mistyped or
//! mismatched data dir, environment variables, bad values.

use crate::admin::{natter, natter_with_env};
use crate::helpers::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn admin_commands_refuse_a_data_dir_without_a_database() {
    let parent = tempfile::tempdir().unwrap();
    let typo = parent.path().join("natter-dta");
    let typo_arg = typo.to_string_lossy().to_string();
    for command in [
        vec!["user", "list"],
        vec![
            "user",
            "add",
            "--email",
            "a@b.c",
            "--name",
            "A",
            "--password",
            "password123",
        ],
        vec!["user", "disable", "--email", "a@b.c"],
    ] {
        let mut argv = args(&command);
        argv.extend(["--data-dir".to_string(), typo_arg.clone()]);
        let (ok, out) = natter(argv).await;
        assert!(!ok, "{command:?} must fail: {out}");
        assert!(out.contains("no natter database at"), "{out}");
        assert!(out.contains("serve creates it"), "{out}");
        assert!(
            !out.contains("Stack backtrace"),
            "one line, no backtrace: {out}"
        );
        assert!(!typo.exists(), "{command:?} created {}", typo.display());
    }
}

#[tokio::test]
async fn admin_commands_never_migrate_under_a_running_server() {
    if is_postgres() {
        return; // SQLite's user_version under `natter user --data-dir`
    }
    let app = spawn_app().await;
    let dir = app.dir.path().to_string_lossy().to_string();
    let db = rusqlite::Connection::open(app.dir.path().join("natter.db")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    db.pragma_update(None, "user_version", version + 1).unwrap();
    let (ok, out) = natter(args(&["user", "list", "--data-dir", &dir])).await;
    assert!(
        !ok && out.contains("newer") && out.contains("never migrate"),
        "{out}"
    );
    db.pragma_update(None, "user_version", version - 1).unwrap();
    let (ok, out) = natter(args(&["user", "list", "--data-dir", &dir])).await;
    assert!(!ok && out.contains("older"), "{out}");
    let after: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, version - 1, "left as it was");
    db.pragma_update(None, "user_version", version).unwrap();
    let (ok, out) = natter(args(&["user", "list", "--data-dir", &dir])).await;
    assert!(ok, "{out}");
}

#[tokio::test]
async fn serve_settings_in_the_environment_do_not_reach_admin_commands() {
    if is_postgres() {
        return; // `natter user` works on --data-dir's SQLite file only (no --database yet)
    }
    let app = spawn_app().await;
    let dir = app.dir.path().to_string_lossy().to_string();
    let env = [
        ("UPLOAD_MAX_SIZE", "abc"),
        ("NATTER_BIND", "not-an-address"),
        ("PORT", "99999"),
        ("NATTER_REGISTRATION", "maybe"),
    ];
    let (ok, out) = natter_with_env(
        args(&[
            "user",
            "add",
            "--data-dir",
            &dir,
            "--email",
            "env@example.com",
            "--name",
            "Env",
            "--password",
            "password123",
        ]),
        &env,
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = natter_with_env(args(&["user", "list", "--data-dir", &dir]), &env).await;
    assert!(ok && out.contains("env@example.com"), "{out}");
}

#[tokio::test]
async fn bad_values_say_where_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().to_string();
    let (ok, out) = natter_with_env(
        args(&["serve", "--data-dir", &d]),
        &[("UPLOAD_MAX_SIZE", "abc")],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("--upload-max-size") && out.contains("UPLOAD_MAX_SIZE=abc"),
        "{out}"
    );
    let (ok, out) = natter(args(&["serve", "--data-dir", &d, "--upload-max-size", "0"])).await;
    assert!(
        !ok && out.contains("--upload-max-size"),
        "0 is refused: {out}"
    );
    let (ok, out) = natter(args(&["serve", "--data-dir", &d, "--bind", "example.org"])).await;
    assert!(!ok && out.contains("127.0.0.1"), "says what to use: {out}");
    let (_, help) = natter(args(&["serve", "--help"])).await;
    assert!(
        help.contains("1–200"),
        "the range of --message-limit: {help}"
    );
    let (_, help) = natter(args(&["user", "add", "--help"])).await;
    let email_line = help
        .lines()
        .find(|l| l.contains("--email"))
        .unwrap_or_default();
    assert!(
        email_line.len() > "      --email <EMAIL>".len() + 4,
        "--email has a text: {help}"
    );
    // `localhost` is this machine.
    let server = spawn_binary(dir.path(), &["--bind", "localhost"], |_| {});
    let health = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert!(health.status().is_success());
}
