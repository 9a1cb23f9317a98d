//! Record ids: 15-character case-sensitive base-62 ids and their 18-character case-insensitive
//! form (three checksum characters that encode which of the first 15 characters are uppercase).

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The three checksum characters of a 15-character id.
///
/// For each 5-character chunk, bit `j` is set when the chunk's `j`-th character is an uppercase
/// ASCII letter; the 5-bit number indexes `ABCDEFGHIJKLMNOPQRSTUVWXYZ012345`.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (j, _)| acc | (1 << j));
            SUFFIX[bits] as char
        })
        .collect()
}

/// Converts a 15-character id to its 18-character form.
pub fn to18(id15: &str) -> String {
    format!("{id15}{}", checksum(id15))
}

/// Parses a 15- or 18-character id into its canonical 15-character form.
///
/// An 18-character id is case-insensitive: the checksum restores the case of the first 15
/// characters, then must match them. Returns `None` for anything that is not a well-formed id.
pub fn parse(raw: &str) -> Option<String> {
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match raw.len() {
        15 => Some(raw.to_string()),
        18 => {
            let (head, tail) = raw.split_at(15);
            let mut fixed: Vec<u8> = head.as_bytes().to_vec();
            for (chunk, suffix) in tail.bytes().enumerate() {
                let bits = SUFFIX
                    .iter()
                    .position(|&c| c == suffix.to_ascii_uppercase())?;
                for j in 0..5 {
                    let at = chunk * 5 + j;
                    fixed[at] = if bits & (1 << j) != 0 {
                        fixed[at].to_ascii_uppercase()
                    } else if fixed[at].is_ascii_uppercase() {
                        // Lower-case it only when the original was a letter typed in the other case.
                        fixed[at].to_ascii_lowercase()
                    } else {
                        fixed[at]
                    };
                }
            }
            let id15 = String::from_utf8(fixed).ok()?;
            (checksum(&id15).eq_ignore_ascii_case(tail)).then_some(id15)
        }
        _ => None,
    }
}

/// Encodes `n` in base 62 on exactly `width` characters (higher digits are dropped).
pub fn base62(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Builds the 15-character id number `n` of an object with key prefix `prefix`.
///
/// Characters 4–5 stand for the instance; the last ten count records, so ids sort in creation order.
pub fn make15(prefix: &str, n: u64) -> String {
    format!("{prefix}Dd{}", base62(n, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_gets_its_documented_checksum() {
        assert_eq!(to18("001D000000IqhSL"), "001D000000IqhSLIAZ");
    }

    #[test]
    fn eighteen_char_ids_parse_in_any_case() {
        assert_eq!(
            parse("001D000000IqhSLIAZ").as_deref(),
            Some("001D000000IqhSL")
        );
        assert_eq!(
            parse("001d000000iqhsliaz").as_deref(),
            Some("001D000000IqhSL")
        );
        assert_eq!(parse("001D000000IqhSL").as_deref(), Some("001D000000IqhSL"));
    }

    #[test]
    fn malformed_ids_are_refused() {
        // The suffix claims an uppercase letter where the id has a digit.
        assert_eq!(parse("001D000000IqhSLBAZ"), None);
        // A consistent all-lowercase suffix names a different, valid id.
        assert_eq!(
            parse("001D000000IqhSLAAA").as_deref(),
            Some("001d000000iqhsl")
        );
        assert_eq!(parse("001D00000"), None);
        assert_eq!(parse("001D000000Iqh-L"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn generated_ids_sort_in_creation_order_and_round_trip() {
        let a = make15("801", 61);
        let b = make15("801", 62);
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), 15);
        assert_eq!(parse(&to18(&b)).as_deref(), Some(b.as_str()));
    }
}
