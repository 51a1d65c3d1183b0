//! Arbitrary bytes in a record slot are refused or read; never undefined behaviour.
#![no_main]
use aegis_wire::{RecordSlot, RECORD_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = [0u8; RECORD_SIZE];
    let n = data.len().min(RECORD_SIZE);
    bytes[..n].copy_from_slice(&data[..n]);
    // Slots are only filled by the encoder; arbitrary bytes reach the reader through a file.
    let dir = std::env::temp_dir().join(format!("aegis-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("slot.bin");
    let mut file = Vec::with_capacity(16 + RECORD_SIZE);
    file.extend_from_slice(b"AEGISREC");
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(RECORD_SIZE as u32).to_le_bytes());
    file.extend_from_slice(&bytes);
    if std::fs::write(&path, &file).is_ok() {
        if let Ok(records) = aegis_wire::RecordFile::open(&path) {
            if let Ok(r) = records.get(0) {
                let _ = r.identity().is_some();
            }
        }
    }
    assert!(RecordSlot::default().read().is_ok());
});
