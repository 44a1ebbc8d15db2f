//! Paths as git has them: bytes, not always UTF-8 (Linux allows any byte
//! but `/` and NUL in a file name), and any of them may hold a tab, a
//! newline or a quote. Everything above `git/` holds a path as a `String`;
//! this is the one place that turns git's bytes into that string and back,
//! without loss, so a path read from git reaches git again unchanged.
//!
//! Valid UTF-8 stays as it is. Every other byte becomes the private-use
//! character U+F700 + byte (U+F780..U+F7FF, bytes ≥ 0x80 only); so that no
//! two paths read alike, the bytes of a real character in that range are
//! escaped the same way. Every path git prints goes through
//! [`path_from_bytes`], every path given to git through [`path_bytes`],
//! always with `-z` or NUL-separated input, never quoted.

use std::ffi::OsString;

/// Where escaped bytes live: U+F700 + byte.
const ESCAPE_BASE: u32 = 0xF700;

fn escaped(c: char) -> bool {
    (ESCAPE_BASE + 0x80..=ESCAPE_BASE + 0xFF).contains(&(c as u32))
}

/// A path from git's bytes, losslessly.
pub fn path_from_bytes(mut bytes: &[u8]) -> String {
    let mut path = String::with_capacity(bytes.len());
    let escape = |path: &mut String, bytes: &[u8]| {
        for byte in bytes {
            path.push(char::from_u32(ESCAPE_BASE + u32::from(*byte)).expect("a private-use character"));
        }
    };
    while !bytes.is_empty() {
        let (valid, rest) = match std::str::from_utf8(bytes) {
            Ok(valid) => (valid, &[][..]),
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                (std::str::from_utf8(valid).expect("checked above"), rest)
            }
        };
        for c in valid.chars() {
            if escaped(c) {
                escape(&mut path, c.encode_utf8(&mut [0; 4]).as_bytes());
            } else {
                path.push(c);
            }
        }
        // An invalid sequence: escape its bytes and go on after them.
        let bad = match std::str::from_utf8(rest) {
            Ok(_) => 0,
            Err(error) => error.error_len().unwrap_or(rest.len()),
        };
        escape(&mut path, &rest[..bad]);
        bytes = &rest[bad..];
    }
    path
}

/// The bytes git knows a path by.
pub fn path_bytes(path: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(path.len());
    for c in path.chars() {
        if escaped(c) {
            bytes.push((c as u32 - ESCAPE_BASE) as u8);
        } else {
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    bytes
}

/// The path as a command-line argument or a file name.
pub fn path_os(path: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(path_bytes(path))
}

/// NUL-separated paths from `-z` output, each decoded.
pub(crate) fn nul_separated(out: &[u8]) -> Vec<String> {
    out.split(|byte| *byte == 0).filter(|path| !path.is_empty()).map(path_from_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_whatever_their_bytes() {
        let cases: [&[u8]; 7] = [
            b"plain.txt",
            "caf\u{e9}/r\u{e9}sum\u{e9}.md".as_bytes(),
            b"latin1-caf\xe9.txt",
            b"tab\there, newline\nthere, \"quotes\" and \\",
            b"\xff\xfe\x80 truncated \xe2\x82",
            "private \u{f7e9} use".as_bytes(),
            b"",
        ];
        for bytes in cases {
            let path = path_from_bytes(bytes);
            assert_eq!(path_bytes(&path), bytes, "{path:?}");
        }
        assert_eq!(path_from_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}", "valid UTF-8 stays as it is");
        assert_ne!(path_from_bytes(b"caf\xe9"), path_from_bytes("caf\u{f7e9}".as_bytes()));
    }
}
