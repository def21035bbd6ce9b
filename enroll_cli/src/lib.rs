//! The library side of `totpctl`: everything the binary does, kept apart
//! from argument parsing so that tests can call it directly.

#![forbid(unsafe_code)]

pub mod qr;
pub mod uri;
