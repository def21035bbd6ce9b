//! The LDAP store's reading of a server's search result entry (BER) into
//! a login state: no panic on any input (ldap3's own SearchEntry::construct
//! panics on malformed BER), errors on one line, and a state that parses
//! is written back to the same attributes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match totp_ldap::fuzz_entry(data) {
        Ok(Some((state, again))) => assert_eq!(again, state),
        Ok(None) => {}
        Err(e) => assert!(!e.contains('\n'), "multi-line error: {e:?}"),
    }
});
