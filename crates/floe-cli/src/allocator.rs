//! How the process's allocator (glibc's malloc, on Linux) keeps memory it was given back.
//!
//! By default glibc raises its mmap threshold each time a large block is freed, up to 32 MiB,
//! so after the first large request the next bodies and slivers come from its heaps, and a
//! heap of another thread than the main one gives back nothing of its free top, not even to
//! `malloc_trim`. A daemon that had served a few large PUTs and concurrent GETs stayed at
//! 140–300 MiB with nothing in flight (about 20 MiB at its start).
//!
//! So [`configure`] fixes the thresholds: blocks of 4 MiB and more are mapped on their own
//! and unmapped when freed; a heap gives back its free top beyond 4 MiB. That second bound is
//! the only one that ever shrinks the heaps of threads other than the main one: glibc trims
//! them when a free leaves their top above it, and `malloc_trim` does not touch their top at
//! all. At 16 MiB (this module's earlier setting) each heap kept up to 16 MiB of pages freed
//! by the last request: an idle daemon was at 49–62 MiB after 64 MiB PUTs, 32–36 MiB at 4 MiB.
//! 1 MiB gave the same idle figure but made 1 MiB PUTs 1–8 % slower (each one's sliver blocks,
//! all under 4 MiB, were given back and faulted in again); at 4 MiB a heap keeps one block of
//! that size at most, and PUT times stay within the runs' spread. glibc makes up to 8 heaps
//! per core: [`configure`] allows 2 per core (at least 4), which on 2 cores took the nodes'
//! peak RSS from 103–121 to 72–79 MiB over three 64 MiB PUTs and 200 readers, with PUT times
//! within the runs' spread. And the daemon calls [`release_free_memory`] once idle for the
//! rest. A `GLIBC_TUNABLES` variable that sets one of these wins over this.
//!
//! Those large blocks are fresh pages every time, and a 64 MiB PUT touches about 300 MiB of
//! them in the daemon (the blob, its slivers). Faulting them in 4 KiB at a time cost about a
//! tenth of the daemon's CPU. So [`Allocator`], the process's
//! global allocator, is the system's with one addition: it asks the kernel to back each block
//! of [`MMAP_THRESHOLD`] or more with transparent huge pages (`madvise(MADV_HUGEPAGE)`, which
//! the kernel honours in its default `madvise` mode, and ignores when THP is off). The pages
//! are still returned when the block is freed.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large get their own mapping.
pub const MMAP_THRESHOLD: usize = 4 << 20;
/// A heap's free top beyond this is given back.
pub const TRIM_THRESHOLD: usize = 4 << 20;
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

/// The system allocator, with blocks of [`MMAP_THRESHOLD`] bytes or more advised to use
/// transparent huge pages (see the module's documentation).
pub struct Allocator;

#[allow(unsafe_code)] // GlobalAlloc; see SAFETY
// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// trait's contract; `advise_huge` only adds a hint about pages inside the block just returned.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the one `System` needs.
        let block = unsafe { System.alloc(layout) };
        advise_huge(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        advise_huge(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, checked by its contract.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        // Growing into the large range: the part not written yet gets huge pages.
        if new_size > layout.size() {
            advise_huge(moved, new_size);
        }
        moved
    }
}

/// Ask for transparent huge pages over every page `[block, block + len)` touches, when `len`
/// is at least [`MMAP_THRESHOLD`]. A hint: failures (no THP in this kernel) are ignored.
///
/// Every page, not only those wholly inside: such a block is a mapping of its own, starting
/// with the allocator's header just before `block`, and advice over part of a mapping splits
/// it in two or three. `mremap`, which grows a block in place when `realloc` asks, fails across
/// a split (`EFAULT`), and the allocator then copies the whole block instead: growing a 64 MiB
/// request body to the encoder's matrix mapped 128 MiB afresh and copied 64 MiB into it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // madvise(2); see SAFETY
fn advise_huge(block: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    if block.is_null() || len < MMAP_THRESHOLD {
        return;
    }
    let start = block as usize / PAGE * PAGE;
    let end = (block as usize + len).next_multiple_of(PAGE);
    // SAFETY: the pages hold a block the allocator just handed out, so they are mapped (the
    // block's own mapping, or the heap around it); MADV_HUGEPAGE changes how later faults
    // are served, never the contents of any page.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_block: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    /// The `VmFlags` line of the mapping in /proc/self/smaps that holds `address`.
    fn vm_flags_at(address: usize) -> String {
        mapping_at(address).1
    }

    /// The bounds and `VmFlags` of the mapping in /proc/self/smaps that holds `address`.
    fn mapping_at(address: usize) -> (std::ops::Range<usize>, String) {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("reading /proc/self/smaps");
        let mut inside = None;
        for line in smaps.lines() {
            let head = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = head.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&address).then_some(lo..hi);
            } else if let Some(range) = &inside
                && let Some(flags) = line.strip_prefix("VmFlags:")
            {
                return (range.clone(), flags.trim().to_string());
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    /// A large block and the same block grown each lie in one mapping, advised as a whole:
    /// advice over part of it would split it, and `realloc` could then not grow it with
    /// `mremap` (it copies the block instead).
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)] // allocating through GlobalAlloc by hand
    fn a_large_block_stays_one_mapping_so_that_it_can_grow_in_place() {
        let a = super::Allocator;
        let len = super::MMAP_THRESHOLD * 2 + 100;
        let layout = Layout::from_size_align(len, 8).unwrap();
        // SAFETY: a non-zero layout; the block is written within its length, grown with the
        // layout it has and freed with the grown one.
        unsafe {
            let block = a.alloc(layout);
            assert!(!block.is_null());
            block.write(7);
            block.add(len - 1).write(9);
            let (range, flags) = mapping_at(block as usize);
            assert!(
                range.end >= block as usize + len,
                "the block {block:p}+{len} is split: its first byte's mapping is {range:x?}"
            );
            assert!(flags.split(' ').any(|f| f == "hg"), "{flags}");
            let grown_len = len * 2;
            let grown = a.realloc(block, layout, grown_len);
            assert!(!grown.is_null());
            assert_eq!(
                (grown.read(), grown.add(len - 1).read()),
                (7, 9),
                "contents kept"
            );
            let (range, flags) = mapping_at(grown as usize);
            assert!(range.end >= grown as usize + grown_len, "grown: {range:x?}");
            assert!(flags.split(' ').any(|f| f == "hg"), "{flags}");
            a.dealloc(grown, Layout::from_size_align(grown_len, 8).unwrap());
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)] // allocating through GlobalAlloc by hand
    fn large_blocks_are_advised_to_use_huge_pages_and_small_ones_are_not() {
        let a = super::Allocator;
        for zeroed in [false, true] {
            let large = Layout::from_size_align(super::MMAP_THRESHOLD * 2, 8).unwrap();
            // SAFETY: a non-zero layout; the block is freed below with the same layout.
            let block = unsafe {
                if zeroed {
                    a.alloc_zeroed(large)
                } else {
                    a.alloc(large)
                }
            };
            assert!(!block.is_null());
            let flags = vm_flags_at(block as usize + super::MMAP_THRESHOLD);
            // SAFETY: allocated above with `large`.
            unsafe { a.dealloc(block, large) };
            assert!(
                flags.split(' ').any(|f| f == "hg"),
                "zeroed {zeroed}: {flags}"
            );
        }
        // Grown past the threshold by realloc: the grown block is advised too.
        let small = Layout::from_size_align(64 * 1024, 8).unwrap();
        // SAFETY: non-zero layouts; each block is passed on with the layout it has.
        unsafe {
            let block = a.alloc(small);
            let small_flags = vm_flags_at(block as usize);
            assert!(!small_flags.split(' ').any(|f| f == "hg"), "{small_flags}");
            let grown = a.realloc(block, small, super::MMAP_THRESHOLD * 3);
            let flags = vm_flags_at(grown as usize + super::MMAP_THRESHOLD);
            a.dealloc(
                grown,
                Layout::from_size_align(super::MMAP_THRESHOLD * 3, 8).unwrap(),
            );
            assert!(flags.split(' ').any(|f| f == "hg"), "{flags}");
        }
    }

    /// How many of the whole pages in `[lo, hi)` are resident (`mincore`); a range no longer
    /// mapped counts as none.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)] // mincore(2); see SAFETY
    fn resident_pages(lo: usize, hi: usize) -> usize {
        const PAGE: usize = 4096;
        let (lo, hi) = (lo.next_multiple_of(PAGE), hi / PAGE * PAGE);
        (lo..hi)
            .step_by(PAGE)
            .filter(|&page| {
                let mut resident = 0u8;
                // SAFETY: mincore only reads the page tables for one page-aligned page and
                // writes one byte into `resident`; an unmapped page makes it fail (ENOMEM).
                let rc = unsafe { libc::mincore(page as *mut libc::c_void, PAGE, &mut resident) };
                rc == 0 && resident & 1 == 1
            })
            .count()
    }

    /// 8 MiB freed at the top of a thread's heap go back to the system at once: they pass
    /// [`super::TRIM_THRESHOLD`]. `malloc_trim` would not return them (it leaves the top of
    /// other threads' heaps alone), so under a threshold above 8 MiB they would stay.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_heaps_free_top_goes_back_to_the_system_past_the_trim_threshold() {
        super::configure();
        let freed = 8 << 20;
        std::thread::spawn(move || {
            // Blocks under the mmap threshold come from this thread's heap, one after another.
            let block = 256 << 10;
            let blocks: Vec<Vec<u8>> = (0..freed / block).map(|i| vec![i as u8; block]).collect();
            let lo = blocks.iter().map(|b| b.as_ptr() as usize).min().unwrap();
            let hi = blocks
                .iter()
                .map(|b| b.as_ptr() as usize + block)
                .max()
                .unwrap();
            let touched = resident_pages(lo, hi);
            assert!(touched * 4096 >= freed * 9 / 10, "{touched} pages resident");
            drop(blocks);
            let left = resident_pages(lo, hi);
            assert!(
                left * 4 < touched,
                "{left} of {touched} freed pages still resident (trim threshold {} bytes, \
                 GLIBC_TUNABLES {:?})",
                super::TRIM_THRESHOLD,
                std::env::var("GLIBC_TUNABLES").ok()
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn heaps_scale_with_cores_from_a_floor() {
        assert_eq!(super::max_arenas(1), 4);
        assert_eq!(super::max_arenas(2), 4);
        assert_eq!(super::max_arenas(16), 32);
    }
}
