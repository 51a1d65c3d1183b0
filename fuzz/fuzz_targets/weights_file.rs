//! Arbitrary bytes as the weights file → the model loader's reader: refused with what
//! differs (layout, checksum, finiteness, torn), or a validated model; never a panic or an
//! out-of-bounds read.
#![no_main]
use aegis_wire::weights::{ModelParams, WeightsReader, WeightsWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("aegis-fuzz-weights-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("weights.bin");
    let valid = dir.join("valid.bin");
    if !valid.exists() && WeightsWriter::open(&valid).is_err() {
        return;
    }
    let Ok(mut file) = std::fs::read(&valid) else { return };
    // Half the time the fuzz bytes overwrite a valid file past its layout header (so the
    // slot reads are reached); otherwise they are the whole file.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let at = 36 * 4; // past the feature indices
        for (dst, src) in file.iter_mut().skip(at).zip(&data[1..]) {
            *dst = *src;
        }
    } else {
        file = data.to_vec();
    }
    if std::fs::write(&path, &file).is_err() {
        return;
    }
    if let Ok(reader) = WeightsReader::open(&path) {
        let mut out = ModelParams::zeroed();
        let _ = reader.read_into(&mut out);
        let _ = reader.sequence();
    }
});
