//! Who is asked for a code: the unenrolled policy and the group rules.

use crate::config::Policy;
use nix::unistd::{getgrouplist, Gid, Group, User};
use serde::Deserialize;
use std::ffi::CString;

/// What happens to a user with no active enrollment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Unenrolled {
    #[default]
    Deny,
    Allow,
    /// Allowed through the end of this day (days since the epoch, UTC).
    AllowUntil(i64),
}

impl TryFrom<String> for Unenrolled {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "deny" => Ok(Self::Deny),
            "allow" => Ok(Self::Allow),
            other => other
                .strip_prefix("allow-until:")
                .and_then(crate::time::parse_date)
                .map(Self::AllowUntil)
                .ok_or_else(|| {
                    "policy.unenrolled must be \"deny\", \"allow\" or \"allow-until:YYYY-MM-DD\""
                        .into()
                }),
        }
    }
}

impl std::fmt::Display for Unenrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deny => f.write_str("deny"),
            Self::Allow => f.write_str("allow"),
            Self::AllowUntil(days) => write!(f, "allow-until:{}", crate::time::format_date(*days)),
        }
    }
}

/// What the module does when it runs without the privilege to read the
/// user's record: a screen locker that runs PAM as the user
/// (`policy.unprivileged`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Unprivileged {
    /// Ask for the code as usual and have the setuid helper
    /// (`totp-verify`) check it: the caller's own account only.
    #[default]
    Helper,
    /// Refuse the login.
    Deny,
    /// Skip the code (PAM_IGNORE): the password alone unlocks.
    Ignore,
}

impl TryFrom<String> for Unprivileged {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "helper" => Ok(Self::Helper),
            "deny" => Ok(Self::Deny),
            "ignore" => Ok(Self::Ignore),
            _ => Err("policy.unprivileged must be \"helper\", \"deny\" or \"ignore\"".into()),
        }
    }
}

impl std::fmt::Display for Unprivileged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Helper => "helper",
            Self::Deny => "deny",
            Self::Ignore => "ignore",
        })
    }
}

/// The decision for an unenrolled user at a given time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnenrolledDecision {
    Allow,
    /// Allowed for now; tell the user the deadline.
    AllowUntil {
        deadline: String,
    },
    Deny,
    /// The deadline has passed.
    DenyExpired {
        deadline: String,
    },
}

pub fn unenrolled(policy: Unenrolled, now_unix: u64) -> UnenrolledDecision {
    match policy {
        Unenrolled::Allow => UnenrolledDecision::Allow,
        Unenrolled::Deny => UnenrolledDecision::Deny,
        Unenrolled::AllowUntil(days) => {
            let today = i64::try_from(now_unix / 86_400).unwrap_or(i64::MAX);
            let deadline = crate::time::format_date(days);
            if today <= days {
                UnenrolledDecision::AllowUntil { deadline }
            } else {
                UnenrolledDecision::DenyExpired { deadline }
            }
        }
    }
}

/// Whether group rules ask this user for a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupDecision {
    Ask,
    Exempt { group: String },
    NotRequired,
}

/// Apply `exempt_groups` then `require_groups`, using the user's supplementary
/// groups. A configured group that does not exist is an error, not a silent skip:
/// a typo in `require_groups` must not switch two-factor off for everyone.
pub fn groups(policy: &Policy, user: &User) -> Result<GroupDecision, String> {
    if policy.exempt_groups.is_empty() && policy.require_groups.is_empty() {
        return Ok(GroupDecision::Ask);
    }
    let name =
        CString::new(user.name.as_bytes()).map_err(|_| "user name holds a NUL byte".to_string())?;
    let member_of = getgrouplist(&name, user.gid)
        .map_err(|e| format!("cannot list groups of the user: {e}"))?;
    let resolve = |group: &str, key: &str| -> Result<Gid, String> {
        match Group::from_name(group) {
            Ok(Some(g)) => Ok(g.gid),
            Ok(None) => Err(format!("group '{group}' in policy.{key} does not exist")),
            Err(e) => Err(format!("cannot look up group '{group}': {e}")),
        }
    };
    for group in &policy.exempt_groups {
        if member_of.contains(&resolve(group, "exempt_groups")?) {
            return Ok(GroupDecision::Exempt {
                group: group.clone(),
            });
        }
    }
    if policy.require_groups.is_empty() {
        return Ok(GroupDecision::Ask);
    }
    for group in &policy.require_groups {
        if member_of.contains(&resolve(group, "require_groups")?) {
            return Ok(GroupDecision::Ask);
        }
    }
    Ok(GroupDecision::NotRequired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_date;

    #[test]
    fn allow_until_is_inclusive_of_the_day() {
        let day = parse_date("2030-01-31").unwrap();
        let start = u64::try_from(day).unwrap() * 86_400;
        let policy = Unenrolled::AllowUntil(day);
        let deadline = "2030-01-31".to_string();
        assert_eq!(
            unenrolled(policy, start + 86_399),
            UnenrolledDecision::AllowUntil {
                deadline: deadline.clone()
            }
        );
        assert_eq!(
            unenrolled(policy, start - 1),
            UnenrolledDecision::AllowUntil {
                deadline: deadline.clone()
            }
        );
        assert_eq!(
            unenrolled(policy, start + 86_400),
            UnenrolledDecision::DenyExpired { deadline }
        );
        assert_eq!(
            unenrolled(Unenrolled::Deny, start),
            UnenrolledDecision::Deny
        );
        assert_eq!(
            unenrolled(Unenrolled::Allow, start),
            UnenrolledDecision::Allow
        );
    }

    #[test]
    fn group_rules_use_real_groups() {
        let root = User::from_uid(nix::unistd::Uid::from_raw(0))
            .unwrap()
            .unwrap();
        let mut policy = Policy::default();
        assert_eq!(groups(&policy, &root), Ok(GroupDecision::Ask));
        policy.exempt_groups = vec!["root".into()];
        assert_eq!(
            groups(&policy, &root),
            Ok(GroupDecision::Exempt {
                group: "root".into()
            })
        );
        policy.exempt_groups = vec!["no-such-group-xyz".into()];
        assert!(groups(&policy, &root)
            .unwrap_err()
            .contains("does not exist"));
        policy.exempt_groups.clear();
        policy.require_groups = vec!["root".into()];
        assert_eq!(groups(&policy, &root), Ok(GroupDecision::Ask));
        policy.require_groups = vec!["nogroup".into()];
        assert_eq!(groups(&policy, &root), Ok(GroupDecision::NotRequired));
    }
}
