//! pulldoctor's offline input: an ARM inventory JSON, diagnosed against a real failing pod
//! (the acrpull-role-missing fixture's dump), and a cluster dump's pods list.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pulldoctor::Evidence;

static DUMP: LazyLock<Evidence> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence/acrpull-role-missing/dump");
    Evidence::load(&dir, None).expect("the fixture dump loads")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(inventory) = azure_model::Inventory::from_json(text) {
        let mut evidence = DUMP.clone();
        evidence.azure = inventory;
        let diagnosis = pulldoctor::diagnose(&evidence);
        let _ = pulldoctor::collect::report(&diagnosis, &evidence);
    }
    let _ = serde_json::from_str::<k8s_openapi::List<k8s_openapi::api::core::v1::Pod>>(text);
});
