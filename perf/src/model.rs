//! A deterministic model for the hot-swap measurements: the brain runs it like a trained
//! one (same shapes, finite values), without a training run.

use aegis_wire::weights::{offset, ModelParams, N_IN};

/// Small pseudo-random parameters of `generation`: unit normalisation, equal ensemble
/// weights, identity calibration.
pub fn sample_model(generation: u64) -> Box<ModelParams> {
    let mut m = ModelParams::zeroed();
    m.generation = generation;
    let mut seed = 7u64;
    for v in m.values.iter_mut() {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        *v = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4;
    }
    m.values[offset::MEAN..offset::MEAN + N_IN].fill(0.0);
    m.values[offset::STD..offset::STD + N_IN].fill(1.0);
    m.values[offset::ENSEMBLE..offset::ENSEMBLE + 3].fill(1.0);
    m.values[offset::CALIBRATION..offset::CALIBRATION + 2].copy_from_slice(&[1.0, 0.0]);
    Box::new(m)
}
