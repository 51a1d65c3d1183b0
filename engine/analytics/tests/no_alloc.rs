//! Zero allocations per closed bar and per order-flow event after warm-up, counted by a
//! global allocator wrapper.

mod series;

use aegis_analytics::flow::FlowAccumulator;
use aegis_analytics::{FeatureConfig, FeatureEngine};
use aegis_testkit::{allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn closed_bars_and_order_flow_allocate_nothing_after_warm_up() {
    let bars = series::walk(3_000, 11);
    let mut engine = FeatureEngine::new(FeatureConfig::default());
    let mut flow = FlowAccumulator::new();
    let (warm_up, measured) = bars.split_at(300);
    for bar in warm_up {
        engine.update(bar).unwrap();
    }
    let probe = allocations();
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(allocations(), probe + 1, "the counter sees this thread's allocations");
    let before = allocations();
    let mut warm = 0;
    for (i, bar) in measured.iter().enumerate() {
        for k in 0..20 {
            let t = bar.open_time_ms + k * 3_000;
            flow.on_trade(t, bar.close, 0.5, k % 3 == 0);
            flow.on_quote(t, bar.close * 0.9999, 2.0, bar.close * 1.0001, 1.0 + i as f64);
        }
        let mut closed = *bar;
        closed.flow = flow.close_minute(bar.open_time_ms);
        warm += u32::from(engine.update(&closed).unwrap().warm);
    }
    let allocations = allocations() - before;
    assert_eq!(warm, 2_700, "every measured bar was past warm-up");
    assert_eq!(allocations, 0, "{allocations} allocations over 2,700 bars and 108,000 flow events");
}
