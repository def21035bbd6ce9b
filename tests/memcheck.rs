//! valgrind memcheck over whole logins through the real libpam: pamtester with
//! a good code and a wrong one, and the misbehaving conversations of
//! `harness/pam_conv_modes.c` (no response array, a conversation error, an
//! oversized answer). Each run must show 0 memcheck errors (invalid reads or
//! writes, uses of uninitialised memory, bad frees) and no definitely lost
//! block allocated through pam_totp.so.
//!
//! The other half of the memory-safety item, that the buffer holding
//! the conversation reply is wiped before it is freed, is checked by
//! `conversation_replies_are_wiped_and_freed_over_10k_logins` in
//! tests/robustness.rs (an interposed free() inspects every reply string).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::process::Command;

/// What valgrind said about one run.
struct Memcheck {
    errors: u64,
    definitely_lost: u64,
    /// Loss records whose allocation stack passes through our code.
    ours: Vec<String>,
    run: PamRun,
}

fn valgrind(sb: &Sandbox, cmd: &Command, input: &[u8]) -> Memcheck {
    let mut vg = Command::new("valgrind");
    vg.args([
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=none",
        "--track-origins=yes",
        "--num-callers=50",
        // pam_end() unloads the module before the leak report: keep its symbols.
        "--keep-debuginfo=yes",
    ]);
    vg.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => vg.env(key, value),
            None => vg.env_remove(key),
        };
    }
    let run = run_with_input(&mut vg, input);
    // Under valgrind pam_wrapper leaves its copy of the services behind.
    remove_pam_wrapper_copies(sb);
    let summary = |label: &str| -> u64 {
        run.stderr
            .lines()
            .find_map(|l| l.split_once(label).map(|(_, rest)| rest.trim().to_string()))
            .and_then(|rest| rest.split_whitespace().next().map(|n| n.replace(',', "")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in the valgrind report:\n{}", run.stderr))
    };
    let errors = summary("ERROR SUMMARY:");
    let definitely_lost = if run.stderr.contains("All heap blocks were freed") {
        0
    } else {
        summary("definitely lost:")
    };
    // A loss record is a paragraph starting "N bytes in M blocks are definitely lost".
    let mut ours = Vec::new();
    let mut current: Option<String> = None;
    for line in run.stderr.lines() {
        let body = line.split_once("== ").map_or(line, |(_, b)| b);
        if body.contains("are definitely lost in loss record") {
            current = Some(String::new());
        }
        if let Some(record) = current.as_mut() {
            if body.trim().is_empty() || line.trim_end().ends_with("==") {
                if ["libpam_totp", "pam_totp::", "totp_core::"]
                    .iter()
                    .any(|m| record.contains(m))
                {
                    ours.push(record.clone());
                }
                current = None;
            } else {
                record.push_str(body);
                record.push('\n');
            }
        }
    }
    Memcheck {
        errors,
        definitely_lost,
        ours,
        run,
    }
}

fn check(what: &str, m: &Memcheck) {
    eprintln!(
        "memcheck {what}: {} errors, {} bytes definitely lost ({} loss records from pam_totp)",
        m.errors,
        m.definitely_lost,
        m.ours.len()
    );
    assert_eq!(m.errors, 0, "{what}: memcheck errors:\n{}", m.run.stderr);
    assert!(
        m.ours.is_empty(),
        "{what}: memory lost from pam_totp:\n{}",
        m.ours.join("\n")
    );
    assert!(
        !m.run.stderr.contains("panicked"),
        "{what}: panic:\n{}",
        m.run.stderr
    );
}

#[test]
fn memcheck_pamtester_good_and_wrong_code() {
    require_tool("valgrind", "valgrind");
    let sb = Sandbox::new("memcheck");
    sb.enroll("root");
    sb.service("totp", "");

    let code = code_now(SECRET);
    let good = valgrind(
        &sb,
        &sb.pamtester_command("totp", "root", &[]),
        format!("{code}\n").as_bytes(),
    );
    good.run.expect(true, "success", "code accepted");
    check("good code", &good);

    let wrong = wrong_code(SECRET);
    let bad = valgrind(
        &sb,
        &sb.pamtester_command("totp", "root", &["rhost=192.0.2.9"]),
        format!("{wrong}\n").as_bytes(),
    );
    bad.run
        .expect(false, "denied", "wrong code (1 of 10 failures)");
    check("wrong code", &bad);

    let malformed = valgrind(&sb, &sb.pamtester_command("totp", "root", &[]), b"12ab56\n");
    malformed
        .run
        .expect(false, "denied", "code is not all digits");
    check("malformed answer", &malformed);
}

#[test]
fn memcheck_misbehaving_conversations() {
    require_tool("valgrind", "valgrind");
    let sb = Sandbox::new("memcheck-conv");
    sb.enroll("root");
    sb.service("totp", "");
    let harness = build_c_harness("pam_conv_modes", &sb.root);
    let long = "7".repeat(10_000);
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "no response array",
            &["null-array"],
            "the application returned no response",
        ),
        (
            "NULL reply",
            &["null-reply"],
            "the application returned no answer",
        ),
        (
            "conversation error",
            &["conv-error"],
            "conversation error 19",
        ),
        ("10,000 digits", &["answer", &long], "code too long"),
    ];
    for (what, args, reason) in cases {
        let mut cmd = Command::new(&harness);
        pam_wrapped(&mut cmd, &sb).args(["totp", "root"]).args(args);
        let m = valgrind(&sb, &cmd, b"");
        m.run.expect(false, "denied", reason);
        check(what, &m);
    }
}
