//! How the process's allocator (glibc's malloc, on Linux) keeps memory it was given back.
//!
//! By default glibc raises its mmap threshold each time a large block is freed, up to 32 MiB,
//! so after the first large request the next bodies and slivers come from its heaps, and a
//! heap of another thread than the main one gives back nothing of its free top, not even to
//! `malloc_trim`. A daemon that had served a few large PUTs and concurrent GETs stayed at
//! 140–300 MiB with nothing in flight (about 20 MiB at its start).
//!
//! So [`configure`] fixes the thresholds: blocks of 4 MiB and more are mapped on their own
//! and unmapped when freed; a heap gives back its free top beyond 16 MiB. Each heap may keep
//! that much, and glibc makes up to 8 heaps per core: [`configure`] allows 2 per core (at
//! least 4), which on 2 cores took the nodes' peak RSS from 103–121 to 72–79 MiB over three
//! 64 MiB PUTs and 200 readers, with PUT times within the runs' spread. And the daemon calls
//! [`release_free_memory`] once idle for the rest. A `GLIBC_TUNABLES` variable that sets
//! one of these wins over this.

/// Blocks at least this large get their own mapping.
pub const MMAP_THRESHOLD: usize = 4 << 20;
/// A heap's free top beyond this is given back.
pub const TRIM_THRESHOLD: usize = 16 << 20;
/// Heaps per core at most (threads share them beyond that), and at least this many in all.
pub const ARENAS_PER_CORE: usize = 2;
pub const MIN_ARENAS: usize = 4;

/// The most heaps for `cores` cores.
pub fn max_arenas(cores: usize) -> usize {
    (cores * ARENAS_PER_CORE).max(MIN_ARENAS)
}

/// Fix the allocator's thresholds (at the start of `main`, before any thread).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // mallopt(3); see SAFETY
pub fn configure() {
    let tuned = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    // SAFETY: mallopt takes plain integers and changes the allocator's parameters under its
    // own lock; called once, before other threads start.
    unsafe {
        if !tuned.contains("malloc.mmap_threshold") {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        }
        if !tuned.contains("malloc.trim_threshold") {
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
        }
        if !tuned.contains("malloc.arena_max") {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let arenas = max_arenas(cores).min(libc::c_int::MAX as usize);
            libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
        }
    }
}

/// Other allocators have their own policies.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure() {}

/// Return the allocator's free pages to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // malloc_trim(3); see SAFETY
pub fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers; it works on the allocator's own free lists under
    // the allocator's locks, so any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return free memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

#[cfg(test)]
mod tests {
    #[test]
    fn heaps_scale_with_cores_from_a_floor() {
        assert_eq!(super::max_arenas(1), 4);
        assert_eq!(super::max_arenas(2), 4);
        assert_eq!(super::max_arenas(16), 32);
    }
}
