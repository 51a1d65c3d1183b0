//! Two processes share an experience ring: this test re-runs its own binary as the writer
//! (`AEGIS_RING_WRITER=path`) and reads while it writes, with a ring small enough that
//! slots are reused under the reader's feet. Every record the reader accepts must be whole:
//! all its words derive from its record number.

use aegis_wire::experience::{RingReader, RingWriter};
use std::process::Command;

const WORDS: usize = 26;
const CAPACITY: usize = 8;
const RECORDS: u64 = 200_000;

fn pattern(n: u64) -> [u64; WORDS] {
    std::array::from_fn(|k| n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(k as u32) ^ k as u64)
}

#[test]
fn writer_process() {
    // Only does something when started by the test below.
    let Some(path) = std::env::var_os("AEGIS_RING_WRITER") else { return };
    let mut w = RingWriter::<WORDS>::open(std::path::Path::new(&path), CAPACITY).unwrap();
    for n in 0..RECORDS {
        w.append(&pattern(n));
    }
}

#[test]
fn a_reader_in_another_process_never_sees_a_half_written_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trades.ring");
    // Create the file first, so the reader can map it before the writer starts.
    drop(RingWriter::<WORDS>::open(&path, CAPACITY).unwrap());
    let reader = RingReader::<WORDS>::open(&path, CAPACITY).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_process", "--nocapture", "--test-threads=1"])
        .env("AEGIS_RING_WRITER", &path)
        .spawn()
        .unwrap();
    let (mut accepted, mut refused, mut seen_while_running) = (0u64, 0u64, 0u64);
    loop {
        let finished = child.try_wait().unwrap().is_some();
        let range = reader.range();
        for n in range.clone() {
            match reader.get(n) {
                Some(words) => {
                    assert_eq!(words, pattern(n), "record {n} read torn");
                    accepted += 1;
                    if !finished {
                        seen_while_running += 1;
                    }
                }
                None => refused += 1,
            }
        }
        if finished && range.end == RECORDS {
            break;
        }
        assert!(!finished || child.wait().unwrap().success(), "writer failed");
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(reader.range(), RECORDS - CAPACITY as u64..RECORDS);
    assert!(seen_while_running > 0, "the reader must have overlapped the writer");
    eprintln!("accepted {accepted}, refused as overwritten {refused}, while writing {seen_while_running}");
}
