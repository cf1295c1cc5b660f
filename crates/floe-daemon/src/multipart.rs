//! A bounded `multipart/form-data` parser (RFC 7578) over a body already read into memory
//! (whose size the caller bounded): enough for `PUT /v1/quilts`, where each part is a form
//! field whose name is the patch identifier.

use std::ops::Range;

/// At most this many parts are parsed.
pub const MAX_PARTS: usize = 20_000;
/// At most this many bytes of headers per part.
const MAX_PART_HEADERS: usize = 16 * 1024;

/// One part: its field name, its file name if any, and where its bytes are in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the Content-Type must be multipart/form-data with a boundary")]
    NotMultipart,
    #[error("the body does not start with the boundary")]
    NoFirstBoundary,
    #[error("part {0} is not terminated by the boundary")]
    Unterminated(usize),
    #[error("part {0} has no end of headers (or more than 16 KiB of them)")]
    BadHeaders(usize),
    #[error("part {0} has no Content-Disposition: form-data with a name")]
    NoName(usize),
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let mut params = content_type.split(';');
    let kind = params.next().unwrap_or("").trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or(MultipartError::NotMultipart)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A quoted or bare parameter of a `Content-Disposition` header.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        Some(
            match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_string(),
            },
        )
    })
}

/// The parts of `body`, delimited by `boundary`.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut at = find(body, dash.as_bytes(), 0).ok_or(MultipartError::NoFirstBoundary)?;
    // The preamble (before the first boundary) is ignored.
    at += dash.len();
    let mut parts = Vec::new();
    loop {
        // After a boundary: `--` ends the body; otherwise CRLF and a part follow.
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        let i = parts.len();
        if parts.len() >= MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        // Transport padding (spaces and tabs) may precede the CRLF.
        while matches!(body.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err(MultipartError::Unterminated(i));
        }
        at += 2;
        let headers_end = find(body, b"\r\n\r\n", at)
            .filter(|&e| e - at <= MAX_PART_HEADERS)
            .ok_or(MultipartError::BadHeaders(i))?;
        let headers = std::str::from_utf8(&body[at..headers_end])
            .map_err(|_| MultipartError::BadHeaders(i))?;
        let disposition = headers
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| v.trim())
            .filter(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("form-data"))
            })
            .ok_or(MultipartError::NoName(i))?;
        let name = disposition_param(disposition, "name").ok_or(MultipartError::NoName(i))?;
        let filename = disposition_param(disposition, "filename");
        let start = headers_end + 4;
        let end = find(body, delimiter.as_bytes(), start).ok_or(MultipartError::Unterminated(i))?;
        parts.push(Part {
            name,
            filename,
            data: start..end,
        });
        at = end + delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, &[u8])], boundary: &str) -> Vec<u8> {
        let mut b = b"preamble\r\n".to_vec();
        for (name, data) in parts {
            b.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        b
    }

    #[test]
    fn parses_parts_including_binary_and_empty_ones() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").unwrap(),
            "abc"
        );
        assert!(boundary("application/json").is_err());
        let data: &[u8] = b"\r\n--ab\r\nnot a boundary\r\n";
        let b = body(
            &[("a.txt", data), ("empty", b""), ("_metadata", b"[]")],
            "abc",
        );
        let parts = parse(&b, "abc").unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "empty", "_metadata"]);
        assert_eq!(&b[parts[0].data.clone()], data);
        assert!(parts[1].data.is_empty());
        assert_eq!(&b[parts[2].data.clone()], b"[]");
        assert_eq!(parts[0].filename.as_deref(), Some("a.txt"));
    }

    #[test]
    fn malformed_bodies_are_refused_without_panicking() {
        let good = body(&[("a", b"xyz")], "abc");
        assert_eq!(
            parse(b"nothing", "abc"),
            Err(MultipartError::NoFirstBoundary)
        );
        for cut in 0..good.len() {
            let _ = parse(&good[..cut], "abc");
        }
        let no_name = b"--abc\r\nContent-Disposition: form-data\r\n\r\nx\r\n--abc--";
        assert_eq!(parse(no_name, "abc"), Err(MultipartError::NoName(0)));
        let unterminated = b"--abc\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz";
        assert_eq!(
            parse(unterminated, "abc"),
            Err(MultipartError::Unterminated(0))
        );
    }
}
