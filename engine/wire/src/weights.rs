//! The weights file (SPEC §7): one mmap'd file shared by the sidecar (the one writer) and
//! the engine's model loader (a reader in another process).
//!
//! Layout, all little-endian 32-bit words: a 64-word header — magic, format version,
//! feature count, the feature indices used (in order), layer shapes, slot size, the
//! sequence counter and the active slot — then two slots A and B, each a 4-word slot header
//! (generation as two words, checksum, reserved) and [`PARAMS`] `f32` parameters.
//!
//! Publishing is seqlock-style: the writer makes the counter odd, writes and checksums the
//! inactive slot, flips the active slot, then makes the counter even again with a release
//! store. A reader copies the active slot between two acquire loads of an even, unchanged
//! counter, and validates the copy (checksum, finiteness) before anything uses it. Every
//! access to the mapping is an atomic word load or store, so the processes never race in
//! Rust's sense.

use memmap2::MmapMut;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// `"AEGISWTS"`, as two words.
const MAGIC: [u32; 2] = [u32::from_le_bytes(*b"AEGI"), u32::from_le_bytes(*b"SWTS")];
/// Format version.
pub const VERSION: u32 = 1;

/// The features the models read, as indices into the 18-feature vector: features 1–11 and
/// 13–18 of SPEC §4 (`confidence_ensemble`, index 11, is the models' own output).
pub const INPUTS: [usize; 17] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17];
/// Inputs per model.
pub const N_IN: usize = INPUTS.len();
/// Outputs per model: the logit of P(up over H bars) and the expected return.
pub const N_OUT: usize = 2;
/// The MLP's hidden width.
pub const MLP_HIDDEN: usize = 16;
/// The LSTM's hidden (and cell) width.
pub const LSTM_HIDDEN: usize = 16;

/// Where each tensor lives in a slot's parameters (PyTorch's shapes, row-major).
pub mod offset {
    use super::{LSTM_HIDDEN as H, MLP_HIDDEN as M, N_IN as F, N_OUT as O};
    /// Normalisation means `[F]`.
    pub const MEAN: usize = 0;
    /// Normalisation standard deviations `[F]`.
    pub const STD: usize = MEAN + F;
    /// Logistic regression weight `[O, F]`.
    pub const LR_W: usize = STD + F;
    /// Logistic regression bias `[O]`.
    pub const LR_B: usize = LR_W + O * F;
    /// MLP first layer weight `[M, F]`.
    pub const MLP_W1: usize = LR_B + O;
    /// MLP first layer bias `[M]`.
    pub const MLP_B1: usize = MLP_W1 + M * F;
    /// MLP output weight `[O, M]`.
    pub const MLP_W2: usize = MLP_B1 + M;
    /// MLP output bias `[O]`.
    pub const MLP_B2: usize = MLP_W2 + O * M;
    /// LSTM input weights `[4H, F]` (gates i, f, g, o as PyTorch orders them).
    pub const LSTM_WIH: usize = MLP_B2 + O;
    /// LSTM recurrent weights `[4H, H]`.
    pub const LSTM_WHH: usize = LSTM_WIH + 4 * H * F;
    /// LSTM input bias `[4H]`.
    pub const LSTM_BIH: usize = LSTM_WHH + 4 * H * H;
    /// LSTM recurrent bias `[4H]`.
    pub const LSTM_BHH: usize = LSTM_BIH + 4 * H;
    /// LSTM head weight `[O, H]`.
    pub const LSTM_WOUT: usize = LSTM_BHH + 4 * H;
    /// LSTM head bias `[O]`.
    pub const LSTM_BOUT: usize = LSTM_WOUT + O * H;
    /// Ensemble weights `[3]` (LR, MLP, LSTM; fitted on the validation split).
    pub const ENSEMBLE: usize = LSTM_BOUT + O;
    /// Calibration `[2]`: P = σ(a · logit + b).
    pub const CALIBRATION: usize = ENSEMBLE + 3;
    /// Parameters in a slot.
    pub const END: usize = CALIBRATION + 2;
}

/// Parameters in one slot.
pub const PARAMS: usize = offset::END;

const HEADER_WORDS: usize = 64;
const SLOT_HEADER_WORDS: usize = 4;
const SLOT_WORDS: usize = SLOT_HEADER_WORDS + PARAMS;
const FILE_WORDS: usize = HEADER_WORDS + 2 * SLOT_WORDS;
// Header word positions.
const W_VERSION: usize = 2;
const W_FEATURES: usize = 3;
const W_MLP: usize = 4;
const W_LSTM: usize = 5;
const W_OUT: usize = 6;
const W_PARAMS: usize = 7;
const W_SEQ: usize = 8;
const W_ACTIVE: usize = 9;
const W_INPUTS: usize = 16;

/// A model's parameters as published: the generation and the flat `f32` tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelParams {
    /// Publication number (1 for the first model).
    pub generation: u64,
    /// The tensors, laid out as [`offset`] says.
    pub values: Box<[f32; PARAMS]>,
}

impl ModelParams {
    /// All-zero parameters of generation 0 (a preallocated buffer).
    pub fn zeroed() -> Self {
        Self { generation: 0, values: Box::new([0.0; PARAMS]) }
    }
}

/// Why a weights file, or a model read from it, was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WeightsError {
    /// The file system refused.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        reason: String,
    },
    /// The file was written for another format or model layout.
    #[error("{path}: written for another layout ({what})")]
    Layout {
        /// The file.
        path: String,
        /// What differed.
        what: String,
    },
    /// The writer published while the copy was taken, every try.
    #[error("torn read: the writer kept publishing during the copy")]
    Torn,
    /// The copied slot's checksum does not match its parameters.
    #[error("checksum mismatch in generation {generation}")]
    Checksum {
        /// The slot's generation.
        generation: u64,
    },
    /// A parameter is NaN or infinite.
    #[error("generation {generation}: parameter {index} is not finite")]
    NotFinite {
        /// The slot's generation.
        generation: u64,
        /// Which parameter.
        index: usize,
    },
}

/// The checksum of a slot's parameters (FNV-1a over their bits, with the generation).
pub fn checksum(generation: u64, values: &[f32; PARAMS]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |w: u32| {
        for b in w.to_le_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    eat(generation as u32);
    eat((generation >> 32) as u32);
    for v in values {
        eat(v.to_bits());
    }
    h
}

/// A mapped weights file: header and slots as atomic words.
struct Mapped {
    _map: MmapMut,
    words: *const AtomicU32,
}

// SAFETY: the pointer targets the mapping owned by `_map`, which lives as long as `Mapped`,
// and every access through it is atomic.
unsafe impl Send for Mapped {}
// SAFETY: as above: shared access is atomic word loads and stores only.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn word(&self, i: usize) -> &AtomicU32 {
        assert!(i < FILE_WORDS, "weights word {i} out of {FILE_WORDS}");
        // SAFETY: `i < FILE_WORDS` words lie inside the mapping (its size is checked when
        // mapped), the mapping is page-aligned so every word is 4-byte aligned, and
        // `AtomicU32` has the layout of `u32`.
        unsafe { &*self.words.add(i) }
    }

    fn slot(&self, slot: u32) -> usize {
        HEADER_WORDS + slot as usize * SLOT_WORDS
    }

    /// The header words this build expects.
    fn expected() -> Vec<(usize, u32, String)> {
        let mut out = vec![
            (0, MAGIC[0], "magic".to_string()),
            (1, MAGIC[1], "magic".to_string()),
            (W_VERSION, VERSION, "format version".to_string()),
            (W_FEATURES, N_IN as u32, "feature count".to_string()),
            (W_MLP, MLP_HIDDEN as u32, "MLP width".to_string()),
            (W_LSTM, LSTM_HIDDEN as u32, "LSTM width".to_string()),
            (W_OUT, N_OUT as u32, "outputs".to_string()),
            (W_PARAMS, PARAMS as u32, "parameter count".to_string()),
        ];
        for (k, &feature) in INPUTS.iter().enumerate() {
            out.push((W_INPUTS + k, feature as u32, format!("feature {k} (index {feature})")));
        }
        out
    }
}

fn map(path: &Path, create: bool) -> Result<Mapped, WeightsError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| WeightsError::Io { path: name.clone(), reason: e.to_string() };
    let layout = |what: String| WeightsError::Layout { path: name.clone(), what };
    if create {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
    }
    let file =
        OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let fresh = size == 0 && create;
    if fresh {
        file.set_len((FILE_WORDS * 4) as u64).map_err(io)?;
    } else if size != (FILE_WORDS * 4) as u64 {
        return Err(layout(format!("file size {size}, expected {}", FILE_WORDS * 4)));
    }
    // SAFETY: the file is the weights file; other processes touch it only through this
    // module's atomic word accesses, so the mapping is never observed torn at word level.
    let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
    let words = map.as_mut_ptr() as *const AtomicU32;
    let mapped = Mapped { _map: map, words };
    if fresh {
        for (i, value, _) in Mapped::expected() {
            mapped.word(i).store(value, Ordering::Relaxed);
        }
        fence(Ordering::Release);
    }
    for (i, value, what) in Mapped::expected() {
        let found = mapped.word(i).load(Ordering::Acquire);
        if found != value {
            return Err(layout(format!("{what}: file has {found}, this build {value}")));
        }
    }
    Ok(mapped)
}

/// The one writer (the sidecar).
pub struct WeightsWriter {
    mapped: Mapped,
}

impl WeightsWriter {
    /// Opens `path`, creating it (with no model) when missing; refuses another layout.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        Ok(Self { mapped: map(path, true)? })
    }

    /// The generation published last (0: none).
    pub fn generation(&self) -> u64 {
        read_generation(&self.mapped)
    }

    /// Publishes `model` into the inactive slot, then makes it the active one.
    pub fn publish(&mut self, model: &ModelParams) {
        let m = &self.mapped;
        let seq = m.word(W_SEQ);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let slot = 1 - m.word(W_ACTIVE).load(Ordering::Relaxed).min(1);
        let base = m.slot(slot);
        m.word(base).store(model.generation as u32, Ordering::Relaxed);
        m.word(base + 1).store((model.generation >> 32) as u32, Ordering::Relaxed);
        m.word(base + 2).store(checksum(model.generation, &model.values), Ordering::Relaxed);
        for (i, v) in model.values.iter().enumerate() {
            m.word(base + SLOT_HEADER_WORDS + i).store(v.to_bits(), Ordering::Relaxed);
        }
        m.word(W_ACTIVE).store(slot, Ordering::Relaxed);
        seq.store((s | 1).wrapping_add(1), Ordering::Release);
    }

    /// Overwrites one parameter of the active slot without re-checksumming (tests of the
    /// reader's refusals: a corrupt slot).
    pub fn corrupt_active(&mut self, index: usize, value: f32) {
        let m = &self.mapped;
        let base = m.slot(m.word(W_ACTIVE).load(Ordering::Relaxed).min(1));
        m.word(base + SLOT_HEADER_WORDS + index.min(PARAMS - 1)).store(value.to_bits(), Ordering::Release);
    }
}

fn read_generation(m: &Mapped) -> u64 {
    let base = m.slot(m.word(W_ACTIVE).load(Ordering::Acquire).min(1));
    u64::from(m.word(base).load(Ordering::Relaxed))
        | (u64::from(m.word(base + 1).load(Ordering::Relaxed)) << 32)
}

/// A reader (the engine's model loader).
pub struct WeightsReader {
    mapped: Mapped,
}

/// Copies of a slot tried before a read is called torn.
const READ_TRIES: usize = 16;

impl WeightsReader {
    /// Opens an existing `path`; refuses another layout.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        Ok(Self { mapped: map(path, false)? })
    }

    /// The sequence counter (even when no publish is under way).
    pub fn sequence(&self) -> u32 {
        self.mapped.word(W_SEQ).load(Ordering::Acquire)
    }

    /// Copies the active model into `out` and validates it. `Ok(false)`: nothing published
    /// yet (generation 0). A copy overlapping a publish is retried, then refused as torn.
    pub fn read_into(&self, out: &mut ModelParams) -> Result<bool, WeightsError> {
        let m = &self.mapped;
        for _ in 0..READ_TRIES {
            let before = m.word(W_SEQ).load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let base = m.slot(m.word(W_ACTIVE).load(Ordering::Relaxed).min(1));
            let generation = u64::from(m.word(base).load(Ordering::Relaxed))
                | (u64::from(m.word(base + 1).load(Ordering::Relaxed)) << 32);
            let sum = m.word(base + 2).load(Ordering::Relaxed);
            for (i, v) in out.values.iter_mut().enumerate() {
                *v = f32::from_bits(m.word(base + SLOT_HEADER_WORDS + i).load(Ordering::Relaxed));
            }
            fence(Ordering::Acquire);
            if m.word(W_SEQ).load(Ordering::Relaxed) != before {
                continue;
            }
            out.generation = generation;
            if generation == 0 {
                return Ok(false);
            }
            if checksum(generation, &out.values) != sum {
                return Err(WeightsError::Checksum { generation });
            }
            if let Some(index) = out.values.iter().position(|v| !v.is_finite()) {
                return Err(WeightsError::NotFinite { generation, index });
            }
            return Ok(true);
        }
        Err(WeightsError::Torn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(generation: u64, fill: f32) -> ModelParams {
        let mut m = ModelParams::zeroed();
        m.generation = generation;
        for (i, v) in m.values.iter_mut().enumerate() {
            *v = fill + i as f32 * 1e-3;
        }
        m
    }

    #[test]
    fn offsets_tile_the_slot() {
        assert_eq!(offset::STD - offset::MEAN, N_IN);
        assert_eq!(offset::LSTM_WHH - offset::LSTM_WIH, 4 * LSTM_HIDDEN * N_IN);
        assert_eq!(PARAMS, offset::CALIBRATION + 2);
        assert!(!INPUTS.contains(&11), "confidence_ensemble is an output, not an input");
    }

    #[test]
    fn a_published_model_reads_back_and_a_corrupt_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        let mut writer = WeightsWriter::open(&path).unwrap();
        let reader = WeightsReader::open(&path).unwrap();
        let mut out = ModelParams::zeroed();
        assert_eq!(reader.read_into(&mut out), Ok(false), "nothing published yet");
        for g in 1..=3 {
            writer.publish(&model(g, g as f32));
            assert_eq!(reader.read_into(&mut out), Ok(true));
            assert_eq!(out, model(g, g as f32));
            assert_eq!(reader.sequence() % 2, 0);
        }
        writer.corrupt_active(7, 123.0);
        assert_eq!(reader.read_into(&mut out), Err(WeightsError::Checksum { generation: 3 }));
        let mut nan = model(4, 1.0);
        nan.values[5] = f32::NAN;
        writer.publish(&nan);
        assert_eq!(reader.read_into(&mut out), Err(WeightsError::NotFinite { generation: 4, index: 5 }));
    }

    #[test]
    fn a_file_of_another_layout_is_refused_with_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        drop(WeightsWriter::open(&path).unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(W_INPUTS + 11) * 4] = 11; // the feature layout of another build
        std::fs::write(&path, &bytes).unwrap();
        match WeightsReader::open(&path) {
            Err(WeightsError::Layout { what, .. }) => assert!(what.contains("feature 11"), "{what}"),
            other => panic!("{:?}", other.err()),
        }
        std::fs::write(&path, &bytes[..100]).unwrap();
        assert!(matches!(WeightsReader::open(&path), Err(WeightsError::Layout { .. })));
    }
}
