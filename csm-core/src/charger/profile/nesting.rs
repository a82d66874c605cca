//! How deep a JSON text nests, measured before it is parsed. A document parser that recurses
//! (sonic-rs's `Value` does, and so does dropping the tree it builds) overflows a thread's
//! stack on a few kilobytes of `[[[[…`; a vendor's answer is therefore refused past
//! [`MAX_DEPTH`] levels, with the JSON Pointer where it went too deep, before any parser sees
//! it. The scan keeps one small entry per open level and never recurses.

use std::fmt;
use std::ops::Range;

/// Deepest nesting of arrays and objects csm reads in a vendor's answer (serde_json's limit:
/// real answers nest a handful of levels).
pub const MAX_DEPTH: usize = 128;

/// Segments of the pointer shown in an error; deeper ones are written `…`.
const SHOWN_SEGMENTS: usize = 8;
/// Characters of one object key shown in an error.
const SHOWN_KEY_CHARS: usize = 32;

/// A text that nests deeper than allowed, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// The deepest nesting allowed.
    pub limit: usize,
    /// JSON Pointer of the value that opened one level too many (its first segments).
    pub pointer: String,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the answer nests deeper than {} levels at {}",
            self.limit, self.pointer
        )
    }
}

/// Checks that `text` nests arrays and objects at most `limit` levels deep. Only nesting is
/// checked: a malformed text within the limit is left to the parser to refuse.
pub fn check(text: &[u8], limit: usize) -> Result<(), TooDeep> {
    // Fewer opening brackets than the limit (every real answer) cannot nest deeper: counting
    // them is a fraction of the scan's cost.
    let opening = memchr::memchr2_iter(b'[', b'{', text).count();
    if opening <= limit {
        return Ok(());
    }
    scan(text, limit)
}

/// One open level: an array at an index, or an object at a key (a range of `text`).
enum Level {
    Array(usize),
    Object(Option<Range<usize>>),
}

fn scan(text: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut levels: Vec<Level> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    // Where the string being read starts, when it is an object's key.
    let mut key_start: Option<usize> = None;
    // After `{` or `,` in an object, the next string is a key.
    let mut expecting_key = false;
    for (at, &byte) in text.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
                if let (Some(start), Some(Level::Object(key))) =
                    (key_start.take(), levels.last_mut())
                {
                    *key = Some(start..at);
                }
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                if expecting_key {
                    key_start = Some(at + 1);
                    expecting_key = false;
                }
            }
            b'[' | b'{' => {
                if levels.len() >= limit {
                    return Err(TooDeep {
                        limit,
                        pointer: pointer(text, &levels),
                    });
                }
                levels.push(if byte == b'[' {
                    Level::Array(0)
                } else {
                    Level::Object(None)
                });
                expecting_key = byte == b'{';
            }
            b']' | b'}' => {
                levels.pop();
                expecting_key = false;
            }
            b',' => match levels.last_mut() {
                Some(Level::Array(index)) => *index += 1,
                Some(Level::Object(_)) => expecting_key = true,
                None => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// The pointer of the open levels, its first [`SHOWN_SEGMENTS`] segments written out.
fn pointer(text: &[u8], levels: &[Level]) -> String {
    let mut pointer = String::new();
    for level in levels.iter().take(SHOWN_SEGMENTS) {
        pointer.push('/');
        match level {
            Level::Array(index) => pointer.push_str(&index.to_string()),
            Level::Object(Some(key)) => {
                let key = String::from_utf8_lossy(&text[key.clone()]);
                let shown: String = key.chars().take(SHOWN_KEY_CHARS).collect();
                pointer.push_str(&shown.replace('~', "~0").replace('/', "~1"));
            }
            Level::Object(None) => pointer.push('?'),
        }
    }
    if levels.len() > SHOWN_SEGMENTS {
        pointer.push_str("/…");
    }
    if pointer.is_empty() {
        pointer.push('/');
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!(
            r#"{{"ok":1,"ports":[0,1],"junk":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    #[test]
    fn shallow_and_exactly_deep_enough_texts_pass() {
        assert_eq!(check(br#"{"ports":[{"n":1,"s":0}]}"#, MAX_DEPTH), Ok(()));
        // The object itself is one level: 127 arrays inside it make 128.
        assert_eq!(check(nested(MAX_DEPTH - 1).as_bytes(), MAX_DEPTH), Ok(()));
    }

    #[test]
    fn a_deeper_text_is_refused_with_where_it_went_too_deep() {
        let error = check(nested(9_000).as_bytes(), MAX_DEPTH).unwrap_err();
        assert_eq!(error.pointer, "/junk/0/0/0/0/0/0/0/…");
        assert_eq!(
            error.to_string(),
            "the answer nests deeper than 128 levels at /junk/0/0/0/0/0/0/0/…"
        );
        let error = check(nested(MAX_DEPTH).as_bytes(), MAX_DEPTH).unwrap_err();
        assert!(error.pointer.starts_with("/junk/0/"), "{}", error.pointer);
    }

    #[test]
    fn brackets_and_escaped_quotes_in_strings_do_not_count() {
        let text = format!(
            r#"{{"a\"[":"{}","b":[1,2,{{"c~/d":[{}]}}]}}"#,
            "[{".repeat(500),
            "[".repeat(3) + &"]".repeat(3)
        );
        assert_eq!(check(text.as_bytes(), 8), Ok(()));
        let error = check(text.as_bytes(), 3).unwrap_err();
        assert_eq!(error.pointer, "/b/2/c~0~1d");
    }

    #[test]
    fn unbalanced_and_binary_texts_are_left_to_the_parser() {
        assert_eq!(check(b"]]]]}}}}", 2), Ok(()));
        assert!(check(&[b'['; 10], 2).is_err());
        assert_eq!(check(&[0xff, b'"', b'[', b'[', b'[', b'"'], 2), Ok(()));
    }
}
