//! Reading a PAM service's `auth` stack as libpam runs it, and the one rule
//! the module enforces on it: a `forward_pass` line's code must be checked.
//!
//! `totpctl check` reads stacks with this to report on them; `pam_totp.so`
//! reads its own service's stack on a `forward_pass` line, because that line
//! only splits the answer: if no later pam_totp line is sure to check the
//! kept code, the password alone would log in. Files are read as the config
//! is (no symlink, owned by root, not writable by group or others, bounded
//! size), and every problem is reported: the module denies on any of them.

use crate::fsio::{self, Dir, FileError, Trust};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where libpam reads service files.
pub const DEFAULT_PAM_DIR: &str = "/etc/pam.d";
/// How deep `@include`, `include` and `substack` are followed (libpam's own
/// limit is about as deep; a loop ends here).
pub const MAX_DEPTH: usize = 8;
/// The largest service file read: real ones are a few kilobytes.
pub const STACK_FILE_LIMIT: u64 = 256 * 1024;

/// One `auth` line of a stack, after includes are followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLine {
    /// `file:line`.
    pub origin: String,
    /// `required`, `requisite`, `[success=ok default=die]`, ...
    pub control: String,
    /// The module's file name (`pam_unix.so`), without its directory.
    pub module: String,
    pub args: Vec<String>,
    /// The `substack` lines that contain this line, outermost first, by
    /// their position in their own frame: the line's frame.
    pub within: Vec<usize>,
    /// Position in its own frame (includes are inlined; a substack is one
    /// position of the frame that calls it), for jumps (`success=N`).
    pub slot: usize,
}

/// Something that keeps a stack from being read in full.
#[derive(Debug)]
pub enum StackProblem {
    Unreadable { path: PathBuf, error: FileError },
    BadName { origin: String, name: String },
    TooDeep { path: PathBuf },
}

impl fmt::Display for StackProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { path, error } => write!(
                f,
                "PAM service file {} cannot be read ({error})",
                path.display()
            ),
            Self::BadName { origin, name } => write!(
                f,
                "{origin}: the included name '{}' is neither a plain name nor an absolute path",
                crate::names::printable(name.as_bytes())
            ),
            Self::TooDeep { path } => write!(
                f,
                "{}: includes nest deeper than {MAX_DEPTH} (a loop?)",
                path.display()
            ),
        }
    }
}

/// A service's auth lines, and what could not be read on the way.
#[derive(Debug, Default)]
pub struct Stack {
    pub lines: Vec<AuthLine>,
    /// Included files that could not be read, or nested too deep: their
    /// lines are missing from `lines`.
    pub problems: Vec<StackProblem>,
}

/// Does `module` (as written in a stack line, with or without a directory)
/// name pam_totp: `pam_totp.so`, `pam_totp_ldap.so`, or a build's
/// `libpam_totp.so`?
pub fn is_pam_totp(module: &str) -> bool {
    let name = module.strip_prefix("lib").unwrap_or(module);
    name == "pam_totp.so" || name == "pam_totp_ldap.so"
}

/// Split a PAM line into words; `[...]` groups (controls, arguments) are one
/// word, and an argument's brackets are removed later, as libpam does.
pub fn pam_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or(inner.len());
            words.push(format!("[{}]", &inner[..end]));
            rest = inner.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    words
}

/// Read `service` (a name in `pam_dir`, or an absolute path) and what it
/// includes. `Err` when the service file itself cannot be read.
pub fn read_auth_stack(pam_dir: &Path, service: &str) -> Result<Stack, StackProblem> {
    let mut stack = Stack::default();
    let dir = Dir::open(pam_dir).map_err(|error| StackProblem::Unreadable {
        path: pam_dir.to_path_buf(),
        error,
    })?;
    let mut reader = Reader {
        dir: &dir,
        stack: &mut stack,
    };
    let text = reader.read(service)?;
    reader.parse(service, &text, 0, &[], &mut 0);
    Ok(stack)
}

struct Reader<'a> {
    dir: &'a Dir,
    stack: &'a mut Stack,
}

impl Reader<'_> {
    fn path(&self, name: &str) -> PathBuf {
        if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            self.dir.path().join(name)
        }
    }

    fn read(&self, name: &str) -> Result<String, StackProblem> {
        let path = self.path(name);
        let text = if name.starts_with('/') {
            fsio::read_checked(&path, Trust::Config, STACK_FILE_LIMIT)
        } else {
            self.dir.read_checked(name, Trust::Config, STACK_FILE_LIMIT)
        };
        text.map(|t| t.as_str().to_owned())
            .map_err(|error| StackProblem::Unreadable { path, error })
    }

    /// Follow an included file: a problem is noted, and its lines are missing.
    fn include(
        &mut self,
        origin: &str,
        name: &str,
        depth: usize,
        within: &[usize],
        slot: &mut usize,
    ) {
        if !name.starts_with('/') && name.contains('/') || name.is_empty() {
            self.stack.problems.push(StackProblem::BadName {
                origin: origin.to_owned(),
                name: name.to_owned(),
            });
            return;
        }
        if depth >= MAX_DEPTH {
            self.stack.problems.push(StackProblem::TooDeep {
                path: self.path(name),
            });
            return;
        }
        match self.read(name) {
            Ok(text) => self.parse(name, &text, depth + 1, within, slot),
            Err(problem) => self.stack.problems.push(problem),
        }
    }

    fn parse(&mut self, name: &str, text: &str, depth: usize, within: &[usize], slot: &mut usize) {
        let path = self.path(name);
        let joined = text.replace("\\\n", " ");
        for (number, line) in (1..).zip(joined.lines()) {
            let line = line.split('#').next().unwrap_or("");
            let words = pam_words(line);
            let Some(first) = words.first() else { continue };
            let origin = format!("{}:{number}", path.display());
            if first == "@include" {
                if let Some(included) = words.get(1) {
                    self.include(&origin, included, depth, within, slot);
                }
                continue;
            }
            let kind = first.trim_start_matches('-');
            if !kind.eq_ignore_ascii_case("auth") || words.len() < 3 {
                continue;
            }
            if words[1] == "include" {
                self.include(&origin, &words[2], depth, within, slot);
                continue;
            }
            if words[1] == "substack" {
                // `done` and `die` inside end only the substack; its lines'
                // results count for the whole stack as if written here.
                let mut inner = within.to_vec();
                inner.push(*slot);
                self.include(&origin, &words[2], depth, &inner, &mut 0);
                *slot += 1;
                continue;
            }
            let module = Path::new(&words[2])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let args = words[3..]
                .iter()
                .map(|w| {
                    w.strip_prefix('[')
                        .and_then(|w| w.strip_suffix(']'))
                        .unwrap_or(w)
                        .to_owned()
                })
                .collect();
            self.stack.lines.push(AuthLine {
                origin,
                control: words[1].clone(),
                module,
                args,
                within: within.to_vec(),
                slot: *slot,
            });
            *slot += 1;
        }
    }
}

/// The action a control takes for a result (`success`, `auth_err`, ...):
/// `ok`, `done`, `die`, `bad`, `ignore`, `reset` or a jump count.
fn action<'a>(control: &'a str, result: &str) -> Option<&'a str> {
    let simple = match control.to_ascii_lowercase().as_str() {
        "required" => Some(if result == "success" { "ok" } else { "bad" }),
        "requisite" => Some(if result == "success" { "ok" } else { "die" }),
        "sufficient" => Some(if result == "success" {
            "done"
        } else {
            "ignore"
        }),
        "optional" => Some(if result == "success" { "ok" } else { "ignore" }),
        _ => None,
    };
    if let Some(simple) = simple {
        return Some(simple);
    }
    let actions = control.strip_prefix('[')?.strip_suffix(']')?;
    let find = |key: &str| {
        actions
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    find(result).or_else(|| find("default"))
}

impl AuthLine {
    /// Does a wrong code on this line (PAM_AUTH_ERR) fail the whole stack?
    fn failure_is_fatal(&self) -> bool {
        matches!(action(&self.control, "auth_err"), Some("bad" | "die"))
    }

    /// Does a failure on this line end the stack at once (`requisite`, or
    /// `die` for a wrong password)?
    pub fn stops_on_failure(&self) -> bool {
        action(&self.control, "auth_err") == Some("die")
    }

    /// Can this line, by ending its frame (`done`, as `sufficient` does on
    /// success) or by jumping (`success=N`), skip `later`? Any result is
    /// considered, and a jump is counted in the fewest lines libpam might
    /// count, so a doubt counts as "yes".
    fn may_skip(&self, later: &AuthLine) -> bool {
        // `later` is in this line's frame, or nested in it: where is it (or
        // the substack that holds it) in this line's frame?
        let depth = self.within.len();
        if later.within.len() < depth || later.within[..depth] != self.within[..] {
            return false;
        }
        let target = later.within.get(depth).copied().unwrap_or(later.slot);
        if target <= self.slot {
            return false;
        }
        let actions: Vec<&str> = match self.control.strip_prefix('[') {
            Some(inner) => inner
                .trim_end_matches(']')
                .split_whitespace()
                .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
                .collect(),
            None => action(&self.control, "success").into_iter().collect(),
        };
        actions
            .iter()
            .any(|a| *a == "done" || a.parse::<usize>().is_ok_and(|n| self.slot + n >= target))
    }
}

/// Every `forward_pass` line of `stack` whose kept code no later pam_totp
/// line is sure to check: the first such line and why, or `None` when every
/// one has a checker. `forwards` says whether a pam_totp line's arguments
/// make it a `forward_pass` line.
///
/// A checker is a later pam_totp line without forward_pass whose failure
/// fails the stack (required, requisite, `[... auth_err=bad|die]`), and that no line between can skip
/// (`sufficient`, `done`, a jump past it).
pub fn unchecked_forward_pass(
    stack: &[AuthLine],
    forwards: impl Fn(&AuthLine) -> bool,
) -> Option<(&AuthLine, String)> {
    for (at, line) in stack.iter().enumerate() {
        if !is_pam_totp(&line.module) || !forwards(line) {
            continue;
        }
        let mut why = None;
        let checked = stack.iter().enumerate().skip(at + 1).any(|(j, c)| {
            if !is_pam_totp(&c.module) || forwards(c) {
                return false;
            }
            if !c.failure_is_fatal() {
                why = Some(format!(
                    "{} checks the code, but a wrong code there does not fail the stack ('{}')",
                    c.origin, c.control
                ));
                return false;
            }
            if let Some(skipper) = stack[at + 1..j].iter().find(|s| s.may_skip(c)) {
                why = Some(format!(
                    "{} ({} '{}') can end the stack before {} checks the code",
                    skipper.origin, skipper.module, skipper.control, c.origin
                ));
                return false;
            }
            true
        });
        if !checked {
            let why = why.unwrap_or_else(|| "no pam_totp.so line after it checks the code".into());
            return Some((line, why));
        }
    }
    None
}

/// For a `forward_pass` line of PAM service `service`: read the service's
/// stack (as libpam does: the name in lower case, `other` when there is no
/// file of that name) and make sure every forward_pass line's code will be
/// checked. `Err` says why not, or what could not be read: either way the
/// login must be denied.
pub fn check_forward_pass(pam_dir: &Path, service: &str) -> Result<(), String> {
    let service = service.to_ascii_lowercase();
    if service.is_empty() || service.contains('/') || service.starts_with('.') {
        return Err(format!(
            "PAM service name '{}' names no file in {}",
            crate::names::printable(service.as_bytes()),
            pam_dir.display()
        ));
    }
    let stack = match read_auth_stack(pam_dir, &service) {
        Err(StackProblem::Unreadable {
            error: FileError::Missing,
            ..
        }) if pam_dir.is_dir() => read_auth_stack(pam_dir, "other"),
        read => read,
    }
    .map_err(|p| format!("cannot read the stack this line is in: {p}"))?;
    if let Some(problem) = stack.problems.first() {
        return Err(format!("cannot read the stack this line is in: {problem}"));
    }
    let forwards =
        |l: &AuthLine| crate::args::ModuleArgs::parse(&l.args).is_ok_and(|a| a.forward_pass);
    if !stack
        .lines
        .iter()
        .any(|l| is_pam_totp(&l.module) && forwards(l))
    {
        return Err(format!(
            "PAM service {service} has no pam_totp.so forward_pass line in {}; this line's stack is unknown",
            pam_dir.display()
        ));
    }
    match unchecked_forward_pass(&stack.lines, forwards) {
        Some((line, why)) => Err(format!("{}: {why}", line.origin)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<AuthLine> {
        let mut stack = Stack::default();
        let dir = Dir::open(Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
        let mut reader = Reader {
            dir: &dir,
            stack: &mut stack,
        };
        reader.parse("test", text, 0, &[], &mut 0);
        stack.lines
    }

    fn verdict(text: &str) -> Option<String> {
        let stack = lines(text);
        unchecked_forward_pass(&stack, |l| l.args.iter().any(|a| a == "forward_pass"))
            .map(|(_, why)| why)
    }

    #[test]
    fn forward_pass_stacks() {
        const FWD: &str = "auth required pam_totp.so forward_pass\n";
        // google-authenticator's two lines: nothing checks the code.
        assert_eq!(
            verdict(&format!("{FWD}auth required pam_unix.so use_first_pass\n")).as_deref(),
            Some("no pam_totp.so line after it checks the code")
        );
        // The documented three lines.
        assert_eq!(
            verdict(&format!(
                "{FWD}auth requisite pam_unix.so use_first_pass\nauth required pam_totp.so\n"
            )),
            None
        );
        assert_eq!(
            verdict(&format!(
                "{FWD}auth [success=1 default=ignore] pam_unix.so use_first_pass\nauth requisite pam_deny.so\nauth [success=ok default=die] libpam_totp.so\n"
            )),
            None
        );
        // A sufficient password line ends the stack before the code.
        assert!(verdict(&format!(
            "{FWD}auth sufficient pam_unix.so use_first_pass\nauth required pam_totp.so\n"
        ))
        .is_some_and(|w| w.contains("can end the stack")));
        // A jump past the checker.
        assert!(verdict(&format!(
            "{FWD}auth [success=2 default=die] pam_unix.so use_first_pass\nauth required pam_totp.so\nauth required pam_permit.so\n"
        ))
        .is_some());
        // A checker whose failure is ignored.
        assert!(verdict(&format!(
            "{FWD}auth requisite pam_unix.so use_first_pass\nauth optional pam_totp.so\n"
        ))
        .is_some_and(|w| w.contains("does not fail the stack")));
        // A checker before the forward_pass line.
        assert!(verdict(&format!(
            "auth required pam_totp.so\n{FWD}auth requisite pam_unix.so use_first_pass\n"
        ))
        .is_some());
    }

    #[test]
    fn pam_words_keep_brackets_together() {
        assert_eq!(
            pam_words("auth [success=1 default=ignore] pam_totp.so [prompt=Code: ] debug"),
            vec![
                "auth",
                "[success=1 default=ignore]",
                "pam_totp.so",
                "[prompt=Code: ]",
                "debug"
            ]
        );
    }

    #[test]
    fn actions() {
        assert_eq!(action("required", "auth_err"), Some("bad"));
        assert_eq!(action("[success=ok default=die]", "auth_err"), Some("die"));
        assert_eq!(
            action("[success=ok auth_err=bad default=ignore]", "auth_err"),
            Some("bad")
        );
        assert_eq!(
            action("[success=ok default=ignore]", "auth_err"),
            Some("ignore")
        );
    }
}
