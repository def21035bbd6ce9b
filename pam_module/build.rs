//! GCC's unwinder linked into the module, not loaded from `libgcc_s.so.1`
//! (see `pam_build`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    pam_build::link_unwinder_statically();
}
