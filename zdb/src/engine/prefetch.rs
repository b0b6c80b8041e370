//! Prefetch hints, so that the lookups of a batch of reads wait on memory together.
//!
//! A pipelined GET is bound by dependent cache misses (key map slot, the key in the arena, the
//! read cache's entry, the value): one GET at a time, each miss waits for the one before, and
//! the locks between two GETs keep the CPU from running ahead into the next. Looking a batch of
//! keys up pass by pass, each pass prefetching what the next one reads, overlaps those misses
//! (BENCHMARKS.md, pipelined GET).

/// Most bytes of one value a hint asks for (four cache lines).
const MAX_BYTES: usize = 256;
const LINE: usize = 64;

/// Ask the CPU to bring the cache line at `ptr` in, without waiting for it.
pub(crate) fn line(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    hint::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Ask for the cache line at `ptr` with intent to write. PREFETCHW where the build enables it;
/// the baseline x86_64 target gets PREFETCHT0, which for a line no other core holds brings it
/// in exclusive, ready for the store, all the same. Any address is fine: a wrong one only
/// wastes the hint.
pub(crate) fn for_write<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    hint::<{ std::arch::x86_64::_MM_HINT_ET0 }>(ptr.cast());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

#[cfg(target_arch = "x86_64")]
fn hint<const KIND: i32>(ptr: *const u8) {
    // SAFETY: a prefetch is only a hint: it never faults and changes no memory, whatever the
    // address, and SSE is part of the x86_64 baseline.
    #[expect(unsafe_code, reason = "a prefetch hint is an intrinsic")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<KIND>(ptr.cast());
    }
}

/// Hint the start (up to [`MAX_BYTES`]) of `bytes`.
pub(crate) fn bytes(bytes: &[u8]) {
    let start = bytes.as_ptr();
    for at in (0..bytes.len().min(MAX_BYTES)).step_by(LINE) {
        line(start.wrapping_add(at));
    }
    // The last line, when the value starts late in its first one.
    if let Some(last) = bytes.len().min(MAX_BYTES).checked_sub(1) {
        line(start.wrapping_add(last));
    }
}

/// Hint the cache line holding the start of `value`.
pub(crate) fn object<T>(value: &T) {
    line(std::ptr::from_ref(value).cast());
}
