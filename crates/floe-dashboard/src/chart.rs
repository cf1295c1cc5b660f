//! Small line charts as inline SVG, drawn on the server (the live part of the page, charts
//! included, is fetched again by the script, so there is no chart code in the browser).

use std::fmt::Write;

use crate::html::esc;

/// Width and height of the SVG's view box.
pub const WIDTH: f64 = 300.0;
pub const HEIGHT: f64 = 60.0;

/// The polyline points of `values` (gaps skipped), scaled so the largest value touches the top.
pub fn points(values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().fold(0.0_f64, |m, v| m.max(*v));
    let scale = if max > 0.0 { (HEIGHT - 4.0) / max } else { 0.0 };
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            let x = i as f64 * step;
            let y = HEIGHT - 2.0 - v * scale;
            let _ = write!(out, "{x:.1},{y:.1} ");
        }
    }
    out.trim_end().to_string()
}

/// The last measured value, formatted, or "—".
pub fn latest(values: &[Option<f64>], unit: &str) -> String {
    match values.iter().rev().flatten().next() {
        Some(v) if *v >= 100.0 => format!("{v:.0} {unit}"),
        Some(v) => format!("{v:.1} {unit}"),
        None => "—".to_string(),
    }
}

/// A chart: `key` names its series in the snapshot's JSON (for the script).
pub fn figure(key: &str, title: &str, unit: &str, values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().fold(0.0_f64, |m, v| m.max(*v));
    format!(
        "<figure class=\"chart\" data-series=\"{key}\" data-unit=\"{unit}\">\
         <figcaption>{title}: <strong class=\"now\">{now}</strong> \
         <span class=\"max\">(max {max:.1} {unit})</span></figcaption>\
         <svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{label}\"><line class=\"axis\" x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>\
         <polyline fill=\"none\" points=\"{points}\"/></svg></figure>",
        key = esc(key),
        unit = esc(unit),
        title = esc(title),
        now = esc(&latest(values, unit)),
        label = esc(&format!("{title} over the last {} samples", values.len())),
        base = HEIGHT - 1.0,
        points = points(values),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_to_the_box_and_skips_gaps() {
        assert_eq!(points(&[Some(0.0), None, Some(2.0)]), "0.0,58.0 300.0,2.0");
        assert_eq!(points(&[]), "");
        assert_eq!(latest(&[Some(1.0), None], "ms"), "1.0 ms");
        assert_eq!(latest(&[None], "ms"), "—");
        assert!(figure("x", "X", "op/s", &[Some(1.0)]).contains("data-series=\"x\""));
    }
}
