//! Codes checked by the directory (`ldap.verify = "directory"`): the host
//! holds no seed. slapd's otp overlay compares the code at bind time and
//! records the step (HOTP: the counter) it accepted; the store reads that
//! back and hands it here, where the host decides on its own state, as
//! with a code it compared itself:
//!
//! - the failure was written before the bind (count before compare: see
//!   [`crate::attempt`]);
//! - the step must be later than the last one this fleet accepted, and
//!   within the window around now (a step the overlay found through a
//!   learned drift, or a wrong clock on the server, is not this host's);
//! - only the compare-and-swap of that step into the state admits the
//!   login. The overlay alone is not single-use under parallel binds; the
//!   swap is, and a lost swap is decided again on what the winner wrote,
//!   with the same answer from the directory (it is asked once).
//!
//! Clock skew is not learned in this mode: the overlay's own drift is
//! written where it never takes effect (OpenLDAP 2.5), and a host cannot
//! compute a candidate's codes. The window applies.

use crate::attempt::{Accepted, Miss};
use crate::config::OtpConfig;
use crate::otp::{Code, OtpType};
use crate::record::UserRecord;
use crate::state::LoginState;
use crate::store::{StoreError, UserLock};

/// What the directory said of a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted, for this time step (TOTP) or counter (HOTP), as the
    /// directory recorded it.
    Accepted(u64),
    /// Refused: wrong, already used there, outside its window, or the
    /// account is locked by the directory's password policy (it does not
    /// say which).
    Refused,
}

/// A code to check in the directory, asked at most once per attempt.
pub(crate) struct Asked<'c> {
    code: &'c Code,
    said: Option<Verdict>,
}

impl<'c> Asked<'c> {
    pub(crate) fn new(code: &'c Code) -> Self {
        Self { code, said: None }
    }

    /// Decide on `state`: ask the directory the first time, and on a later
    /// call (after a lost compare-and-swap) decide again on its first answer.
    pub(crate) fn decide(
        &mut self,
        lock: &UserLock<'_>,
        record: &UserRecord,
        state: &mut LoginState,
        now: u64,
        otp: &OtpConfig,
    ) -> Result<Result<Accepted, Miss>, StoreError> {
        let said = match self.said {
            Some(said) => said,
            None => {
                let said = lock.check_code(record, self.code)?;
                self.said = Some(said);
                said
            }
        };
        Ok(apply(said, record, state, now, otp))
    }
}

/// The host's decision on what the directory said, marking in `state` what
/// a success uses up.
pub(crate) fn apply(
    said: Verdict,
    record: &UserRecord,
    state: &mut LoginState,
    now: u64,
    otp: &OtpConfig,
) -> Result<Accepted, Miss> {
    let Verdict::Accepted(value) = said else {
        return Err(Miss::WrongCode);
    };
    match record.kind {
        OtpType::Totp => {
            if state.last_step.is_some_and(|used| value <= used) {
                return Err(Miss::Replayed);
            }
            let current = record.params.step_at(now);
            if current.abs_diff(value) > u64::from(otp.window) {
                return Err(Miss::WrongCode);
            }
            state.last_step = Some(value);
            Ok(Accepted::Code { step: value })
        }
        OtpType::Hotp => {
            let next = state.hotp_next.unwrap_or(0);
            if value < next {
                return Err(Miss::Replayed);
            }
            if value - next > u64::from(otp.look_ahead) {
                return Err(Miss::WrongCode);
            }
            let Some(after) = value.checked_add(1) else {
                return Err(Miss::Replayed);
            };
            state.hotp_next = Some(after);
            Ok(Accepted::Counter { counter: value })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, OtpParams};
    use crate::record::Status;
    use crate::secret::SecretBytes;

    fn record(kind: OtpType) -> UserRecord {
        UserRecord {
            status: Status::Active,
            kind,
            secret: SecretBytes::held_by_directory().unwrap(),
            params: OtpParams::new(Algorithm::SHA1, 6, 30).unwrap(),
            label: None,
            issuer: None,
            created_at: None,
            activated_at: None,
            recovery: Vec::new(),
            serial: None,
        }
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_step_is_accepted_once_and_only_near_now() {
        let otp = OtpConfig::default();
        let r = record(OtpType::Totp);
        let step = NOW / 30;
        let mut state = LoginState::new();
        assert_eq!(
            apply(Verdict::Accepted(step), &r, &mut state, NOW, &otp),
            Ok(Accepted::Code { step })
        );
        assert_eq!(state.last_step, Some(step));
        // The same step again, or an earlier one: used.
        for s in [step, step - 1] {
            assert_eq!(
                apply(Verdict::Accepted(s), &r, &mut state, NOW, &otp),
                Err(Miss::Replayed)
            );
        }
        // Beyond the window (a drift the directory learned): not this host's.
        let far = step + u64::from(otp.window) + 1;
        assert_eq!(
            apply(Verdict::Accepted(far), &r, &mut state, NOW, &otp),
            Err(Miss::WrongCode)
        );
        assert_eq!(state.last_step, Some(step));
        assert_eq!(
            apply(Verdict::Refused, &r, &mut state, NOW, &otp),
            Err(Miss::WrongCode)
        );
    }

    #[test]
    fn a_counter_moves_forward_within_the_look_ahead() {
        let otp = OtpConfig::default();
        let r = record(OtpType::Hotp);
        let mut state = LoginState::new();
        state.hotp_next = Some(5);
        assert_eq!(
            apply(Verdict::Accepted(4), &r, &mut state, NOW, &otp),
            Err(Miss::Replayed)
        );
        let beyond = 5 + u64::from(otp.look_ahead) + 1;
        assert_eq!(
            apply(Verdict::Accepted(beyond), &r, &mut state, NOW, &otp),
            Err(Miss::WrongCode)
        );
        assert_eq!(
            apply(Verdict::Accepted(7), &r, &mut state, NOW, &otp),
            Ok(Accepted::Counter { counter: 7 })
        );
        assert_eq!(state.hotp_next, Some(8));
    }
}
