//! A login state that was lost (missing, corrupt, untrusted): what it no
//! longer says is taken the safe way before anything is decided on it.
//! Every recovery code counts as used; a HOTP counter stays unknown, which
//! the gate refuses (see [`crate::attempt`]).

use crate::record::UserRecord;
use crate::state::LoginState;
use crate::store::UserLock;

/// Read the state under the lock, keeping in `note` what was wrong with it.
/// A state that was lost (missing, corrupt, untrusted) no longer says
/// which recovery codes were used, so every one counts as used (see
/// [`forget_recovery`]); its HOTP counter is gone too, which [`gate`]
/// refuses.
pub(crate) fn read_state(
    lock: &UserLock<'_>,
    record: &UserRecord,
    note: &mut Option<String>,
) -> LoginState {
    let read = lock.read_state();
    let mut state = read.state;
    let mut said: Vec<String> = note.take().into_iter().chain(read.problem).collect();
    if read.lost {
        said.extend(forget_recovery(record, &mut state));
    }
    said.dedup();
    *note = (!said.is_empty()).then(|| said.join("; "));
    state
}

/// A state that was lost cannot tell which of the record's recovery codes
/// were used: mark them all used, so none comes back (an administrator
/// issues new ones with `totpctl recovery-codes`). Returns what to log, if
/// any code was still unused.
pub fn forget_recovery(record: &UserRecord, state: &mut LoginState) -> Option<String> {
    let unknown: Vec<u32> = record
        .recovery
        .iter()
        .map(|code| code.id)
        .filter(|id| !state.used_recovery.contains(id))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    state.used_recovery.extend(&unknown);
    Some(format!(
        "the login state was lost, so which recovery codes were used is unknown: all {} are \
         treated as used until new ones are issued (totpctl recovery-codes --regenerate)",
        record.recovery.len()
    ))
}
