//! Module arguments from the PAM stack line. They override the config file.
//! An unknown, malformed or repeated argument is an error: the login is denied.

use std::path::PathBuf;

pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const FORWARD_PASS_PROMPT: &str = "Password & verification code: ";
pub const MAX_GRACE_PERIOD: u64 = 7 * 86_400;

/// Where the code comes from before (or instead of) prompting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirstPass {
    /// Always prompt.
    #[default]
    Prompt,
    /// Use the previous module's token if it is a valid code, else prompt.
    Try,
    /// Use only the previous module's token; never prompt.
    Use,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleArgs {
    pub config: Option<PathBuf>,
    pub debug: bool,
    pub nullok: bool,
    pub prompt: Option<String>,
    pub first_pass: FirstPass,
    pub forward_pass: bool,
    pub grace_period: Option<u64>,
    /// The setuid helper run without privilege (`helper=PATH`); the default
    /// is [`crate::helper::HELPER_PATH`]. For tests: the stack is root's.
    pub helper: Option<PathBuf>,
    /// Show the code as it is typed (`echo_verification_code`, as in
    /// google-authenticator): the prompt is PAM_PROMPT_ECHO_ON.
    pub echo_code: bool,
    /// Learn no clock skew on this line (`noskewadj`, as in
    /// google-authenticator): `[otp] resync_window` is 0 here. A skew
    /// learned before still applies.
    pub no_skew_learning: bool,
}

/// An argument of google-authenticator-libpam or pam_oath that pam_totp
/// does not take, with where its equivalent lives (or why there is none).
/// The login is denied with this text in the log line, and `totpctl check`
/// prints it for the stack line.
pub fn foreign_argument(key: &str) -> Option<&'static str> {
    Some(match key {
        "secret" => {
            "google-authenticator's secret file: pam_totp keeps records in paths.users_dir of \
             the config file; move them with 'totpctl import-google-authenticator --all \
             [--secret TEMPLATE]'"
        }
        "usersfile" => {
            "pam_oath's usersfile: pam_totp keeps records in paths.users_dir of the config \
             file; move them with 'totpctl import-pam-oath FILE'"
        }
        "user" => {
            "google-authenticator's file owner: pam_totp reads its records as root from \
             paths.users_dir, and a screen locker running as the user goes through the helper \
             (policy.unprivileged)"
        }
        "no_strict_owner" | "allowed_perm" => {
            "google-authenticator's relaxed file checks: pam_totp's records are always owned by \
             root with mode 0600, and 'totpctl check' names any file to fix"
        }
        "allow_readonly" => {
            "google-authenticator's read-only mode: pam_totp has no equivalent on purpose, as a \
             code is compared only after the attempt is written to paths.state_dir; exempt \
             accounts with policy.exempt_groups instead"
        }
        "window" => {
            "pam_oath's window: [otp] window (TOTP steps each side of now) or [otp] look_ahead \
             (HOTP counters ahead) in the config file"
        }
        "digits" => {
            "pam_oath's digits: each record carries its own digits (import-pam-oath and \
             import-tokens set them); [otp] digits in the config file is the default for new \
             enrollments"
        }
        "alwaysok" => {
            "pam_oath's alwaysok: pam_totp has no equivalent, on purpose; exempt accounts with \
             policy.exempt_groups or policy.unenrolled in the config file"
        }
        _ => return None,
    })
}

impl ModuleArgs {
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, String> {
        let mut out = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for arg in args {
            let arg = arg.as_ref();
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (arg, None),
            };
            let shown = crate::names::printable(key.as_bytes());
            // google-authenticator's name for prompt=: the same argument.
            let key = if key == "authtok_prompt" {
                "prompt"
            } else {
                key
            };
            if seen.contains(&key) {
                return Err(match key {
                    "prompt" => {
                        "module argument prompt= given twice (authtok_prompt= is prompt=)".into()
                    }
                    _ => format!("module argument '{shown}' given twice"),
                });
            }
            seen.push(key);
            match (key, value) {
                ("config", Some(v)) => {
                    let path = PathBuf::from(v);
                    if !path.is_absolute() {
                        return Err("module argument config= needs an absolute path".into());
                    }
                    out.config = Some(path);
                }
                ("helper", Some(v)) => {
                    let path = PathBuf::from(v);
                    if !path.is_absolute() {
                        return Err("module argument helper= needs an absolute path".into());
                    }
                    out.helper = Some(path);
                }
                ("debug", None) => out.debug = true,
                ("nullok", None) => out.nullok = true,
                ("prompt", Some(v)) => {
                    if v.is_empty() || v.len() > 200 || v.chars().any(char::is_control) {
                        return Err(
                            "module argument prompt= must be 1 to 200 printable characters".into(),
                        );
                    }
                    out.prompt = Some(v.to_owned());
                }
                ("try_first_pass", None) => out.set_first_pass(FirstPass::Try)?,
                ("use_first_pass", None) => out.set_first_pass(FirstPass::Use)?,
                ("forward_pass", None) => out.forward_pass = true,
                ("echo_verification_code", None) => out.echo_code = true,
                ("noskewadj", None) => out.no_skew_learning = true,
                // google-authenticator counts a HOTP counter only on success
                // with it; pam_totp always does.
                ("no_increment_hotp", None) => {}
                ("grace_period", Some(v)) => {
                    let seconds = v
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s <= MAX_GRACE_PERIOD && !v.starts_with('+'))
                        .ok_or_else(|| {
                            format!("module argument grace_period= needs whole seconds from 0 to {MAX_GRACE_PERIOD}")
                        })?;
                    out.grace_period = Some(seconds);
                }
                ("config" | "prompt" | "grace_period" | "helper", None) => {
                    return Err(format!(
                        "module argument '{shown}' needs a value ({shown}=...)"
                    ));
                }
                (
                    "debug"
                    | "nullok"
                    | "try_first_pass"
                    | "use_first_pass"
                    | "forward_pass"
                    | "echo_verification_code"
                    | "noskewadj"
                    | "no_increment_hotp",
                    Some(_),
                ) => {
                    return Err(format!("module argument '{shown}' takes no value"));
                }
                (other, _) => {
                    return Err(match foreign_argument(other) {
                        Some(instead) => format!(
                            "module argument '{shown}' is not taken by pam_totp; it is {instead}"
                        ),
                        None => format!("unknown module argument '{shown}'"),
                    })
                }
            }
        }
        if out.forward_pass && out.first_pass != FirstPass::Prompt {
            return Err(
                "forward_pass cannot be combined with try_first_pass or use_first_pass".into(),
            );
        }
        Ok(out)
    }

    fn set_first_pass(&mut self, mode: FirstPass) -> Result<(), String> {
        if self.first_pass != FirstPass::Prompt {
            return Err("try_first_pass and use_first_pass are mutually exclusive".into());
        }
        self.first_pass = mode;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_argument() {
        let a = ModuleArgs::parse(&[
            "config=/tmp/c.toml",
            "debug",
            "nullok",
            "prompt=Code please: ",
            "try_first_pass",
            "grace_period=300",
            "helper=/opt/test/totp-verify",
        ])
        .unwrap();
        assert_eq!(a.helper, Some(PathBuf::from("/opt/test/totp-verify")));
        assert_eq!(a.config, Some(PathBuf::from("/tmp/c.toml")));
        assert!(a.debug && a.nullok);
        assert_eq!(a.prompt.as_deref(), Some("Code please: "));
        assert_eq!(a.first_pass, FirstPass::Try);
        assert_eq!(a.grace_period, Some(300));
        assert_eq!(
            ModuleArgs::parse(&["use_first_pass"]).unwrap().first_pass,
            FirstPass::Use
        );
        assert!(ModuleArgs::parse(&["forward_pass"]).unwrap().forward_pass);
        let ga = ModuleArgs::parse(&[
            "authtok_prompt=Token: ",
            "noskewadj",
            "no_increment_hotp",
            "echo_verification_code",
            "nullok",
            "grace_period=60",
        ])
        .unwrap();
        assert_eq!(ga.prompt.as_deref(), Some("Token: "));
        assert!(ga.no_skew_learning && ga.echo_code && ga.nullok);
        assert_eq!(
            ModuleArgs::parse::<&str>(&[]).unwrap(),
            ModuleArgs::default()
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        let cases: &[(&[&str], &str)] = &[
            (&["bogus"], "unknown module argument 'bogus'"),
            (&["alwaysok"], "no equivalent, on purpose"),
            (&["window=20"], "[otp] window"),
            (&["window=20"], "look_ahead"),
            (&["digits=8"], "each record carries its own digits"),
            (&["usersfile=/etc/users.oath"], "import-pam-oath"),
            (
                &["secret=/etc/ga/${USER}"],
                "import-google-authenticator --all",
            ),
            (&["secret=/x"], "paths.users_dir"),
            (&["user=root"], "policy.unprivileged"),
            (&["allowed_perm=0640"], "mode 0600"),
            (&["no_strict_owner"], "mode 0600"),
            (&["allow_readonly"], "no equivalent on purpose"),
            (&["prompt=a", "authtok_prompt=b"], "given twice"),
            (&["authtok_prompt="], "prompt"),
            (&["noskewadj=1"], "takes no value"),
            (&["debug", "debug"], "given twice"),
            (&["grace_period=10", "grace_period=20"], "given twice"),
            (&["grace_period=abc"], "grace_period"),
            (&["grace_period=-1"], "grace_period"),
            (&["grace_period=+5"], "grace_period"),
            (&["grace_period=99999999999999999999"], "grace_period"),
            (&["grace_period="], "grace_period"),
            (&["grace_period"], "needs a value"),
            (&["config=relative.toml"], "absolute"),
            (&["config"], "needs a value"),
            (&["helper=totp-verify"], "helper= needs an absolute path"),
            (&["helper"], "needs a value"),
            (&["prompt="], "prompt"),
            (&["debug=1"], "takes no value"),
            (&["try_first_pass", "use_first_pass"], "mutually exclusive"),
            (&["forward_pass", "use_first_pass"], "cannot be combined"),
            (&["bad\nname"], "bad\\x0aname"),
        ];
        for (args, expected) in cases {
            let err = ModuleArgs::parse(args).expect_err(&format!("{args:?}"));
            assert!(err.contains(expected), "{args:?}: got {err}");
        }
    }
}
