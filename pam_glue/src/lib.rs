//! The PAM glue around [`totp_core::login`], shared by the two modules:
//! `pam_totp.so` (`pam_module`, the files store) and `pam_totp_ldap.so`
//! (`pam_module_ldap`, which adds the LDAP store).
//!
//! Each module is a thin crate that says what differs, as a [`Variant`],
//! and exports the PAM entry points for [`PamTotp`] over it:
//!
//! ```ignore
//! pamsm::pam_module!(pam_glue::PamTotp<Files>);
//! ```
//!
//! - `glue`: the entry points ([`PamTotp`]), the outcome line, the return
//!   codes, and the panic guard at the boundary;
//! - `conv`: the PAM conversation (the unsafe code it needs);
//! - `helper`: running the setuid helper `totp-verify`.

mod conv;
mod glue;
mod helper;

pub use glue::{log_denied, PamTotp, Variant};
