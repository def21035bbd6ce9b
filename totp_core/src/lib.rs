//! The shared rules of pam_totp.
//!
//! Both `pam_totp.so` and `totpctl` call into this crate, so there is exactly one
//! implementation of each rule: the file formats ([`record`], [`state`], [`config`]),
//! safe file access and locking ([`fsio`], [`store`]), code verification ([`otp`],
//! [`recovery`]), and policy ([`policy`], [`throttle`]). The whole login decision
//! reads top to bottom in [`login`].
//!
//! No unsafe code, except the one `openat` wrapper in [`fsio`] that takes
//! ownership of the descriptor it returns.
#![deny(unsafe_code)]

pub mod answer;
pub mod args;
pub mod attempt;
pub mod config;
pub mod directory_check;
pub mod enrollment;
pub mod fsio;
pub mod helper;
pub mod login;
pub mod lost_state;
pub mod names;
pub mod otp;
pub mod pamstack;
pub mod policy;
pub mod record;
pub mod recovery;
pub mod resync;
pub mod secret;
pub mod state;
pub mod store;
pub mod throttle;
pub mod time;

/// Random-looking numbers for tests, from a seed of getrandom(2): xorshift64,
/// for spread, not secrecy.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_numbers() -> impl FnMut() -> u64 {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).unwrap();
    let mut x = u64::from_le_bytes(seed) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
