//! The files store's state file, `state_dir/<user>.state`: two fixed-size
//! slots, rewritten in place with `pwrite` under the user's lock.
//!
//! ```text
//! offset 0     slot 0: header line, the state as TOML, '\n' padding to 4096 bytes
//! offset 4096  slot 1: the same layout
//! header:      #pam_totp-state-slot v1 seq=<16 hex> len=<4 hex> sum=<16 hex>\n
//! ```
//!
//! A writer puts the next state into the slot that does not hold the newest
//! one, with the next sequence number; a reader takes the valid slot with
//! the highest sequence number. A slot is valid when its header parses, its
//! checksum (FNV-1a, 64 bits, over the sequence number and the body)
//! matches and its body is a valid state. So a write cut short (SIGKILL, a
//! crash, a torn page) spoils at most the slot being written, and the other
//! slot, the state before that write, is read instead.
//!
//! The body is the same strict TOML as ever ([`LoginState`]), and the whole
//! file is text, so an administrator can read it with `cat` and one parser
//! (the fuzzed one) reads both this file and the TOML files of earlier
//! releases ([`crate::state::LoginState::parse`] takes either).
//!
//! Which writes are synced, and why that is enough, is in
//! [`crate::store::files`].

use crate::state::LoginState;

/// Bytes per slot: one page, so a page torn by a crash spoils one slot.
pub const SLOT: usize = 4096;
/// Bytes of a whole state file.
pub const FILE: usize = 2 * SLOT;

const MAGIC: &str = "#pam_totp-state-slot v1 ";
/// `#pam_totp-state-slot v1 seq=` + 16 + ` len=` + 4 + ` sum=` + 16 + `\n`.
const HEADER: usize = MAGIC.len() + 4 + 16 + 5 + 4 + 5 + 16 + 1;
/// The longest state a slot holds.
pub const BODY_LIMIT: usize = SLOT - HEADER;

/// The newest valid slot of a state file.
#[derive(Debug, PartialEq, Eq)]
pub struct Newest {
    pub state: LoginState,
    /// Its sequence number.
    pub seq: u64,
    /// Which slot holds it (0 or 1).
    pub slot: usize,
}

/// Is `text` a slotted state file (rather than a TOML one of an earlier
/// release)? It is if either slot starts with the header, or if it has
/// the slotted size (both slots spoilt).
pub fn is_slotted(text: &[u8]) -> bool {
    text.starts_with(MAGIC.as_bytes())
        || text
            .get(SLOT..)
            .is_some_and(|rest| rest.starts_with(MAGIC.as_bytes()))
        || text.len() == FILE
}

/// The newest valid slot, or why there is none. Only the newest slot whose
/// checksum holds is parsed (the other only if that one does not parse).
pub fn newest(text: &[u8]) -> Result<Newest, String> {
    let mut intact: Vec<(u64, usize, &[u8])> = Vec::with_capacity(2);
    let mut why = Vec::new();
    for slot in 0..2 {
        let start = slot * SLOT;
        let Some(bytes) = text.get(start..text.len().min(start + SLOT)) else {
            why.push(format!("slot {slot} is missing (the file is cut short)"));
            continue;
        };
        match check_slot(bytes) {
            Ok((seq, body)) => intact.push((seq, slot, body)),
            Err(e) => why.push(format!("slot {slot} {e}")),
        }
    }
    intact.sort_by_key(|i| std::cmp::Reverse(i.0));
    for (seq, slot, body) in intact {
        let parsed = std::str::from_utf8(body)
            .map_err(|_| "is not text".to_string())
            .and_then(|text| LoginState::parse_toml(text).map_err(|e| format!("is invalid ({e})")));
        match parsed {
            Ok(state) => return Ok(Newest { state, seq, slot }),
            Err(e) => why.push(format!("slot {slot} {e}")),
        }
    }
    Err(format!("no intact copy: {}", why.join(", ")))
}

/// A slot's sequence number and body, if its header parses and its
/// checksum holds.
fn check_slot(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let header = bytes
        .get(..HEADER)
        .ok_or_else(|| "is cut short".to_string())?;
    let header = std::str::from_utf8(header).map_err(|_| "has no header".to_string())?;
    let fields = header
        .strip_prefix(MAGIC)
        .and_then(|h| h.strip_suffix('\n'))
        .ok_or_else(|| "has no header".to_string())?;
    let field = |name: &str, from: usize, digits: usize| -> Result<u64, String> {
        let raw = fields
            .get(from..from + name.len() + 1 + digits)
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix('='))
            .filter(|f| {
                f.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            })
            .ok_or_else(|| "has a damaged header".to_string())?;
        u64::from_str_radix(raw, 16).map_err(|_| "has a damaged header".to_string())
    };
    let seq = field("seq", 0, 16)?;
    let len = field("len", 21, 4)?;
    let sum = field("sum", 30, 16)?;
    if fields.as_bytes().get(20) != Some(&b' ') || fields.as_bytes().get(29) != Some(&b' ') {
        return Err("has a damaged header".into());
    }
    let len = usize::try_from(len).map_err(|_| "has a damaged header".to_string())?;
    if len > BODY_LIMIT {
        return Err("has a damaged header".into());
    }
    let body = bytes
        .get(HEADER..HEADER + len)
        .ok_or_else(|| "is cut short".to_string())?;
    if checksum(seq, body) != sum {
        return Err("fails its checksum (a torn write)".into());
    }
    Ok((seq, body))
}

/// FNV-1a (64 bits) over a domain string, the sequence number and the body.
/// It finds torn, zeroed and mixed-up slots; it is no defence against a
/// forger, who would need root, and root may write any state anyway. (It
/// was SHA-256 at first: six of them per login cost about 50,000
/// instructions, a tenth of a login's own work.)
fn checksum(seq: u64, body: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in b"pam_totp state slot\0"
        .iter()
        .chain(&seq.to_le_bytes())
        .chain(body)
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One slot holding `state` with sequence number `seq`: exactly [`SLOT`]
/// bytes. Fails for a state that does not fit (or that TOML cannot hold);
/// the caller must then refuse rather than write less.
pub fn encode(state: &LoginState, seq: u64) -> Result<Vec<u8>, String> {
    let body = state.to_toml()?;
    if body.len() > BODY_LIMIT {
        return Err(format!(
            "the login state is {} bytes, more than a slot holds ({BODY_LIMIT})",
            body.len()
        ));
    }
    let mut slot = Vec::with_capacity(SLOT);
    slot.extend_from_slice(
        format!(
            "{MAGIC}seq={seq:016x} len={:04x} sum={:016x}\n",
            body.len(),
            checksum(seq, body.as_bytes())
        )
        .as_bytes(),
    );
    debug_assert_eq!(slot.len(), HEADER);
    slot.extend_from_slice(body.as_bytes());
    slot.resize(SLOT, b'\n');
    Ok(slot)
}

/// [`encode`], for the store's writes: a state too large for a slot is
/// almost always one with a huge remote host name, and that name is
/// dropped (so the grace period does not apply to it) rather than refusing
/// the login. An earlier release's TOML state kept a host of any length.
pub fn encode_fitting(state: &LoginState, seq: u64) -> Result<Vec<u8>, String> {
    encode(state, seq).or_else(|e| match state.last_success_rhost {
        Some(_) => encode(
            &LoginState {
                last_success_rhost: None,
                ..state.clone()
            },
            seq,
        ),
        None => Err(e),
    })
}

/// A whole new file: both slots hold `state` (sequence numbers `seq` and
/// `seq + 1`, each from [`encode_fitting`]), so either one alone is enough.
pub fn encode_file(state: &LoginState, seq: u64) -> Result<Vec<u8>, String> {
    let mut file = encode_fitting(state, seq)?;
    file.extend_from_slice(&encode_fitting(state, seq.wrapping_add(1))?);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(failures: u32) -> LoginState {
        LoginState {
            failures,
            last_step: Some(56_666_666),
            used_recovery: vec![1, 4],
            hotp_next: Some(9),
            last_success_rhost: Some("192.0.2.1".into()),
            ..LoginState::new()
        }
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let mut file = encode_file(&state(0), 1).unwrap();
        assert_eq!(file.len(), FILE);
        assert!(std::str::from_utf8(&file).is_ok());
        let n = newest(&file).unwrap();
        assert_eq!((n.seq, n.slot, n.state), (2, 1, state(0)));
        // The next write goes to slot 0, with seq 3.
        file[..SLOT].copy_from_slice(&encode(&state(1), 3).unwrap());
        let n = newest(&file).unwrap();
        assert_eq!((n.seq, n.slot, n.state.failures), (3, 0, 1));
        // The same through the one parser.
        let text = std::str::from_utf8(&file).unwrap();
        assert_eq!(LoginState::parse(text).unwrap().failures, 1);
    }

    /// A torn slot (any byte changed, zeroed, cut short) is skipped for the
    /// other one; with both spoilt there is no state.
    #[test]
    fn a_torn_slot_falls_back_to_the_other() {
        let mut file = encode_file(&state(0), 1).unwrap();
        file[..SLOT].copy_from_slice(&encode(&state(1), 3).unwrap());
        for at in [0, 30, HEADER - 1, HEADER + 3, HEADER + 40] {
            let mut torn = file.clone();
            torn[at] ^= 0x01;
            let n = newest(&torn).unwrap();
            assert_eq!((n.seq, n.state.failures), (2, 0), "byte {at}");
        }
        let mut zeroed = file.clone();
        zeroed[..SLOT].fill(0);
        assert!(is_slotted(&zeroed));
        assert_eq!(newest(&zeroed).unwrap().seq, 2);
        let mut zeroed = file.clone();
        zeroed[SLOT..].fill(0);
        assert_eq!(newest(&zeroed).unwrap().seq, 3);
        // Cut short inside slot 1: slot 0 stands.
        assert_eq!(newest(&file[..SLOT + 100]).unwrap().seq, 3);
        assert_eq!(
            newest(&file[..HEADER + 5])
                .err()
                .map(|e| e.contains("cut short")),
            Some(true)
        );
        let mut both = file.clone();
        both[10] = b'x';
        both[SLOT + 10] = b'x';
        let e = newest(&both).unwrap_err();
        assert!(e.starts_with("no intact copy"), "{e}");
        assert!(!e.contains('\n'));
    }

    /// A newer slot whose checksum holds but whose state does not parse
    /// (written by something else than this module) yields to the other.
    #[test]
    fn a_newer_slot_that_does_not_parse_yields_to_the_other() {
        let mut file = encode_file(&state(0), 1).unwrap();
        let body = b"version = 1\nfailures = -1\n";
        let mut bad = format!(
            "{MAGIC}seq={:016x} len={:04x} sum={:016x}\n",
            9,
            body.len(),
            checksum(9, body)
        )
        .into_bytes();
        bad.extend_from_slice(body);
        bad.resize(SLOT, b'\n');
        file[..SLOT].copy_from_slice(&bad);
        let n = newest(&file).unwrap();
        assert_eq!((n.seq, n.slot), (2, 1));
        file[SLOT..].copy_from_slice(&bad);
        let e = newest(&file).unwrap_err();
        assert!(e.contains("is invalid"), "{e}");
    }

    #[test]
    fn a_state_too_large_for_a_slot_is_an_error() {
        let mut s = state(0);
        s.last_success_rhost = Some("h".repeat(SLOT));
        assert!(encode(&s, 1).is_err());
        s.last_success_rhost = Some("h".repeat(BODY_LIMIT - 300));
        let fits = encode(&s, 1).unwrap();
        assert_eq!(fits.len(), SLOT);
    }

    #[test]
    fn legacy_toml_is_not_slotted() {
        assert!(!is_slotted(b"version = 1\nfailures = 2\n"));
        assert!(!is_slotted(b""));
    }
}
