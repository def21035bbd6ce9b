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
            if seen.contains(&key) {
                return Err(format!("module argument '{shown}' given twice"));
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
                    "debug" | "nullok" | "try_first_pass" | "use_first_pass" | "forward_pass",
                    Some(_),
                ) => {
                    return Err(format!("module argument '{shown}' takes no value"));
                }
                _ => return Err(format!("unknown module argument '{shown}'")),
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
        assert_eq!(
            ModuleArgs::parse::<&str>(&[]).unwrap(),
            ModuleArgs::default()
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        let cases: &[(&[&str], &str)] = &[
            (&["bogus"], "unknown module argument 'bogus'"),
            (&["alwaysok"], "unknown module argument"),
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
