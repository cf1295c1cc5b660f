//! Blob IDs and quilt patch IDs are URL-safe base64, so one in 64 starts with `-`, and a
//! command-line parser takes such a value for a flag: `floe delete --blob-ids A -B…` failed
//! with "unexpected argument". Before parsing, an ID-shaped argument that starts with `-` and
//! follows a long option is attached to that option (`--blob-ids=-B…`); an ID-shaped argument
//! with no option before it (a positional ID) is left as it is, and the parser's error then
//! gets a hint (`--` before positional IDs).

use std::ffi::OsString;

/// Whether `arg` has the shape of a blob ID (43 base64url characters) or of a longer quilt
/// patch ID, and starts with `-` (but not `--`, which is always an option).
pub fn is_hyphen_id(arg: &str) -> bool {
    arg.starts_with('-')
        && !arg.starts_with("--")
        && arg.len() >= 43
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The arguments with each hyphen ID attached to the long option before it.
pub fn attach_hyphen_ids(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut option: Option<String> = None;
    let mut rest_positional = false;
    for arg in args {
        let Some(text) = arg.to_str().filter(|_| !rest_positional) else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_positional = true;
            out.push(arg);
        } else if is_hyphen_id(text) {
            match &option {
                Some(name) => out.push(format!("{name}={text}").into()),
                None => out.push(arg),
            }
        } else if text.starts_with("--") {
            // Values may follow an option given without `=`; one given with `=` takes none.
            option = (!text.contains('=')).then(|| text.to_string());
            out.push(arg);
        } else {
            if text.starts_with('-') {
                option = None; // a short flag
            }
            out.push(arg);
        }
    }
    out
}

/// A hint for a parse error caused by a positional hyphen ID, if that is what `args` hold.
pub fn hyphen_id_hint(args: &[OsString]) -> Option<String> {
    let id = args
        .iter()
        .filter_map(|a| a.to_str())
        .find(|a| is_hyphen_id(a))?;
    Some(format!(
        "note: {id} looks like an ID that starts with '-': attach it to its option \
         (--blob-ids={id}), or put `--` before positional IDs (floe audit -- {id})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a1B2X99gOfj_tGQ_Yf1vYVFsSuxKVOM1IXMsaHJqQQ0";
    const B: &str = "-a1B2X99gOfj_tGQ_Yf1vYVFsSuxKVOM1IXMsaHJqQQ";

    fn run(args: &[&str]) -> Vec<String> {
        attach_hyphen_ids(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn hyphen_ids_after_a_long_option_are_attached_to_it() {
        assert_eq!(
            run(&["floe", "delete", "--blob-ids", A, B, B, "--yes"]),
            [
                "floe",
                "delete",
                "--blob-ids",
                A,
                &format!("--blob-ids={B}"),
                &format!("--blob-ids={B}"),
                "--yes"
            ]
        );
        assert_eq!(
            run(&["floe", "read-quilt", "--quilt-patch-ids", B]),
            [
                "floe",
                "read-quilt",
                "--quilt-patch-ids",
                &format!("--quilt-patch-ids={B}")
            ]
        );
    }

    #[test]
    fn flags_positionals_and_everything_after_a_double_dash_are_left_alone() {
        let same = |args: &[&str]| assert_eq!(run(args), args);
        same(&["floe", "audit", B]);
        same(&["floe", "audit", "--", B]);
        same(&["floe", "delete", "--blob-ids=x", B]);
        same(&["floe", "delete", "-h"]);
        same(&["floe", "store", "--epochs", "-5"]);
        assert!(!is_hyphen_id(
            "--blob-ids-and-something-long-enough-to-be-an-id"
        ));
        assert!(hyphen_id_hint(&[OsString::from(B)]).unwrap().contains("--"));
    }
}
