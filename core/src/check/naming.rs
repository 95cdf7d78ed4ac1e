//! The names PostgreSQL chooses for objects a statement does not name: `orders_pkey`,
//! `orders_email_key`, `orders_plan_idx`, `orders_id_seq` (`ChooseRelationName` and
//! `makeObjectName` in PostgreSQL's `indexcmds.c` / `namespace.c`), so that a later statement of
//! the script that names them finds them.

/// Longest identifier, in bytes (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER: usize = 63;

/// `name1[_name2]_label`, shortening the longer of the two names until it fits in an identifier.
pub fn object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let mut overhead = label.len() + 1;
    if name2.is_some() {
        overhead += 1;
    }
    let avail = MAX_IDENTIFIER.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let mut out = clip(name1, n1).to_owned();
    if let Some(name2) = name2 {
        out.push('_');
        out.push_str(clip(name2, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// The first `len` bytes of `s`, cut back to a character boundary.
fn clip(s: &str, mut len: usize) -> &str {
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    &s[..len]
}

/// The first free name among `object_name(…, label)`, `…label1`, `…label2`, ….
pub fn choose(name1: &str, name2: Option<&str>, label: &str, taken: impl Fn(&str) -> bool) -> String {
    choose_from(name1, name2, label, 0, taken).0
}

/// [`choose`], trying numbers from `start` on (0: the plain name first); also returns the
/// number used.
pub fn choose_from(
    name1: &str,
    name2: Option<&str>,
    label: &str,
    start: u32,
    taken: impl Fn(&str) -> bool,
) -> (String, u32) {
    let candidate = |pass: u32| {
        if pass == 0 {
            object_name(name1, name2, label)
        } else {
            object_name(name1, name2, &format!("{label}{pass}"))
        }
    };
    let mut pass = start;
    let mut name = candidate(pass);
    while taken(&name) {
        pass += 1;
        name = candidate(pass);
    }
    (name, pass)
}

/// Index column names joined by underscores, as an index name's middle part
/// (`ChooseIndexNameAddition`: stops once it is longer than an identifier).
pub fn column_addition(columns: &[String]) -> String {
    let mut out = String::new();
    for c in columns {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(clip(c, c.len().min(MAX_IDENTIFIER)));
        if out.len() > MAX_IDENTIFIER {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_postgres() {
        assert_eq!(object_name("orders", None, "pkey"), "orders_pkey");
        assert_eq!(object_name("orders", Some("id"), "seq"), "orders_id_seq");
        assert_eq!(
            object_name("orders", Some(&column_addition(&["a".into(), "b".into()])), "key"),
            "orders_a_b_key"
        );
        // 63 bytes at most: the longer part is cut first.
        let long = "x".repeat(70);
        let name = object_name(&long, Some("email"), "idx");
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("_email_idx"), "{name}");
        // Never inside a multibyte character.
        let name = object_name(&"é".repeat(40), None, "pkey");
        assert!(name.len() <= 63 && name.ends_with("_pkey"));
    }

    #[test]
    fn taken_names_get_a_number() {
        let taken = ["t_a_idx", "t_a_idx1"];
        assert_eq!(choose("t", Some("a"), "idx", |n| taken.contains(&n)), "t_a_idx2");
    }
}
