//! `pam_totp.so`: the module as installed, with the files store.
//!
//! The glue (the `pam_glue` crate) is shared with `pam_totp_ldap.so`, which
//! adds the LDAP store. This one stays without an LDAP client and TLS, so a
//! files login loads a third of the code. When the config says
//! `[store] backend = "ldap"`, the login flow stops before it asks or logs
//! anything and the whole call is handed to `pam_totp_ldap.so`, from the
//! same directory as this file (`Files::delegate`).

use pam_glue::{PamTotp, Variant};
use pamsm::{pam_module, Pam, PamError, PamFlags, PamServiceModule};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

pam_module!(PamTotp<Files>);

/// The files store only.
enum Files {}

impl Variant for Files {
    /// Nothing to register: this module has the files store only.
    fn setup() {}

    /// Hand the whole authentication to `pam_totp_ldap.so`: the same handle,
    /// flags and arguments. It writes the outcome line; only its absence is
    /// logged here (one line, and the login is denied).
    fn delegate(pamh: Pam, flags: PamFlags, args: &[String]) -> PamError {
        let entry = match LDAP_MODULE.get_or_init(load_ldap_module) {
            Ok(entry) => *entry,
            Err(why) => {
                pam_glue::log_denied(
                    &pamh,
                    &format!("store.backend = ldap needs {why}; login denied"),
                );
                return PamError::AUTH_ERR;
            }
        };
        // Arguments came from C strings, so none holds a NUL.
        let args: Vec<CString> = args
            .iter()
            .filter_map(|a| CString::new(a.as_str()).ok())
            .collect();
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let Ok(argc) = c_int::try_from(argv.len()) else {
            return PamError::SERVICE_ERR;
        };
        // SAFETY: `entry` is pam_totp_ldap.so's pam_sm_authenticate, defined
        // by the same pamsm macro with this exact type, and the library stays
        // loaded (never closed). The handle is the live one libpam gave us
        // and is used by nobody else during the call; `argv` points at `argc`
        // NUL-terminated strings that outlive the call.
        let code = unsafe { entry(pamh, flags.bits(), argc, argv.as_ptr()) };
        // The codes the glue returns; anything else denies.
        [PamError::SUCCESS, PamError::IGNORE, PamError::SERVICE_ERR]
            .into_iter()
            .find(|known| *known as c_int == code)
            .unwrap_or(PamError::AUTH_ERR)
    }
}

/// `pam_sm_authenticate`'s C type, as `pamsm::pam_module!` defines it.
type Authenticate = unsafe extern "C" fn(Pam, c_int, c_int, *const *const c_char) -> c_int;

static LDAP_MODULE: OnceLock<Result<Authenticate, String>> = OnceLock::new();

/// Load `pam_totp_ldap.so` (or `libpam_totp_ldap.so` beside a
/// `libpam_totp.so` build) from this module's own directory.
fn load_ldap_module() -> Result<Authenticate, String> {
    let own = own_path()?;
    let dir = own.parent().ok_or("the module's directory is unknown")?;
    let prefix = if own
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("lib"))
    {
        "lib"
    } else {
        ""
    };
    let path = dir.join(format!("{prefix}pam_totp_ldap.so"));
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: the path holds a NUL", path.display()))?;
    // SAFETY: a NUL-terminated path; the handle is never closed, so what it
    // maps stays valid for the life of the process.
    let handle =
        unsafe { nix::libc::dlopen(c_path.as_ptr(), nix::libc::RTLD_NOW | nix::libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!("{}: {}", path.display(), dl_error()));
    }
    // SAFETY: a valid handle and a NUL-terminated symbol name.
    let symbol = unsafe { nix::libc::dlsym(handle, c"pam_sm_authenticate".as_ptr()) };
    if symbol.is_null() {
        return Err(format!("{}: {}", path.display(), dl_error()));
    }
    // SAFETY: pam_sm_authenticate of a PAM module has exactly this type, and
    // pam_totp_ldap.so defines it with the same pamsm macro as this module.
    Ok(unsafe { std::mem::transmute::<*mut c_void, Authenticate>(symbol) })
}

/// The file this module was loaded from.
fn own_path() -> Result<PathBuf, String> {
    let mut info = nix::libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let here = own_path as fn() -> Result<PathBuf, String>;
    // SAFETY: dladdr only reads the address (a function of this module) and
    // fills `info`; dli_fname then points at the loader's own copy of the
    // path, valid while the module is loaded.
    let found = unsafe { nix::libc::dladdr(here as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err("the module cannot find its own file".into());
    }
    // SAFETY: non-null, NUL-terminated, owned by the loader (see above).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes())))
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message owned by libc.
    let message = unsafe { nix::libc::dlerror() };
    if message.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-null and NUL-terminated (see above).
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}
