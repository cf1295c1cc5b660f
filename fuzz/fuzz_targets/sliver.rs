//! BCS decoding of slivers: `Sliver` and `SliverData`.
#![no_main]

use floe_core::{Sliver, SliverData};
use floe_fuzz::{bcs_round_trip, small_metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (config, metadata) = small_metadata();
    if let Some(sliver) = bcs_round_trip::<Sliver>(data) {
        let _ = sliver.data().n_symbols();
        // Verifying an arbitrary sliver against real metadata returns a verdict, never panics.
        let _ = sliver.verify(config, &metadata.metadata);
    }
    if let Some(sliver_data) = bcs_round_trip::<SliverData>(data) {
        let _ = sliver_data.n_symbols();
        for axis in [
            floe_core::SliverType::Primary,
            floe_core::SliverType::Secondary,
        ] {
            let _ = sliver_data.verify(axis, config, &metadata.metadata);
        }
    }
});
