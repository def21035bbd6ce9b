//! The library side of `totpctl`: everything the binary does, kept apart
//! from argument parsing so that tests can call it directly.
//!
//! `main.rs` parses the command line ([`cli`]) and calls one function in
//! [`commands`]. Every rule about records, state, locking and codes comes from
//! `totp_core`; this crate only talks to the person at the terminal.

// Denied, not forbidden: `privilege` resets signal dispositions at a setuid
// start, which only `sigaction` can do; that one function allows it.
#![deny(unsafe_code)]

#[macro_use]
pub mod output;

pub mod audit;
pub mod cli;
pub mod commands;
pub mod context;
pub mod error;
pub mod json;
pub mod privilege;
pub mod prompt;
pub mod qr;
pub mod qrfile;
pub mod uri;
