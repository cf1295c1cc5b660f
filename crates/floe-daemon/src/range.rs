//! The HTTP `Range` header (RFC 9110 §14), for one range of bytes.
//!
//! `bytes=a-b`, `bytes=a-` and `bytes=-n` are served as 206 Partial Content. Several ranges
//! (`bytes=0-1,5-6`), another unit, or a malformed header are ignored, as RFC 9110 allows: the
//! whole blob is served with 200. A well-formed range that starts at or after the end of the
//! blob (or `-0`, or any range of an empty blob) is unsatisfiable: 416 with
//! `Content-Range: bytes */size`.

/// One requested byte range, before the blob's size is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b`: bytes a to b inclusive (b may run past the end).
    Closed { first: u64, last: u64 },
    /// `a-`: from byte a to the end.
    From { first: u64 },
    /// `-n`: the last n bytes.
    Suffix { length: u64 },
}

impl ByteRange {
    /// The range a `Range` header asks for; `None` when it is to be ignored.
    pub fn parse(header: &str) -> Option<Self> {
        let (unit, spec) = header.trim().split_once('=')?;
        if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
            return None;
        }
        let (first, last) = spec.trim().split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, true) => None,
            (true, false) => Some(ByteRange::Suffix {
                length: number(last)?,
            }),
            (false, true) => Some(ByteRange::From {
                first: number(first)?,
            }),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                (first <= last).then_some(ByteRange::Closed { first, last })
            }
        }
    }

    /// `(start, length)` within a blob of `size` bytes; `None` if unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::Closed { first, last } if first < size => {
                Some((first, last.min(size - 1) - first + 1))
            }
            ByteRange::From { first } if first < size => Some((first, size - first)),
            ByteRange::Suffix { length } if length > 0 && size > 0 => {
                let length = length.min(size);
                Some((size - length, length))
            }
            _ => None,
        }
    }
}

/// The `Content-Range` value of a served range.
pub fn content_range(start: u64, length: u64, size: u64) -> String {
    format!("bytes {start}-{}/{size}", start + length - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_parse_and_everything_else_is_ignored() {
        use ByteRange::*;
        assert_eq!(
            ByteRange::parse("bytes=0-99"),
            Some(Closed { first: 0, last: 99 })
        );
        assert_eq!(
            ByteRange::parse(" Bytes = 5 - 5 "),
            Some(Closed { first: 5, last: 5 })
        );
        assert_eq!(ByteRange::parse("bytes=7-"), Some(From { first: 7 }));
        assert_eq!(ByteRange::parse("bytes=-3"), Some(Suffix { length: 3 }));
        for ignored in [
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=5-2",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes 0-1",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(ByteRange::parse(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        use ByteRange::*;
        assert_eq!(Closed { first: 2, last: 4 }.resolve(10), Some((2, 3)));
        assert_eq!(
            Closed {
                first: 2,
                last: 400
            }
            .resolve(10),
            Some((2, 8))
        );
        assert_eq!(
            Closed {
                first: 10,
                last: 11
            }
            .resolve(10),
            None
        );
        assert_eq!(From { first: 9 }.resolve(10), Some((9, 1)));
        assert_eq!(From { first: 10 }.resolve(10), None);
        assert_eq!(Suffix { length: 3 }.resolve(10), Some((7, 3)));
        assert_eq!(Suffix { length: 30 }.resolve(10), Some((0, 10)));
        assert_eq!(Suffix { length: 0 }.resolve(10), None);
        assert_eq!(Suffix { length: 1 }.resolve(0), None);
        assert_eq!(From { first: 0 }.resolve(0), None);
        assert_eq!(content_range(7, 3, 10), "bytes 7-9/10");
    }
}
