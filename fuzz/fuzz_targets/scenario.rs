//! Scenario YAML through parsing and validation against a real baseline: every input gets a
//! scenario or diagnostics, never a panic.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pullproof::baseline::Baseline;
use pullproof::scenario::Scenario;

static BASELINE: LazyLock<Baseline> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/private-registry.yaml");
    pullproof::catalog::load_baseline(&path).expect("the fixture baseline loads")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = Scenario::from_yaml(text) {
        let diagnostics = pullproof::catalog::check_scenario(Path::new("scenarios/fuzz.yaml"), text, &s, &BASELINE);
        for d in diagnostics {
            let _ = d.to_string();
        }
        let _ = s.fault.inverse(&BASELINE);
    }
});
