//! The PAM conversation, with the one piece of unsafe code this module needs.
//!
//! pamsm's `conv()` returns the application's reply as a borrowed `&CStr` and
//! never frees it. By the conversation contract (pam_conv(3)) the module owns
//! the reply and must free it, so a password-like answer would otherwise stay in
//! the heap until the process exits. Here the reply is copied into a buffer that
//! is wiped on drop, the C string is overwritten with zeros, and then freed.
//! (The small `struct pam_response` array around it is allocated by the
//! application and dropped by pamsm without being freed; it holds only a
//! pointer and a return code, about 16 bytes per prompt.)

use pamsm::{Pam, PamLibExt, PamMsgStyle};
use zeroize::Zeroizing;

/// Ask with echo off and take ownership of the reply.
pub fn ask_hidden(pam: &Pam, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    match pam.conv(Some(prompt), PamMsgStyle::PROMPT_ECHO_OFF) {
        Ok(Some(reply)) => {
            let ptr = reply.as_ptr().cast_mut();
            let len = reply.to_bytes().len();
            let mut copy = Zeroizing::new(Vec::with_capacity(len));
            copy.extend_from_slice(reply.to_bytes());
            // SAFETY: `ptr` is the `resp` string of the reply that the application's
            // conversation function allocated with malloc(3) for this call, as
            // pam_conv(3) requires, and ownership passed to the module. It holds
            // `len` bytes plus a NUL terminator, so zeroing `len` bytes stays in
            // bounds. `reply` is not used after this block, and nothing else
            // (pamsm keeps no reference) reads or frees the string.
            unsafe {
                std::ptr::write_bytes(ptr, 0, len);
                nix::libc::free(ptr.cast());
            }
            Ok(copy)
        }
        Ok(None) => Err("the application returned no answer".into()),
        Err(e) => Err(format!("conversation error {e}")),
    }
}

/// Show a message. Any reply string to a message is unexpected; free it too.
pub fn show(pam: &Pam, text: &str, is_error: bool) {
    let style = if is_error {
        PamMsgStyle::ERROR_MSG
    } else {
        PamMsgStyle::TEXT_INFO
    };
    if let Ok(Some(reply)) = pam.conv(Some(text), style) {
        // SAFETY: as in `ask_hidden`: a malloc'd reply string whose ownership the
        // conversation contract gives to the module, not referenced after this.
        unsafe { nix::libc::free(reply.as_ptr().cast_mut().cast()) };
    }
}
