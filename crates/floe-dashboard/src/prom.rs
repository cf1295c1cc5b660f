//! Just enough of the Prometheus text format to add up the counters the charts need.

/// The sum of every sample of metric `name` whose label text (what stands between the braces,
/// or "" without labels) passes `keep`; `None` when there is no such sample.
pub fn sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
            match inner.rsplit_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            }
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue; // a longer name with this one as its prefix
        };
        let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if v.is_finite() && keep(labels) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// Every sample of `name`.
pub fn sum_all(text: &str, name: &str) -> Option<f64> {
    sum(text, name, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE a counter\n\
        a{route=\"/x\",status=\"200\"} 3\n\
        a{route=\"/y\",status=\"500\"} 4\n\
        a_sum 100\n\
        b 2.5\n\
        broken{ 7\n";

    #[test]
    fn sums_by_name_and_labels() {
        assert_eq!(sum_all(TEXT, "a"), Some(7.0));
        assert_eq!(sum(TEXT, "a", |l| l.contains("500")), Some(4.0));
        assert_eq!(sum_all(TEXT, "a_sum"), Some(100.0));
        assert_eq!(sum_all(TEXT, "b"), Some(2.5));
        assert_eq!(sum_all(TEXT, "c"), None);
        assert_eq!(sum_all(TEXT, "broken"), None);
    }
}
