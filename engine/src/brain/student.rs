//! The brain's side of the learned model: the serving parameters (swapped in from the
//! loader's ring, one acquire load per closed bar), each symbol's LSTM state stepped once
//! per closed bar, and the prediction the policy and `confidence_ensemble` read.

use crate::model_loader::{ModelLink, ModelMsg};
use aegis_analytics::FeatureSnapshot;
use aegis_model::{predict, LstmState};
use aegis_trading::policy::ModelView;
use aegis_wire::weights::ModelParams;
use std::sync::atomic::Ordering;

/// What a swap check found.
pub enum Swap {
    /// Nothing new.
    None,
    /// A new generation now serves.
    Swapped(u64),
    /// A publication was refused: the alert text.
    Refused(&'static str),
}

/// The serving model and the per-symbol state it runs on.
pub struct Student {
    link: ModelLink,
    current: Option<Box<ModelParams>>,
    states: Vec<LstmState>,
}

impl Student {
    /// A student for `symbols` symbols, serving nothing until the loader hands a model over.
    pub fn new(link: ModelLink, symbols: usize) -> Self {
        Self { link, current: None, states: vec![LstmState::default(); symbols] }
    }

    /// Takes a model the loader validated, if one is waiting: the old buffer goes back, every
    /// LSTM restarts from zero state (and warms up before it counts).
    pub fn check_swap(&mut self) -> Swap {
        match self.link.incoming.pop() {
            Ok(ModelMsg::New(model)) => {
                let generation = model.generation;
                if let Some(old) = self.current.replace(model) {
                    // The ring holds every buffer in circulation: it has room.
                    let _ = self.link.returns.push(old);
                }
                for s in &mut self.states {
                    s.reset();
                }
                self.link.stats.serving.store(generation, Ordering::Relaxed);
                self.link.stats.swaps.fetch_add(1, Ordering::Relaxed);
                Swap::Swapped(generation)
            }
            Ok(ModelMsg::Refused(why)) => Swap::Refused(why),
            Err(_) => Swap::None,
        }
    }

    /// Steps `symbol`'s LSTM with this closed bar and predicts; writes the confidence into
    /// the snapshot's `confidence_ensemble`. `None` while no model serves.
    pub fn predict(&mut self, symbol: usize, snapshot: &mut FeatureSnapshot) -> Option<ModelView> {
        let model = self.current.as_ref()?;
        let state = self.states.get_mut(symbol)?;
        let p = predict(&model.values, &snapshot.features, state);
        snapshot.features[aegis_analytics::feature::CONFIDENCE] = p.confidence;
        Some(ModelView { p_up: p.p_up, expected_return: p.expected_return, confidence: p.confidence })
    }
}
