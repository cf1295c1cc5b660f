//! Small helpers for writing HTML by hand: escaping, the page frame, and human units.

use std::fmt::Write;

/// `s` with `& < > " '` escaped, safe in text and in quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Network,
    Blob,
    Upload,
    None,
}

/// A whole page: `title`, the navigation, and `main` (already HTML).
pub fn page(prefix: &str, title: &str, nav: Nav, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 2048);
    let p = esc(prefix);
    let link = |out: &mut String, href: &str, label: &str, this: Nav| {
        let current = if nav == this {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(out, "<li><a href=\"{p}{href}\"{current}>{label}</a></li>");
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Floe</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"{p}/assets/dashboard.css\">\
         <script src=\"{p}/assets/dashboard.js\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><p class=\"brand\"><a href=\"{p}\">Floe</a></p><nav aria-label=\"Dashboard\"><ul>",
        esc(title)
    );
    link(&mut out, "", "Network", Nav::Network);
    link(&mut out, "/blob", "Blobs", Nav::Blob);
    link(&mut out, "/upload", "Upload", Nav::Upload);
    let _ = write!(
        out,
        "</ul></nav><form class=\"search\" role=\"search\" method=\"get\" action=\"{p}/blob\">\
         <label for=\"q\">Blob ID or object ID</label>\
         <input id=\"q\" name=\"id\" required autocomplete=\"off\" spellcheck=\"false\" placeholder=\"Blob ID or object ID\">\
         <button type=\"submit\">Find</button></form></header>\
         <main id=\"main\">{main}</main>\
         <footer><p>Served by Floe. Everything on this page comes from this server.</p></footer>\
         </body></html>"
    );
    out
}

/// `n` bytes in binary units (`1.5 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A span of milliseconds in words: `2 d 3 h`, `4 min 5 s`, `800 ms`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn date_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A `<time>` element for `ms` (the machine-readable value for scripts and screen readers).
pub fn time_el(ms: u64) -> String {
    format!(
        "<time datetime=\"{}\" data-ms=\"{ms}\">{}</time>",
        date_ms(ms).replace(" UTC", "Z").replacen(' ', "T", 1),
        date_ms(ms)
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn dates_and_units() {
        assert_eq!(date_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date_ms(1_764_763_200_000), "2025-12-03 12:00:00 UTC");
        assert_eq!(date_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration_ms(65_000), "1 min 5 s");
        assert_eq!(duration_ms(90_061_000), "1 d 1 h");
        assert!(time_el(0).contains("datetime=\"1970-01-01T00:00:00Z\""));
    }
}
