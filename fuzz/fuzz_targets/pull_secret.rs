//! A pull secret's `.dockerconfigjson` (or legacy `.dockercfg`) as stored in the cluster.
#![no_main]

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (key, ty) in [(".dockerconfigjson", "kubernetes.io/dockerconfigjson"), (".dockercfg", "kubernetes.io/dockercfg")] {
        let secret = Secret {
            type_: Some(ty.into()),
            data: Some([(key.to_string(), ByteString(data.to_vec()))].into()),
            ..Default::default()
        };
        let _ = pulldoctor::evidence::PullSecret::from_secret(&secret);
    }
});
