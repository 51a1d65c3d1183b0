//! Test support shared by the Aegis crates.
//!
//! - [`CountingAllocator`]: a global allocator that counts this thread's allocations, for
//!   the tests proving the hot paths allocate nothing after warm-up. Install it in a test
//!   binary with `#[global_allocator] static A: CountingAllocator = CountingAllocator;`.
//! - [`ed25519_pair`]: a fresh Ed25519 API key pair in the PEM forms Binance's key
//!   management uses.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Per thread: the test harness's own threads allocate whenever they like.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting allocations and reallocations per thread.
pub struct CountingAllocator;

/// Allocations (and reallocations) made so far by the calling thread.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: our caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (every allocation is).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: our caller upholds `GlobalAlloc::realloc`'s contract, which we pass on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A fresh Ed25519 key pair in PEM: the private key as PKCS#8 (what a client signs with, and
/// Binance's SDK loads), the public key as SubjectPublicKeyInfo (what an account registers).
pub fn ed25519_pair() -> (String, String) {
    use base64::Engine;
    use ring::signature::KeyPair;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .unwrap_or_else(|e| panic!("generating an Ed25519 key: {e}"));
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(der.as_ref())
        .unwrap_or_else(|e| panic!("reading the key just generated: {e}"));
    // SubjectPublicKeyInfo: the Ed25519 algorithm identifier, then the 32-byte key.
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(pair.public_key().as_ref());
    (
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", b64(der.as_ref())),
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", b64(&spki)),
    )
}
