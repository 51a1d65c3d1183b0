//! The learned model in the brain (SPEC §7): one closed bar's ensemble prediction stepped
//! from each symbol's kept LSTM state, against re-running the LSTM over the last 60 bars
//! (what a stateless implementation does) in the same run; and the hot swap — what the
//! brain pays to take a model the loader validated, against finding none waiting, and what
//! the loader pays (off the brain) to copy and validate a published slot.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use aegis::brain::student::{Student, Swap};
use aegis::model_loader::{ModelLink, ModelMsg, ModelStats};
use aegis_model::{predict, LstmState, LSTM_WARMUP_BARS};
use aegis_perf::model::sample_model as model;
use aegis_wire::weights::{ModelParams, WeightsReader, WeightsWriter, PARAMS};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;

/// Symbols the default config trades.
const SYMBOLS: usize = 20;

/// Feature vector `i` of an endless, varied series.
fn features(i: usize) -> [f64; 18] {
    std::array::from_fn(|k| ((i * 31 + k * 17) % 97) as f64 / 48.0 - 1.0)
}

fn per_bar(c: &mut Criterion) {
    let m = model(1);
    let p: &[f32; PARAMS] = &m.values;
    let mut group = c.benchmark_group("model_per_closed_bar");
    let mut state = LstmState::default();
    let mut i = 0;
    for _ in 0..=LSTM_WARMUP_BARS {
        predict(p, &features(i), &mut state);
        i += 1;
    }
    group.bench_function("aegis ensemble, one LSTM step from kept state", |b| {
        b.iter(|| {
            i += 1;
            predict(p, black_box(&features(i)), &mut state).p_up
        })
    });
    let mut j = 60;
    group.bench_function("baseline: LSTM re-run over the last 60 bars", |b| {
        b.iter(|| {
            j += 1;
            let mut fresh = LstmState::default();
            let mut last = 0.0;
            for k in j - 60..=j {
                last = predict(p, black_box(&features(k)), &mut fresh).p_up;
            }
            last
        })
    });
    group.finish();
}

fn swap(c: &mut Criterion) {
    let mut group = c.benchmark_group("model_swap");
    let (mut to_brain, incoming) = rtrb::RingBuffer::<ModelMsg>::new(4);
    let (returns, mut back) = rtrb::RingBuffer::<Box<ModelParams>>::new(4);
    let link = ModelLink { incoming, returns, stats: Arc::new(ModelStats::default()) };
    let mut student = Student::new(link, SYMBOLS);
    // Two buffers circulate as they do between the loader and the brain.
    let mut spare = Some(model(1));
    let _ = to_brain.push(ModelMsg::New(model(2)));
    student.check_swap();
    group.bench_function("brain: no model waiting (one ring check)", |b| {
        b.iter(|| matches!(black_box(student.check_swap()), Swap::None))
    });
    let mut generation = 2;
    group.bench_function(format!("brain: take a validated model, {SYMBOLS} LSTM states reset"), |b| {
        b.iter(|| {
            generation += 1;
            let mut next = spare.take().unwrap_or_else(|| model(generation));
            next.generation = generation;
            let _ = to_brain.push(ModelMsg::New(next));
            let swapped = matches!(student.check_swap(), Swap::Swapped(_));
            spare = back.pop().ok();
            swapped
        })
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weights.bin");
    WeightsWriter::open(&path).expect("weights file").publish(&model(1));
    let reader = WeightsReader::open(&path).expect("weights file");
    let mut into = model(0);
    group.bench_function("loader (off the brain): copy and validate a published slot", |b| {
        b.iter(|| reader.read_into(black_box(&mut into)))
    });
    group.finish();
}

criterion_group!(benches, per_bar, swap);
criterion_main!(benches);
