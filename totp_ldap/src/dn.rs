//! Distinguished names.

/// Whether two DNs name the same entry, for the forms servers return
/// (case and spaces after separators aside).
pub(crate) fn same_dn(a: &str, b: &str) -> bool {
    let norm = |dn: &str| -> String {
        dn.split(',')
            .map(|rdn| {
                rdn.split('=')
                    .map(|part| part.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join("=")
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    !a.trim().is_empty() && norm(a) == norm(b)
}
