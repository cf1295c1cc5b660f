//! Polling with a deadline.

use std::time::{Duration, Instant};

/// How often [`wait_for`] asks.
pub const POLL: Duration = Duration::from_millis(300);

/// Ask `f` every [`POLL`] until it returns `Some`, for at most `limit`; prints how long it
/// took, and panics naming `what` when the time is up.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            println!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_answer_comes() {
        let mut asked = 0;
        let v = wait_for("the third ask", Duration::from_secs(5), || {
            asked += 1;
            (asked == 3).then_some(asked)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for: nothing")]
    fn names_what_never_came() {
        wait_for::<()>("nothing", Duration::from_millis(1), || None);
    }
}
