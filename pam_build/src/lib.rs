//! Link the unwinder into a PAM module instead of loading `libgcc_s.so.1`.
//!
//! The module keeps `panic = "unwind"` so that the glue can catch a panic at
//! the PAM boundary, and unwinding needs the `_Unwind_*` functions. On
//! `*-linux-gnu`, std asks for them with `-lgcc_s`: every process that loads
//! the module then maps and relocates `libgcc_s.so.1`, which costs more than
//! the login itself on a small VM (135–160 µs, see the README's Performance
//! section).
//!
//! GCC ships the same unwinder as a static archive, `libgcc_eh.a` (what
//! `-static-libgcc` links). rustc's `-lgcc_s` cannot be removed from its
//! command line, so the module's build script answers it: it puts a one-line
//! linker script named `libgcc_s.so` in a directory that is searched before
//! the system ones, and that script links `libgcc_eh.a` instead. `-static-libgcc` does the same
//! for the compiler driver's own libgcc. The unwinder's symbols stay local to
//! the module (rustc's version script exports only `pam_sm_*`), so it never
//! meets another copy in the host process; a panic is raised and caught inside
//! the module, never across it.
//!
//! Both modules' build scripts (`pam_module`, `pam_module_ldap`) call
//! [`link_unwinder_statically`]. The integration test `tests/robustness.rs`
//! (`a_panic_inside_the_shipped_module_is_caught`) makes the release module
//! panic inside std and checks that the caller gets an error and lives on.

use std::env;
use std::fs;
use std::path::PathBuf;

/// From a cdylib's build script: link GCC's unwinder into it (on
/// `*-linux-gnu`; elsewhere nothing changes).
pub fn link_unwinder_statically() {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    let Some(out) = env::var_os("OUT_DIR") else {
        return;
    };
    let dir = PathBuf::from(out).join("static-unwinder");
    let script = "/* pam_totp: link the unwinder statically (see pam_build) */\nINPUT(-lgcc_eh)\n";
    if let Err(e) =
        fs::create_dir_all(&dir).and_then(|()| fs::write(dir.join("libgcc_s.so"), script))
    {
        panic!("{}: {e}", dir.display());
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-cdylib-link-arg=-static-libgcc");
}
