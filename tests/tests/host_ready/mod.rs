//! Whether the host backend can run here: its preflight (root, the packages `.ci/run` installs,
//! the components `just kubernetes` builds). A host test that cannot run fails, unless
//! `PULLPROOF_SKIP_HOST_TESTS=1` says to skip it knowingly (then it says so, loudly).

use pullproof::backend::host::{HostOptions, preflight};

/// True when `test` can run on the host backend; false when it is skipped on purpose. Panics
/// with what is missing otherwise.
pub fn host_ready(test: &str) -> bool {
    let Err(e) = preflight(&HostOptions::default()) else { return true };
    if std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() != Ok("1") {
        panic!("the host backend cannot run here: {e} (or set PULLPROOF_SKIP_HOST_TESTS=1 to skip knowingly)");
    }
    eprintln!("SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1) {test}: {e}");
    false
}
