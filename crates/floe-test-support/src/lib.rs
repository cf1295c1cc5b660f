//! What Floe's tests share, so that each harness exists once.
//!
//! * [`seed`]: a test's seed from `FLOE_TEST_SEED` or drawn, printed before anything else; one
//!   ChaCha8 stream per purpose; seeded blob contents.
//! * [`proc`]: a child process with its output in log files, SIGKILLed and reaped when dropped;
//!   waiting for it to answer HTTP; stopping it with SIGTERM or SIGKILL; free port ranges; the
//!   process's established connections to a port.
//! * [`wait`]: polling with a deadline that names what it waited for.
//! * [`cli`]: the `floe` binary run in a directory of its own (`Floe`), and `floe testbed` as a
//!   child that is ready when it prints `ready` (`Bed`).
//!
//! The binary's path comes from the caller (`env!("CARGO_BIN_EXE_floe")` exists only in the
//! tests of the crate that builds it), so this crate depends on no Floe crate above the core.
#![forbid(unsafe_code)]

pub mod cli;
pub mod proc;
pub mod seed;
pub mod wait;

pub use cli::{Bed, Floe};
pub use proc::{Proc, Stop, established_connections_to, free_base_port};
pub use seed::{data, random_bytes, rng, test_seed};
pub use wait::wait_for;
