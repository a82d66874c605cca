//! A borrowed JSON document for reading vendor responses: strings and keys point into the
//! response body (copied only when they hold escapes) and objects are small vectors, so
//! reading a response costs a fraction of the allocations of `serde_json::Value`.
//!
//! The reader is a small recursive-descent parser: the body is checked to be UTF-8 once, where
//! going through serde checked every string on its own; it reads a typical response in about a
//! third of the instructions. Tests hold it to serde_json on arbitrary documents.

use std::borrow::Cow;
use std::fmt;

/// A JSON value borrowing from the text it was read from.
#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative whole number.
    Int(i64),
    /// A non-negative whole number.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object, its members in document order.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses a document that borrows from `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let mut parser = Parser::new(bytes)?;
        let mut value = Json::Null;
        let read = parser.value(&mut value);
        parser.skip_whitespace();
        match read {
            Some(()) if parser.pos != bytes.len() => {
                let _: Option<()> = parser.fail("more text after the JSON value");
            }
            Some(()) => return Ok(value),
            None => {}
        }
        Err(parser.failure.unwrap_or(ParseError {
            offset: parser.pos,
            message: "not JSON",
        }))
    }

    /// The value at a JSON Pointer (RFC 6901); `""` is the whole document.
    pub fn pointer(&self, pointer: &str) -> Option<&Json<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        // Profiles resolve a handful of pointers for every port of every response: tokens are
        // found with plain byte loops (these strings are a few bytes long, too short for memchr
        // to pay off) and unescaped only when they hold a `~`.
        let rest = pointer.strip_prefix('/')?;
        let mut current = self;
        let mut tokens = rest.as_bytes();
        let mut text = rest;
        loop {
            let end = tokens
                .iter()
                .position(|&b| b == b'/')
                .unwrap_or(tokens.len());
            let raw = &text[..end];
            let token: Cow<'_, str> = if raw.bytes().any(|b| b == b'~') {
                Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(raw)
            };
            current = match current {
                Json::Object(members) => members
                    .iter()
                    .find(|(key, _)| key.as_ref() == token.as_ref())
                    .map(|(_, value)| value)?,
                Json::Array(items) => {
                    if token.len() > 1 && token.starts_with('0') {
                        return None;
                    }
                    items.get(token.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
            if end == tokens.len() {
                return Some(current);
            }
            tokens = &tokens[end + 1..];
            text = &text[end + 1..];
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(text) => Some(text),
            _ => None,
        }
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Int(n) => Some(*n as f64),
            Json::UInt(n) => Some(*n as f64),
            Json::Float(n) => Some(*n),
            _ => None,
        }
    }
}

impl From<&serde_json::Value> for Json<'static> {
    fn from(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Json::UInt(u),
                (_, Some(i), _) => Json::Int(i),
                (_, _, f) => Json::Float(f.unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Json::Str(Cow::Owned(s.clone())),
            serde_json::Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            serde_json::Value::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Json::from(v)))
                    .collect(),
            ),
        }
    }
}

/// A cursor over a document, for reading a few values of a large one without building the
/// whole tree: the caller walks objects and arrays, reads the values it wants with
/// [`Reader::value`] and steps over the rest with [`Reader::skip`] (still checked to be JSON).
/// Any fault ends in `None`; [`Json::parse`] of the same text says what and where.
#[derive(Debug)]
pub struct Reader<'a> {
    parser: Parser<'a>,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`; `None` when they are not UTF-8.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        Some(Self {
            parser: Parser::new(bytes).ok()?,
        })
    }

    /// The first byte of the next value: `{`, `[`, `"`, a digit, `-`, `t`, `f` or `n`.
    pub fn peek(&mut self) -> Option<u8> {
        self.parser.skip_whitespace();
        self.parser.peek()
    }

    /// Steps into the object that comes next; true when it is empty (and already left).
    pub fn object(&mut self) -> Option<bool> {
        if self.peek()? != b'{' {
            return None;
        }
        self.parser.open(b'}')
    }

    /// The key of the next member of the object being read, with its `:` stepped over.
    pub fn key(&mut self) -> Option<Cow<'a, str>> {
        self.parser.key()
    }

    /// After a member: true at the end of the object (stepped over), false before the next.
    pub fn object_next(&mut self) -> Option<bool> {
        self.parser.next(b'}', "expected , or } in an object")
    }

    /// Steps into the array that comes next; true when it is empty (and already left).
    pub fn array(&mut self) -> Option<bool> {
        if self.peek()? != b'[' {
            return None;
        }
        self.parser.open(b']')
    }

    /// After an element: true at the end of the array (stepped over), false before the next.
    pub fn array_next(&mut self) -> Option<bool> {
        self.parser.next(b']', "expected , or ] in an array")
    }

    /// Reads the next value whole.
    pub fn value(&mut self) -> Option<Json<'a>> {
        let mut value = Json::Null;
        self.parser.value(&mut value)?;
        Some(value)
    }

    /// Steps over the next value, checking it is JSON without keeping any of it.
    pub fn skip(&mut self) -> Option<()> {
        self.parser.skip()
    }

    /// True when nothing but whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.parser.skip_whitespace();
        self.parser.pos == self.parser.bytes.len()
    }
}

/// Why a response is not JSON: what was wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the document.
    pub offset: usize,
    /// What was wrong.
    pub message: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Deepest nesting of arrays and objects accepted (the stack stays small whatever arrives).
const MAX_DEPTH: usize = 128;

/// A recursive-descent reader of RFC 8259 JSON over text already checked to be UTF-8.
#[derive(Debug)]
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// Why the parse stopped. Results are `Option`s rather than `Result`s: a `Json` and its
    /// error do not share a layout, and moving the larger `Result` through every level of
    /// the document cost a tenth of the parse.
    failure: Option<ParseError>,
}

impl<'a> Parser<'a> {
    /// A parser at the start of `bytes`, which must be UTF-8.
    fn new(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ParseError {
            offset: e.valid_up_to(),
            message: "the text is not UTF-8",
        })?;
        Ok(Self {
            text,
            bytes,
            pos: 0,
            depth: 0,
            failure: None,
        })
    }

    /// Notes what is wrong here; the parse then unwinds with `None`.
    #[cold]
    fn fail<T>(&mut self, message: &'static str) -> Option<T> {
        self.failure = Some(ParseError {
            offset: self.pos,
            message,
        });
        None
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Reads a value into `slot`. Values are written in place rather than returned: moving
    /// each one out of every level of the document cost a fifth of the parse.
    fn value(&mut self, slot: &mut Json<'a>) -> Option<()> {
        self.skip_whitespace();
        *slot = match self.peek() {
            Some(b'{') => return self.object(slot),
            Some(b'[') => return self.array(slot),
            Some(b'"') => Json::Str(self.string()?),
            Some(b't') => self.literal("true", Json::Bool(true))?,
            Some(b'f') => self.literal("false", Json::Bool(false))?,
            Some(b'n') => self.literal("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return self.fail("expected a value"),
            None => return self.fail("expected a value, found the end"),
        };
        Some(())
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Some(value)
        } else {
            self.fail("expected a value")
        }
    }

    /// Steps over the opening bracket of an array or object; true when the closing bracket
    /// follows at once (stepped over too).
    #[inline(always)]
    fn open(&mut self, close: u8) -> Option<bool> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("arrays and objects nested more than 128 deep");
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.depth -= 1;
            return Some(true);
        }
        Some(false)
    }

    /// After an element: true at the closing bracket (stepped over), false after a comma.
    fn next(&mut self, close: u8, expected: &'static str) -> Option<bool> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Some(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                self.depth -= 1;
                Some(true)
            }
            _ => self.fail(expected),
        }
    }

    fn array(&mut self, slot: &mut Json<'a>) -> Option<()> {
        // Room for a typical list of ports.
        let mut items = Vec::with_capacity(16);
        if !self.open(b']')? {
            loop {
                items.push(Json::Null);
                let last = items.len() - 1;
                self.value(&mut items[last])?;
                if self.next(b']', "expected , or ] in an array")? {
                    break;
                }
            }
        }
        *slot = Json::Array(items);
        Some(())
    }

    fn object(&mut self, slot: &mut Json<'a>) -> Option<()> {
        let mut members = Vec::with_capacity(8);
        if !self.open(b'}')? {
            loop {
                let key = self.key()?;
                members.push((key, Json::Null));
                let last = members.len() - 1;
                self.value(&mut members[last].1)?;
                if self.next(b'}', "expected , or } in an object")? {
                    break;
                }
            }
        }
        *slot = Json::Object(members);
        Some(())
    }

    /// A member's key and the `:` after it.
    fn key(&mut self) -> Option<Cow<'a, str>> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return self.fail("expected a key in double quotes");
        }
        let key = self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return self.fail("expected : after a key");
        }
        self.pos += 1;
        Some(key)
    }

    /// Steps over a value, checking it as [`Parser::value`] does, without building it.
    fn skip(&mut self) -> Option<()> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => {
                if !self.open(b'}')? {
                    loop {
                        self.key()?;
                        self.skip()?;
                        if self.next(b'}', "expected , or } in an object")? {
                            break;
                        }
                    }
                }
                Some(())
            }
            Some(b'[') => {
                if !self.open(b']')? {
                    loop {
                        self.skip()?;
                        if self.next(b']', "expected , or ] in an array")? {
                            break;
                        }
                    }
                }
                Some(())
            }
            // Scalars are built (without allocating, but for strings with escapes): the same
            // checks as a read.
            _ => {
                let mut scalar = Json::Null;
                self.value(&mut scalar)
            }
        }
    }

    /// A string: borrowed from the document unless it holds escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        self.plain_run();
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                // Both ends are ASCII, so the slice is on character boundaries.
                return Some(Cow::Borrowed(&self.text[start..self.pos - 1]));
            }
            Some(b'\\') => {}
            Some(_) => return self.fail("a control character in a string"),
            None => return self.fail("a string is not closed"),
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Some(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                    let run = self.pos;
                    self.plain_run();
                    out.push_str(&self.text[run..self.pos]);
                }
                Some(_) => return self.fail("a control character in a string"),
                None => return self.fail("a string is not closed"),
            }
        }
    }

    /// Steps over characters that need no attention inside a string.
    fn plain_run(&mut self) {
        self.pos += self.bytes[self.pos..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(self.bytes.len() - self.pos);
    }

    fn escape(&mut self, out: &mut String) -> Option<()> {
        let Some(b) = self.peek() else {
            return self.fail("a string is not closed");
        };
        self.pos += 1;
        out.push(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return self.fail("a lone surrogate in a \\u escape");
                    }
                    self.pos += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return self.fail("a lone surrogate in a \\u escape");
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    first
                };
                match char::from_u32(code) {
                    Some(c) => c,
                    None => return self.fail("a lone surrogate in a \\u escape"),
                }
            }
            _ => {
                self.pos -= 1;
                return self.fail("an unknown escape in a string");
            }
        });
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let Some(digit) = self.peek().and_then(|b| char::from(b).to_digit(16)) else {
                return self.fail("a \\u escape needs four hex digits");
            };
            value = value * 16 + digit;
            self.pos += 1;
        }
        Some(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number: whole numbers that fit 64 bits stay whole (as serde_json reads them), the
    /// rest are `f64`.
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.fail("expected a digit"),
        }
        let mut whole = true;
        let mut fraction_digits = 0;
        if self.peek() == Some(b'.') {
            whole = false;
            self.pos += 1;
            fraction_digits = self.digits();
            if fraction_digits == 0 {
                return self.fail("expected a digit after the decimal point");
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            whole = false;
            exponent = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.fail("expected a digit in the exponent");
            }
        }
        let text = &self.text[start..self.pos];
        if whole {
            if negative {
                if let Ok(n) = text.parse::<i64>() {
                    // `-0` is the float -0.0, as serde_json reads it.
                    return Some(if n < 0 {
                        Json::Int(n)
                    } else {
                        Json::Float(-0.0)
                    });
                }
            } else if let Ok(n) = text.parse::<u64>() {
                return Some(Json::UInt(n));
            }
        }
        if !exponent && let Some(n) = short_decimal(text, fraction_digits) {
            return Some(Json::Float(n));
        }
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Some(Json::Float(n)),
            _ => {
                self.pos = start;
                self.fail("a number out of range")
            }
        }
    }
}

/// A decimal of at most 15 digits without exponent (`219.4`, `-0.84`), read exactly: its digits
/// and the power of ten are both exact in an `f64`, so one division rounds correctly (the same
/// result as `str::parse`, in a fraction of the instructions).
fn short_decimal(text: &str, fraction_digits: usize) -> Option<f64> {
    const POWERS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    for b in digits.bytes().filter(|&b| b != b'.') {
        mantissa = mantissa * 10 + u64::from(b - b'0');
    }
    let n = mantissa as f64 / POWERS[fraction_digits];
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_rfc_6901() {
        let text = br#"{"data": {"portList": [{"portId": 1}, {"portId": "2"}]}, "a/b": {"m~n": true}, "s": "x\"y"}"#;
        let doc = Json::parse(text).unwrap();
        assert_eq!(
            doc.pointer("/data/portList/1/portId"),
            Some(&Json::Str("2".into()))
        );
        assert_eq!(doc.pointer("/data/portList/0/portId"), Some(&Json::UInt(1)));
        assert_eq!(doc.pointer("/a~1b/m~0n"), Some(&Json::Bool(true)));
        assert_eq!(doc.pointer("/s").and_then(Json::as_str), Some("x\"y"));
        assert_eq!(doc.pointer(""), Some(&doc));
        assert_eq!(doc.pointer("/data/portList/01"), None);
        assert_eq!(doc.pointer("/data/portList/9"), None);
        assert_eq!(doc.pointer("data"), None);
        assert!(Json::parse(b"{").is_err());
    }

    #[test]
    fn errors_say_what_and_where() {
        let error = |text: &str| Json::parse(text.as_bytes()).unwrap_err().to_string();
        let cases = [
            ("", "expected a value, found the end at byte 0"),
            ("<html>", "expected a value at byte 0"),
            ("{\"a\" 1}", "expected : after a key at byte 5"),
            ("[1 2]", "expected , or ] in an array at byte 3"),
            ("{\"a\":1,}", "expected a key in double quotes at byte 7"),
            ("\"abc", "a string is not closed at byte 4"),
            ("\"a\\x\"", "an unknown escape in a string at byte 3"),
            ("\"\\ud800\"", "a lone surrogate in a \\u escape at byte 7"),
            ("1e999", "a number out of range at byte 0"),
            ("01", "more text after the JSON value at byte 1"),
            ("-", "expected a digit at byte 1"),
            ("1.", "expected a digit after the decimal point at byte 2"),
            ("{} x", "more text after the JSON value at byte 3"),
        ];
        for (text, expected) in cases {
            assert_eq!(error(text), expected, "{text:?}");
        }
        let deep = "[".repeat(129) + &"]".repeat(129);
        assert_eq!(
            error(&deep),
            "arrays and objects nested more than 128 deep at byte 128"
        );
        assert!(Json::parse(("[".repeat(128) + &"]".repeat(128)).as_bytes()).is_ok());
        assert_eq!(
            Json::parse(b"\"\xff\"").unwrap_err().to_string(),
            "the text is not UTF-8 at byte 1"
        );
    }

    #[test]
    fn short_decimals_are_read_exactly() {
        for text in [
            "219.4",
            "-0.84",
            "0.0",
            "-0.0",
            "0.1",
            "123456789012.345",
            "9.99999999999999",
        ] {
            let Json::Float(n) = Json::parse(text.as_bytes()).unwrap() else {
                panic!("{text} is not a float");
            };
            let expected: f64 = text.parse().unwrap();
            assert_eq!(n.to_bits(), expected.to_bits(), "{text}");
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let doc = Json::parse(br#"{"plain": "free", "escaped": "a\u00e9\ud83d\ude00\n"}"#).unwrap();
        assert!(matches!(
            doc.pointer("/plain"),
            Some(Json::Str(Cow::Borrowed("free")))
        ));
        assert_eq!(
            doc.pointer("/escaped").and_then(Json::as_str),
            Some("a\u{e9}\u{1f600}\n")
        );
    }

    mod agrees_with_serde_json {
        use super::*;
        use proptest::prelude::*;

        /// The same document, with floats equal within a few units in the last place
        /// (serde_json's default float reading is best effort; this one rounds correctly).
        fn same(ours: &Json<'_>, theirs: &Json<'_>) -> bool {
            match (ours, theirs) {
                (Json::Float(a), Json::Float(b)) => {
                    (a - b).abs()
                        <= 4.0 * f64::EPSILON * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
                }
                (Json::Array(a), Json::Array(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
                }
                (Json::Object(a), Json::Object(b)) => {
                    a.len() == b.len()
                        && a.iter().zip(b).all(|((k, x), (l, y))| k == l && same(x, y))
                }
                _ => ours == theirs,
            }
        }

        fn value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<u64>().prop_map(serde_json::Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(serde_json::Value::from),
                any::<String>().prop_map(serde_json::Value::from),
                "[a-z\\\\\"/\\u{0}-\\u{1f}é😀]{0,12}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                    prop::collection::vec(("[a-z_/~]{0,6}", inner), 0..8).prop_map(|members| {
                        serde_json::Value::Object(members.into_iter().collect())
                    }),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            #[test]
            fn on_documents_serde_json_wrote(doc in value(), pretty in any::<bool>()) {
                let text = if pretty {
                    serde_json::to_string_pretty(&doc).unwrap()
                } else {
                    serde_json::to_string(&doc).unwrap()
                };
                let ours = Json::parse(text.as_bytes()).unwrap();
                let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
                prop_assert!(same(&ours, &Json::from(&theirs)), "{text}");
            }

            #[test]
            fn on_whether_text_is_json(text in "[ \\[\\]{}:,\"\\\\a-z0-9.eE+\\-]{0,24}") {
                let ours = Json::parse(text.as_bytes());
                let theirs = serde_json::from_str::<serde_json::Value>(&text);
                prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{}: {:?}", text, ours);
                if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                    prop_assert!(same(&ours, &Json::from(&theirs)), "{text}");
                }
            }

            #[test]
            fn short_decimals_equal_str_parse(m in 0_u64..1_000_000_000_000_000, k in 1_usize..16, negative in any::<bool>()) {
                let digits = format!("{m:016}");
                let text = format!(
                    "{}{}.{}",
                    if negative { "-" } else { "" },
                    digits[..16 - k].trim_start_matches('0').max("0"),
                    &digits[16 - k..]
                );
                let expected: f64 = text.parse().unwrap();
                prop_assert_eq!(Json::parse(text.as_bytes()), Ok(Json::Float(expected)), "{}", text);
            }

            #[test]
            fn on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                let ours = Json::parse(&bytes);
                let theirs = serde_json::from_slice::<serde_json::Value>(&bytes);
                prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
