//! The PAM conversation: the unsafe code this module needs for it.
//!
//! pamsm's `conv()` is not used, for two reasons. It dereferences the
//! application's response array without checking it, so an application whose
//! conversation function returns PAM_SUCCESS but no array (a NULL `*resp`)
//! crashed the whole process (found by tests/bad_inputs.rs). And it returns the
//! reply as a borrowed `&CStr` and frees neither the reply string nor the array.
//! By the conversation contract (pam_conv(3)) both belong to the module. Here
//! the reply is copied into a buffer that is wiped on drop, the C string is
//! wiped with `zeroize` (a plain write before `free` is a dead store that the
//! optimiser removes; tests/robustness.rs checks the release build) and
//! freed, and the array is freed.

use pamsm::{Pam, PamMsgStyle};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use zeroize::{Zeroize, Zeroizing};

const PAM_SUCCESS: c_int = 0;
/// `PAM_CONV` in `<security/_pam_types.h>`.
const PAM_CONV_ITEM: c_int = 5;

/// `struct pam_message`.
#[repr(C)]
struct Message {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_response`.
#[repr(C)]
struct Response {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const Message,
    resp: *mut *mut Response,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
struct Conv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_strerror(pamh: *const c_void, errnum: c_int) -> *const c_char;
}

/// The raw `pam_handle_t *` inside pamsm's handle.
fn raw_handle(pam: &Pam) -> *const c_void {
    // SAFETY: `Pam` is `#[repr(transparent)]` over `*const c_void` (pamsm's
    // `PamHandle`), which is what lets pamsm pass it through the C ABI of the
    // entry points in place of `pam_handle_t *`; reading it as that pointer
    // reads exactly the handle libpam gave the module.
    unsafe { *std::ptr::from_ref(pam).cast::<*const c_void>() }
}

fn describe(pamh: *const c_void, rc: c_int) -> String {
    // SAFETY: pam_strerror returns a pointer to a static string (or NULL),
    // which is only read here.
    let text = unsafe { pam_strerror(pamh, rc) };
    if text.is_null() {
        return format!("conversation error {rc}");
    }
    // SAFETY: non-NULL, NUL-terminated and static, as checked above.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    format!("conversation error {rc} ({text})")
}

/// Send one message; return the reply string, if any, wiped and freed from C.
fn converse(
    pam: &Pam,
    text: &str,
    style: PamMsgStyle,
) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let pamh = raw_handle(pam);
    let mut item: *const c_void = std::ptr::null();
    // SAFETY: `pamh` is the live handle of this call; `item` is a valid out pointer.
    let rc = unsafe { pam_get_item(pamh, PAM_CONV_ITEM, &mut item) };
    if rc != PAM_SUCCESS || item.is_null() {
        return Err("the application has no conversation function".into());
    }
    // SAFETY: libpam stores the application's `struct pam_conv` as the PAM_CONV
    // item; it stays valid for the life of the handle.
    let conv = unsafe { &*item.cast::<Conv>() };
    let Some(function) = conv.conv else {
        return Err("the application has no conversation function".into());
    };
    let text = CString::new(text).map_err(|_| "message contains a NUL byte".to_string())?;
    let message = Message {
        msg_style: style as c_int,
        msg: text.as_ptr(),
    };
    let mut messages: *const Message = &message;
    let mut responses: *mut Response = std::ptr::null_mut();
    // SAFETY: the arguments follow pam_conv(3): one message that outlives the
    // call, and a valid out pointer for the response array.
    let rc = unsafe { function(1, &mut messages, &mut responses, conv.appdata_ptr) };
    if responses.is_null() {
        return if rc == PAM_SUCCESS {
            Err("the application returned no response".into())
        } else {
            Err(describe(pamh, rc))
        };
    }
    // From here on the module owns the array (one entry) and its string.
    // SAFETY: a non-NULL array from the conversation function holds one
    // `struct pam_response` per message, allocated with malloc(3).
    let reply = unsafe { (*responses).resp };
    let copy = if reply.is_null() {
        None
    } else {
        // SAFETY: `reply` is the NUL-terminated, malloc'd `resp` string of the
        // response, owned by the module now. Its length is read once, the bytes
        // are copied, all `len` bytes are wiped through `zeroize` (volatile
        // writes and a compiler fence, which the optimiser may not remove as
        // dead stores before `free`, as it did a plain `write_bytes`), and the
        // string is freed exactly once; nothing else refers to it.
        unsafe {
            let len = CStr::from_ptr(reply).to_bytes().len();
            let mut copy = Zeroizing::new(Vec::with_capacity(len));
            let bytes = std::slice::from_raw_parts_mut(reply.cast::<u8>(), len);
            copy.extend_from_slice(bytes);
            bytes.zeroize();
            nix::libc::free(reply.cast());
            Some(copy)
        }
    };
    // SAFETY: the malloc'd array is owned by the module and freed exactly once;
    // its string was freed above.
    unsafe { nix::libc::free(responses.cast()) };
    if rc != PAM_SUCCESS {
        return Err(describe(pamh, rc));
    }
    Ok(copy)
}

/// Ask with echo off and take ownership of the reply.
pub fn ask_hidden(pam: &Pam, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    ask(pam, prompt, false)
}

/// Ask with echo on (`echo_verification_code`) or off, and take ownership
/// of the reply.
pub fn ask(pam: &Pam, prompt: &str, echo: bool) -> Result<Zeroizing<Vec<u8>>, String> {
    let style = if echo {
        PamMsgStyle::PROMPT_ECHO_ON
    } else {
        PamMsgStyle::PROMPT_ECHO_OFF
    };
    converse(pam, prompt, style)?.ok_or_else(|| "the application returned no answer".into())
}

/// Show a message. Any reply string to a message is unexpected; it is freed too.
pub fn show(pam: &Pam, text: &str, is_error: bool) {
    let style = if is_error {
        PamMsgStyle::ERROR_MSG
    } else {
        PamMsgStyle::TEXT_INFO
    };
    let _ = converse(pam, text, style);
}
