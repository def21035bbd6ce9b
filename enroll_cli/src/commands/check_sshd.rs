//! `totpctl check`'s reading of sshd_config: whether sshd lets the PAM
//! stack (and so pam_totp) ask for the code, with `Include` followed the
//! way sshd does it.

use super::check::{Findings, MAX_DEPTH};
use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// `Include` patterns: a `*` or `?` may appear in the last path component.
fn expand_include(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![pattern.to_path_buf()];
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard(name.as_bytes(), e.file_name().as_encoded_bytes()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// One sshd setting: the keyword as written, its value, and file:line.
struct Setting {
    shown: String,
    value: String,
    origin: String,
}

/// sshd_config the simple way: keywords case-insensitive, the first value
/// wins, `Include` followed, nothing after the first `Match` (conditional).
fn read_sshd(
    out: &mut Findings,
    path: &Path,
    depth: usize,
    settings: &mut BTreeMap<String, Setting>,
) -> Result<bool, std::io::Error> {
    let text = fs::read_to_string(path)?;
    for (number, line) in (1..).zip(text.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(at) => (
                &line[..at],
                line[at..].trim_start_matches(|c: char| c.is_whitespace() || c == '='),
            ),
            None => (line, ""),
        };
        let value = value.split(" #").next().unwrap_or("").trim();
        let written = keyword;
        let keyword = keyword.to_ascii_lowercase();
        let origin = format!("{}:{number}", path.display());
        match keyword.as_str() {
            "match" => {
                out.warning(format!(
                    "{origin}: settings inside Match blocks are not checked; make sure none of \
                     them turns off UsePAM or keyboard-interactive for the users of pam_totp."
                ));
                return Ok(false);
            }
            "include" => {
                if depth >= MAX_DEPTH {
                    out.warning(format!("{origin}: Include nests too deep; not followed."));
                    continue;
                }
                for word in value.split_whitespace() {
                    let pattern = if word.starts_with('/') {
                        PathBuf::from(word)
                    } else {
                        PathBuf::from("/etc/ssh").join(word)
                    };
                    for file in expand_include(&pattern) {
                        match read_sshd(out, &file, depth + 1, settings) {
                            Ok(true) => {}
                            Ok(false) => return Ok(false),
                            Err(e) => out.warning(format!(
                                "{origin}: included {} cannot be read ({e}); not checked.",
                                file.display()
                            )),
                        }
                    }
                }
            }
            _ => {
                // ChallengeResponseAuthentication is the old name of
                // KbdInteractiveAuthentication: one setting, first one wins.
                let key = match keyword.as_str() {
                    "challengeresponseauthentication" => "kbdinteractiveauthentication".into(),
                    _ => keyword,
                };
                let shown = written.to_owned();
                settings.entry(key).or_insert_with(|| Setting {
                    shown,
                    value: value.to_owned(),
                    origin,
                });
            }
        }
    }
    Ok(true)
}

pub(super) fn check_sshd(out: &mut Findings, path: &Path) {
    let mut settings = BTreeMap::new();
    match read_sshd(out, path, 0, &mut settings) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            out.ok(format!(
                "{} does not exist (sshd is not installed); nothing to check for SSH",
                path.display()
            ));
            return;
        }
        Err(e) => {
            out.warning(format!(
                "{} cannot be read ({e}); sshd is not checked.",
                path.display()
            ));
            return;
        }
    }
    let get = |key: &str| {
        settings
            .get(key)
            .map(|s| (s.value.as_str(), s.origin.as_str()))
    };
    let mut problems = 0;
    match get("usepam") {
        Some((v, _)) if v.eq_ignore_ascii_case("yes") => {}
        Some((v, origin)) => {
            problems += 1;
            out.error(format!(
                "{origin}: UsePAM {v}: sshd never runs PAM, so SSH logins skip the code. Fix: \
                 UsePAM yes"
            ));
        }
        None => {
            problems += 1;
            out.error(format!(
                "{}: UsePAM is not set and defaults to no: SSH logins skip the code. Fix: add \
                 UsePAM yes",
                path.display()
            ));
        }
    }
    if let Some(kbd) = settings.get("kbdinteractiveauthentication") {
        if !kbd.value.eq_ignore_ascii_case("yes") {
            problems += 1;
            out.error(format!(
                "{}: {} {}: sshd cannot show the code prompt, so logins that need pam_totp fail \
                 or skip it. Fix: KbdInteractiveAuthentication yes",
                kbd.origin, kbd.shown, kbd.value
            ));
        }
    }
    match get("authenticationmethods") {
        Some((methods, _)) if methods.eq_ignore_ascii_case("any") => {
            problems += 1;
            warn_no_methods(out, path);
        }
        Some((methods, origin)) => {
            if !methods.contains("keyboard-interactive") {
                problems += 1;
                out.error(format!(
                    "{origin}: AuthenticationMethods {methods} has no keyboard-interactive step, \
                     so SSH logins never see the code prompt. Fix: AuthenticationMethods \
                     publickey,keyboard-interactive (key plus code) or keyboard-interactive \
                     (password plus code)"
                ));
            }
        }
        None => {
            problems += 1;
            warn_no_methods(out, path);
        }
    }
    if problems == 0 {
        out.ok(format!(
            "{}: UsePAM yes, keyboard-interactive on and required by AuthenticationMethods",
            path.display()
        ));
    }
}

fn warn_no_methods(out: &mut Findings, path: &Path) {
    out.warning(format!(
        "{}: AuthenticationMethods is not set: a user with an SSH key logs in without a code \
         (PAM's auth stack runs only for keyboard-interactive). Fix: AuthenticationMethods \
         publickey,keyboard-interactive or keyboard-interactive",
        path.display()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_wildcards() {
        assert!(wildcard(b"*.conf", b"50-cloud.conf"));
        assert!(!wildcard(b"*.conf", b"50-cloud.conf.bak"));
        assert!(wildcard(b"a?c", b"abc"));
        assert!(!wildcard(b"a?c", b"ac"));
    }
}
