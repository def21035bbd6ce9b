//! A user's entry as read, and the state's attributes both ways.

use crate::{OBJECT_CLASS, RECORD_ATTR, SERIAL_ATTR, STATE_ATTRS};
use ldap3::asn1::StructureTag;
use std::collections::{HashMap, HashSet};
use totp_core::names::UserName;
use totp_core::state::LoginState;
use totp_core::store::{StateRead, StoreError};
use zeroize::Zeroizing;

/// A user's entry as read: the record's text, the state and its serial.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The record of this host's mode: `totpRecord` when hosts check codes,
    /// `totpPublicRecord` when the directory does (see `directory_verify`).
    pub(crate) record: Option<Zeroizing<String>>,
    pub(crate) serial: Option<i64>,
    pub(crate) state: Result<LoginState, String>,
}

/// The attributes of an entry as a server sent them: names lowercased,
/// values as text.
pub(crate) type Attrs = HashMap<String, Vec<String>>;

/// The DN and attributes of a search result entry, checked as it is taken
/// apart: a server that sends a malformed one gets an error, never a
/// panic (ldap3's `SearchEntry::construct` panics on one). Nothing the
/// server sent is quoted in the error.
pub(crate) fn parse_entry(tag: StructureTag) -> Result<(String, Attrs), String> {
    parse_entry_with(tag, |bytes| String::from_utf8(bytes).ok())
}

/// An entry's attributes with their values as bytes, binary ones too
/// (`totpctl check` looks at whatever the server returns). Names lowercased.
pub type RawAttrs = HashMap<String, Vec<Vec<u8>>>;

/// [`parse_entry`] for any entry a search returns, binary values kept as
/// they are: the DN and the attributes, or an error, never a panic.
pub fn parse_search_entry(entry: ldap3::ResultEntry) -> Result<(String, RawAttrs), String> {
    parse_entry_with(entry.0, Some)
}

/// Take an entry apart, each value through `value` (`None`: malformed).
fn parse_entry_with<V>(
    tag: StructureTag,
    value: impl Fn(Vec<u8>) -> Option<V>,
) -> Result<(String, HashMap<String, Vec<V>>), String> {
    let bad = |what: &str| format!("the server sent a malformed entry ({what})");
    let text = |tag: StructureTag| {
        tag.expect_primitive()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let mut parts = tag
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .ok_or_else(|| bad("not a search result entry"))?
        .into_iter();
    let dn = parts.next().and_then(text).ok_or_else(|| bad("its DN"))?;
    let list = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or_else(|| bad("its attribute list"))?;
    let mut attrs = HashMap::new();
    for attr in list {
        let mut attr = attr
            .expect_constructed()
            .ok_or_else(|| bad("an attribute"))?
            .into_iter();
        let name = attr
            .next()
            .and_then(text)
            .ok_or_else(|| bad("an attribute's name"))?;
        let values = attr
            .next()
            .and_then(StructureTag::expect_constructed)
            .ok_or_else(|| bad("an attribute's values"))?
            .into_iter()
            .map(|v| {
                v.expect_primitive()
                    .and_then(&value)
                    .ok_or_else(|| bad("a value that is not text"))
            })
            .collect::<Result<Vec<V>, String>>()?;
        attrs
            .entry(name.to_ascii_lowercase())
            .or_insert_with(Vec::new)
            .extend(values);
    }
    Ok((dn, attrs))
}

/// What a base search of `user`'s entry returned, judged. `Ok(None)`
/// only for an entry of another spelling of the name (LDAP matches names
/// without case; Unix does not). An entry whose object class, `uid` or
/// record this bind cannot read is an error (the reason), never "not
/// enrolled": the schema makes all three MUST, so when one is missing the
/// access rules hide it, and a transition policy must not skip the code.
pub(crate) fn judge(
    user: &UserName,
    mut attrs: Attrs,
    record_attr: &str,
) -> Result<Option<Entry>, String> {
    if let Some(why) = unreadable(&attrs, record_attr) {
        return Err(why);
    }
    let uid = attrs.remove("uid").unwrap_or_default();
    if !uid.iter().any(|u| u == user.as_str()) {
        return Ok(None);
    }
    attrs.remove("objectclass");
    Ok(Some(Entry::from_attrs(attrs, record_attr)))
}

/// What of a user entry's object class, `uid` and record this bind cannot
/// read (or that it is no user entry at all); `None` when all is there.
pub(crate) fn unreadable(attrs: &Attrs, record_attr: &str) -> Option<String> {
    let values = |name: &str| {
        attrs
            .get(&name.to_ascii_lowercase())
            .map_or(&[][..], Vec::as_slice)
    };
    let hidden = |what: &str| Some(format!("its {what} is not readable by this bind"));
    let classes = values("objectClass");
    if classes.is_empty() {
        return hidden("objectClass");
    }
    if !classes.iter().any(|c| c.eq_ignore_ascii_case(OBJECT_CLASS)) {
        return Some(format!("it is not a {OBJECT_CLASS} entry"));
    }
    if values("uid").is_empty() {
        return hidden("uid");
    }
    if values(record_attr).is_empty() {
        return hidden(record_attr);
    }
    None
}

/// The parsing a server's entry goes through, from the BER of a search
/// result entry to the login state, for the fuzz target: the state read
/// (if the entry is the user "fuzz"'s and its state parses), and that
/// state written to attributes and read back, which must be the same.
#[doc(hidden)]
pub fn fuzz_entry(bytes: &[u8]) -> Result<Option<(LoginState, LoginState)>, String> {
    let (_, tag) = ldap3::asn1::parse_tag(bytes).map_err(|_| "not BER".to_owned())?;
    let (_, attrs) = parse_entry(tag)?;
    let user = UserName::parse(b"fuzz").map_err(|e| e.to_string())?;
    let Some(entry) = judge(&user, attrs, RECORD_ATTR)? else {
        return Ok(None);
    };
    let _ = entry.state_read("uid=fuzz");
    let Ok(state) = entry.state else {
        return Ok(None);
    };
    let written: Attrs = state_values(&state)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let again = state_from_attrs(&written)?;
    Ok(Some((state, again)))
}

impl Entry {
    pub(crate) fn from_attrs(mut attrs: Attrs, record_attr: &str) -> Self {
        let record = attrs
            .remove(&record_attr.to_ascii_lowercase())
            .and_then(|mut v| v.pop())
            .map(Zeroizing::new);
        let serial = attrs
            .remove(&SERIAL_ATTR.to_ascii_lowercase())
            .and_then(|v| v.first().and_then(|s| s.parse().ok()));
        Self {
            record,
            serial,
            state: state_from_attrs(&attrs),
        }
    }

    pub(crate) fn state_read(&self, dn: &str) -> StateRead {
        match &self.state {
            Ok(state) => StateRead {
                state: state.clone(),
                problem: None,
                lost: false,
            },
            Err(e) => StateRead {
                state: LoginState::new(),
                lost: true,
                problem: Some(format!(
                    "login state of {dn} is corrupt ({e}); starting afresh"
                )),
            },
        }
    }
}

/// The state's attributes and their values; an empty list deletes it.
pub(crate) fn state_values(s: &LoginState) -> Vec<(&'static str, Vec<String>)> {
    fn one<T: ToString>(v: Option<T>) -> Vec<String> {
        v.map(|v| v.to_string()).into_iter().collect()
    }
    let nonzero = |n: u32| one((n != 0).then_some(n));
    let [last_step, failures, hotp_next, skew, resync_offset, resync_step, resync_at, since, not_before, last_failure_at, locked_until, last_success_at, rhost, used] =
        STATE_ATTRS;
    vec![
        (last_step, one(s.last_step)),
        (failures, nonzero(s.failures)),
        (hotp_next, one(s.hotp_next)),
        (skew, one(s.skew)),
        (resync_offset, one(s.resync_offset)),
        (resync_step, one(s.resync_step)),
        (resync_at, one(s.resync_at)),
        (since, nonzero(s.failures_since_success)),
        (not_before, one(s.not_before)),
        (last_failure_at, one(s.last_failure_at)),
        (locked_until, one(s.locked_until)),
        (last_success_at, one(s.last_success_at)),
        (rhost, one(s.last_success_rhost.clone())),
        (used, s.used_recovery.iter().map(u32::to_string).collect()),
    ]
}

pub(crate) fn state_from_attrs(attrs: &HashMap<String, Vec<String>>) -> Result<LoginState, String> {
    fn get<T: std::str::FromStr>(
        attrs: &HashMap<String, Vec<String>>,
        name: &str,
    ) -> Result<Option<T>, String> {
        match attrs.get(&name.to_ascii_lowercase()).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => one
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} is not a valid number")),
            Some(_) => Err(format!("{name} has several values")),
        }
    }
    let [last_step, failures, hotp_next, skew, resync_offset, resync_step, resync_at, since, not_before, last_failure_at, locked_until, last_success_at, rhost, used] =
        STATE_ATTRS;
    let used_recovery = attrs
        .get(&used.to_ascii_lowercase())
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("{used} is not a valid number"))
                })
                .collect::<Result<Vec<u32>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    let rhost = match attrs.get(&rhost.to_ascii_lowercase()).map(Vec::as_slice) {
        None | Some([]) => None,
        Some([one]) => Some(one.clone()),
        Some(_) => return Err(format!("{rhost} has several values")),
    };
    Ok(LoginState {
        version: totp_core::state::FORMAT_VERSION,
        last_step: get(attrs, last_step)?,
        failures: get(attrs, failures)?.unwrap_or(0),
        hotp_next: get(attrs, hotp_next)?,
        skew: get(attrs, skew)?,
        resync_offset: get(attrs, resync_offset)?,
        resync_step: get(attrs, resync_step)?,
        resync_at: get(attrs, resync_at)?,
        failures_since_success: get(attrs, since)?.unwrap_or(0),
        not_before: get(attrs, not_before)?,
        last_failure_at: get(attrs, last_failure_at)?,
        locked_until: get(attrs, locked_until)?,
        last_success_at: get(attrs, last_success_at)?,
        last_success_rhost: rhost,
        used_recovery,
    })
}

pub(crate) fn set<const N: usize>(values: [String; N]) -> HashSet<String> {
    values.into_iter().collect()
}

/// The serial of a new entry: random, so that an entry removed and made
/// again does not start where the old one did, and a compare-and-swap
/// begun on the old one cannot succeed on the new one.
pub(crate) fn initial_serial() -> Result<i64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("no random serial: {e}")))?;
    // 40 bits: far from the end, however many writes follow.
    Ok(i64::from_le_bytes(bytes) & ((1 << 40) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_entry_is_an_error_where_ldap3_panics() {
        // A search result entry with a DN and no attribute list, and one
        // whose attribute list is a plain string.
        for bytes in [
            &[0x64, 0x03, 0x04, 0x01, b'x'][..],
            &[0x64, 0x06, 0x04, 0x01, b'x', 0x04, 0x01, b'y'][..],
        ] {
            let err = fuzz_entry(bytes).unwrap_err();
            assert!(err.contains("malformed entry"), "{err}");
            // What totpctl check takes any entry apart with: the same.
            let (_, tag) = ldap3::asn1::parse_tag(bytes).unwrap();
            let err = parse_search_entry(ldap3::ResultEntry::new(tag)).unwrap_err();
            assert!(err.contains("malformed entry"), "{err}");
            let (_, tag) = ldap3::asn1::parse_tag(bytes).unwrap();
            let constructed = std::panic::catch_unwind(|| {
                ldap3::SearchEntry::construct(ldap3::ResultEntry::new(tag))
            });
            assert!(constructed.is_err(), "ldap3's own parser panics on it");
        }
    }

    /// A binary value (a seed, a password hash) is kept as bytes for
    /// `totpctl check`, which looks for key material by name.
    #[test]
    fn a_search_entry_keeps_binary_values() {
        // dn "x", attribute "oathSecret" with the value ff 00.
        let bytes = [
            0x64, 0x19, 0x04, 0x01, b'x', 0x30, 0x14, 0x30, 0x12, 0x04, 0x0a, b'o', b'a', b't',
            b'h', b'S', b'e', b'c', b'r', b'e', b't', 0x31, 0x04, 0x04, 0x02, 0xff, 0x00,
        ];
        let (_, tag) = ldap3::asn1::parse_tag(&bytes[..]).unwrap();
        let (dn, attrs) = parse_search_entry(ldap3::ResultEntry::new(tag)).unwrap();
        assert_eq!(dn, "x");
        assert_eq!(attrs.get("oathsecret"), Some(&vec![vec![0xff, 0x00]]));
        // The text reading of the same entry refuses it.
        assert!(fuzz_entry(&bytes).is_err());
    }

    #[test]
    fn state_round_trips_through_attributes() {
        let state = LoginState {
            last_step: Some(57_000_000),
            failures: 3,
            hotp_next: Some(12),
            skew: Some(-2),
            resync_offset: Some(4),
            resync_step: Some(57_000_004),
            resync_at: Some(1_700_000_000),
            failures_since_success: 13,
            not_before: Some(1_700_000_004),
            last_failure_at: Some(1_700_000_001),
            locked_until: Some(1_700_000_900),
            last_success_at: Some(1_699_999_000),
            last_success_rhost: Some("192.0.2.7".into()),
            used_recovery: vec![2, 5],
            ..LoginState::new()
        };
        let attrs: HashMap<String, Vec<String>> = state_values(&state)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        assert_eq!(state_from_attrs(&attrs).unwrap(), state);
        let empty: HashMap<String, Vec<String>> = state_values(&LoginState::new())
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert!(
            empty.is_empty(),
            "a fresh state writes no attribute: {empty:?}"
        );
    }

    #[test]
    fn a_malformed_attribute_is_reported_not_guessed() {
        let mut attrs = HashMap::new();
        attrs.insert("totpfailures".to_owned(), vec!["many".to_owned()]);
        assert!(state_from_attrs(&attrs)
            .unwrap_err()
            .contains("totpFailures"));
        attrs.insert("totpfailures".to_owned(), vec!["1".into(), "2".into()]);
        assert!(state_from_attrs(&attrs).unwrap_err().contains("several"));
    }
}
