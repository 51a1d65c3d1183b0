//! Two processes share the weights file: this test re-runs its own binary as the sidecar
//! (`AEGIS_WEIGHTS_WRITER=path`) publishing 10,000 models as fast as it can, while the
//! brain-side reader copies and validates whatever is active. Every model the reader
//! accepts must be whole — all its parameters derive from its generation — and no copy may
//! pass the seqlock yet fail its checksum.

use aegis_wire::weights::{ModelParams, WeightsError, WeightsReader, WeightsWriter, PARAMS};
use std::process::Command;

const PUBLISHES: u64 = 10_000;

fn model(generation: u64) -> ModelParams {
    let mut m = ModelParams::zeroed();
    m.generation = generation;
    for (i, v) in m.values.iter_mut().enumerate() {
        *v = (generation as f32) * 0.5 + i as f32 * 1e-3;
    }
    m
}

#[test]
fn writer_process() {
    // Only does something when started by the test below.
    let Some(path) = std::env::var_os("AEGIS_WEIGHTS_WRITER") else { return };
    let mut w = WeightsWriter::open(std::path::Path::new(&path)).unwrap();
    for g in 1..=PUBLISHES {
        w.publish(&model(g));
    }
}

#[test]
fn a_reader_in_another_process_never_accepts_a_torn_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.bin");
    drop(WeightsWriter::open(&path).unwrap());
    let reader = WeightsReader::open(&path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_process", "--nocapture", "--test-threads=1"])
        .env("AEGIS_WEIGHTS_WRITER", &path)
        .spawn()
        .unwrap();
    let mut out = ModelParams::zeroed();
    let (mut accepted, mut torn, mut generations, mut last) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let finished = child.try_wait().unwrap().is_some();
        match reader.read_into(&mut out) {
            Ok(true) => {
                let expected = model(out.generation);
                assert_eq!(
                    out.values[..],
                    expected.values[..PARAMS],
                    "generation {} read torn",
                    out.generation
                );
                assert!(out.generation >= last, "generations never go back");
                generations += u64::from(out.generation != last);
                last = out.generation;
                accepted += 1;
            }
            Ok(false) => {}
            Err(WeightsError::Torn) => torn += 1,
            Err(e) => panic!("a copy passed the seqlock but failed validation: {e}"),
        }
        if finished && last == PUBLISHES {
            break;
        }
        assert!(!finished || child.wait().unwrap().success(), "writer failed");
    }
    assert!(child.wait().unwrap().success());
    eprintln!(
        "{accepted} models accepted ({generations} distinct generations), {torn} reads refused as torn"
    );
    assert!(generations > 1, "the reader saw publications while they happened");
}
